//! Parsing raw mail into Mailroom's own model.
//!
//! [`parse`] turns the bytes SES stored into an [`Email`]: the top-level headers in order, the chosen text
//! and HTML bodies decoded to UTF-8, and every other leaf part as an [`Attachment`]. It never panics and
//! never fails on malformed mail: what cannot be understood is kept as it is, and every limit that was hit
//! is named in [`Email::warnings`].

pub mod envelope;
mod headers;
pub mod html;
mod limits;
pub mod mailbox;
mod recover;
pub mod reply;
mod transfer;

use std::borrow::Cow;

use bytes::Bytes;
use mail_parser::{HeaderName, MessageParser, MessagePart, MimeHeaders, PartType};

pub use headers::decode_header_value;
pub use limits::MAX_HEADER_FIELDS_TOTAL;

/// Largest message accepted: SES takes 40 MB; its own trace headers and our slack come on top.
pub const MAX_MESSAGE_BYTES: usize = 48 * 1024 * 1024;
/// Deepest MIME nesting walked; parts below this depth are left out (and counted in a warning).
pub const MAX_MIME_DEPTH: usize = 50;
/// Most MIME parts (the root, containers and leaves) considered in one message.
pub const MAX_PARTS: usize = 2_000;
/// Most top-level header fields kept.
pub const MAX_HEADERS: usize = 2_000;
/// Longest header value kept, in bytes of the raw (undecoded) field; longer values are cut.
pub const MAX_HEADER_VALUE_BYTES: usize = 64 * 1024;

/// A message parsed into Mailroom's own model, owning its data.
#[derive(Debug, Clone)]
pub struct Email {
    raw: Bytes,
    /// Top-level header fields, top-most first, values unfolded and decoded to UTF-8 (RFC 2047).
    pub headers: Vec<Header>,
    /// The message's own text/plain body, decoded to UTF-8; absent for an HTML-only message.
    pub plain: Option<String>,
    /// The message's text/html body, decoded to UTF-8.
    pub html: Option<String>,
    /// Every leaf part that is neither the chosen plain nor the chosen HTML body.
    pub attachments: Vec<Attachment>,
    /// Limits hit and damage found while parsing; nothing is dropped without one.
    pub warnings: Vec<Warning>,
}

/// One header field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The field name: the standard spelling for registered names, as written for others.
    pub name: Cow<'static, str>,
    /// The value, unfolded and decoded to UTF-8.
    pub value: String,
}

/// Whether a part asks to be shown in the body or offered as a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Offered as a file.
    Attachment,
    /// Shown within the message, typically an image referenced by `cid:`.
    Inline,
}

impl Disposition {
    /// The word used in the POST formats.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Attachment => "attachment",
            Disposition::Inline => "inline",
        }
    }
}

/// A part delivered as a file.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The decoded file name (RFC 2231 or RFC 2047), if the part has one.
    pub file_name: Option<String>,
    /// `type/subtype`, lower-case.
    pub content_type: String,
    /// The `name` parameter of its `Content-Type`, decoded, when the part gives one (it may differ from
    /// the file name; SendGrid's format lists both).
    pub type_name: Option<String>,
    /// From `Content-Disposition`, or inline when absent and the part has a `Content-ID`.
    pub disposition: Disposition,
    /// The `Content-ID` without its angle brackets.
    pub content_id: Option<String>,
    /// The bytes after transfer decoding only: no charset conversion.
    pub content: Bytes,
}

/// Something the parser could not keep as it was, named so it is never silent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// A stable code, e.g. `max_headers`.
    pub code: &'static str,
    /// What happened, for people.
    pub message: String,
}

/// Why a message could not be parsed at all.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Bigger than [`MAX_MESSAGE_BYTES`].
    #[error("the message is {size} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Size of the raw message.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The MIME parser gave up on the message's structure.
    #[error("the MIME parser could not read the message's structure")]
    ParserFailed,
}

impl Email {
    /// The original bytes, untouched.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// Every value of the header `name` (case-insensitive), top-most first.
    pub fn header_values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// The top-most value of the header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// The subject, decoded.
    pub fn subject(&self) -> Option<&str> {
        self.header("subject")
    }

    /// The `Message-ID` without angle brackets.
    pub fn message_id(&self) -> Option<&str> {
        self.header("message-id")
            .map(|v| v.trim().trim_start_matches('<').trim_end_matches('>'))
            .filter(|v| !v.is_empty())
    }

