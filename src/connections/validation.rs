//! Field rules for connections, collected so one response names every bad field.

pub use crate::gateway::FieldErrors;
use crate::ssh::{Host, Port, Username};

pub const DEFAULT_TIMEOUT_SECS: u64 = 10;

pub fn host(text: &str) -> Result<Host, String> {
    Host::parse(text.trim()).map_err(str::to_owned)
}

/// 1–65535, default 22. Taken as a wide integer so 0 and 70000 get a clear message.
pub fn port(value: Option<i64>) -> Result<Port, String> {
    value.map_or(Ok(Port::SSH), |p| Port::parse(p).map_err(str::to_owned))
}

/// Seconds, 1–120, default 10.
pub fn connect_timeout(value: Option<i64>) -> Result<u64, String> {
    match value {
        None => Ok(DEFAULT_TIMEOUT_SECS),
        Some(t) if (1..=120).contains(&t) => u64::try_from(t).map_err(|e| e.to_string()),
        Some(_) => Err("must be between 1 and 120 seconds".to_owned()),
    }
}

/// `^[a-z_][a-z0-9_.-]{0,31}$`, default `root`.
pub fn username(value: Option<&str>) -> Result<Username, String> {
    value
        .map_or_else(|| Ok(Username::root()), Username::parse)
        .map_err(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_rules() {
        assert_eq!(port(None), Ok(Port::SSH));
        assert!(port(Some(0)).is_err() && port(Some(70000)).is_err());
        assert_eq!(connect_timeout(Some(120)), Ok(120));
        assert!(connect_timeout(Some(0)).is_err());
        assert_eq!(username(None), Ok(Username::root()));
        assert!(username(Some("backup.user-1")).is_ok());
        for bad in ["Root", "1abc", "", "a b", &"a".repeat(33)] {
            assert!(username(Some(bad)).is_err(), "{bad}");
        }
        assert!(host("has space").is_err());
    }
}
