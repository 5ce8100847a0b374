//! Display names of credgate's objects: free text a person chose, checked once here.

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

pub const MAX_NAME_CHARS: usize = 120;

/// 1–120 characters, no control characters, no invisible formatting characters, no
/// leading or trailing whitespace; kept in Unicode NFC, so two spellings of the same
/// text are the same name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Name(String);

/// Characters that change how text around them is shown without showing themselves:
/// bidirectional overrides and isolates (which can make `evil.pub` display as
/// `bup.live`), zero-width characters and the soft hyphen (which make two names look
/// the same). A person choosing a name never needs them.
fn is_invisible_formatting(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

impl Name {
    /// Returns the reason when `text` is not a valid name.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let text: String = text.nfc().collect();
        if text.is_empty() {
            return Err("must not be empty");
        }
        if text.chars().count() > MAX_NAME_CHARS {
            return Err("must be at most 120 characters");
        }
        if text.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        if text.chars().any(is_invisible_formatting) {
            return Err(
                "must not contain invisible formatting characters (bidirectional overrides, zero-width characters)",
            );
        }
        if text.trim() != text {
            return Err("must not start or end with whitespace");
        }
        Ok(Self(text))
    }

    /// The form two names are compared in for uniqueness: case-insensitive.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

checked_text!(Name);

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

    #[test]
    fn invisible_characters_are_refused_and_spellings_unified() {
        for spoof in [
            "evil\u{202E}bup.txt",
            "back\u{200B}up",
            "\u{2066}nas\u{2069}",
            "zero\u{FEFF}width",
            "soft\u{00AD}hyphen",
        ] {
            assert!(Name::parse(spoof).is_err(), "{spoof:?}");
        }
        let composed = Name::parse("Z\u{00FC}rich").unwrap();
        let decomposed = Name::parse("Zu\u{0308}rich").unwrap();
        assert_eq!(composed, decomposed, "NFC");
        assert_eq!(decomposed.as_str(), "Zürich");
    }
}