    /// The new text of a reply: from `plain`, or from a text rendering of the HTML when there is none.
    pub fn reply_plain(&self) -> Option<Cow<'_, str>> {
        if let Some(plain) = &self.plain {
            return Some(Cow::Borrowed(reply::strip_reply(plain)));
        }
        let text = html::html_to_text(self.html.as_deref()?);
        let kept = reply::strip_reply(&text);
        if kept.len() == text.len() {
            return Some(Cow::Owned(text));
        }
        Some(Cow::Owned(kept.to_owned()))
    }
}

fn parser() -> MessageParser {
    // mail-parser finds the structure: it parses the MIME headers it needs for that and skips every other
    // value, which is decoded once, by us, from its raw bytes. It ignores Content-Transfer-Encoding, so it
    // decodes no part: `transfer` does, once per part.
    MessageParser::new()
        .with_mime_headers()
        .ignore_header(HeaderName::ContentTransferEncoding)
        .default_header_ignore()
}

/// Parses a raw message. Fails only when the input is over the size limit (or the MIME parser itself gives
/// up); a message without header fields is read as a body alone, with a warning.
pub fn parse(raw: impl Into<Bytes>) -> Result<Email, ParseError> {
    let raw: Bytes = raw.into();
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(ParseError::TooLarge {
            size: raw.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }
    let mut warnings = Vec::new();
    let (original, body_at) = header_start(&raw, &mut warnings);
    if body_at == Some(0)
        && !is_text(
            original
                .get(first_line(&original).len()..)
                .unwrap_or_default(),
        )
    {
        return Ok(headerless_file(raw, &original, warnings));
    }
    let bounded = limits::bound(original.clone());
    warnings.extend(bounded.warnings.iter().cloned());
    let source = bounded.source.clone();
    let (headers, bad_names) = top_level_headers(&original, &bounded.top_fields, &mut warnings);
    if headers.is_empty() && body_at.is_none() {
        // Empty, or only fields the limits left out: still delivered, with nothing to show.
        warnings.push(Warning {
            code: "no_headers",
            message: "the message has no header fields".to_owned(),
        });
    }
    let malformed = bounded.malformed_lines + bad_names;
    if malformed > 0 {
        warnings.push(Warning {
            code: "malformed_header_line",
            message: format!("{malformed} header line(s) without a valid field name were left out"),
        });
    }
    // mail-parser is not ours; should it ever panic on some input, that message is recorded as unparseable
    // (its raw bytes stay stored) instead of taking the whole batch down.
    let parsed =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parser().parse(&source[..])))
            .map_err(|_| ParseError::ParserFailed)?;
    let Some(message) = parsed else {
        // Header fields and nothing else, not even the blank line that ends them.
        return Ok(Email {
            raw,
            headers,
            plain: None,
            html: None,
            attachments: Vec::new(),
            warnings,
        });
    };
    let input = ParserInput {
        original: &original,
        bounded: &bounded,
        source: &source,
    };
    let contents = read_parts(message, &input, &mut warnings);
    keep_first_of_each_code(&mut warnings);
    Ok(Email {
        raw,
        headers,
        plain: contents.plain,
        html: contents.html,
        attachments: contents.attachments,
        warnings,
    })
}

/// The message from where its header fields start (past leading blank lines and an mbox `From ` line),
/// with a blank line put where the header block runs into the text without one; and where that text
/// starts, if it does.
fn header_start(raw: &Bytes, warnings: &mut Vec<Warning>) -> (Bytes, Option<usize>) {
    // Some senders put blank lines before the headers; read past them rather than lose every header.
    let blank = leading_blank_lines(raw);
    if blank > 0 {
        warnings.push(Warning {
            code: "leading_blank_lines",
            message: format!("{blank} blank byte(s) before the first header were skipped"),
        });
    }
    // An mbox file's `From sender date` separator line is not a header field.
    let mbox_line = mbox_from_line(raw.get(blank..).unwrap_or_default());
    let skipped = blank + mbox_line;
    let original = raw.slice(skipped..);
    // Where the header block runs into lines that are not header fields, and no field follows them, the
    // sender's text starts there (as Python's `email` reads it): a blank line is put in front of it for the
    // parsers, and the original stays untouched in `raw`.
    let body_at = body_without_separator(&original);
    let Some(at) = body_at else {
        return (original, None);
    };
    let separated = with_separator_at(&original, at);
    warnings.push(if at == 0 {
        Warning {
            code: "no_headers",
            message: "the message has no header fields; all of it is read as the body".to_owned(),
        }
    } else {
        Warning {
            code: "missing_header_separator",
            message: "the header fields run into the text without a blank line; the body starts at the first line that is not a header field".to_owned(),
        }
    });
    (separated, body_at)
}

