//! The body of `POST /api/v0.1/{account}/messages` as CloudMailin's outbound API defines it: a message to
//! build (`plain`, `html`, `attachments`, `headers`, …) or a raw one (`raw`), read and checked into a
//! [`Outgoing`] before anything is built, stored or sent.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::mail::envelope::{is_address, normalise_address};

/// Most recipients (to and cc together) one message may have: SES's limit per `SendEmail`.
pub const MAX_RECIPIENTS: usize = 50;

/// Most tags one message may carry.
pub const MAX_TAGS: usize = 20;

/// Longest tag, in bytes.
pub const MAX_TAG_BYTES: usize = 64;

/// Headers the builder writes itself; a request may not set them through `headers`.
const RESERVED_HEADERS: [&str; 9] = [
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
];

/// One address or a list of them, as the API accepts both.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum OneOrMany {
    /// `"a@example.com"`.
    One(String),
    /// `["a@example.com", "b@example.com"]`.
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

/// A header value: CloudMailin takes a string; a list repeats the header.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum HeaderValues {
    /// One value.
    One(String),
    /// The header repeated, once per value.
    Many(Vec<String>),
}

/// One attachment of a message body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentRequest {
    /// Its file name.
    pub file_name: Option<String>,
    /// Its bytes, standard base64.
    pub content: Option<String>,
    /// Its MIME type.
    pub content_type: Option<String>,
    /// Makes it an inline part the HTML refers to as `cid:<content_id>`.
    pub content_id: Option<String>,
}

/// Which of SES's events a message is tracked with.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub enum TrackingRequest {
    /// `true` or `false`: opens and clicks alike.
    Both(bool),
    /// `{"opens": false, "clicks": true}`.
    Kinds {
        /// Open tracking (the pixel).
        #[serde(default = "yes")]
        opens: bool,
        /// Click tracking (rewritten links).
        #[serde(default = "yes")]
        clicks: bool,
    },
}

fn yes() -> bool {
    true
}

/// The JSON body of a send request, both shapes in one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// The sender: `a@example.com` or `Name <a@example.com>`.
    pub from: Option<String>,
    /// The recipients.
    pub to: Option<OneOrMany>,
    /// The copied recipients.
    pub cc: Option<OneOrMany>,
    /// The subject; for a raw message it replaces the raw one's.
    pub subject: Option<String>,
    /// The plain-text body.
    pub plain: Option<String>,
    /// The HTML body.
    pub html: Option<String>,
    /// More headers.
    pub headers: Option<BTreeMap<String, HeaderValues>>,
    /// Files.
    pub attachments: Option<Vec<AttachmentRequest>>,
    /// Labels for the log.
    pub tags: Option<OneOrMany>,
    /// `standard`, `priority` or `digest`.
    pub priority: Option<String>,
    /// Validate, store and record, but send nothing.
    pub test_mode: Option<bool>,
    /// A whole RFC 5322 message, instead of `plain`/`html`.
    pub raw: Option<String>,
    /// Open and click tracking (Mailroom's addition; on unless the key or this says otherwise).
    pub tracking: Option<TrackingRequest>,
    /// CloudMailin answers with the message's `id`; a client that sends it back is not refused for it.
    pub id: Option<String>,
}

/// A checked attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Its file name.
    pub file_name: String,
    /// Its MIME type.
    pub content_type: String,
    /// Its bytes.
    pub content: Vec<u8>,
    /// The `cid:` it is referred to by, for inline parts.
    pub content_id: Option<String>,
}

/// What is sent: a body to build or raw bytes to send as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Built by [`super::build`].
    Parts {
        /// The plain-text part.
        plain: Option<String>,
        /// The HTML part.
        html: Option<String>,
        /// Extra headers, in order.
        headers: Vec<(String, String)>,
        /// Files, inline ones included.
        attachments: Vec<Attachment>,
    },
    /// The request's own message.
    Raw(Vec<u8>),
}

/// A send request that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The `From:` as given (it may carry a name).
    pub from: String,
    /// The sending address alone, lower-case.
    pub from_address: String,
    /// The recipients.
    pub to: Vec<String>,
    /// The copied recipients.
    pub cc: Vec<String>,
    /// The subject.
    pub subject: Option<String>,
    /// Labels.
    pub tags: Vec<String>,
    /// `standard`, `priority` or `digest`.
    pub priority: String,
    /// Nothing is sent.
    pub test_mode: bool,
    /// Open tracking wanted by the request.
    pub track_opens: bool,
    /// Click tracking wanted by the request.
    pub track_clicks: bool,
    /// The content.
    pub body: Body,
}

