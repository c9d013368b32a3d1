//! Undoing a part's `Content-Transfer-Encoding`, once, from the raw bytes. mail-parser is told to ignore the
//! header, so it only finds the parts; decoding here is faster (base64 in large chunks) and keeps text
//! attachments byte-identical (no charset conversion on the way).

use std::borrow::Cow;

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Base64 as mail writes it: padding optional, non-canonical trailing bits tolerated.
const MAIL_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Encoded bytes gathered before each decode call: a multiple of 4.
const CHUNK: usize = 64 * 1024;

/// What decoding found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Damage {
    /// Nothing wrong.
    None,
    /// The encoding was broken; the bytes are what a lenient reading recovered.
    Broken,
    /// The declared encoding is not one RFC 2045 defines; the bytes are passed on as they are.
    Unknown(String),
}

/// Decodes `body` as `encoding` (lower-case, as declared; `None` when undeclared).
pub(crate) fn decode<'a>(encoding: Option<&str>, body: &'a [u8]) -> (Cow<'a, [u8]>, Damage) {
    match encoding {
        None | Some("7bit" | "8bit" | "binary" | "") => (Cow::Borrowed(body), Damage::None),
        Some("base64") => match base64_strict(body) {
            Some(bytes) => (Cow::Owned(bytes), Damage::None),
            None => (Cow::Owned(base64_lenient(body)), Damage::Broken),
        },
        Some("quoted-printable") => {
            let (decoded, broken) = quoted_printable(body);
            (
                Cow::Owned(decoded),
                if broken { Damage::Broken } else { Damage::None },
            )
        }
        Some(other) => (Cow::Borrowed(body), Damage::Unknown(other.to_owned())),
    }
}

/// Base64 with line breaks and surrounding blanks, decoded in large chunks; `None` at the first character
/// outside the alphabet or a misplaced `=`. SIMD first; the scalar decoder only for what SIMD refuses
/// (non-canonical trailing bits, which some encoders write).
fn base64_strict(body: &[u8]) -> Option<Vec<u8>> {
    base64_chunked(body, Decoder::Simd).or_else(|| base64_chunked(body, Decoder::Scalar))
}

#[derive(Clone, Copy)]
enum Decoder {
    Simd,
    Scalar,
}

fn base64_chunked(body: &[u8], decoder: Decoder) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len() / 4 * 3 + 3);
    let mut chunk = Vec::with_capacity(CHUNK + 1024);
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len())) {
        let line = body.get(start..end).unwrap_or_default().trim_ascii();
        start = end + 1;
        chunk.extend_from_slice(line);
        if chunk.len() >= CHUNK {
            let whole = chunk.len() / 4 * 4;
            decode_into(chunk.get(..whole)?, &mut out, decoder)?;
            chunk.drain(..whole);
        }
    }
    decode_into(&chunk, &mut out, decoder)?;
    Some(out)
}

fn decode_into(encoded: &[u8], out: &mut Vec<u8>, decoder: Decoder) -> Option<()> {
    if encoded.is_empty() {
        return Some(());
    }
    let start = out.len();
    out.resize(start + encoded.len().div_ceil(4) * 3, 0);
    let target = out.get_mut(start..)?;
    let written = match decoder {
        Decoder::Simd => {
            // Only the last chunk can lack padding or carry it.
            let engine = if encoded.len().is_multiple_of(4) {
                &base64_simd::STANDARD
            } else {
                &base64_simd::STANDARD_NO_PAD
            };
            engine
                .decode(encoded, base64_simd::Out::from_slice(target))
                .ok()?
                .len()
        }
        Decoder::Scalar => MAIL_BASE64.decode_slice(encoded, target).ok()?,
    };
    out.truncate(start + written);
    Some(())
}

