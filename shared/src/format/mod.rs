//! The POST formats, CloudMailin-compatible: pure functions of the parsed mail and its envelope that write
//! the body to any `io::Write`, so large bodies can stream.

mod form;
mod json;

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use crate::mail::Email;
use crate::mail::envelope::Envelope;

/// Which of the three POST formats a target receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// CloudMailin's "JSON normalized": `{envelope, headers, plain, html, reply_plain, attachments}`.
    #[default]
    Json,
    /// `multipart/form-data` with the same data as fields and attachments as file parts.
    Multipart,
    /// `multipart/form-data` with the original message, untouched, in the `message` field.
    Raw,
}

impl Format {
    /// The name used on the command line, in routes and as a file extension.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Multipart => "multipart",
            Format::Raw => "raw",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A format name that is not `json`, `multipart` or `raw`.
#[derive(Debug, thiserror::Error)]
#[error("unknown format `{0}`: use json, multipart or raw")]
pub struct UnknownFormat(String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "multipart" => Ok(Format::Multipart),
            "raw" => Ok(Format::Raw),
            _ => Err(UnknownFormat(s.to_owned())),
        }
    }
}

/// One POST body: a message, the envelope of the delivery, and the format it is written in.
#[derive(Debug, Clone)]
pub struct Payload<'a> {
    email: &'a Email,
    envelope: &'a Envelope,
    format: Format,
    boundary: String,
    attachment_urls: Option<&'a [String]>,
}

impl<'a> Payload<'a> {
    /// A payload with a fresh random multipart boundary.
    pub fn new(format: Format, email: &'a Email, envelope: &'a Envelope) -> Payload<'a> {
        Payload {
            email,
            envelope,
            format,
            boundary: random_boundary(),
            attachment_urls: None,
        }
    }

    /// Uses the given multipart boundary instead of a random one (for reproducible output).
    pub fn with_boundary(mut self, boundary: impl Into<String>) -> Payload<'a> {
        self.boundary = boundary.into();
        self
    }

    /// Sends each attachment as a link instead of its content: `urls[i]` belongs to attachment `i`.
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
        match self.format {
            Format::Json => "application/json".to_owned(),
            Format::Multipart | Format::Raw => {
                format!("multipart/form-data; boundary={}", self.boundary)
            }
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
                &self.boundary,
                out,
            ),
            Format::Raw => form::write_raw(self.email, self.envelope, &self.boundary, out),
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
        let headers: usize = self.email.headers.iter().map(|h| h.name.len() + h.value.len() + 8).sum();
        let overhead = 1024 + 256 * self.email.attachments.len();
        match self.format {
            Format::Raw => self.email.raw().len() + overhead,
            Format::Multipart => attachments + text + headers + overhead,
            Format::Json => attachments.div_ceil(3) * 4 + text + text / 8 + headers + overhead,
        }
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
