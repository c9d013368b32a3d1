//! Header values as people read them.

use mail_parser::{HeaderValue, parsers::MessageStream};

/// Unfolds a raw header value and decodes its RFC 2047 encoded words to UTF-8; bytes that are not UTF-8
/// become U+FFFD.
pub fn decode_header_value(raw: &[u8]) -> String {
    // The decoder only finishes a value at its line end; a value cut short (or at the end of input) has none.
    let owned;
    let raw = if raw.ends_with(b"\n") {
        raw
    } else {
        owned = [raw, b"\n"].concat();
        &owned
    };
    match MessageStream::new(raw).parse_unstructured() {
        HeaderValue::Text(text) => text.into_owned(),
        _ => String::new(),
    }
}

/// The address inside `<…>`, or the whole trimmed text when there are no brackets.
pub(crate) fn angle_addr(value: &str) -> &str {
    let value = value.trim();
    match (value.find('<'), value.rfind('>')) {
        (Some(start), Some(end)) if start < end => value.get(start + 1..end).unwrap_or("").trim(),
        _ => value,
    }
}

/// The domain part of an address, if it has one.
pub(crate) fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_encoded_words_and_unfolds() {
        assert_eq!(
            decode_header_value(b" =?utf-8?q?J=C3=B6rg?=\r\n <j@example.com>\r\n"),
            "Jörg <j@example.com>"
        );
        assert_eq!(decode_header_value(b" plain text\r\n"), "plain text");
        assert_eq!(decode_header_value(b""), "");
        assert_eq!(decode_header_value(b" no line end"), "no line end");
    }

    #[test]
    fn finds_angle_addresses() {
        assert_eq!(angle_addr("Jörg <j@example.com>"), "j@example.com");
        assert_eq!(angle_addr(" <> "), "");
        assert_eq!(angle_addr("j@example.com"), "j@example.com");
        assert_eq!(domain_of("j@example.com"), "example.com");
        assert_eq!(domain_of("nobody"), "");
    }
}
