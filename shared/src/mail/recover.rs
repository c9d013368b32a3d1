//! Recovering what mail-parser gives up on: text in a charset it reports, and file names in a header too
//! broken for its parameter parser.

use std::sync::LazyLock;

use mail_parser::{MessagePart, MimeHeaders};
use regex::bytes::Regex;

use super::decode_header_value;

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
        None => match std::str::from_utf8(bytes) {
            Ok(text) => text.to_owned(),
            Err(_) => String::from_utf8_lossy(bytes).into_owned(),
        },
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
