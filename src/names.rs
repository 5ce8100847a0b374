//! Display names of credgate's objects: free text a person chose, checked once here.

use serde::{Deserialize, Serialize};

pub const MAX_NAME_CHARS: usize = 120;

/// 1–120 characters, no control characters, no leading or trailing whitespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    /// Returns the reason when `text` is not a valid name.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        if text.is_empty() {
            return Err("must not be empty");
        }
        if text.chars().count() > MAX_NAME_CHARS {
            return Err("must be at most 120 characters");
        }
        if text.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        if text.trim() != text {
            return Err("must not start or end with whitespace");
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form two names are compared in for uniqueness: case-insensitive.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_free_text_and_refuses_the_rest() {
        assert!(Name::parse("Backup key – Zürich 2").is_ok());
        assert!(Name::parse(&"x".repeat(120)).is_ok());
        assert_eq!(Name::parse(""), Err("must not be empty"));
        assert!(Name::parse(&"x".repeat(121)).is_err());
        assert!(Name::parse("a\nb").is_err());
        assert!(Name::parse("tab\there").is_err());
        assert!(Name::parse(" padded").is_err());
    }

    #[test]
    fn normalized_ignores_case() {
        let a = Name::parse("Offsite").unwrap();
        let b = Name::parse("OFFSITE").unwrap();
        assert_eq!(a.normalized(), b.normalized());
    }
}