/// `original` with a line break inserted at `at`, of the kind its lines end with.
fn with_separator_at(original: &[u8], at: usize) -> Bytes {
    let line_break: &[u8] = if at == 0 {
        if first_line(original).ends_with(b"\r\n") {
            b"\r\n"
        } else {
            b"\n"
        }
    } else if original.get(..at).is_some_and(|h| h.ends_with(b"\r\n")) {
        b"\r\n"
    } else {
        b"\n"
    };
    let mut separated = Vec::with_capacity(original.len() + line_break.len());
    separated.extend_from_slice(original.get(..at).unwrap_or_default());
    separated.extend_from_slice(line_break);
    separated.extend_from_slice(original.get(at..).unwrap_or_default());
    Bytes::from(separated)
}

/// A message with no header fields whose content is not text.
fn headerless_file(raw: Bytes, original: &Bytes, warnings: Vec<Warning>) -> Email {
    // Without headers nothing says what binary content is: it is passed on as one file.
    let content = original.slice(first_line(original).len()..);
    Email {
        raw,
        headers: Vec::new(),
        plain: None,
        html: None,
        attachments: vec![Attachment {
            file_name: None,
            content_type: "application/octet-stream".to_owned(),
            type_name: None,
            disposition: Disposition::Attachment,
            content_id: None,
            content,
        }],
        warnings,
    }
}

/// What the MIME parser was given, and what it came from.
struct ParserInput<'a> {
    /// The message from its first header field, where part contents are read.
    original: &'a Bytes,
    /// How the parser's input maps back to `original`.
    bounded: &'a limits::Bounded,
    /// The parser's input.
    source: &'a Bytes,
}

/// The chosen bodies and the attachments of a message.
struct Contents {
    plain: Option<String>,
    html: Option<String>,
    attachments: Vec<Attachment>,
}

/// Parts whose content could not be delivered as declared, named in warnings.
#[derive(Default)]
struct PartTrouble {
    /// Content types of parts with a broken transfer encoding.
    damaged: Vec<String>,
    /// Transfer encodings RFC 2045 does not define.
    unknown_encodings: Vec<String>,
    /// Multiparts whose boundary never occurs.
    empty_multiparts: usize,
}

/// Decodes every reachable leaf part into a body or an attachment.
fn read_parts(
    message: mail_parser::Message<'_>,
    input: &ParserInput<'_>,
    warnings: &mut Vec<Warning>,
) -> Contents {
    let reachable = reachable_parts(&message.parts, warnings);

    let plain = choose_body(&message.text_body, &message.parts, &reachable, false);
    let html = choose_body(&message.html_body, &message.parts, &reachable, true);

    let mut contents = Contents {
        plain: None,
        html: None,
        attachments: Vec::new(),
    };
    let mut trouble = PartTrouble::default();
    // Parts are consumed so that buffers mail-parser decoded move into the model without a copy.
    for (index, part) in message.parts.into_iter().enumerate() {
        if !reachable.get(index).copied().unwrap_or(false) {
            if let PartType::Message(nested) = part.body {
                dismantle(nested);
            }
            continue;
        }
        if matches!(part.body, PartType::Multipart(_)) {
            continue;
        }
        // Content is read from the original, where the parser may have seen a skipped body or a marker.
        let range = input
            .bounded
            .original_range(part.offset_body as usize, part.offset_end as usize);
        let body = input.original.get(range).unwrap_or_default();
        // A delimiter with nothing after it leaves a part with no headers and no bytes: nothing to deliver.
        if part.headers.is_empty() && body.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let content_type = content_type_of(&part);
        if content_type.starts_with("multipart/") {
            // A multipart whose boundary never occurs has no parts; its bytes are kept unless blank.
            trouble.empty_multiparts += 1;
            if body.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
        }
        let declared = raw_transfer_encoding(input.source, &part);
        let (decoded, damage) = transfer::decode(declared.as_deref(), body);
        trouble.note(damage, part.is_encoding_problem, &content_type);
        if Some(index) == plain || Some(index) == html {
            let text = recover::decode_text(&part, &decoded);
            if Some(index) == plain {
                contents.plain = Some(text);
            } else {
                contents.html = Some(text);
            }
            if let PartType::Message(nested) = part.body {
                dismantle(nested);
            }
        } else {
            let content = match decoded {
                Cow::Borrowed(slice) => share(input.original, slice),
                Cow::Owned(bytes) => Bytes::from(bytes),
            };
            let attachment = attachment(input.source, part, content_type, content);
            contents.attachments.push(attachment);
        }
    }
    trouble.warn(warnings);
    contents
}

