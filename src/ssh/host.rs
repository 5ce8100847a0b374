//! Host names credgate will connect to: RFC 1123 names or IP literals, nothing else.

use std::net::IpAddr;

/// A validated host: an IP literal or an RFC 1123 host name. Stored (in events, views)
/// as the plain string it was parsed into; reading it back checks it again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Host(String);

impl TryFrom<String> for Host {
    type Error = &'static str;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<Host> for String {
    fn from(host: Host) -> Self {
        host.0
    }
}

impl Host {
    pub fn parse(text: &str) -> Result<Self, &'static str> {
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

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn ip(&self) -> Option<IpAddr> {
        self.0.parse().ok()
    }

    /// How OpenSSH writes it in known_hosts: `host` on port 22, `[host]:port` otherwise.
    pub fn known_hosts_pattern(&self, port: u16) -> String {
        if port == 22 {
            self.0.clone()
        } else {
            format!("[{}]:{port}", self.0)
        }
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(Host::parse("nas").unwrap().known_hosts_pattern(22), "nas");
        assert_eq!(
            Host::parse("::1").unwrap().known_hosts_pattern(2222),
            "[::1]:2222"
        );
    }
}
