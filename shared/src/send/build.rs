//! Builds the message a send request describes with `mail-builder`: `multipart/alternative` for text and
//! HTML, `multipart/related` around inline parts, `multipart/mixed` around files; every header encoded
//! as RFC 2047 wants. A raw message is sent as it came, its Subject replaced when the request gives one.

use chrono::{DateTime, Utc};
use mail_builder::MessageBuilder;
use mail_builder::headers::Header;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::text::Text;

use mail_builder::mime::MimePart;

use super::request::{Attachment, Body, Outgoing, address_of};

/// The display name and the address of `Name <a@b>` (or of a bare `a@b`).
fn name_and_address(text: &str) -> (Option<String>, String) {
    let address = address_of(text).unwrap_or_else(|| text.trim().to_owned());
    let name = text
        .rfind('<')
        .map(|open| text[..open].trim().trim_matches('"').trim().to_owned())
        .filter(|n| !n.is_empty());
    (name, address)
}

fn address(text: &str) -> Address<'static> {
    match name_and_address(text) {
        (Some(name), address) => Address::from((name, address)),
        (None, address) => Address::from(address),
    }
}

fn addresses(list: &[String]) -> Address<'static> {
    Address::from(list.iter().map(|a| address(a)).collect::<Vec<_>>())
}

/// The message's bytes. `id` makes its `Message-ID` (`<id@from domain>`), `date` its `Date`.
pub fn build(outgoing: &Outgoing, id: &str, date: DateTime<Utc>) -> Vec<u8> {
    match &outgoing.body {
        Body::Raw(raw) => match &outgoing.subject {
            Some(subject) => with_subject(raw, subject),
            None => raw.clone(),
        },
        Body::Parts {
            plain,
            html,
            headers,
            attachments,
        } => {
            let mut builder = MessageBuilder::new()
                .message_id(format!("{id}@{}", outgoing.from_domain()))
                .date(date.timestamp())
                .from(address(&outgoing.from))
                .to(addresses(&outgoing.to))
                .subject(outgoing.subject.clone().unwrap_or_default());
            if !outgoing.cc.is_empty() {
                builder = builder.cc(addresses(&outgoing.cc));
            }
            for (name, value) in headers {
                builder = builder.header(name.clone(), Text::new(value.clone()));
            }
            builder = builder.body(body_part(plain, html, attachments));
            let mut out = Vec::new();
            builder.serialize(&mut out);
            out
        }
    }
}

/// The body: the text parts as alternatives, inside `multipart/related` with the inline parts when there
/// are any, inside `multipart/mixed` with the files when there are any.
fn body_part(
    plain: &Option<String>,
    html: &Option<String>,
    attachments: &[Attachment],
) -> MimePart<'static> {
    let mut texts: Vec<MimePart<'static>> = Vec::new();
    if let Some(plain) = plain {
        texts.push(MimePart::new("text/plain", plain.clone()));
    }
    if let Some(html) = html {
        texts.push(MimePart::new("text/html", html.clone()));
    }
    let text = match texts.len() {
        1 => texts.remove(0),
        _ => MimePart::new("multipart/alternative", texts),
    };
    let (inline, files): (Vec<&Attachment>, Vec<&Attachment>) =
        attachments.iter().partition(|a| a.content_id.is_some());
    let related = if inline.is_empty() {
        text
    } else {
        let mut parts = vec![text];
        parts.extend(inline.into_iter().map(|a| {
            MimePart::new(a.content_type.clone(), a.content.clone())
                .cid(a.content_id.clone().unwrap_or_default())
                .header(
                    "Content-Disposition",
                    ContentType::new("inline").attribute("filename", a.file_name.clone()),
                )
        }));
        MimePart::new("multipart/related", parts)
    };
    if files.is_empty() {
        return related;
    }
    let mut parts = vec![related];
    parts.extend(files.into_iter().map(|a| {
        MimePart::new(a.content_type.clone(), a.content.clone()).attachment(a.file_name.clone())
    }));
    MimePart::new("multipart/mixed", parts)
}

