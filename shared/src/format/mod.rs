//! The POST formats: CloudMailin's three, and the inbound payloads of Postmark, Mailgun and SendGrid for
//! apps written against those services. Each is a pure function of the parsed mail and its envelope that
//! writes the body to any `io::Write`, so large bodies can stream.

mod form;
pub mod forward;
mod json;
mod mailgun;
mod postmark;
mod sendgrid;

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use crate::mail::Email;
use crate::mail::envelope::Envelope;

pub use mailgun::{MailgunSignature, mailgun_signature};

/// Which POST format a target receives.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum Format {
    /// CloudMailin's "JSON normalized": `{envelope, headers, plain, html, reply_plain, attachments}`.
    #[default]
    #[serde(rename = "json")]
    Json,
    /// `multipart/form-data` with the same data as fields and attachments as file parts.
    #[serde(rename = "multipart")]
    Multipart,
    /// `multipart/form-data` with the original message, untouched, in the `message` field.
    #[serde(rename = "raw")]
    Raw,
    /// Postmark's inbound webhook JSON.
    #[serde(rename = "postmark")]
    Postmark,
    /// Postmark's inbound JSON with the original message in `RawEmail`.
    #[serde(rename = "postmark-raw")]
    PostmarkRaw,
    /// What a Mailgun route's `forward()` posts: `multipart/form-data` with the parsed message.
    #[serde(rename = "mailgun")]
    Mailgun,
    /// Mailgun's MIME variant: the original message in `body-mime`.
    #[serde(rename = "mailgun-mime")]
    MailgunMime,
    /// SendGrid Inbound Parse's `multipart/form-data` with the parsed message.
    #[serde(rename = "sendgrid")]
    Sendgrid,
    /// SendGrid Inbound Parse's raw variant: the original message in `email`.
    #[serde(rename = "sendgrid-raw")]
    SendgridRaw,
}

impl Format {
    /// Every format, for choices offered to people.
    pub const ALL: [Format; 9] = [
        Format::Json,
        Format::Multipart,
        Format::Raw,
        Format::Postmark,
        Format::PostmarkRaw,
        Format::Mailgun,
        Format::MailgunMime,
        Format::Sendgrid,
        Format::SendgridRaw,
    ];

    /// The name used on the command line, in routes and as a file extension.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Multipart => "multipart",
            Format::Raw => "raw",
            Format::Postmark => "postmark",
            Format::PostmarkRaw => "postmark-raw",
            Format::Mailgun => "mailgun",
            Format::MailgunMime => "mailgun-mime",
            Format::Sendgrid => "sendgrid",
            Format::SendgridRaw => "sendgrid-raw",
        }
    }

    /// Whether the body is `multipart/form-data` (and so needs a boundary).
    pub fn is_form(self) -> bool {
        !matches!(self, Format::Json | Format::Postmark | Format::PostmarkRaw)
    }

    /// Whether attachments may travel as links: only CloudMailin's formats have a field for one; the
    /// providers' formats always carry the files, as those services do.
    pub fn takes_attachment_links(self) -> bool {
        matches!(self, Format::Json | Format::Multipart)
    }

    /// The format a POST to `url` is written in: as Mailgun does, a `mailgun` target whose URL path ends
    /// in `mime` gets the MIME variant.
    pub fn for_url(self, url: &str) -> Format {
        let path = url::Url::parse(url)
            .map(|u| u.path().to_owned())
            .unwrap_or_default();
        match self {
            Format::Mailgun if path.ends_with("mime") => Format::MailgunMime,
            other => other,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A format name that is none of [`Format::ALL`].
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown format `{0}`: use json, multipart, raw, postmark, postmark-raw, mailgun, mailgun-mime, sendgrid or sendgrid-raw"
)]
pub struct UnknownFormat(String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase();
        Format::ALL
            .into_iter()
            .find(|format| format.as_str() == name)
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

/// One POST body: a message, the envelope of the delivery, and the format it is written in.
#[derive(Debug, Clone)]
pub struct Payload<'a> {
    email: &'a Email,
    envelope: &'a Envelope,
    format: Format,
    boundary: Option<String>,
    attachment_urls: Option<&'a [String]>,
    mailgun: Option<MailgunSignature>,
}

