//! Postmark's inbound webhook JSON: top-level fields in the order of Postmark's published example, the
//! address fields both as written and split (`…Full`), attachments base64-encoded, streamed.

use std::io::{self, BufWriter, Write};

use super::json::{write_base64, write_str};
use super::{one_line, spam_flag};
use crate::mail::Email;
use crate::mail::envelope::{Envelope, is_address, mailbox_hash};
use crate::mail::mailbox::{Mailbox, mailboxes_in};

/// Headers Postmark gives top-level fields of their own (or none: the bodies are separate fields) and
/// leaves out of `Headers`, as its real payloads do.
const OWN_FIELDS: [&str; 8] = [
    "From",
    "To",
    "Cc",
    "Bcc",
    "Reply-To",
    "Subject",
    "Date",
    "Content-Type",
];

pub(super) fn write<W: Write>(
    email: &Email,
    envelope: &Envelope,
    with_raw: bool,
    out: W,
) -> io::Result<()> {
    let mut w = BufWriter::with_capacity(64 * 1024, out);
    let header = |name: &str| email.header(name).unwrap_or_default();
    // A From without an address gives an empty Email, as a missing From does.
    let from = mailboxes_in(header("From"))
        .into_iter()
        .next()
        .map(|mut m| {
            if !listable(&m.address) {
                m.address.clear();
            }
            m
        })
        .unwrap_or_default();

    w.write_all(b"{\"FromName\":")?;
    write_str(&mut w, &from.name)?;
    w.write_all(b",\"MessageStream\":\"inbound\",\"From\":")?;
    write_str(&mut w, &from.address)?;
    w.write_all(b",\"FromFull\":")?;
    write_mailbox(&mut w, &from)?;
    let to = addressed(header("To"));
    let cc = addressed(header("Cc"));
    let (bcc_text, bcc) = bcc(email, envelope, &to, &cc);
    for (name, text, mailboxes) in [
        ("To", header("To"), &to),
        ("Cc", header("Cc"), &cc),
        ("Bcc", bcc_text.as_str(), &bcc),
    ] {
        write!(w, ",\"{name}\":")?;
        write_str(&mut w, &one_line(text))?;
        write!(w, ",\"{name}Full\":[")?;
        for (i, mailbox) in mailboxes.iter().enumerate() {
            if i > 0 {
                w.write_all(b",")?;
            }
            write_mailbox(&mut w, mailbox)?;
        }
        w.write_all(b"]")?;
    }
    for (key, value) in [
        ("OriginalRecipient", envelope.to.as_str()),
        ("Subject", &one_line(header("Subject"))),
        (
            "MessageID",
            envelope.ses_message_id.as_deref().unwrap_or(""),
        ),
        ("ReplyTo", &one_line(header("Reply-To"))),
        (
            "MailboxHash",
            envelope.mailbox_hash.as_deref().unwrap_or(""),
        ),
        ("Date", &one_line(header("Date"))),
        ("TextBody", email.plain.as_deref().unwrap_or("")),
        ("HtmlBody", email.html.as_deref().unwrap_or("")),
        (
            "StrippedTextReply",
            email.reply_plain().as_deref().unwrap_or(""),
        ),
        ("Tag", ""),
    ] {
        write!(w, ",\"{key}\":")?;
        write_str(&mut w, value)?;
    }
    write_headers(&mut w, email, envelope)?;
    write_attachments(&mut w, email)?;
    if with_raw {
        w.write_all(b",\"RawEmail\":")?;
        write_str(&mut w, &String::from_utf8_lossy(email.raw()))?;
    }
    w.write_all(b"}")?;
    w.flush()
}

/// The message's `Bcc` header when it has one; otherwise, as Postmark does, the delivery's recipient when
/// neither `To` nor `Cc` names it (the message reached it as a blind copy).
fn bcc(
    email: &Email,
    envelope: &Envelope,
    to: &[Mailbox],
    cc: &[Mailbox],
) -> (String, Vec<Mailbox>) {
    if let Some(header) = email.header("Bcc") {
        return (header.to_owned(), addressed(header));
    }
    let named = to
        .iter()
        .chain(cc)
        .any(|m| m.address.eq_ignore_ascii_case(&envelope.to));
    if !listable(&envelope.to) || named {
        return (String::new(), Vec::new());
    }
    let blind = Mailbox {
        name: String::new(),
        address: envelope.to.clone(),
    };
    (envelope.to.clone(), vec![blind])
}

/// The mailboxes of a list that have an address: a name alone (or a word that is no address) is nobody
/// to list.
fn addressed(value: &str) -> Vec<Mailbox> {
    mailboxes_in(value)
        .into_iter()
        .filter(|m| listable(&m.address))
        .collect()
}

/// An address with one `@` and nothing an address cannot hold.
fn listable(address: &str) -> bool {
    is_address(address) && address.matches('@').count() == 1
}

/// `{"Email", "Name", "MailboxHash"}`.
fn write_mailbox<W: Write>(w: &mut W, mailbox: &Mailbox) -> io::Result<()> {
    w.write_all(b"{\"Email\":")?;
    write_str(w, &mailbox.address)?;
    w.write_all(b",\"Name\":")?;
    write_str(w, &mailbox.name)?;
    w.write_all(b",\"MailboxHash\":")?;
    write_str(w, mailbox_hash(&mailbox.address).unwrap_or(""))?;
    w.write_all(b"}")
}

/// Every header but those with fields of their own, in order, as `{"Name", "Value"}`; then Postmark's
/// spam flag, from SES's spam verdict, when the message has none of its own.
fn write_headers<W: Write>(w: &mut W, email: &Email, envelope: &Envelope) -> io::Result<()> {
    w.write_all(b",\"Headers\":[")?;
    let mut first = true;
    let mut pair = |w: &mut W, name: &str, value: &str| -> io::Result<()> {
        if !std::mem::take(&mut first) {
            w.write_all(b",")?;
        }
        w.write_all(b"{\"Name\":")?;
        write_str(w, name)?;
        w.write_all(b",\"Value\":")?;
        write_str(w, value)?;
        w.write_all(b"}")
    };
    for header in &email.headers {
        if OWN_FIELDS
            .iter()
            .any(|own| own.eq_ignore_ascii_case(&header.name))
        {
            continue;
        }
        pair(w, &header.name, &one_line(&header.value))?;
    }
    if email.header("X-Spam-Status").is_none()
        && let Some(flag) = spam_flag(envelope)
    {
        pair(w, "X-Spam-Status", flag)?;
    }
    w.write_all(b"]")
}

fn write_attachments<W: Write>(w: &mut W, email: &Email) -> io::Result<()> {
    w.write_all(b",\"Attachments\":[")?;
    for (i, attachment) in email.attachments.iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        w.write_all(b"{\"Name\":")?;
        write_str(w, attachment.file_name.as_deref().unwrap_or(""))?;
        w.write_all(b",\"Content\":\"")?;
        write_base64(w, &attachment.content)?;
        w.write_all(b"\",\"ContentType\":")?;
        write_str(w, &attachment.content_type)?;
        write!(w, ",\"ContentLength\":{}", attachment.content.len())?;
        // Postmark's example has no `ContentID` for a part without one; real payloads give it for inline
        // parts, without angle brackets.
        if let Some(id) = &attachment.content_id {
            w.write_all(b",\"ContentID\":")?;
            write_str(w, id)?;
        }
        w.write_all(b"}")?;
    }
    w.write_all(b"]")
}