/// `raw` with its Subject header (every line of it) replaced by `subject`, encoded where it must be.
pub fn with_subject(raw: &[u8], subject: &str) -> Vec<u8> {
    let head_end = memchr::memmem::find(raw, b"\r\n\r\n")
        .map(|i| i + 2)
        .or_else(|| memchr::memmem::find(raw, b"\n\n").map(|i| i + 1))
        .unwrap_or(raw.len());
    let mut out = Vec::with_capacity(raw.len() + subject.len() + 16);
    out.extend_from_slice(b"Subject: ");
    Text::new(subject).write_header(&mut out, "Subject: ".len());
    let mut skipping = false;
    for line in raw[..head_end].split_inclusive(|&b| b == b'\n') {
        let continues = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continues {
            skipping = line.len() >= 8 && line[..8].eq_ignore_ascii_case(b"subject:");
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(&raw[head_end..]);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::request::{check, parse};
    use super::*;
    use mail_parser::MimeHeaders;

    fn outgoing(json: serde_json::Value) -> Outgoing {
        check(parse(json.to_string().as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn a_built_message_parses_back_to_what_was_asked() {
        let out = outgoing(serde_json::json!({
            "from": "Café Shop <orders@shop.example>", "to": ["a@x.example", "Bé <b@y.example>"],
            "cc": "c@z.example", "subject": "Reçu n° 42", "plain": "Merci", "html": "<p>Merci <img src=\"cid:logo\"></p>",
            "headers": {"X-Order": "42"},
            "attachments": [
                {"file_name": "logo.png", "content": "iVBORw0KGgo=", "content_type": "image/png", "content_id": "logo"},
                {"file_name": "facture.pdf", "content": "JVBERi0xLjQK", "content_type": "application/pdf"}
            ]
        }));
        let date = "2026-12-03T10:00:00Z".parse().unwrap();
        let bytes = build(&out, "m1", date);
        let parsed = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        assert_eq!(parsed.subject(), Some("Reçu n° 42"));
        assert_eq!(parsed.message_id(), Some("m1@shop.example"));
        assert_eq!(parsed.date().unwrap().to_timestamp(), date.timestamp());
        let from = parsed.from().unwrap().first().unwrap();
        assert_eq!(from.name(), Some("Café Shop"));
        assert_eq!(from.address(), Some("orders@shop.example"));
        assert_eq!(parsed.to().unwrap().iter().count(), 2);
        assert_eq!(
            parsed.cc().unwrap().first().unwrap().address(),
            Some("c@z.example")
        );
        assert_eq!(parsed.header_raw("X-Order").map(str::trim), Some("42"));
        assert_eq!(parsed.body_text(0).as_deref(), Some("Merci"));
        assert!(parsed.body_html(0).unwrap().contains("cid:logo"));
        let files: Vec<_> = parsed
            .attachments()
            .map(|a| {
                (
                    a.attachment_name().map(str::to_owned),
                    a.content_id().map(str::to_owned),
                    a.contents().to_vec(),
                )
            })
            .collect();
        assert!(files.contains(&(
            Some("logo.png".to_owned()),
            Some("logo".to_owned()),
            b"\x89PNG\r\n\x1a\n".to_vec()
        )));
        assert!(files.contains(&(Some("facture.pdf".to_owned()), None, b"%PDF-1.4\n".to_vec())));
        assert!(
            std::str::from_utf8(&bytes)
                .unwrap()
                .contains("multipart/related")
        );
    }

    #[test]
    fn a_raw_message_keeps_its_bytes_but_takes_the_requests_subject() {
        let raw =
            "From: s@shop.example\r\nSubject: old\r\n  folded\r\nTo: a@x.example\r\n\r\nbody\r\n";
        let mut out = outgoing(
            serde_json::json!({"from": "s@shop.example", "to": "a@x.example", "raw": raw}),
        );
        assert_eq!(build(&out, "m", Utc::now()), raw.as_bytes());
        out.subject = Some("new".to_owned());
        assert_eq!(
            String::from_utf8(build(&out, "m", Utc::now())).unwrap(),
            "Subject: new\r\nFrom: s@shop.example\r\nTo: a@x.example\r\n\r\nbody\r\n"
        );
    }
}
