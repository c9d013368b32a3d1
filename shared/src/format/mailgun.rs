//! What a Mailgun route's `forward()` posts: `multipart/form-data` with the parsed message (or, for the
//! MIME variant, the original in `body-mime`), signed the way Mailgun signs: HMAC-SHA256 of `timestamp`
//! followed by `token`, keyed with the webhook signing key, in lower-case hex.

use std::borrow::Cow;
use std::io::{self, Write};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::form::{Form, content_id_json};
use super::json::write_str;
use super::{one_line, spam_flag};
use crate::mail::Email;
use crate::mail::envelope::Envelope;
use crate::mail::{html, reply};

/// Length of a generated token, in hex digits (Mailgun's are 50 characters).
const TOKEN_LEN: usize = 50;

/// The `timestamp`, `token` and `signature` fields of one POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailgunSignature {
    /// Seconds since the epoch, as the `timestamp` field.
    pub timestamp: i64,
    /// A random string used once, as the `token` field.
    pub token: String,
    /// The `signature` field; `""` when the route has no secret to sign with.
    pub signature: String,
}

impl MailgunSignature {
    /// A fresh token for `timestamp`, signed with `key` (the route's secret exactly as its owner wrote
    /// it, which is what the app configures as its Mailgun signing key), or unsigned without one.
    pub fn new(timestamp: i64, key: Option<&str>) -> MailgunSignature {
        let token = random_token();
        let signature = key
            .map(|key| mailgun_signature(key, timestamp, &token))
            .unwrap_or_default();
        MailgunSignature {
            timestamp,
            token,
            signature,
        }
    }

    /// Unsigned, at the current time (for output nobody verifies, such as `mailroom render`).
    pub fn now() -> MailgunSignature {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        MailgunSignature::new(now, None)
    }
}

