//! A TCP port credgate connects to.

use std::num::NonZeroU16;

/// 1–65535: port 0 means "any" to the kernel and is never a place to connect to.
/// Stored as the plain number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Port(NonZeroU16);

impl Port {
    /// SSH's own.
    pub const SSH: Port = Port(NonZeroU16::MIN.saturating_add(21));

    /// Taken as a wide integer, so 0 and 70000 get the same clear message.
    pub fn parse(value: i64) -> Result<Self, &'static str> {
        u16::try_from(value)
            .ok()
            .and_then(NonZeroU16::new)
            .map(Self)
            .ok_or("must be between 1 and 65535")
    }

    pub fn get(self) -> u16 {
        self.0.get()
    }
}

impl std::fmt::Display for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Port;

    #[test]
    fn ports_are_one_to_65535() {
        assert_eq!(Port::SSH.get(), 22);
        assert_eq!(Port::parse(65535).map(Port::get), Ok(65535));
        for bad in [0, -1, 65536, i64::MAX] {
            assert!(Port::parse(bad).is_err(), "{bad}");
        }
        assert!(
            serde_json::from_str::<Port>("0").is_err(),
            "a stored 0 is refused"
        );
        assert_eq!(serde_json::to_string(&Port::SSH).unwrap(), "22");
    }
}