impl Outgoing {
    /// Every recipient once, To first, each address alone.
    pub fn recipients(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        for address in self.to.iter().chain(&self.cc).filter_map(|a| address_of(a)) {
            if !all.contains(&address) {
                all.push(address);
            }
        }
        all
    }

    /// The domain of the sending address.
    pub fn from_domain(&self) -> &str {
        self.from_address
            .rsplit_once('@')
            .map_or("", |(_, domain)| domain)
    }
}

/// Why a request is refused with 422: what CloudMailin calls an unprocessable entity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid(text: impl Into<String>) -> Invalid {
    Invalid(text.into())
}

/// The address inside `Name <a@b>` or `a@b`, lower-case; `None` when there is none.
pub fn address_of(text: &str) -> Option<String> {
    let text = text.trim();
    let inner = match (text.rfind('<'), text.rfind('>')) {
        (Some(open), Some(close)) if open < close && close == text.len() - 1 => {
            &text[open + 1..close]
        }
        (None, None) => text,
        _ => return None,
    };
    let inner = inner.trim();
    (is_address(inner) && inner.len() <= 320 && inner.is_ascii()).then(|| normalise_address(inner))
}

/// Reads the JSON body.
pub fn parse(body: &[u8]) -> Result<SendRequest, Invalid> {
    serde_json::from_slice(body).map_err(|e| invalid(format!("the body is not a message: {e}")))
}

/// Checks a request and turns it into what is sent.
pub fn check(request: SendRequest) -> Result<Outgoing, Invalid> {
    let from = request
        .from
        .filter(|f| !f.trim().is_empty())
        .ok_or_else(|| invalid("`from` is required"))?;
    let from_address =
        address_of(&from).ok_or_else(|| invalid(format!("`from` is not an address: {from}")))?;
    let to = addresses("to", request.to)?;
    if to.is_empty() {
        return Err(invalid("`to` needs at least one address"));
    }
    let cc = addresses("cc", request.cc)?;
    if to.len() + cc.len() > MAX_RECIPIENTS {
        return Err(invalid(format!(
            "at most {MAX_RECIPIENTS} recipients (to and cc together) per message"
        )));
    }
    let tags = tags(request.tags)?;
    let priority = request.priority.unwrap_or_else(|| "standard".to_owned());
    if !["standard", "priority", "digest"].contains(&priority.as_str()) {
        return Err(invalid(format!(
            "`priority` is `standard`, `priority` or `digest`, not `{priority}`"
        )));
    }
    let (track_opens, track_clicks) = match request.tracking {
        None => (true, true),
        Some(TrackingRequest::Both(on)) => (on, on),
        Some(TrackingRequest::Kinds { opens, clicks }) => (opens, clicks),
    };
    if let Some(subject) = &request.subject
        && subject.contains(['\r', '\n'])
    {
        return Err(invalid("`subject` may not contain a line break"));
    }
    let body = match request.raw {
        Some(raw) => {
            if request.plain.is_some()
                || request.html.is_some()
                || request.attachments.is_some()
                || request.headers.is_some()
            {
                return Err(invalid(
                    "a raw message has no `plain`, `html`, `headers` or `attachments`: put them in `raw`",
                ));
            }
            raw_body(raw, &from_address)?
        }
        None => parts_body(
            request.plain,
            request.html,
            request.headers,
            request.attachments,
        )?,
    };
    Ok(Outgoing {
        from,
        from_address,
        to,
        cc,
        subject: request.subject,
        tags,
        priority,
        test_mode: request.test_mode.unwrap_or(false),
        track_opens,
        track_clicks,
        body,
    })
}

fn addresses(field: &str, value: Option<OneOrMany>) -> Result<Vec<String>, Invalid> {
    let list = value.map(OneOrMany::into_vec).unwrap_or_default();
    let mut out = Vec::with_capacity(list.len());
    for entry in list {
        // A comma-separated string is several addresses, as in a header.
        for one in entry.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if one.contains(['\r', '\n']) || address_of(one).is_none() {
                return Err(invalid(format!(
                    "`{field}` has something that is not an address: {one}"
                )));
            }
            out.push(one.to_owned());
        }
    }
    Ok(out)
}

