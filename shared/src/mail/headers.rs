//! Header values as people read them.

use std::borrow::Cow;

use mail_parser::{HeaderValue, parsers::MessageStream};

/// Field names common enough to be kept without allocating; matched case-insensitively.
const COMMON_NAMES: [&str; 40] = [
    "Received",
    "Return-Path",
    "From",
    "To",
    "Cc",
    "Bcc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Reply-To",
    "Sender",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Disposition",
    "Content-ID",
    "DKIM-Signature",
    "Authentication-Results",
    "Received-SPF",
    "X-SES-Spam-Verdict",
    "X-SES-Virus-Verdict",
    "X-SES-RECEIPT",
    "X-SES-DKIM-SIGNATURE",
    "Delivered-To",
    "X-Mailer",
    "User-Agent",
    "List-Unsubscribe",
    "List-Id",
    "Precedence",
    "Thread-Topic",
    "Thread-Index",
    "Content-Language",
    "X-Originating-IP",
    "ARC-Seal",
    "ARC-Message-Signature",
    "ARC-Authentication-Results",
    "X-Received",
    "Feedback-ID",
];

/// A field name from `name:` (the colon and blanks before it removed).
pub(crate) fn field_name(raw: &[u8]) -> Cow<'static, str> {
    let name = raw.strip_suffix(b":").unwrap_or(raw);
    let end = name
        .iter()
        .rposition(|c| *c != b' ' && *c != b'\t')
        .map_or(0, |i| i + 1);
    let name = name.get(..end).unwrap_or_default();
    match COMMON_NAMES
        .iter()
        .find(|common| common.as_bytes().eq_ignore_ascii_case(name))
    {
        Some(common) => Cow::Borrowed(common),
        None => Cow::Owned(String::from_utf8_lossy(name).into_owned()),
    }
}

/// Unfolds a raw header value and decodes its RFC 2047 encoded words to UTF-8; bytes that are not UTF-8
/// become U+FFFD.
pub fn decode_header_value(raw: &[u8]) -> String {
    if memchr::memmem::find(raw, b"=?").is_none() {
        return unfold(raw);
    }
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

/// A value without encoded words, unfolded as mail-parser's decoder unfolds: each line trimmed of blanks,
/// the non-empty ones joined by one space. Most values take this path, which allocates once.
fn unfold(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', raw).chain(std::iter::once(raw.len())) {
        let line = raw.get(start..end).unwrap_or_default();
        start = end + 1;
        let blank = |c: &u8| matches!(c, b' ' | b'\t' | b'\r');
        let start = line.iter().position(|c| !blank(c)).unwrap_or(line.len());
        let end = line
            .iter()
            .rposition(|c| !blank(c))
            .map_or(start, |i| i + 1);
        let line = line.get(start..end).unwrap_or_default();
        if line.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        match std::str::from_utf8(line) {
            Ok(text) => out.push_str(text),
            Err(_) => out.push_str(&String::from_utf8_lossy(line)),
        }
    }
    out
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
    fn the_fast_path_unfolds_like_the_decoder() {
        for raw in [
            &b" plain text\r\n"[..],
            b" a   b \r\n\t c\r\n  d\r\n",
            b"\tx\r\n",
            b" \r\n \r\n y \r\n",
            b" caf\xc3\xa9 \xff end\r\n",
            b" form\x0cfeed\x0c\r\n",
            b"no line end",
            b"",
        ] {
            let mut terminated = raw.to_vec();
            if !terminated.ends_with(b"\n") {
                terminated.push(b'\n');
            }
            let slow = match MessageStream::new(&terminated).parse_unstructured() {
                HeaderValue::Text(text) => text.into_owned(),
                _ => String::new(),
            };
            assert_eq!(unfold(raw), slow, "{raw:?}");
        }
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
