//! CloudMailin's "JSON normalized" format, written field by field so attachment content streams.

use std::collections::HashMap;
use std::io::{self, BufWriter, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

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
        serde_json::to_writer(&mut w, plain)?;
    }
    if let Some(html) = &email.html {
        w.write_all(b",\"html\":")?;
        serde_json::to_writer(&mut w, html)?;
    }
    if let Some(reply) = email.reply_plain() {
        w.write_all(b",\"reply_plain\":")?;
        serde_json::to_writer(&mut w, reply.as_ref())?;
    }

    w.write_all(b",\"attachments\":[")?;
    for (i, attachment) in email.attachments.iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        w.write_all(b"{\"file_name\":")?;
        serde_json::to_writer(&mut w, attachment.file_name.as_deref().unwrap_or(""))?;
        w.write_all(b",\"content_type\":")?;
        serde_json::to_writer(&mut w, &attachment.content_type)?;
        write!(w, ",\"size\":{}", attachment.content.len())?;
        write!(
            w,
            ",\"disposition\":\"{}\"",
            attachment.disposition.as_str()
        )?;
        if let Some(id) = &attachment.content_id {
            w.write_all(b",\"content_id\":")?;
            serde_json::to_writer(&mut w, id)?;
        }
        match attachment_urls.and_then(|urls| urls.get(i)) {
            Some(url) => {
                w.write_all(b",\"url\":")?;
                serde_json::to_writer(&mut w, url)?;
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
        serde_json::to_writer(&mut w, &warning.message)?;
        w.write_all(b"}")?;
    }
    w.write_all(b"]}")?;
    w.flush()
}

/// Headers keyed by lower-case name with `_` for `-`; a repeated header becomes an array, top-most first.
fn write_headers<W: Write>(w: &mut W, headers: &[Header]) -> io::Result<()> {
    for (i, (key, values)) in group_headers(headers).iter().enumerate() {
        w.write_all(if i == 0 { b"{" } else { b"," })?;
        serde_json::to_writer(&mut *w, key)?;
        w.write_all(b":")?;
        match values.as_slice() {
            [one] => serde_json::to_writer(&mut *w, one)?,
            many => serde_json::to_writer(&mut *w, many)?,
        }
    }
    if headers.is_empty() {
        w.write_all(b"{")?;
    }
    w.write_all(b"}")
}

/// Header values grouped by their normalised key, in the order keys first appear.
pub(super) fn group_headers(headers: &[Header]) -> Vec<(String, Vec<&str>)> {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for header in headers {
        let key = header_key(&header.name);
        match index.get(&key) {
            Some(&i) => {
                if let Some((_, values)) = groups.get_mut(i) {
                    values.push(&header.value);
                }
            }
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, vec![&header.value]));
            }
        }
    }
    groups
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

fn write_base64<W: Write>(w: &mut W, bytes: &[u8]) -> io::Result<()> {
    let mut encoded = vec![0u8; BASE64_CHUNK / 3 * 4];
    for chunk in bytes.chunks(BASE64_CHUNK) {
        let n = STANDARD
            .encode_slice(chunk, &mut encoded)
            .map_err(io::Error::other)?;
        w.write_all(encoded.get(..n).unwrap_or_default())?;
    }
    Ok(())
}
