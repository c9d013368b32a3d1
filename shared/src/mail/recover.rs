//! Recovering what mail-parser gives up on: base64 with stray characters, quoted-printable or base64 cut
//! off by a missing boundary, and file names in a header too broken for its parameter parser.

use std::sync::LazyLock;

use mail_parser::{MessagePart, MimeHeaders, parsers::MessageStream};
use regex::bytes::Regex;

use super::decode_header_value;

/// The transfer encodings RFC 2045 defines.
pub(crate) const KNOWN_ENCODINGS: [&str; 5] =
    ["7bit", "8bit", "binary", "base64", "quoted-printable"];

/// The declared `Content-Transfer-Encoding`, lower-case.
pub(crate) fn declared_encoding(part: &MessagePart<'_>) -> Option<String> {
    part.content_transfer_encoding()
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| !e.is_empty())
}

/// Undoes the declared transfer encoding of a part mail-parser could not decode, as far as the bytes allow:
/// base64 skips characters outside its alphabet (RFC 2045 §6.8), quoted-printable decodes to the end.
/// `None` when the part declares no encoding to undo.
pub(crate) fn lenient_transfer_decode(encoding: &str, body: &[u8]) -> Option<Vec<u8>> {
    match encoding {
        "base64" => Some(lenient_base64(body)),
        "quoted-printable" => {
            let (_, decoded) = MessageStream::new(body).decode_quoted_printable_mime(b"");
            Some(decoded.into_owned())
        }
        _ => None,
    }
}

fn lenient_base64(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() / 4 * 3);
    let mut group = [0u8; 4];
    let mut filled = 0;
    for &byte in body {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        if let Some(slot) = group.get_mut(filled) {
            *slot = value;
        }
        filled += 1;
        if filled == 4 {
            out.push((group[0] << 2) | (group[1] >> 4));
            out.push((group[1] << 4) | (group[2] >> 2));
            out.push((group[2] << 6) | group[3]);
            filled = 0;
        }
    }
    if filled >= 2 {
        out.push((group[0] << 2) | (group[1] >> 4));
    }
    if filled == 3 {
        out.push((group[1] << 4) | (group[2] >> 2));
    }
    out
}

/// Text in a part's charset, or UTF-8 with U+FFFD for what is not.
pub(crate) fn decode_text(part: &MessagePart<'_>, bytes: &[u8]) -> String {
    let decoder = part
        .content_type()
        .and_then(|ct| ct.attribute("charset"))
        .and_then(|charset| {
            mail_parser::decoders::charsets::map::charset_decoder(charset.as_bytes())
        });
    match decoder {
        Some(decode) => decode(bytes),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// A `filename=` or `name=` parameter read straight from the raw `Content-Disposition` or `Content-Type`
/// header, for headers mail-parser's parameter parser rejects (e.g. `Content-Disposition: ;` with the
/// parameter on the next line).
pub(crate) fn raw_file_name(source: &[u8], part: &MessagePart<'_>) -> Option<String> {
    static PARAMETER: LazyLock<Option<Regex>> = LazyLock::new(|| {
        Regex::new(r#"(?i)(?:^|[;\s])(?:file)?name\s*=\s*(?:"([^"]*)"|([^;\s"]+))"#).ok()
    });
    let parameter = PARAMETER.as_ref()?;
    let mut fields: Vec<&mail_parser::Header<'_>> = part
        .headers
        .iter()
        .filter(|h| {
            let name = h.name.as_str();
            name.eq_ignore_ascii_case("content-disposition")
                || name.eq_ignore_ascii_case("content-type")
        })
        .collect();
    // Content-Disposition's filename wins over Content-Type's name.
    fields.sort_by_key(|h| !h.name.as_str().eq_ignore_ascii_case("content-disposition"));
    fields.into_iter().find_map(|h| {
        let value = source.get(h.offset_start as usize..h.offset_end as usize)?;
        let captures = parameter.captures(value)?;
        let raw = captures.get(1).or_else(|| captures.get(2))?.as_bytes();
        let name = decode_header_value(raw);
        (!name.is_empty()).then_some(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_skips_characters_outside_its_alphabet() {
        assert_eq!(lenient_base64(b"PGh0*bWw+Cg=="), b"<html>\n");
        assert_eq!(lenient_base64(b"PGh0bWw+\r\nCg=="), b"<html>\n");
        assert_eq!(lenient_base64(b"QUJD"), b"ABC");
        assert_eq!(lenient_base64(b"QUI"), b"AB");
        assert_eq!(lenient_base64(b"Q"), b"");
        assert_eq!(lenient_base64(b""), b"");
    }

    #[test]
    fn quoted_printable_decodes_to_the_end() {
        assert_eq!(
            lenient_transfer_decode("quoted-printable", b"caf=C3=A9 =\r\nau lait").unwrap(),
            "café au lait".as_bytes()
        );
        assert_eq!(lenient_transfer_decode("7bit", b"x"), None);
    }
}