impl PartTrouble {
    /// Notes what decoding a part of `content_type` found, and whether mail-parser saw an encoding problem.
    fn note(&mut self, damage: transfer::Damage, encoding_problem: bool, content_type: &str) {
        match damage {
            transfer::Damage::None if !encoding_problem => {}
            transfer::Damage::Unknown(encoding) => self.unknown_encodings.push(encoding),
            _ => self.damaged.push(content_type.to_owned()),
        }
    }

    /// One warning for each kind of trouble there was.
    fn warn(self, warnings: &mut Vec<Warning>) {
        if !self.damaged.is_empty() {
            warnings.push(Warning {
                code: "damaged_part",
                message: format!(
                    "{} part(s) were damaged (bad transfer encoding or a missing MIME boundary) and are passed on as recovered ({})",
                    self.damaged.len(),
                    self.damaged.join(", ")
                ),
            });
        }
        if !self.unknown_encodings.is_empty() {
            warnings.push(Warning {
                code: "unknown_transfer_encoding",
                message: format!(
                    "{} part(s) declare a transfer encoding RFC 2045 does not define ({}) and are passed on undecoded",
                    self.unknown_encodings.len(),
                    self.unknown_encodings.join(", ")
                ),
            });
        }
        if self.empty_multiparts > 0 {
            warnings.push(Warning {
                code: "multipart_without_parts",
                message: format!(
                    "{} multipart part(s) never use their boundary; blank ones were left out, others kept as they are",
                    self.empty_multiparts
                ),
            });
        }
    }
}

/// Drops every warning whose code an earlier one has.
fn keep_first_of_each_code(warnings: &mut Vec<Warning>) {
    // Two checks can meet the same limit; one warning per limit is enough.
    let mut seen_codes = Vec::new();
    warnings.retain(|w| {
        let first = !seen_codes.contains(&w.code);
        seen_codes.push(w.code);
        first
    });
}

/// Length of a leading mbox `From ` separator line (`From sender@example.com Sun May  8 19:07:09 2005`).
fn mbox_from_line(raw: &[u8]) -> usize {
    if !raw.starts_with(b"From ") {
        return 0;
    }
    let end = memchr::memchr(b'\n', raw).map_or(raw.len(), |i| i + 1);
    let line = raw.get(..end).unwrap_or_default();
    // A header field `From: …` (or the obsolete `From : …`) has a colon after the name and blanks; the
    // separator has the sender's address there.
    let after_name = line.get(4..).unwrap_or_default();
    if after_name.iter().find(|c| **c != b' ' && **c != b'\t') == Some(&b':') {
        return 0;
    }
    end
}

/// Where the body starts when the header block has no blank line after it: the first line that is neither a
/// header field nor the continuation of one, provided no header field follows it before the first blank
/// line; the very first line when it is not a field. `None` when the block ends properly, or when a field
/// follows (a lone malformed line among real fields is left out by the parser instead, with its warning).
fn body_without_separator(raw: &[u8]) -> Option<usize> {
    let mut at = 0usize;
    let mut first_text = None;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content.is_empty() {
            break;
        }
        let continuation = matches!(content.first(), Some(b' ' | b'\t'));
        if continuation {
            // Folded onto the field above; with none above, a malformed line the parser leaves out (as
            // Python's `email` ignores it), not the start of the text.
        } else if is_field_line(content) {
            if first_text.is_some() {
                return None;
            }
        } else if at == 0 {
            // No field above it: whatever follows, this is text (Python's `email` reads it so too).
            return Some(0);
        } else {
            first_text.get_or_insert(at);
        }
        at += line.len();
    }
    first_text
}

/// Whether a line starts a header field: a valid field name, then a colon.
fn is_field_line(line: &[u8]) -> bool {
    memchr::memchr(b':', line)
        .and_then(|colon| line.get(..=colon))
        .is_some_and(valid_field_name)
}

/// The first line, with its line break.
fn first_line(raw: &[u8]) -> &[u8] {
    let end = memchr::memchr(b'\n', raw).map_or(raw.len(), |i| i + 1);
    raw.get(..end).unwrap_or_default()
}