impl<'a> Payload<'a> {
    /// A payload; the form formats get a fresh random multipart boundary, Mailgun's an unsigned
    /// timestamp and token of now.
    pub fn new(format: Format, email: &'a Email, envelope: &'a Envelope) -> Payload<'a> {
        Payload {
            email,
            envelope,
            format,
            boundary: format.is_form().then(random_boundary),
            attachment_urls: None,
            mailgun: None,
        }
    }

    /// The `timestamp`, `token` and `signature` of Mailgun's formats (ignored by the others).
    pub fn with_mailgun_signature(mut self, signature: MailgunSignature) -> Payload<'a> {
        self.mailgun = Some(signature);
        self
    }

    /// Uses the given multipart boundary instead of a random one (for reproducible output).
    pub fn with_boundary(mut self, boundary: impl Into<String>) -> Payload<'a> {
        self.boundary = Some(boundary.into());
        self
    }

    fn boundary(&self) -> &str {
        self.boundary.as_deref().unwrap_or("mailroom-boundary")
    }

    /// The multipart boundary of a form payload; `None` for JSON.
    pub fn multipart_boundary(&self) -> Option<&str> {
        self.boundary.as_deref()
    }

    /// Sends each attachment as a link instead of its content: `urls[i]` belongs to attachment `i`. Only
    /// formats that [take links](Format::takes_attachment_links) use them.
    pub fn with_attachment_urls(mut self, urls: &'a [String]) -> Payload<'a> {
        self.attachment_urls = Some(urls);
        self
    }

    /// The format this payload is written in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The `Content-Type` header value of the body.
    pub fn content_type(&self) -> String {
        if self.format.is_form() {
            format!("multipart/form-data; boundary={}", self.boundary())
        } else {
            "application/json".to_owned()
        }
    }

    /// Writes the body.
    pub fn write_to<W: Write>(&self, out: W) -> io::Result<()> {
        match self.format {
            Format::Json => json::write(self.email, self.envelope, self.attachment_urls, out),
            Format::Multipart => form::write_multipart(
                self.email,
                self.envelope,
                self.attachment_urls,
                self.boundary(),
                out,
            ),
            Format::Raw => form::write_raw(self.email, self.envelope, self.boundary(), out),
            Format::Postmark | Format::PostmarkRaw => postmark::write(
                self.email,
                self.envelope,
                self.format == Format::PostmarkRaw,
                out,
            ),
            Format::Mailgun | Format::MailgunMime => {
                let signature = self.mailgun.clone().unwrap_or_else(MailgunSignature::now);
                let form = form::Form::new(self.boundary(), out);
                if self.format == Format::MailgunMime {
                    mailgun::write_mime(self.email, self.envelope, &signature, form)
                } else {
                    mailgun::write_parsed(self.email, self.envelope, &signature, form)
                }
            }
            Format::Sendgrid | Format::SendgridRaw => {
                let form = form::Form::new(self.boundary(), out);
                if self.format == Format::SendgridRaw {
                    sendgrid::write_raw(self.email, self.envelope, form)
                } else {
                    sendgrid::write_parsed(self.email, self.envelope, form)
                }
            }
        }
    }

    /// The body in memory.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.size_hint());
        // Writing into a Vec cannot fail.
        let _ = self.write_to(&mut body);
        body
    }

    /// A close upper estimate of the body's size, for buffers.
    pub fn size_hint(&self) -> usize {
        let attachments: usize = self.email.attachments.iter().map(|a| a.content.len()).sum();
        let text = self.email.plain.as_ref().map_or(0, String::len) * 2
            + self.email.html.as_ref().map_or(0, String::len);
        let headers: usize = self
            .email
            .headers
            .iter()
            .map(|h| h.name.len() + h.value.len() + 8)
            .sum();
        let overhead = 1024 + 256 * self.email.attachments.len();
        let raw = self.email.raw().len();
        match self.format {
            Format::Raw | Format::MailgunMime | Format::SendgridRaw => raw + headers + overhead,
            Format::Multipart => attachments + text + headers + overhead,
            // Both list the headers twice (a field of their own and the header list).
            Format::Mailgun | Format::Sendgrid => attachments + text * 2 + headers * 2 + overhead,
            Format::Json => attachments.div_ceil(3) * 4 + text + text / 8 + headers + overhead,
            // The text twice (the body and the stripped reply), the headers twice (fields and list).
            Format::Postmark => {
                attachments.div_ceil(3) * 4 + text * 2 + text / 4 + headers * 2 + overhead
            }
            Format::PostmarkRaw => {
                attachments.div_ceil(3) * 4
                    + text * 2
                    + text / 4
                    + headers * 2
                    + raw
                    + raw / 8
                    + overhead
            }
        }
    }
}

