//! The message Mailroom forwards by email: the received bytes with a header block SES accepts and that
//! keeps replies working, and the body and MIME structure byte for byte as received.
//!
//! `From` becomes the route's verified sending address, named `"<original name or address> via Mailroom"`;
//! `Reply-To` is the original `From` unless the message has a `Reply-To` already; `Return-Path`, `Sender`,
//! `Message-ID` and every `DKIM-Signature` go (SES writes its own, and the old signatures cannot verify
//! once `From` changed); fields with an empty or invalid name and repeats of single-instance fields are
//! dropped (the first one kept; for the MIME fields the last, which is the one the parser reads);
//! `X-Original-From` and `X-Original-To` are added.

use base64::Engine;
use chrono::{DateTime, Utc};

/// Fields a message carries at most once (RFC 5322 3.6, and `Delivered-To`, whose repeats SES refuses).
pub const SINGLE_INSTANCE: [&str; 15] = [
    "date",
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "bcc",
    "message-id",
    "in-reply-to",
    "references",
    "subject",
    "delivered-to",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
];

/// Single-instance fields of which the last one counts, as mail-parser reads them; of the others the first.
const LAST_WINS: [&str; 3] = ["mime-version", "content-type", "content-transfer-encoding"];

/// Fields the rewrite removes whatever their number.
const REMOVED: [&str; 6] = [
    "return-path",
    "sender",
    "message-id",
    "dkim-signature",
    "x-original-from",
    "x-original-to",
];

/// What the rewrite needs besides the message.
#[derive(Debug, Clone)]
pub struct ForwardHeaders<'a> {
    /// The verified address the forward is sent from.
    pub from_address: &'a str,
    /// The original `From`, decoded (`Ana Lima <ana@example.com>`), for the display name.
    pub original_from: Option<&'a str>,
    /// The recipient the message was received for.
    pub original_to: &'a str,
}

/// The display name of a decoded `From` value: the name if it has one, else the address.
pub fn display_name_of(from: &str) -> String {
    let from = from.trim();
    let name = match from.rfind('<') {
        Some(open) => from[..open].trim(),
        None => "",
    };
    let name = name.trim_matches('"').trim();
    if !name.is_empty() {
        return name.to_owned();
    }
    from.trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_owned()
}

/// `name` as a header phrase: a quoted string when it is printable ASCII, RFC 2047 encoded words otherwise.
fn phrase(name: &str) -> String {
    if is_printable_ascii(name) {
        let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
        return format!("\"{escaped}\"");
    }
    encoded_words(name)
}

fn is_printable_ascii(text: &str) -> bool {
    text.chars().all(|c| (' '..='~').contains(&c))
}

/// `text` as an unstructured header value (`Subject`): as is when it is printable ASCII, encoded words
/// otherwise.
fn unstructured(text: &str) -> String {
    if is_printable_ascii(text) {
        return text.to_owned();
    }
    encoded_words(text)
}