fn tags(value: Option<OneOrMany>) -> Result<Vec<String>, Invalid> {
    let mut out: Vec<String> = Vec::new();
    for tag in value.map(OneOrMany::into_vec).unwrap_or_default() {
        let tag = tag.trim().to_owned();
        if tag.is_empty() {
            continue;
        }
        if tag.len() > MAX_TAG_BYTES || tag.chars().any(char::is_control) {
            return Err(invalid(format!(
                "a tag is at most {MAX_TAG_BYTES} bytes of printable text"
            )));
        }
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    if out.len() > MAX_TAGS {
        return Err(invalid(format!("at most {MAX_TAGS} tags per message")));
    }
    Ok(out)
}

fn raw_body(raw: String, from_address: &str) -> Result<Body, Invalid> {
    let bytes = raw.into_bytes();
    let Some(end) =
        memchr::memmem::find(&bytes, b"\r\n\r\n").or_else(|| memchr::memmem::find(&bytes, b"\n\n"))
    else {
        return Err(invalid(
            "`raw` has no blank line between its headers and its body",
        ));
    };
    let head = String::from_utf8_lossy(&bytes[..end]);
    let unfolded = head
        .replace("\r\n", "\n")
        .replace("\n ", " ")
        .replace("\n\t", " ");
    let header = |name: &str| {
        unfolded.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let raw_from = header("from").ok_or_else(|| invalid("`raw` has no From header"))?;
    if address_of(&raw_from).as_deref() != Some(from_address) {
        return Err(invalid(
            "the From header of `raw` is not the `from` of the request",
        ));
    }
    if header("to").is_none() {
        return Err(invalid("`raw` has no To header"));
    }
    Ok(Body::Raw(bytes))
}

fn parts_body(
    plain: Option<String>,
    html: Option<String>,
    headers: Option<BTreeMap<String, HeaderValues>>,
    attachments: Option<Vec<AttachmentRequest>>,
) -> Result<Body, Invalid> {
    if plain.as_deref().is_none_or(str::is_empty) && html.as_deref().is_none_or(str::is_empty) {
        return Err(invalid("a message needs `plain` or `html` (or `raw`)"));
    }
    let mut extra = Vec::new();
    for (name, values) in headers.unwrap_or_default() {
        let valid_name =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if !valid_name {
            return Err(invalid(format!("`{name}` is not a header name")));
        }
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(invalid(format!(
                "the `{name}` header comes from the request's own fields"
            )));
        }
        let values = match values {
            HeaderValues::One(one) => vec![one],
            HeaderValues::Many(many) => many,
        };
        for value in values {
            if value.contains(['\r', '\n']) {
                return Err(invalid(format!(
                    "the `{name}` header may not contain a line break"
                )));
            }
            extra.push((name.clone(), value));
        }
    }
    let attachments = attachments
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, a)| attachment(i, a))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Body::Parts {
        plain: plain.filter(|p| !p.is_empty()),
        html: html.filter(|h| !h.is_empty()),
        headers: extra,
        attachments,
    })
}

fn attachment(index: usize, request: AttachmentRequest) -> Result<Attachment, Invalid> {
    let field = |name: &str| format!("attachments[{index}].{name}");
    let file_name = request
        .file_name
        .filter(|f| !f.trim().is_empty())
        .ok_or_else(|| invalid(format!("`{}` is required", field("file_name"))))?;
    let content_type = request
        .content_type
        .filter(|c| is_mime_type(c))
        .ok_or_else(|| {
            invalid(format!(
                "`{}` must be a MIME type such as image/png",
                field("content_type")
            ))
        })?;
    let encoded = request
        .content
        .ok_or_else(|| invalid(format!("`{}` is required", field("content"))))?;
    // Base64 wrapped at 76 columns is still base64: line breaks are ignored, nothing else is.
    let compact: String = encoded
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let content = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| invalid(format!("`{}` is not base64: {e}", field("content"))))?;
    let content_id = request
        .content_id
        .map(|c| {
            c.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
        .filter(|c| !c.is_empty());
    if let Some(cid) = &content_id
        && cid
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>\"".contains(c))
    {
        return Err(invalid(format!(
            "`{}` may not contain spaces, quotes or brackets",
            field("content_id")
        )));
    }
    if file_name.contains(['\r', '\n']) {
        return Err(invalid(format!(
            "`{}` may not contain a line break",
            field("file_name")
        )));
    }
    Ok(Attachment {
        file_name,
        content_type: content_type.to_ascii_lowercase(),
        content,
        content_id,
    })
}

