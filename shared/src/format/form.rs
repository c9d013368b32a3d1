//! The two `multipart/form-data` formats: `multipart` (fields and file parts) and `raw` (the original
//! message in one field).

use std::io::{self, BufWriter, Write};

use super::json::{group_headers, header_key, write_str};
use crate::mail::Email;
use crate::mail::envelope::Envelope;

pub(super) fn write_multipart<W: Write>(
    email: &Email,
    envelope: &Envelope,
    attachment_urls: Option<&[String]>,
    boundary: &str,
    out: W,
) -> io::Result<()> {
    let mut form = Form::new(boundary, out);
    write_envelope(&mut form, envelope)?;
    for (name, values) in group_headers(&email.headers) {
        let key = header_key(name);
        match values.as_slice() {
            [one] => form.field(&format!("headers[{key}]"), one.as_bytes())?,
            many => {
                for (i, value) in many.iter().enumerate() {
                    form.field(&format!("headers[{key}][{i}]"), value.as_bytes())?;
                }
            }
        }
    }
    if let Some(plain) = &email.plain {
        form.field("plain", plain.as_bytes())?;
    }
    if let Some(html) = &email.html {
        form.field("html", html.as_bytes())?;
    }
    if let Some(reply) = email.reply_plain() {
        form.field("reply_plain", reply.as_bytes())?;
    }
    for (i, attachment) in email.attachments.iter().enumerate() {
        match attachment_urls.and_then(|urls| urls.get(i)) {
            Some(url) => {
                form.field(&format!("attachments[{i}][url]"), url.as_bytes())?;
                form.field(
                    &format!("attachments[{i}][file_name]"),
                    attachment.file_name.as_deref().unwrap_or("").as_bytes(),
                )?;
                form.field(
                    &format!("attachments[{i}][content_type]"),
                    attachment.content_type.as_bytes(),
                )?;
                form.field(
                    &format!("attachments[{i}][size]"),
                    attachment.content.len().to_string().as_bytes(),
                )?;
            }
            None => form.file(
                &format!("attachments[{i}]"),
                attachment.file_name.as_deref().unwrap_or(""),
                &attachment.content_type,
                attachment.content_id.as_deref(),
                &attachment.content,
            )?,
        }
    }
    for (i, warning) in email.warnings.iter().enumerate() {
        form.field(&format!("warnings[{i}][code]"), warning.code.as_bytes())?;
        form.field(
            &format!("warnings[{i}][message]"),
            warning.message.as_bytes(),
        )?;
    }
    form.finish()
}

pub(super) fn write_raw<W: Write>(
    email: &Email,
    envelope: &Envelope,
    boundary: &str,
    out: W,
) -> io::Result<()> {
    let mut form = Form::new(boundary, out);
    write_envelope(&mut form, envelope)?;
    form.field("message", email.raw())?;
    form.finish()
}

fn write_envelope<W: Write>(form: &mut Form<W>, envelope: &Envelope) -> io::Result<()> {
    form.field("envelope[to]", envelope.to.as_bytes())?;
    for (i, recipient) in envelope.recipients.iter().enumerate() {
        form.field(&format!("envelope[recipients][{i}]"), recipient.as_bytes())?;
    }
    form.field("envelope[from]", envelope.from.as_bytes())?;
    form.field("envelope[helo_domain]", envelope.helo_domain.as_bytes())?;
    form.field("envelope[remote_ip]", envelope.remote_ip.as_bytes())?;
    form.field("envelope[spf][result]", envelope.spf.result.as_bytes())?;
    form.field("envelope[spf][domain]", envelope.spf.domain.as_bytes())?;
    if let Some(tls) = envelope.tls {
        form.field("envelope[tls]", if tls { b"true" } else { b"false" })?;
    }
    if let Some(ses) = &envelope.ses {
        for (name, verdict) in [
            ("spam", ses.spam),
            ("virus", ses.virus),
            ("spf", ses.spf),
            ("dkim", ses.dkim),
            ("dmarc", ses.dmarc),
        ] {
            if let Some(verdict) = verdict {
                let word = serde_json::to_value(verdict)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                form.field(&format!("envelope[ses][{name}]"), word.as_bytes())?;
            }
        }
    }
    if let Some(hash) = &envelope.mailbox_hash {
        form.field("envelope[mailbox_hash]", hash.as_bytes())?;
    }
    Ok(())
}