/// Whether bytes without any header can be read as text: UTF-8 with no NUL.
fn is_text(bytes: &[u8]) -> bool {
    memchr::memchr(0, bytes).is_none() && std::str::from_utf8(bytes).is_ok()
}

/// Bytes of whitespace-only lines at the very start.
fn leading_blank_lines(raw: &[u8]) -> usize {
    let mut end = 0;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        if !line.ends_with(b"\n") || !line.iter().all(u8::is_ascii_whitespace) {
            break;
        }
        end += line.len();
    }
    end
}

/// The top-level header fields, decoded, and how many were left out for lacking a valid field name.
fn top_level_headers(
    raw: &[u8],
    fields: &[std::ops::Range<usize>],
    warnings: &mut Vec<Warning>,
) -> (Vec<Header>, usize) {
    let mut truncated = 0usize;
    let mut bad_names = 0usize;
    let mut headers = Vec::with_capacity(fields.len());
    for field in fields {
        let text = raw.get(field.clone()).unwrap_or_default();
        let Some(colon) = memchr::memchr(b':', text) else {
            bad_names += 1;
            continue;
        };
        let (name, value) = text.split_at(colon + 1);
        if !valid_field_name(name) {
            bad_names += 1;
            continue;
        }
        let mut value = value;
        if value.len() > MAX_HEADER_VALUE_BYTES {
            truncated += 1;
            value = value.get(..MAX_HEADER_VALUE_BYTES).unwrap_or_default();
        }
        headers.push(Header {
            name: headers::field_name(name),
            value: decode_header_value(value),
        });
    }
    if truncated > 0 {
        warnings.push(Warning {
            code: "max_header_value_bytes",
            message: format!(
                "{truncated} header value(s) longer than {MAX_HEADER_VALUE_BYTES} bytes were cut to that length"
            ),
        });
    }
    (headers, bad_names)
}

/// `name:` as RFC 5322 allows it: printable ASCII without spaces or colons, then the colon (obsolete syntax
/// allows blanks before it). A continuation line that lost its indentation, or `:cc:`, fails.
fn valid_field_name(field: &[u8]) -> bool {
    let Some(name) = field.strip_suffix(b":") else {
        return false;
    };
    let name = name
        .iter()
        .rposition(|c| *c != b' ' && *c != b'\t')
        .and_then(|end| name.get(..=end))
        .unwrap_or_default();
    !name.is_empty() && name.iter().all(|c| (33..=126).contains(c) && *c != b':')
}