fn is_mime_type(text: &str) -> bool {
    let Some((kind, sub)) = text.split_once('/') else {
        return false;
    };
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    token(kind) && token(sub)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn checked(json: &str) -> Result<Outgoing, Invalid> {
        check(parse(json.as_bytes())?)
    }

    #[test]
    fn a_message_with_every_field_is_read() {
        let out = checked(
            r#"{"from":"Shop <Orders@Shop.example>","to":["a@x.example","B <b@y.example>"],"cc":"c@z.example",
               "subject":"Your order","plain":"hi","html":"<p>hi <img src=\"cid:logo\"></p>",
               "headers":{"X-Order":"42","List-Unsubscribe":["<mailto:u@shop.example>"]},
               "attachments":[{"file_name":"logo.png","content":"iVBORw0K\nGgo=","content_type":"image/png","content_id":"<logo>"}],
               "tags":["orders","orders","eu"],"priority":"priority","test_mode":true,"tracking":{"clicks":false}}"#,
        )
        .unwrap();
        assert_eq!(out.from_address, "orders@shop.example");
        assert_eq!(out.from_domain(), "shop.example");
        assert_eq!(
            out.recipients(),
            ["a@x.example", "b@y.example", "c@z.example"]
        );
        assert_eq!(out.tags, ["orders", "eu"]);
        assert!(out.test_mode && out.track_opens && !out.track_clicks);
        let Body::Parts {
            headers,
            attachments,
            ..
        } = out.body
        else {
            panic!("parts")
        };
        assert_eq!(headers.len(), 2);
        assert_eq!(attachments[0].content_id.as_deref(), Some("logo"));
        assert_eq!(attachments[0].content, b"\x89PNG\r\n\x1a\n");
    }

    #[test]
    fn what_cannot_be_sent_is_named() {
        for (json, says) in [
            (r#"{"to":"a@x.example","plain":"x"}"#, "`from` is required"),
            (
                r#"{"from":"nobody","to":"a@x.example","plain":"x"}"#,
                "`from` is not an address",
            ),
            (r#"{"from":"s@shop.example","plain":"x"}"#, "`to` needs"),
            (
                r#"{"from":"s@shop.example","to":"a@x.example"}"#,
                "needs `plain` or `html`",
            ),
            (
                r#"{"from":"s@shop.example","to":"not an address","plain":"x"}"#,
                "`to` has something",
            ),
            (
                r#"{"from":"s@shop.example","to":"a@x.example","plain":"x","priority":"urgent"}"#,
                "`priority`",
            ),
            (
                r#"{"from":"s@shop.example","to":"a@x.example","plain":"x","attachments":[{"file_name":"a","content":"***","content_type":"text/plain"}]}"#,
                "is not base64",
            ),
            (
                r#"{"from":"s@shop.example","to":"a@x.example","plain":"x","attachments":[{"file_name":"a","content":"eA==","content_type":"text"}]}"#,
                "MIME type",
            ),
            (
                r#"{"from":"s@shop.example","to":"a@x.example","plain":"x","headers":{"Subject":"y"}}"#,
                "own fields",
            ),
            (
                r#"{"from":"s@shop.example","to":"a@x.example","plain":"x","headers":{"X-A":"1\r\nBcc: e@evil.example"}}"#,
                "line break",
            ),
            (
                r#"{"from":"s@shop.example","to":"a@x.example","subject":"a\r\nBcc: e@evil.example","plain":"x"}"#,
                "line break",
            ),
            (
                r#"{"from":"s@shop.example","to":"a@x.example","raw":"From: s@shop.example\r\nTo: a@x.example\r\n\r\nhi","plain":"x"}"#,
                "a raw message has no",
            ),
            (
                r#"{"from":"s@shop.example","to":"a@x.example","raw":"From: other@shop.example\r\nTo: a@x.example\r\n\r\nhi"}"#,
                "not the `from`",
            ),
            (
                r#"{"from":"s@shop.example","to":"a@x.example","raw":"no headers at all"}"#,
                "no blank line",
            ),
            (
                r#"{"from":"s@shop.example","to":"a@x.example","plain":"x","colour":"red"}"#,
                "unknown field",
            ),
            (r#"[1,2]"#, "not a message"),
        ] {
            let error = checked(json).unwrap_err();
            assert!(error.0.contains(says), "{json}: {error}");
        }
        let many: Vec<String> = (0..51).map(|i| format!("\"r{i}@x.example\"")).collect();
        let json = format!(
            r#"{{"from":"s@shop.example","to":[{}],"plain":"x"}}"#,
            many.join(",")
        );
        assert!(checked(&json).unwrap_err().0.contains("at most 50"));
    }

    #[test]
    fn a_raw_message_is_kept_as_it_came() {
        let raw = "From: Shop <s@shop.example>\r\nTo: a@x.example\r\nSubject: hi\r\n\r\nbody\r\n";
        let json = serde_json::json!({"from": "s@shop.example", "to": "a@x.example", "raw": raw});
        let out = checked(&json.to_string()).unwrap();
        assert_eq!(out.body, Body::Raw(raw.as_bytes().to_vec()));
        assert!(out.track_opens && out.track_clicks);
    }
}