/// RFC 2047 encoded words of at most 45 bytes of text each (60 base64 characters), cut on character
/// boundaries.
fn encoded_words(text: &str) -> String {
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| {
            format!(
                "=?UTF-8?B?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w.as_bytes())
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where the header block ends: the index of the blank line's first byte (the body starts there), and
/// the line ending the header uses.
fn header_end(raw: &[u8]) -> (usize, &'static [u8]) {
    let crlf = memchr::memmem::find(raw, b"\r\n\r\n");
    let lf = memchr::memmem::find(raw, b"\n\n");
    match (crlf, lf) {
        (Some(c), Some(l)) if c < l => (c + 2, b"\r\n"),
        (_, Some(l)) => (l + 1, b"\n"),
        (Some(c), None) => (c + 2, b"\r\n"),
        // Header fields only: everything is header.
        (None, None) => (
            raw.len(),
            if memchr::memmem::find(raw, b"\r\n").is_some() {
                b"\r\n"
            } else {
                b"\n"
            },
        ),
    }
}

/// One header field: its name and every byte of it (continuation lines included), as written, or with the
/// white space before the colon of the obsolete syntax (`Subject  : …`) taken out.
struct Field<'a> {
    name: String,
    bytes: std::borrow::Cow<'a, [u8]>,
    value: &'a [u8],
}

fn fields(header: &[u8]) -> (Vec<Field<'_>>, usize) {
    let mut fields: Vec<Field<'_>> = Vec::new();
    let mut invalid = 0;
    let mut start = 0;
    while start < header.len() {
        // A field runs until a line that does not start with white space.
        let mut end = start;
        loop {
            let line_end =
                memchr::memchr(b'\n', &header[end..]).map_or(header.len(), |i| end + i + 1);
            end = line_end;
            if end >= header.len() || !matches!(header[end], b' ' | b'\t') {
                break;
            }
        }
        let bytes = &header[start..end];
        start = end;
        let Some(colon) = memchr::memchr(b':', bytes) else {
            invalid += 1;
            continue;
        };
        let written = &bytes[..colon];
        let name = written.trim_ascii_end();
        let valid = !name.is_empty() && name.iter().all(|b| (33..=126).contains(b));
        if !valid {
            // An empty name, white space inside it, or a continuation line with no field before it.
            invalid += 1;
            continue;
        }
        let value = &bytes[colon + 1..];
        let bytes = if name.len() == written.len() {
            std::borrow::Cow::Borrowed(bytes)
        } else {
            std::borrow::Cow::Owned([name, b":", value].concat())
        };
        fields.push(Field {
            name: String::from_utf8_lossy(name).to_ascii_lowercase(),
            bytes,
            value,
        });
    }
    (fields, invalid)
}

/// The forward of `raw`: a new header block and the original body, byte for byte.
pub fn rewrite_for_forward(raw: &[u8], headers: &ForwardHeaders<'_>) -> Vec<u8> {
    let (end, newline) = header_end(raw);
    let (header, body) = raw.split_at(end);
    let (fields, _) = fields(header);

    let original_from = fields.iter().find(|f| f.name == "from").map(|f| f.value);
    let has_reply_to = fields.iter().any(|f| f.name == "reply-to");
    let shown = headers
        .original_from
        .map(display_name_of)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "someone".to_owned());

    let mut out = Vec::with_capacity(raw.len() + 512);
    out.extend_from_slice(
        format!(
            "From: {} <{}>",
            phrase(&format!("{shown} via Mailroom")),
            headers.from_address
        )
        .as_bytes(),
    );
    out.extend_from_slice(newline);
    let mut seen: Vec<&str> = Vec::new();
    for (index, field) in fields.iter().enumerate() {
        if field.name == "from" || REMOVED.contains(&field.name.as_str()) {
            continue;
        }
        if LAST_WINS.contains(&field.name.as_str()) {
            // The MIME fields that shape the body: the parser reads the last one, so the forward keeps
            // that one and is read the way Mailroom read the original.
            if fields[index + 1..]
                .iter()
                .any(|later| later.name == field.name)
            {
                continue;
            }
        } else if let Some(single) = SINGLE_INSTANCE.iter().find(|s| **s == field.name) {
            if seen.contains(single) {
                continue;
            }
            seen.push(single);
        }
        out.extend_from_slice(&field.bytes);
        if !field.bytes.ends_with(b"\n") {
            out.extend_from_slice(newline);
        }
    }
    if let Some(value) = original_from {
        let value = trim_value(value);
        if !has_reply_to {
            out.extend_from_slice(b"Reply-To: ");
            out.extend_from_slice(value);
            out.extend_from_slice(newline);
        }
        out.extend_from_slice(b"X-Original-From: ");
        out.extend_from_slice(value);
        out.extend_from_slice(newline);
    }
    out.extend_from_slice(format!("X-Original-To: {}", headers.original_to).as_bytes());
    out.extend_from_slice(newline);
    if body.is_empty() {
        out.extend_from_slice(newline);
    }
    out.extend_from_slice(body);
    out
}

/// A field value without the white space and line ending around it (folds inside stay).
fn trim_value(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| !b" \t".contains(b))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !b" \t\r\n".contains(b))
        .map_or(start, |i| i + 1);
    value.get(start..end).unwrap_or_default()
}