/// A header value on one line: a CR or LF (which RFC 2047 decoding can produce) becomes a space, as the
/// providers' header lists and the apps' parsers hold each value on one line.
fn one_line(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains(['\r', '\n']) {
        std::borrow::Cow::Owned(value.replace(['\r', '\n'], " "))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

/// SES's spam verdict as the yes/no of a provider's spam flag (Postmark's `X-Spam-Status`, Mailgun's
/// `X-Mailgun-Sflag`); none for a verdict that is neither.
fn spam_flag(envelope: &Envelope) -> Option<&'static str> {
    use crate::mail::envelope::Verdict;
    match envelope.ses.as_ref()?.spam? {
        Verdict::Pass => Some("No"),
        Verdict::Fail => Some("Yes"),
        Verdict::Gray | Verdict::ProcessingFailed | Verdict::Disabled => None,
    }
}

fn random_boundary() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // Without an entropy source, a boundary from the clock is still unlikely to occur in the content.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = nanos.to_le_bytes();
    }
    let mut boundary = String::from("mailroom-");
    for b in bytes {
        boundary.push_str(&format!("{b:02x}"));
    }
    boundary
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::mail::parse;

    const SAMPLE: &[u8] = include_bytes!("../../../events/sample.eml");

    fn sample() -> (Email, Envelope) {
        let email = parse(SAMPLE.to_vec()).unwrap();
        let envelope = Envelope::recover(&email);
        (email, envelope)
    }

    #[test]
    fn json_carries_cloudmailins_fields_and_ours() {
        let (email, envelope) = sample();
        let body = Payload::new(Format::Json, &email, &envelope).to_vec();
        let text = String::from_utf8(body.clone()).unwrap();
        let positions: Vec<usize> = [
            "{\"envelope\":",
            ",\"headers\":",
            ",\"plain\":",
            ",\"html\":",
            ",\"reply_plain\":",
            ",\"attachments\":",
            ",\"warnings\":",
        ]
        .iter()
        .map(|key| text.find(key).unwrap())
        .collect();
        assert!(
            positions.is_sorted(),
            "top-level keys in CloudMailin's order"
        );
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            json["envelope"]["to"],
            "support+ticket-4821@mail.example.com"
        );
        assert_eq!(json["envelope"]["mailbox_hash"], "ticket-4821");
        assert_eq!(json["envelope"]["ses"]["virus"], "PASS");
        assert!(
            json["envelope"].get("tls").is_none(),
            "tls is omitted when unknown"
        );
        assert_eq!(
            json["headers"]["subject"],
            "Re: Invoice 4821 — wrong address"
        );
        assert_eq!(
            json["headers"]["from"],
            "Ana Lima Gonçalves <ana.lima@sender.example>"
        );
        assert_eq!(json["headers"]["x_ses_spam_verdict"], "PASS");
        assert!(
            json["plain"]
                .as_str()
                .unwrap()
                .contains("São Paulo. The corrected one is")
        );
        assert_eq!(
            json["reply_plain"],
            "Hi,\r\n\r\nThe invoice still shows my old address in São Paulo. The corrected one is in the attached PDF.\r\n\r\nThanks,\r\nAna"
        );
        let attachments = json["attachments"].as_array().unwrap();
        assert_eq!(attachments.len(), 2);
        assert_eq!(attachments[0]["file_name"], "logo.png");
        assert_eq!(attachments[0]["disposition"], "inline");
        assert_eq!(attachments[0]["content_id"], "sig-logo@sender.example");
        assert_eq!(attachments[1]["file_name"], "endereço correto.pdf");
        assert_eq!(attachments[1]["content_type"], "application/pdf");
        assert!(attachments[1].get("content_id").is_none());
    }

    #[test]
    fn repeated_headers_become_arrays_top_most_first() {
        let email =
            parse(b"Received: one\r\nX-Tag: a\r\nReceived: two\r\nSubject: s\r\n\r\nb".to_vec())
                .unwrap();
        let envelope = Envelope::recover(&email);
        let json: serde_json::Value =
            serde_json::from_slice(&Payload::new(Format::Json, &email, &envelope).to_vec())
                .unwrap();
        assert_eq!(
            json["headers"]["received"],
            serde_json::json!(["one", "two"])
        );
        assert_eq!(json["headers"]["x_tag"], "a");
        let form = String::from_utf8(
            Payload::new(Format::Multipart, &email, &envelope)
                .with_boundary("B")
                .to_vec(),
        )
        .unwrap();
        assert!(form.contains("name=\"headers[received][0]\"\r\n\r\none\r\n"));
        assert!(form.contains("name=\"headers[received][1]\"\r\n\r\ntwo\r\n"));
        assert!(form.contains("name=\"headers[x_tag]\"\r\n\r\na\r\n"));
    }

    #[test]
    fn multipart_escapes_hostile_file_names() {
        let raw = b"Subject: s\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\
Content-Type: text/plain\r\n\r\nhi\r\n--x\r\nContent-Type: application/octet-stream\r\n\
Content-Disposition: attachment; filename=\"a\\\"b.txt\"\r\n\r\ndata\r\n--x--\r\n";
        let email = parse(raw.to_vec()).unwrap();
        let envelope = Envelope::recover(&email);
        let form = String::from_utf8(
            Payload::new(Format::Multipart, &email, &envelope)
                .with_boundary("B")
                .to_vec(),
        )
        .unwrap();
        assert!(
            form.contains("name=\"attachments[0]\"; filename=\"a%22b.txt\"\r\nContent-Type: application/octet-stream\r\n\r\ndata\r\n"),
            "{form}"
        );
        assert!(form.ends_with("--B--\r\n"));
    }

    #[test]
    fn links_replace_content() {
        let (email, envelope) = sample();
        let urls = vec![
            "https://links.example/a".to_owned(),
            "https://links.example/b".to_owned(),
        ];
        let json: serde_json::Value = serde_json::from_slice(
            &Payload::new(Format::Json, &email, &envelope)
                .with_attachment_urls(&urls)
                .to_vec(),
        )
        .unwrap();
        assert_eq!(json["attachments"][1]["url"], "https://links.example/b");
        assert!(json["attachments"][1].get("content").is_none());

        // The form formats send a url field and no file part.
        let form = String::from_utf8(
            Payload::new(Format::Multipart, &email, &envelope)
                .with_boundary("B")
                .with_attachment_urls(&urls)
                .to_vec(),
        )
        .unwrap();
        assert!(
            form.contains("name=\"attachments[1][url]\"\r\n\r\nhttps://links.example/b\r\n"),
            "{form}"
        );
        assert!(!form.contains("filename="), "no file part: {form}");
    }

    #[test]
    fn formats_parse_and_name_their_content_type() {
        assert_eq!("JSON".parse::<Format>().unwrap(), Format::Json);
        assert!("xml".parse::<Format>().is_err());
        let (email, envelope) = sample();
        let payload = Payload::new(Format::Raw, &email, &envelope).with_boundary("B");
        assert_eq!(payload.content_type(), "multipart/form-data; boundary=B");
        assert!(payload.size_hint() >= payload.to_vec().len());
    }
}
