//! The login name a connection uses on the remote host.

/// A POSIX-portable login name (`^[a-z_][a-z0-9_.-]{0,31}$`, what `useradd` accepts by
/// default), so it can go into an ssh_config `User` line or a command line as it is.
/// Stored (in events, views) as the plain string; reading it back checks it again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

/// What a connection logs in as when the request names nobody.
pub const DEFAULT_USERNAME: &str = "root";

impl Username {
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let mut chars = text.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        let rest_ok = chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'));
        if first_ok && rest_ok && text.len() <= 32 {
            Ok(Self(text.to_owned()))
        } else {
            Err("must match ^[a-z_][a-z0-9_.-]{0,31}$")
        }
    }

    pub fn root() -> Self {
        Self(DEFAULT_USERNAME.to_owned())
    }
}

checked_text!(Username, stored: Username::parse);

#[cfg(test)]
mod tests {
    use super::Username;

    #[test]
    fn login_names() {
        for good in ["root", "backup.user-1", "_svc", &"a".repeat(32)] {
            assert_eq!(Username::parse(good).unwrap().as_str(), good);
        }
        for bad in ["Root", "1abc", "", "a b", "-x", "a\nb", &"a".repeat(33)] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
        let stored: Username = serde_json::from_str("\"backup\"").unwrap();
        assert_eq!(serde_json::to_string(&stored).unwrap(), "\"backup\"");
        assert!(serde_json::from_str::<Username>("\"-oProxyCommand=x\"").is_err());
    }
}