/// What the notice sent instead of a forward that is too large says.
#[derive(Debug, Clone)]
pub struct OversizeNotice<'a> {
    /// The verified address it is sent from.
    pub from_address: &'a str,
    /// The forward address it goes to.
    pub to: &'a str,
    /// The recipient the message was received for.
    pub original_to: &'a str,
    /// The original `From`, decoded.
    pub original_from: Option<&'a str>,
    /// The original `Subject`, decoded.
    pub subject: Option<&'a str>,
    /// The original `Date`.
    pub date: Option<&'a str>,
    /// The size of the received message, in bytes.
    pub size: usize,
    /// The largest message that is forwarded.
    pub limit: usize,
    /// A link that downloads the original, and until when it works; `None` when links are not set up.
    pub link: Option<(&'a str, DateTime<Utc>)>,
    /// Where the original is stored, said when there is no link.
    pub stored_at: &'a str,
    /// When the notice is written.
    pub now: DateTime<Utc>,
}

/// The longest subject the notice repeats, in characters.
const NOTICE_SUBJECT_CHARS: usize = 200;

/// The short plain-text message sent instead of a forward over the size limit: who sent what, how large,
/// and where to fetch the original. Replies go to the original sender, as they would for the forward.
pub fn oversize_notice(notice: &OversizeNotice<'_>) -> Vec<u8> {
    // Decoded values may hold line breaks; none may start a header field of its own.
    let original_from = notice.original_from.map(one_line);
    let original_from = original_from.as_deref();
    let shown = original_from
        .map(display_name_of)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "someone".to_owned());
    let subject: String = one_line(notice.subject.unwrap_or("(no subject)"))
        .chars()
        .take(NOTICE_SUBJECT_CHARS)
        .collect();

    let mut body = format!(
        "A message for {} was too large to forward: {}, and the limit is {}.\r\n\r\n",
        notice.original_to,
        human_size(notice.size),
        human_size(notice.limit)
    );
    body.push_str(&format!(
        "From:    {}\r\n",
        original_from.unwrap_or("(unknown)")
    ));
    body.push_str(&format!("Subject: {subject}\r\n"));
    if let Some(date) = notice.date {
        body.push_str(&format!("Date:    {}\r\n", one_line(date).trim()));
    }
    body.push_str(&format!("Size:    {} bytes\r\n\r\n", notice.size));
    match notice.link {
        Some((url, until)) => body.push_str(&format!(
            "Download the original (until {}):\r\n{url}\r\n",
            until.format("%Y-%m-%d %H:%M UTC")
        )),
        None => body.push_str(&format!(
            "The original is stored at {}; ask the operator of this Mailroom for it.\r\n",
            notice.stored_at
        )),
    }

    let mut out = String::new();
    out.push_str(&format!(
        "From: {} <{}>\r\n",
        phrase(&format!("{shown} via Mailroom")),
        notice.from_address
    ));
    out.push_str(&format!("To: <{}>\r\n", notice.to));
    if let Some(from) = original_from.filter(|f| !f.trim().is_empty()) {
        out.push_str(&format!("Reply-To: {}\r\n", reply_to_value(from)));
    }
    out.push_str(&format!(
        "Subject: {}\r\n",
        unstructured(&format!("Too large to forward: {subject}"))
    ));
    out.push_str(&format!("Date: {}\r\n", notice.now.to_rfc2822()));
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str("Auto-Submitted: auto-generated\r\n");
    out.push_str(&format!("X-Original-To: {}\r\n", notice.original_to));
    out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    if body.is_ascii() {
        out.push_str("Content-Transfer-Encoding: 7bit\r\n\r\n");
        out.push_str(&body);
    } else {
        out.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
        let encoded = base64::engine::general_purpose::STANDARD.encode(body.as_bytes());
        for line in encoded.as_bytes().chunks(76) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push_str("\r\n");
        }
    }
    out.into_bytes()
}

fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A decoded `From` as a `Reply-To` value: the name as a phrase and the address in angle brackets.
fn reply_to_value(from: &str) -> String {
    let from = from.trim();
    match (from.rfind('<'), from.rfind('>')) {
        (Some(open), Some(close)) if open < close => {
            let name = from[..open].trim().trim_matches('"').trim();
            let address = &from[open + 1..close];
            if name.is_empty() {
                format!("<{address}>")
            } else {
                format!("{} <{address}>", phrase(name))
            }
        }
        _ => format!("<{from}>"),
    }
}

/// `bytes` for people: `41.9 MB`.
fn human_size(bytes: usize) -> String {
    let mb = bytes as f64 / 1_000_000.0;
    if mb >= 1.0 {
        format!("{mb:.1} MB")
    } else {
        format!("{:.0} kB", bytes as f64 / 1000.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers<'a>(original_from: Option<&'a str>) -> ForwardHeaders<'a> {
        ForwardHeaders {
            from_address: "forward@mail.example.com",
            original_from,
            original_to: "support@mail.example.com",
        }
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    #[test]
    fn the_header_block_is_rewritten_and_the_body_kept() {
        let raw = b"Return-Path: <ana@sender.example>\r\nDKIM-Signature: v=1; a=rsa-sha256;\r\n b=abc\r\n\
From: Ana Lima <ana@sender.example>\r\nSender: list@sender.example\r\nTo: support@mail.example.com\r\n\
Message-ID: <1@sender.example>\r\nSubject: Hello\r\nSubject: again\r\n: no name\r\nDelivered-To: a@x\r\n\
Delivered-To: b@x\r\nContent-Type: text/plain\r\n\r\nBody line 1\r\n\r\nFrom: not a header\r\n";
        let out = rewrite_for_forward(raw, &headers(Some("Ana Lima <ana@sender.example>")));
        let out_text = text(&out);
        assert!(
            out_text.starts_with("From: \"Ana Lima via Mailroom\" <forward@mail.example.com>\r\n"),
            "{out_text}"
        );
        for gone in [
            "Return-Path",
            "DKIM-Signature",
            "Sender:",
            "Message-ID",
            ": no name",
            "Subject: again",
            "Delivered-To: b@x",
        ] {
            assert!(!out_text.contains(gone), "{gone} in {out_text}");
        }
        assert!(out_text.contains("Subject: Hello\r\n"));
        assert!(out_text.contains("Delivered-To: a@x\r\n"));
        assert!(out_text.contains("Reply-To: Ana Lima <ana@sender.example>\r\n"));
        assert!(out_text.contains("X-Original-From: Ana Lima <ana@sender.example>\r\n"));
        assert!(out_text.contains("X-Original-To: support@mail.example.com\r\n"));
        assert!(out.ends_with(b"\r\n\r\nBody line 1\r\n\r\nFrom: not a header\r\n"));
    }

    #[test]
    fn an_existing_reply_to_stays_and_names_are_encoded_when_needed() {
        let raw = b"From: =?UTF-8?Q?Jos=C3=A9?= <jose@sender.example>\nReply-To: team@sender.example\n\nhi\n";
        let out = text(&rewrite_for_forward(
            raw,
            &headers(Some("José <jose@sender.example>")),
        ));
        assert!(out.starts_with("From: =?UTF-8?B?"), "{out}");
        assert!(out.contains("Reply-To: team@sender.example\n"));
        assert_eq!(out.matches("Reply-To").count(), 1);
        assert!(
            out.contains("X-Original-From: =?UTF-8?Q?Jos=C3=A9?= <jose@sender.example>\n"),
            "the original kept as written"
        );
        assert!(out.ends_with("\n\nhi\n"));
        let email = crate::mail::parse(out.into_bytes()).unwrap();
        assert_eq!(
            email.header("from"),
            Some("José via Mailroom <forward@mail.example.com>")
        );
    }

    #[test]
    fn display_names() {
        assert_eq!(display_name_of("Ana Lima <ana@x.example>"), "Ana Lima");
        assert_eq!(
            display_name_of("\"Lima, Ana\" <ana@x.example>"),
            "Lima, Ana"
        );
        assert_eq!(display_name_of("<ana@x.example>"), "ana@x.example");
        assert_eq!(display_name_of("ana@x.example"), "ana@x.example");
        assert_eq!(phrase("a \"b\" \\c"), "\"a \\\"b\\\" \\\\c\"");
    }

    fn notice<'a>(link: Option<(&'a str, DateTime<Utc>)>) -> OversizeNotice<'a> {
        OversizeNotice {
            from_address: "forward@mail.example.com",
            to: "ana@example.net",
            original_to: "docs@mail.example.com",
            original_from: Some("Bruno Díaz <bruno@sender.example>"),
            subject: Some("Scans\r\nBcc: everyone@example.net"),
            date: Some("Fri, 20 Nov 2026 09:59:58 +0000"),
            size: 41_943_040,
            limit: 10_000_000,
            link,
            stored_at: "mail-bucket/inbound/abc",
            now: "2026-11-20T10:00:00Z".parse().unwrap(),
        }
    }

    /// The body of a notice, decoded.
    fn notice_body(raw: &[u8]) -> (String, String) {
        let raw = text(raw);
        let (header, body) = raw.split_once("\r\n\r\n").unwrap();
        let body = if header.contains("Content-Transfer-Encoding: base64") {
            let joined: String = body.split("\r\n").collect();
            text(
                &base64::engine::general_purpose::STANDARD
                    .decode(joined)
                    .unwrap(),
            )
        } else {
            body.to_owned()
        };
        (header.to_owned(), body)
    }

    #[test]
    fn the_oversize_notice_says_who_what_how_large_and_where() {
        let until: DateTime<Utc> = "2026-11-27T10:00:00Z".parse().unwrap();
        let raw = oversize_notice(&notice(Some(("https://links.example/l/tok", until))));
        let (header, body) = notice_body(&raw);
        let lines: Vec<&str> = header.split("\r\n").collect();
        // The name is not ASCII: encoded words, and the subject's line break cannot add a header.
        assert!(lines[0].starts_with("From: =?UTF-8?B?"), "{header}");
        assert!(
            lines[0].ends_with(" <forward@mail.example.com>"),
            "{header}"
        );
        assert!(lines.contains(&"To: <ana@example.net>"), "{header}");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("Reply-To: =?UTF-8?B?")
                    && l.ends_with(" <bruno@sender.example>")),
            "{header}"
        );
        assert!(!lines.iter().any(|l| l.starts_with("Bcc")), "{header}");
        assert!(
            lines.contains(&"Subject: Too large to forward: Scans  Bcc: everyone@example.net"),
            "{header}"
        );
        assert!(lines.contains(&"Auto-Submitted: auto-generated"));
        assert!(lines.contains(&"X-Original-To: docs@mail.example.com"));
        for fact in [
            "A message for docs@mail.example.com was too large to forward: 41.9 MB, and the limit is 10.0 MB.",
            "From:    Bruno Díaz <bruno@sender.example>",
            "Date:    Fri, 20 Nov 2026 09:59:58 +0000",
            "Size:    41943040 bytes",
            "Download the original (until 2026-11-27 10:00 UTC):\r\nhttps://links.example/l/tok\r\n",
        ] {
            assert!(body.contains(fact), "{fact:?} in {body}");
        }
        // Every line of the message fits SMTP's limit.
        assert!(text(&raw).split("\r\n").all(|l| l.len() <= 998));
    }

    #[test]
    fn without_links_the_notice_says_where_the_original_is_kept() {
        let mut plain = notice(None);
        plain.original_from = Some("bruno@sender.example");
        plain.subject = None;
        let raw = oversize_notice(&plain);
        let (header, body) = notice_body(&raw);
        assert!(
            header.contains("Content-Transfer-Encoding: 7bit"),
            "{header}"
        );
        assert!(header.starts_with(
            "From: \"bruno@sender.example via Mailroom\" <forward@mail.example.com>\r\n"
        ));
        assert!(
            header.contains("\r\nReply-To: <bruno@sender.example>\r\n"),
            "{header}"
        );
        assert!(header.contains("Subject: Too large to forward: (no subject)"));
        assert!(body.contains("stored at mail-bucket/inbound/abc"), "{body}");
        assert!(!body.contains("http"), "{body}");
    }
}
