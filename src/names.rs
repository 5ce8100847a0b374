//! Display names of credgate's objects: free text a person chose, checked once here.

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

pub const MAX_NAME_CHARS: usize = 120;

/// The rules of `Name::parse` as the OpenAPI document states them on every `name`
/// field (utoipa takes only a literal there; a test checks each copy is this one, and
/// that this pattern and `Name::parse` agree). Length is `minLength`/`maxLength`.
pub const NAME_PATTERN: &str = r"^[^\u0000-\u0020\u007F-\u00A0\u00AD\u061C\u1680\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2064\u2066-\u2069\u3000\uFEFF]([^\u0000-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]*[^\u0000-\u0020\u007F-\u00A0\u00AD\u061C\u1680\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2064\u2066-\u2069\u3000\uFEFF])?$";

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

    /// The document's pattern accepts exactly what `Name::parse` accepts (up to length,
    /// which the document says with `minLength`/`maxLength`): over hand-picked edge
    /// cases and 20,000 random strings drawn from the characters the rules name.
    #[test]
    fn the_documented_pattern_is_the_rule() {
        let pattern = regex::Regex::new(NAME_PATTERN).unwrap();
        let agrees = |text: &str| {
            let short = text.chars().count() <= MAX_NAME_CHARS;
            let parsed = Name::parse(text).is_ok();
            assert_eq!(
                pattern.is_match(text) && short,
                parsed,
                "{text:?}: pattern and parse disagree"
            );
        };
        for text in [
            "a",
            " a",
            "a ",
            "a b",
            "\u{a0}x",
            "x\u{a0}",
            "x\u{a0}y",
            "\u{3000}",
            "ä",
            "\u{1F600}",
            "a\u{85}",
            "a\u{2028}b",
            "tab\there",
            "\u{200B}",
            "\u{2060}x",
            "x\u{FEFF}",
        ] {
            agrees(text);
        }
        let alphabet: Vec<char> = [
            'a',
            'Z',
            '0',
            ' ',
            '-',
            '\t',
            '\n',
            '\u{7f}',
            '\u{85}',
            '\u{a0}',
            '\u{ad}',
            '\u{61c}',
            '\u{1680}',
            '\u{180e}',
            '\u{2000}',
            '\u{200a}',
            '\u{200b}',
            '\u{200f}',
            '\u{2028}',
            '\u{202a}',
            '\u{202f}',
            '\u{205f}',
            '\u{2060}',
            '\u{2065}',
            '\u{2066}',
            '\u{3000}',
            '\u{feff}',
            'é',
            '\u{301}',
            '\u{1F600}',
        ]
        .into();
        // A fixed-seed xorshift: the same strings every run, no extra dependency.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = usize::try_from(next() % 6).unwrap() + 1;
            let text: String = (0..len)
                .map(|_| alphabet[usize::try_from(next() % alphabet.len() as u64).unwrap()])
                .collect();
            agrees(&text);
        }
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
