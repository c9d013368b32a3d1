//! SendGrid Inbound Parse's `multipart/form-data`: the parsed message (or, for the raw variant, the
//! original in `email`), with SendGrid's JSON-in-a-field `envelope`, `charsets`, `attachment-info` and
//! `content-ids`.

use std::io::{self, Write};

use super::form::{Form, content_id_json};
use super::json::write_str;
use super::one_line;
use crate::mail::envelope::{Envelope, Verdict};
use crate::mail::mailbox::mailboxes_in;
use crate::mail::{Email, decode_header_value};

/// The parsed form.
pub(super) fn write_parsed<W: Write>(
    email: &Email,
    envelope: &Envelope,
    mut form: Form<'_, W>,
) -> io::Result<()> {
    form.field("headers", &header_block(email.raw()))?;
    form.field("dkim", dkim(email, envelope).as_bytes())?;
    if email.attachments.iter().any(|a| a.content_id.is_some()) {
        form.field("content-ids", &content_id_json(email, "attachment", false))?;
    }
    write_addresses(&mut form, email)?;
    if let Some(text) = &email.plain {
        form.field("text", text.as_bytes())?;
    }
    if let Some(html) = &email.html {
        form.field("html", html.as_bytes())?;
    }
    form.field("sender_ip", envelope.remote_ip.as_bytes())?;
    form.field("envelope", &envelope_json(envelope))?;
    form.field(
        "attachments",
        email.attachments.len().to_string().as_bytes(),
    )?;
    form.field("subject", email.subject().unwrap_or("").as_bytes())?;
    if !email.attachments.is_empty() {
        form.field("attachment-info", &attachment_info(email))?;
    }
    form.field("charsets", &charsets(email, true))?;
    form.field("SPF", envelope.spf.result.as_bytes())?;
    form.numbered_files(email, "attachment")?;
    form.finish()
}

/// The raw form: the original message, untouched, in `email`, beside the envelope fields.
pub(super) fn write_raw<W: Write>(
    email: &Email,
    envelope: &Envelope,
    mut form: Form<'_, W>,
) -> io::Result<()> {
    form.field("dkim", dkim(email, envelope).as_bytes())?;
    form.field("email", email.raw())?;
    write_addresses(&mut form, email)?;
    form.field("sender_ip", envelope.remote_ip.as_bytes())?;
    form.field("envelope", &envelope_json(envelope))?;
    form.field("subject", email.subject().unwrap_or("").as_bytes())?;
    form.field("charsets", &charsets(email, false))?;
    form.field("SPF", envelope.spf.result.as_bytes())?;
    form.finish()
}

/// `to`, `cc` (when the message has one) and `from`, as written in the message, decoded.
fn write_addresses<W: Write>(form: &mut Form<'_, W>, email: &Email) -> io::Result<()> {
    form.field("to", one_line(email.header("To").unwrap_or("")).as_bytes())?;
    if let Some(cc) = email.header("Cc") {
        form.field("cc", one_line(cc).as_bytes())?;
    }
    form.field(
        "from",
        one_line(email.header("From").unwrap_or("")).as_bytes(),
    )
}

/// The message's header section as SendGrid's example shows it: the fields as they arrived, in order,
/// each unfolded onto one line (a fold becomes one space), lines ended by LF. As SendGrid converts headers
/// to UTF-8, a field holding 8-bit bytes is written decoded (an address list with each display name
/// quoted, so the addresses still parse).
fn header_block(raw: &[u8]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for line in raw.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        match (line.first(), lines.last_mut()) {
            (Some(b' ' | b'\t'), Some(last)) => {
                let start = line
                    .iter()
                    .position(|b| !matches!(b, b' ' | b'\t'))
                    .unwrap_or(line.len());
                // The fold and the blanks on both sides of it become one space.
                last.truncate(last.trim_ascii_end().len());
                last.push(b' ');
                last.extend_from_slice(line.get(start..).unwrap_or_default());
            }
            // A line that is no header field (no name and colon) is left out, so the app's parser, which
            // would stop there, reads on to the fields after it.
            _ if !is_field(line) => {}
            _ => lines.push(without_space_before_colon(line)),
        }
    }
    let mut out = Vec::with_capacity(raw.len().min(64 * 1024));
    for mut line in lines {
        line.truncate(line.trim_ascii_end().len());
        if line.is_ascii() {
            out.extend_from_slice(&line);
        } else {
            out.extend_from_slice(utf8_field(&line).as_bytes());
        }
        out.push(b'\n');
    }
    out
}

/// Whether a line starts a header field: a name of printable ASCII, then a colon (after blanks, in the
/// obsolete syntax).
fn is_field(line: &[u8]) -> bool {
    match memchr::memchr(b':', line) {
        Some(colon) => line.get(..colon).is_some_and(|name| {
            let name = name.trim_ascii_end();
            !name.is_empty() && name.iter().all(|b| b.is_ascii_graphic())
        }),
        None => false,
    }
}

/// `From  : x` (obsolete syntax) as `From: x`, which every parser reads.
fn without_space_before_colon(line: &[u8]) -> Vec<u8> {
    match memchr::memchr(b':', line) {
        Some(colon) => {
            let name = line.get(..colon).unwrap_or_default().trim_ascii_end();
            [name, line.get(colon..).unwrap_or_default()].concat()
        }
        None => line.to_vec(),
    }
}