/// Marks the parts within the depth and count limits, walking the MIME tree from the root without recursion.
fn reachable_parts(parts: &[MessagePart<'_>], warnings: &mut Vec<Warning>) -> Vec<bool> {
    let mut reachable = vec![false; parts.len()];
    let mut too_deep = 0usize;
    let mut over_count = 0usize;
    let mut seen = 0usize;
    let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
    while let Some((index, depth)) = stack.pop() {
        let Some(slot) = reachable.get_mut(index) else {
            continue;
        };
        if *slot {
            continue;
        }
        if depth > MAX_MIME_DEPTH {
            too_deep += 1 + descendants(parts, index);
            continue;
        }
        if seen >= MAX_PARTS {
            over_count += 1;
            continue;
        }
        seen += 1;
        *slot = true;
        if let Some(PartType::Multipart(children)) = parts.get(index).map(|p| &p.body) {
            // Reversed so that popping visits children in document order.
            stack.extend(children.iter().rev().map(|&c| (c as usize, depth + 1)));
        }
    }
    if too_deep > 0 {
        warnings.push(Warning {
            code: "max_mime_depth",
            message: format!(
                "{too_deep} MIME part(s) nested deeper than {MAX_MIME_DEPTH} levels were left out"
            ),
        });
    }
    if over_count > 0 {
        warnings.push(Warning {
            code: "max_parts",
            message: format!(
                "the message has {} MIME parts; only the first {MAX_PARTS} are kept",
                seen + over_count
            ),
        });
    }
    reachable
}

/// Counts the parts below `index` without recursion.
fn descendants(parts: &[MessagePart<'_>], index: usize) -> usize {
    let mut count = 0usize;
    let mut stack = vec![index];
    while let Some(i) = stack.pop() {
        if let Some(PartType::Multipart(children)) = parts.get(i).map(|p| &p.body) {
            count += children.len();
            stack.extend(children.iter().map(|&c| c as usize));
        }
    }
    count
}

/// The first candidate of mail-parser's body list that is really of the wanted kind: mail-parser lists an
/// HTML part as the text body of an HTML-only message (and the reverse), which we must not repeat.
fn choose_body(
    candidates: &[u32],
    parts: &[MessagePart<'_>],
    reachable: &[bool],
    want_html: bool,
) -> Option<usize> {
    candidates.iter().map(|&i| i as usize).find(|&i| {
        reachable.get(i).copied().unwrap_or(false)
            && match parts.get(i).map(|p| &p.body) {
                Some(PartType::Html(_)) => want_html,
                Some(PartType::Text(_)) => {
                    !want_html
                        && parts.get(i).is_some_and(|p| {
                            p.content_type().is_none_or(|ct| {
                                ct.ctype().eq_ignore_ascii_case("text")
                                    && ct.subtype().is_none_or(|s| s.eq_ignore_ascii_case("plain"))
                            })
                        })
                }
                _ => false,
            }
    })
}

/// Drops nested messages level by level: dropped recursively, a few thousand levels would exhaust the stack.
fn dismantle(message: mail_parser::Message<'_>) {
    let mut pending = vec![message];
    while let Some(mut message) = pending.pop() {
        for part in &mut message.parts {
            if let PartType::Message(inner) = std::mem::take(&mut part.body) {
                pending.push(inner);
            }
        }
    }
}

/// The `Content-Transfer-Encoding` of a part, lower-case, read from the raw header (mail-parser is told to
/// ignore it, so that it only finds the parts and this module decodes each once).
fn raw_transfer_encoding(source: &[u8], part: &MessagePart<'_>) -> Option<String> {
    let header = part
        .headers
        .iter()
        .find(|h| h.name == HeaderName::ContentTransferEncoding)?;
    let value = source.get(header.offset_start as usize..header.offset_end as usize)?;
    let value = decode_header_value(value).trim().to_ascii_lowercase();
    Some(value)
}

/// An attachment: the part's metadata and its decoded content.
fn attachment(
    source: &Bytes,
    part: MessagePart<'_>,
    content_type: String,
    content: Bytes,
) -> Attachment {
    let file_name = part
        .attachment_name()
        .map(str::to_owned)
        .filter(|n| !n.is_empty())
        .or_else(|| recover::raw_file_name(source, &part));
    let content_id = part
        .content_id()
        .map(|id| {
            id.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
        .filter(|id| !id.is_empty());
    let disposition = match part.content_disposition() {
        Some(d) if d.ctype().eq_ignore_ascii_case("inline") => Disposition::Inline,
        Some(_) => Disposition::Attachment,
        None if content_id.is_some() => Disposition::Inline,
        None => Disposition::Attachment,
    };
    let type_name = part
        .content_type()
        .and_then(|ct| ct.attribute("name"))
        .map(str::to_owned)
        .filter(|n| !n.is_empty());
    if let PartType::Message(nested) = part.body {
        dismantle(nested);
    }
    Attachment {
        file_name,
        content_type,
        type_name,
        disposition,
        content_id,
        content,
    }
}

fn content_type_of(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match (token(ct.ctype()), ct.subtype()) {
            (kind, _) if kind.is_empty() => "application/octet-stream".to_owned(),
            (kind, Some(limits::OPAQUE_RFC822)) if kind == "message" => "message/rfc822".to_owned(),
            (kind, Some(limits::OPAQUE_GLOBAL)) if kind == "message" => "message/global".to_owned(),
            (kind, Some(sub)) if !token(sub).is_empty() => format!("{kind}/{}", token(sub)),
            (kind, _) => kind,
        },
        None if matches!(part.body, PartType::Message(_)) => "message/rfc822".to_owned(),
        None => "text/plain".to_owned(),
    }
}

/// The leading RFC 2045 token of a type or subtype, lower-case: a malformed header such as
/// `application/pdf name="x.pdf"` (no `;`) must not leak its parameters into the type.
fn token(text: &str) -> String {
    text.trim()
        .chars()
        .take_while(|c| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?= ".contains(*c))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// `slice`, a part of `buffer`, shared rather than copied.
fn share(buffer: &Bytes, slice: &[u8]) -> Bytes {
    let base = buffer.as_ptr() as usize;
    let start = slice.as_ptr() as usize;
    if start >= base && start + slice.len() <= base + buffer.len() {
        return buffer.slice(start - base..start - base + slice.len());
    }
    Bytes::copy_from_slice(slice)
}
