//! Host names credgate will connect to: RFC 1123 names or IP literals, nothing else.

use std::net::IpAddr;

use super::Port;

/// An IP address, bare or in brackets.
fn literal(text: &str) -> Option<IpAddr> {
    text.strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text)
        .parse()
        .ok()
}

/// A validated host: an IP literal or an RFC 1123 host name. Stored (in events, views)
/// as the plain string it was parsed into; reading it back checks it again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Host(String);

// Reading a stored host applies the rules every earlier version recorded hosts under,
// so old events still load (what they name is checked again before any use).
checked_text!(Host, stored: Host::parse_stored);

impl Host {
    /// A host as a client writes it. An IP address is kept in its canonical form (what
    /// exported files then say); a name must not look like a number: `0251.0376.0251.0376`,
    /// `0x7f000001` or `2130706433` are addresses to every resolver (`inet_aton`), so
    /// they are refused rather than written into a job's ssh_config as a "name".
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        if let Some(ip) = literal(text) {
            return Ok(Self(ip.to_string()));
        }
        let host = Self::parse_stored(text)?;
        let last = host.0.rsplit('.').next().unwrap_or_default();
        let numeric = last.bytes().all(|b| b.is_ascii_digit())
            || (last.starts_with("0x") && last[2..].bytes().all(|b| b.is_ascii_hexdigit()));
        if numeric {
            return Err(
                "looks like a number but is not an IP address in standard form (write it like 192.0.2.10)",
            );
        }
        Ok(host)
    }

    /// The rules before canonical addresses and numeric-looking names were refused.
    fn parse_stored(text: &str) -> Result<Self, &'static str> {
        let inner = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        if inner.parse::<IpAddr>().is_ok() {
            return Ok(Self(inner.to_owned()));
        }
        if text.is_empty() {
            return Err("must not be empty");
        }
        if text.len() > 253 {
            return Err("must be at most 253 characters");
        }
        let name = text.strip_suffix('.').unwrap_or(text);
        let labels_ok = name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
        if !labels_ok {
            return Err("must be a host name (letters, digits, hyphens, dots) or an IP address");
        }
        Ok(Self(name.to_ascii_lowercase()))
    }

    pub fn ip(&self) -> Option<IpAddr> {
        self.0.parse().ok()
    }

    /// How OpenSSH writes it in known_hosts: `host` on port 22, `[host]:port` otherwise.
    pub fn known_hosts_pattern(&self, port: Port) -> String {
        if port == Port::SSH {
            self.0.clone()
        } else {
            format!("[{}]:{port}", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_looking_labels_are_names_and_length_is_253_at_most() {
        // Only `0x…` or all-digit last labels read as numbers; `cafe` is a name.
        assert_eq!(Host::parse("nas.cafe").unwrap().as_str(), "nas.cafe");
        let label = "a".repeat(63);
        let longest = format!("{label}.{label}.{label}.{}", "b".repeat(61));
        assert_eq!(longest.len(), 253);
        assert!(Host::parse(&longest).is_ok());
        assert!(Host::parse(&format!("{longest}b")).is_err());
    }

    #[test]
    fn only_literals_have_an_address() {
        assert_eq!(
            Host::parse("192.0.2.7").unwrap().ip(),
            Some("192.0.2.7".parse().unwrap())
        );
        assert_eq!(
            Host::parse("[2001:db8::1]").unwrap().ip(),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(Host::parse("nas.example").unwrap().ip(), None);
    }

    #[test]
    fn names_and_literals() {
        assert_eq!(
            Host::parse("NAS-1.example.org").unwrap().as_str(),
            "nas-1.example.org"
        );
        assert_eq!(Host::parse("127.0.0.1").unwrap().as_str(), "127.0.0.1");
        assert_eq!(Host::parse("[::1]").unwrap().as_str(), "::1");
        for bad in [
            "",
            "has space",
            "-lead.example",
            "under_score",
            "a..b",
            "x;rm -rf",
            &"a".repeat(64),
        ] {
            assert!(Host::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Host::parse("nas").unwrap().known_hosts_pattern(Port::SSH),
            "nas"
        );
        assert_eq!(
            Host::parse("1password.example").unwrap().as_str(),
            "1password.example"
        );
        assert_eq!(
            Host::parse("::1")
                .unwrap()
                .known_hosts_pattern(Port::parse(2222).unwrap()),
            "[::1]:2222"
        );
    }

    /// Spellings every resolver reads as an address are not names; addresses are kept
    /// in one canonical form.
    #[test]
    fn numbers_are_not_names_and_addresses_are_canonical() {
        for numeric in [
            "0251.0376.0251.0376",
            "0",
            "2130706433",
            "0x7f000001",
            "0xA9FEA9FE",
            "127.1",
            "10.0.0.010",
        ] {
            assert!(Host::parse(numeric).is_err(), "{numeric}");
        }
        assert_eq!(Host::parse("0:0::1").unwrap().as_str(), "::1");
        assert_eq!(Host::parse("[FE80::1]").unwrap().as_str(), "fe80::1");
        assert_eq!(
            Host::parse("::FFFF:169.254.169.254").unwrap().as_str(),
            "::ffff:169.254.169.254"
        );
        // What earlier versions stored still loads (and is refused at use by policy).
        let stored: Host = serde_json::from_str("\"0251.0376.0251.0376\"").unwrap();
        assert_eq!(stored.as_str(), "0251.0376.0251.0376");
    }
}
