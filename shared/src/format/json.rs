//! CloudMailin's "JSON normalized" format, written field by field so attachment content streams.

use std::collections::HashMap;
use std::io::{self, BufWriter, Write};

use crate::mail::envelope::Envelope;
use crate::mail::{Email, Header};

/// Input bytes per base64 chunk: a multiple of 3, so chunks concatenate into one valid encoding.
const BASE64_CHUNK: usize = 48 * 1024;

pub(super) fn write<W: Write>(
    email: &Email,
    envelope: &Envelope,
    attachment_urls: Option<&[String]>,
    out: W,
) -> io::Result<()> {
    let mut w = BufWriter::with_capacity(64 * 1024, out);
    w.write_all(b"{\"envelope\":")?;
    serde_json::to_writer(&mut w, envelope)?;

    w.write_all(b",\"headers\":")?;
    write_headers(&mut w, &email.headers)?;

    if let Some(plain) = &email.plain {
        w.write_all(b",\"plain\":")?;
        write_str(&mut w, plain)?;
    }
    if let Some(html) = &email.html {
        w.write_all(b",\"html\":")?;
        write_str(&mut w, html)?;
    }
    if let Some(reply) = email.reply_plain() {
        w.write_all(b",\"reply_plain\":")?;
        write_str(&mut w, reply.as_ref())?;
    }

    w.write_all(b",\"attachments\":[")?;
    for (i, attachment) in email.attachments.iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        w.write_all(b"{\"file_name\":")?;
        write_str(&mut w, attachment.file_name.as_deref().unwrap_or(""))?;
        w.write_all(b",\"content_type\":")?;
        write_str(&mut w, &attachment.content_type)?;
        write!(w, ",\"size\":{}", attachment.content.len())?;
        write!(
            w,
            ",\"disposition\":\"{}\"",
            attachment.disposition.as_str()
        )?;
        if let Some(id) = &attachment.content_id {
            w.write_all(b",\"content_id\":")?;
            write_str(&mut w, id)?;
        }
        match attachment_urls.and_then(|urls| urls.get(i)) {
            Some(url) => {
                w.write_all(b",\"url\":")?;
                write_str(&mut w, url)?;
            }
            None => {
                w.write_all(b",\"content\":\"")?;
                write_base64(&mut w, &attachment.content)?;
                w.write_all(b"\"")?;
            }
        }
        w.write_all(b"}")?;
    }
    w.write_all(b"],\"warnings\":[")?;
    for (i, warning) in email.warnings.iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        write!(w, "{{\"code\":\"{}\",\"message\":", warning.code)?;
        write_str(&mut w, &warning.message)?;
        w.write_all(b"}")?;
    }
    w.write_all(b"]}")?;
    w.flush()
}

/// Headers keyed by lower-case name with `_` for `-`; a repeated header becomes an array, top-most first.
fn write_headers<W: Write>(w: &mut W, headers: &[Header]) -> io::Result<()> {
    for (i, (name, values)) in group_headers(headers).iter().enumerate() {
        w.write_all(if i == 0 { b"{" } else { b"," })?;
        write_key(w, name)?;
        w.write_all(b":")?;
        match values.as_slice() {
            [one] => write_str(w, one)?,
            many => {
                for (j, value) in many.iter().enumerate() {
                    w.write_all(if j == 0 { b"[" } else { b"," })?;
                    write_str(w, value)?;
                }
                w.write_all(b"]")?;
            }
        }
    }
    if headers.is_empty() {
        w.write_all(b"{")?;
    }
    w.write_all(b"}")
}

/// Header values grouped by their normalised key, in the order keys first appear.
pub(super) fn group_headers(headers: &[Header]) -> Vec<(&str, Vec<&str>)> {
    // Most messages have a few dozen headers: a linear search without allocating beats hashing. Past that,
    // an index keeps hostile header counts linear.
    const LINEAR: usize = 64;
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for header in headers {
        let found = if groups.len() < LINEAR {
            groups
                .iter()
                .position(|(name, _)| same_key(name, &header.name))
        } else {
            if index.is_empty() {
                index = groups
                    .iter()
                    .enumerate()
                    .map(|(i, (name, _))| (header_key(name), i))
                    .collect();
            }
            index.get(&header_key(&header.name)).copied()
        };
        match found.and_then(|i| groups.get_mut(i)) {
            Some((_, values)) => values.push(&header.value),
            None => {
                if !index.is_empty() {
                    index.insert(header_key(&header.name), groups.len());
                }
                groups.push((&header.name, vec![&header.value]));
            }
        }
    }
    groups
}

/// Writes a JSON string; text with nothing to escape (most header values) is written in one piece.
pub(super) fn write_str<W: Write>(w: &mut W, text: &str) -> io::Result<()> {
    // A fold without early exit, so the check runs on whole vectors.
    let needs_escape = text.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if !needs_escape {
        w.write_all(b"\"")?;
        w.write_all(text.as_bytes())?;
        w.write_all(b"\"")
    } else {
        serde_json::to_writer(&mut *w, text).map_err(io::Error::from)
    }
}

/// Whether two header names give the same key: ASCII case and `-`/`_` do not matter.
fn same_key(a: &str, b: &str) -> bool {
    let norm = |c: u8| {
        if c == b'-' {
            b'_'
        } else {
            c.to_ascii_lowercase()
        }
    };
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| norm(x) == norm(y))
}

/// Writes a header name as its JSON key without building it first (names are almost always plain ASCII).
fn write_key<W: Write>(w: &mut W, name: &str) -> io::Result<()> {
    let mut buffer = [0u8; 64];
    match buffer.get_mut(..name.len()) {
        Some(slot)
            if name
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\') =>
        {
            for (out, b) in slot.iter_mut().zip(name.bytes()) {
                *out = if b == b'-' {
                    b'_'
                } else {
                    b.to_ascii_lowercase()
                };
            }
            w.write_all(b"\"")?;
            w.write_all(slot)?;
            w.write_all(b"\"")
        }
        _ => write_str(w, &header_key(name)),
    }
}

/// `Content-Type` → `content_type`.
pub(super) fn header_key(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

pub(super) fn write_base64<W: Write>(w: &mut W, bytes: &[u8]) -> io::Result<()> {
    let mut encoded = vec![0u8; BASE64_CHUNK / 3 * 4];
    for chunk in bytes.chunks(BASE64_CHUNK) {
        let Some(target) = encoded.get_mut(..chunk.len().div_ceil(3) * 4) else {
            return Err(io::Error::other("base64 buffer too small"));
        };
        let written = base64_simd::STANDARD.encode(chunk, base64_simd::Out::from_slice(target));
        w.write_all(written)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_exactly_as_serde_json_does() {
        let mut all: String = (0u8..0x80).map(char::from).collect();
        all.push_str("é — 💌 \"quoted\" back\\slash\r\n0123456789abcdef");
        for text in [
            all.as_str(),
            "",
            "plain ascii only",
            "ends with quote\"",
            "\u{1}",
            "12345678\n",
        ] {
            let mut ours = Vec::new();
            write_str(&mut ours, text).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(text).unwrap(),
                "{text:?}"
            );
        }
    }
}