/// Base64 read as far as it goes: characters outside the alphabet are skipped (RFC 2045 §6.8), decoding
/// stops at padding.
pub(crate) fn base64_lenient(body: &[u8]) -> Vec<u8> {
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

/// Quoted-printable, line by line: trailing blanks removed, `=` at the end of a line joins it to the next,
/// `=XX` is a byte. An `=` that is neither is kept as it is and reported (`true`). Line breaks come out as
/// CRLF once the part has used one, LF before.
fn quoted_printable(body: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(body.len());
    let mut broken = false;
    let mut crlf = false;
    let mut start = 0;
    while start < body.len() {
        let rest = body.get(start..).unwrap_or_default();
        let (mut text, has_break, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (rest.get(..i).unwrap_or_default(), true, start + i + 1),
            None => (rest, false, body.len()),
        };
        if has_break {
            if let Some(stripped) = text.strip_suffix(b"\r") {
                text = stripped;
                crlf = true;
            }
            text = trim_blanks_end(text);
        }
        let soft_break = match text.strip_suffix(b"=") {
            Some(stripped) if has_break || text.len() > stripped.len() => {
                text = stripped;
                true
            }
            _ => false,
        };
        broken |= unescape_line(text, &mut out);
        if has_break && !soft_break {
            out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        }
        start = next;
    }
    (out, broken)
}

fn trim_blanks_end(text: &[u8]) -> &[u8] {
    let end = text
        .iter()
        .rposition(|c| *c != b' ' && *c != b'\t')
        .map_or(0, |i| i + 1);
    text.get(..end).unwrap_or_default()
}

/// Appends one line with its `=XX` escapes decoded; true when an `=` had no two hex digits after it.
fn unescape_line(mut text: &[u8], out: &mut Vec<u8>) -> bool {
    let hex = |c: Option<&u8>| c.and_then(|c| (*c as char).to_digit(16)).map(|d| d as u8);
    let mut broken = false;
    while let Some(at) = memchr::memchr(b'=', text) {
        out.extend_from_slice(text.get(..at).unwrap_or_default());
        match (hex(text.get(at + 1)), hex(text.get(at + 2))) {
            (Some(high), Some(low)) => {
                out.push((high << 4) | low);
                text = text.get(at + 3..).unwrap_or_default();
            }
            _ => {
                broken = true;
                out.push(b'=');
                text = text.get(at + 1..).unwrap_or_default();
            }
        }
    }
    out.extend_from_slice(text);
    broken
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn base64_across_lines_and_chunks() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let encoded = base64::engine::general_purpose::STANDARD.encode(&data);
        let mut wrapped = Vec::new();
        for line in encoded.as_bytes().chunks(76) {
            wrapped.extend_from_slice(line);
            wrapped.extend_from_slice(b"\r\n");
        }
        assert_eq!(
            decode(Some("base64"), &wrapped),
            (Cow::Owned(data.clone()), Damage::None)
        );
        // Lines whose length is not a multiple of 4 are joined before decoding.
        let mut odd = Vec::new();
        for line in encoded.as_bytes().chunks(75) {
            odd.extend_from_slice(line);
            odd.extend_from_slice(b" \n");
        }
        assert_eq!(decode(Some("base64"), &odd).0.as_ref(), data.as_slice());
    }

    #[test]
    fn broken_base64_is_recovered_and_flagged() {
        assert_eq!(
            decode(Some("base64"), b"PGh0*bWw+Cg=="),
            (Cow::Owned(b"<html>\n".to_vec()), Damage::Broken)
        );
        assert_eq!(base64_lenient(b"QUI"), b"AB");
        assert_eq!(base64_lenient(b"Q"), b"");
        assert_eq!(
            decode(Some("base64"), b"QUJD\r\n"),
            (Cow::Owned(b"ABC".to_vec()), Damage::None)
        );
        assert_eq!(
            decode(Some("base64"), b"QUI\r\n").0.as_ref(),
            b"AB",
            "missing padding is fine"
        );
    }

    #[test]
    fn quoted_printable_and_identity() {
        assert_eq!(
            decode(Some("quoted-printable"), b"caf=C3=A9 =\r\nau lait\r\n")
                .0
                .as_ref(),
            "café au lait\r\n".as_bytes()
        );
        let (bytes, damage) = decode(Some("quoted-printable"), b"a == b\r\nx=3Dy\r\n");
        assert_eq!(damage, Damage::Broken);
        assert_eq!(bytes.as_ref(), b"a == b\r\nx=y\r\n");
        // Trailing blanks go, a soft break joins lines, the last line keeps no break it did not have.
        assert_eq!(
            decode(Some("quoted-printable"), b"one  \ntwo=  \nthree=0A=\nfour")
                .0
                .as_ref(),
            b"one\ntwothree\nfour"
        );
        assert_eq!(
            decode(Some("8bit"), b"x"),
            (Cow::Borrowed(&b"x"[..]), Damage::None)
        );
        assert_eq!(
            decode(Some("x-uuencode"), b"x").1,
            Damage::Unknown("x-uuencode".to_owned())
        );
    }
}
