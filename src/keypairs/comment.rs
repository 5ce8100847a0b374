//! A keypair's comment, as a client may set it: the text after the key in its
//! authorized_keys line, so one line of printable text.

/// At most this many characters.
pub const MAX_COMMENT_CHARS: usize = 255;

/// A comment that fits on the key's line: at most 255 characters, no control characters
/// (a newline would end the authorized_keys line and start another).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Comment(String);

impl Comment {
    pub fn parse(text: String) -> Result<Self, &'static str> {
        if text.chars().count() > MAX_COMMENT_CHARS {
            return Err("must be at most 255 characters");
        }
        if text.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        Ok(Self(text))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::Comment;

    #[test]
    fn a_comment_is_one_short_printable_line() {
        assert!(Comment::parse("backup@nas, 2026".to_owned()).is_ok());
        assert!(Comment::parse(String::new()).is_ok());
        assert!(Comment::parse("é".repeat(255)).is_ok());
        assert!(Comment::parse("é".repeat(256)).is_err());
        assert!(Comment::parse("one\nssh-ed25519 AAAA evil".to_owned()).is_err());
        assert!(Comment::parse("tab\there".to_owned()).is_err());
    }
}