/// A `multipart/form-data` writer (RFC 7578).
pub(super) struct Form<'b, W: Write> {
    boundary: &'b str,
    w: BufWriter<W>,
}

impl<'b, W: Write> Form<'b, W> {
    pub(super) fn new(boundary: &'b str, out: W) -> Self {
        Form {
            boundary,
            w: BufWriter::with_capacity(64 * 1024, out),
        }
    }

    pub(super) fn field(&mut self, name: &str, value: &[u8]) -> io::Result<()> {
        write!(
            self.w,
            "--{}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n",
            self.boundary,
            quote(name)
        )?;
        self.w.write_all(value)?;
        self.w.write_all(b"\r\n")
    }

    pub(super) fn file(
        &mut self,
        name: &str,
        file_name: &str,
        content_type: &str,
        content_id: Option<&str>,
        content: &[u8],
    ) -> io::Result<()> {
        write!(
            self.w,
            "--{}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {}\r\n",
            self.boundary,
            quote(name),
            quote(file_name),
            quote(content_type),
        )?;
        if let Some(id) = content_id {
            write!(self.w, "Content-ID: <{}>\r\n", quote(id))?;
        }
        self.w.write_all(b"\r\n")?;
        self.w.write_all(content)?;
        self.w.write_all(b"\r\n")
    }

    /// Every attachment as a file part `{prefix}1`, `{prefix}2`, …; a part without a name is named after
    /// its field (a form parser drops a file part without one).
    pub(super) fn numbered_files(&mut self, email: &Email, prefix: &str) -> io::Result<()> {
        for (i, attachment) in email.attachments.iter().enumerate() {
            let field = format!("{prefix}{}", i + 1);
            self.file(
                &field,
                attachment.file_name.as_deref().unwrap_or(&field),
                &attachment.content_type,
                None,
                &attachment.content,
            )?;
        }
        Ok(())
    }

    pub(super) fn finish(mut self) -> io::Result<()> {
        write!(self.w, "--{}--\r\n", self.boundary)?;
        self.w.flush()
    }
}

/// `{"<content id>": "{prefix}N", …}` for the attachments that have a `Content-ID` (N counts every
/// attachment from 1): Mailgun's `content-id-map` (ids in brackets, spaced as Python's `json.dumps`) and
/// SendGrid's `content-ids` (bare ids, compact).
pub(super) fn content_id_json(email: &Email, prefix: &str, mailgun_style: bool) -> Vec<u8> {
    let (separator, colon) = if mailgun_style {
        (&b", "[..], ": ")
    } else {
        (&b","[..], ":")
    };
    let mut out = Vec::with_capacity(256);
    out.push(b'{');
    for (i, attachment) in email.attachments.iter().enumerate() {
        let Some(id) = &attachment.content_id else {
            continue;
        };
        if out.len() > 1 {
            out.extend_from_slice(separator);
        }
        let key = if mailgun_style {
            std::borrow::Cow::Owned(format!("<{id}>"))
        } else {
            std::borrow::Cow::Borrowed(id.as_str())
        };
        // Writing into a Vec cannot fail.
        let _ = write_str(&mut out, &key);
        let _ = write!(out, "{colon}\"{prefix}{}\"", i + 1);
    }
    out.push(b'}');
    out
}

/// Escapes a value for a quoted parameter the way browsers do (RFC 7578 §4.2): `"` and line breaks are
/// percent-encoded, so a hostile file name cannot break out of its header.
fn quote(value: &str) -> std::borrow::Cow<'_, str> {
    if value.chars().any(|c| c == '"' || c.is_control()) {
        let mut out = String::with_capacity(value.len() + 8);
        for c in value.chars() {
            match c {
                '"' => out.push_str("%22"),
                '\r' => out.push_str("%0D"),
                '\n' => out.push_str("%0A"),
                c if c.is_control() => {}
                c => out.push(c),
            }
        }
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}