/// Mailgun's signature: lower-case hex of HMAC-SHA256 over `timestamp` then `token`, keyed with `key`.
pub fn mailgun_signature(key: &str, timestamp: i64, token: &str) -> String {
    // HMAC takes a key of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(token.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn random_token() -> String {
    let mut bytes = [0u8; TOKEN_LEN / 2];
    if getrandom::fill(&mut bytes).is_err() {
        // Without an entropy source, the clock still makes tokens that do not repeat.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        for (slot, byte) in bytes.iter_mut().zip(nanos.to_le_bytes().iter().cycle()) {
            *slot = *byte;
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The parsed form: envelope, every header as a field of its own and in `message-headers`, bodies with
/// their stripped versions, attachments as files.
pub(super) fn write_parsed<W: Write>(
    email: &Email,
    envelope: &Envelope,
    signature: &MailgunSignature,
    mut form: Form<'_, W>,
) -> io::Result<()> {
    write_envelope(&mut form, email, envelope)?;
    let plain = match (&email.plain, &email.html) {
        (Some(plain), _) => std::borrow::Cow::Borrowed(plain.as_str()),
        // Mailgun makes a text version of an HTML-only message.
        (None, Some(html)) => std::borrow::Cow::Owned(html::html_to_text(html)),
        (None, None) => std::borrow::Cow::Borrowed(""),
    };
    let stripped_text = email.reply_plain().unwrap_or_default();
    form.field("body-plain", plain.as_bytes())?;
    form.field("stripped-text", stripped_text.as_bytes())?;
    form.field("stripped-signature", reply::signature(&plain).as_bytes())?;
    if let Some(html) = &email.html {
        form.field("body-html", html.as_bytes())?;
        form.field("stripped-html", html::strip_quoted_html(html).as_bytes())?;
    }
    if !email.attachments.is_empty() {
        form.field(
            "attachment-count",
            email.attachments.len().to_string().as_bytes(),
        )?;
        form.field(
            "content-id-map",
            &content_id_json(email, "attachment-", true),
        )?;
    }
    write_signature(&mut form, signature)?;
    form.numbered_files(email, "attachment-")?;
    form.finish()
}

/// The MIME form: the envelope, the headers, and the original message, untouched, in `body-mime`.
pub(super) fn write_mime<W: Write>(
    email: &Email,
    envelope: &Envelope,
    signature: &MailgunSignature,
    mut form: Form<'_, W>,
) -> io::Result<()> {
    write_envelope(&mut form, email, envelope)?;
    write_signature(&mut form, signature)?;
    form.field("body-mime", email.raw())?;
    form.finish()
}

/// `recipient`, `sender`, `from`, `subject`, then each header as a field named as Mailgun spells it (a
/// repeated header repeats its field), then all of them in `message-headers`.
fn write_envelope<W: Write>(
    form: &mut Form<'_, W>,
    email: &Email,
    envelope: &Envelope,
) -> io::Result<()> {
    form.field("recipient", envelope.to.as_bytes())?;
    form.field("sender", envelope.from.as_bytes())?;
    form.field(
        "from",
        one_line(email.header("From").unwrap_or("")).as_bytes(),
    )?;
    form.field(
        "subject",
        one_line(email.subject().unwrap_or("")).as_bytes(),
    )?;
    let headers = headers(email, envelope);
    for (name, value) in &headers {
        form.field(name, value.as_bytes())?;
    }
    form.field("message-headers", &message_headers(&headers))
}

fn write_signature<W: Write>(
    form: &mut Form<'_, W>,
    signature: &MailgunSignature,
) -> io::Result<()> {
    form.field("timestamp", signature.timestamp.to_string().as_bytes())?;
    form.field("token", signature.token.as_bytes())?;
    form.field("signature", signature.signature.as_bytes())
}

/// The headers as Mailgun posts them: its own `X-Mailgun-Incoming` and `X-Envelope-From` first (and its
/// spam flag, from SES's verdict, when the message has none), then the message's, in order, names in
/// Mailgun's spelling (`Message-Id`, `Mime-Version`).
fn headers<'e>(email: &'e Email, envelope: &Envelope) -> Vec<(String, Cow<'e, str>)> {
    let mut headers = Vec::with_capacity(email.headers.len() + 3);
    headers.push(("X-Mailgun-Incoming".to_owned(), Cow::Borrowed("Yes")));
    headers.push((
        "X-Envelope-From".to_owned(),
        Cow::Owned(format!("<{}>", envelope.from)),
    ));
    if email.header("X-Mailgun-Sflag").is_none()
        && let Some(flag) = spam_flag(envelope)
    {
        headers.push(("X-Mailgun-Sflag".to_owned(), Cow::Borrowed(flag)));
    }
    for header in &email.headers {
        headers.push((mailgun_name(&header.name), one_line(&header.value)));
    }
    headers
}

/// `Message-ID` → `Message-Id`: each word capitalised, the rest lower-case.
fn mailgun_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut word_start = true;
    for c in name.chars() {
        if word_start {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        word_start = c == '-';
    }
    out
}

/// `[["Name", "value"], …]`, spaced as Python's `json.dumps` spaces it in Mailgun's sample.
fn message_headers(headers: &[(String, Cow<'_, str>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    out.push(b'[');
    for (i, (name, value)) in headers.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.push(b'[');
        // Writing into a Vec cannot fail.
        let _ = write_str(&mut out, name);
        out.extend_from_slice(b", ");
        let _ = write_str(&mut out, value);
        out.push(b']');
    }
    out.push(b']');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_then_token_in_hex() {
        // Computed apart, with Python's hmac module, over the key's text form as written.
        assert_eq!(
            mailgun_signature(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                1_700_000_000,
                "e3a1c6b0f2"
            ),
            "5b887565b2cc9931ff24a65cb7cf1fb672771d8d302b68ab27466d989d14e7ae"
        );
        let signed = MailgunSignature::new(1_700_000_000, Some("key-1"));
        assert_eq!(signed.token.len(), TOKEN_LEN);
        assert_eq!(
            signed.signature,
            mailgun_signature("key-1", 1_700_000_000, &signed.token)
        );
        assert_ne!(signed.token, MailgunSignature::new(1, None).token);
        assert_eq!(MailgunSignature::new(1, None).signature, "");
    }
}
