//! Numbers that travel as text (list cursors, audit chain positions): one spelling each,
//! the one the OpenAPI document's patterns state, so the document and the server agree
//! on every value.

/// A non-negative number written without sign or leading zero, at most 18 digits (so
/// it always fits an `i64`): `0`, `7`, `42` — not `07`, `+7` or `-1`.
pub fn parse_canonical(text: &str) -> Option<i64> {
    let canonical = text == "0"
        || ((1..=18).contains(&text.len())
            && !text.starts_with('0')
            && text.bytes().all(|b| b.is_ascii_digit()));
    canonical.then(|| text.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::parse_canonical;

    #[test]
    fn one_spelling_per_number() {
        assert_eq!(parse_canonical("0"), Some(0));
        assert_eq!(
            parse_canonical("123456789012345678"),
            Some(123_456_789_012_345_678)
        );
        for text in ["", "07", "+7", "-1", "1a", " 1", "1234567890123456789"] {
            assert_eq!(parse_canonical(text), None, "{text:?}");
        }
    }
}