/// One unfolded header field with 8-bit bytes, as UTF-8 text.
fn utf8_field(line: &[u8]) -> String {
    let Some(colon) = memchr::memchr(b':', line) else {
        return String::from_utf8_lossy(line).into_owned();
    };
    let name = String::from_utf8_lossy(line.get(..colon).unwrap_or_default());
    let value = decode_header_value(line.get(colon + 1..).unwrap_or_default());
    let value = value.trim();
    const ADDRESS_FIELDS: [&str; 6] = ["From", "To", "Cc", "Bcc", "Reply-To", "Sender"];
    if !ADDRESS_FIELDS
        .iter()
        .any(|f| f.eq_ignore_ascii_case(name.trim()))
    {
        return format!("{name}: {}", one_line(value));
    }
    let mailboxes: Vec<String> = mailboxes_in(value)
        .into_iter()
        .map(|m| match (m.name.is_empty(), m.address.is_empty()) {
            (true, _) => m.address,
            (false, true) => quoted(&m.name),
            (false, false) => format!("{} <{}>", quoted(&m.name), m.address),
        })
        .collect();
    format!("{name}: {}", mailboxes.join(", "))
}

/// A display name as a quoted string.
fn quoted(name: &str) -> String {
    let escaped = one_line(name).replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{escaped}\"")
}

/// SendGrid's DKIM summary, `{@domain : result, …}`: the DKIM results of the receiving server's (SES's)
/// top-most `Authentication-Results`; without one, SES's DKIM verdict for each `DKIM-Signature` domain;
/// `none` for a message with no signature.
fn dkim(email: &Email, envelope: &Envelope) -> String {
    let mut found = email
        .header("Authentication-Results")
        .map(authenticated_dkim)
        .unwrap_or_default();
    if found.is_empty()
        && let Some(verdict) = envelope.ses.as_ref().and_then(|ses| ses.dkim)
    {
        let word = match verdict {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Gray => "neutral",
            Verdict::ProcessingFailed => "temperror",
            Verdict::Disabled => "none",
        };
        found = email
            .header_values("DKIM-Signature")
            .filter_map(signing_domain)
            .map(|domain| format!("@{domain} : {word}"))
            .collect();
    }
    if found.is_empty() {
        return "none".to_owned();
    }
    format!("{{{}}}", found.join(", "))
}

/// `@domain : result` for each `dkim=` clause of an `Authentication-Results` value.
fn authenticated_dkim(results: &str) -> Vec<String> {
    let mut found = Vec::new();
    for clause in results.split(';').skip(1) {
        let Some(result) = clause
            .split_whitespace()
            .next()
            .and_then(|w| w.strip_prefix("dkim="))
        else {
            continue;
        };
        let domain = clause
            .split_whitespace()
            .find_map(|w| {
                w.strip_prefix("header.i=")
                    .or_else(|| w.strip_prefix("header.d="))
            })
            .map(|d| d.trim_end_matches([';', ',']))
            .unwrap_or("");
        let domain = domain.strip_prefix('@').unwrap_or(domain);
        found.push(format!("@{domain} : {result}"));
    }
    found
}

/// The `d=` tag of a `DKIM-Signature` value.
fn signing_domain(signature: &str) -> Option<&str> {
    signature
        .split(';')
        .find_map(|tag| tag.trim().strip_prefix("d="))
        .map(str::trim)
        .filter(|d| !d.is_empty())
}

/// `{"to": [recipient], "from": sender}`: as SendGrid documents it, `to` holds the one address the mail
/// was received for (this delivery's).
fn envelope_json(envelope: &Envelope) -> Vec<u8> {
    let to: Vec<&str> = if envelope.to.is_empty() {
        envelope.recipients.iter().map(String::as_str).collect()
    } else {
        vec![envelope.to.as_str()]
    };
    // Written by hand: the keys in SendGrid's order.
    let mut out = b"{\"to\":".to_vec();
    out.extend(serde_json::to_vec(&to).unwrap_or_default());
    out.extend_from_slice(b",\"from\":");
    let _ = write_str(&mut out, &envelope.from);
    out.push(b'}');
    out
}

/// The charset of each text field: always UTF-8, the charset Mailroom decodes every text to.
fn charsets(email: &Email, with_bodies: bool) -> Vec<u8> {
    let mut fields = vec!["to"];
    if email.header("Cc").is_some() {
        fields.push("cc");
    }
    if with_bodies && email.html.is_some() {
        fields.push("html");
    }
    fields.extend(["subject", "from"]);
    if with_bodies && email.plain.is_some() {
        fields.push("text");
    }
    let pairs: Vec<String> = fields
        .into_iter()
        .map(|field| format!("\"{field}\":\"UTF-8\""))
        .collect();
    format!("{{{}}}", pairs.join(",")).into_bytes()
}

/// `{"attachmentN": {"filename", "name", "type", "content-id"?}, …}`: `filename` the part's file name,
/// `name` its `Content-Type` name (the file name when it has none).
fn attachment_info(email: &Email) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 * email.attachments.len());
    out.push(b'{');
    for (i, attachment) in email.attachments.iter().enumerate() {
        let field = format!("attachment{}", i + 1);
        let file_name = attachment.file_name.as_deref().unwrap_or(&field);
        let type_name = attachment.type_name.as_deref().unwrap_or(file_name);
        if i > 0 {
            out.push(b',');
        }
        // Writing into a Vec cannot fail.
        let _ = write!(out, "\"{field}\":{{\"filename\":");
        let _ = write_str(&mut out, file_name);
        out.extend_from_slice(b",\"name\":");
        let _ = write_str(&mut out, type_name);
        out.extend_from_slice(b",\"type\":");
        let _ = write_str(&mut out, &attachment.content_type);
        if let Some(id) = &attachment.content_id {
            out.extend_from_slice(b",\"content-id\":");
            let _ = write_str(&mut out, id);
        }
        out.push(b'}');
    }
    out.push(b'}');
    out
}
