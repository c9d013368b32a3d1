//! The providers' formats as apps written for those services read them: every message of the test corpus
//! is POSTed in each of Postmark's, Mailgun's and SendGrid's formats (and their raw variants) by Mailroom's
//! HTTP client to a Django app running django-anymail's own inbound views, which parse it the way such an
//! app does (anymail checks the basic auth and Mailgun's signature itself; the receiver also runs the
//! verification code from Mailgun's documentation). What anymail makes of each POST must equal the source
//! message: sender, recipients, subject, text, HTML, headers, and every attachment's name, type and bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use integration_tests::{Anymail, repo};
use mailroom::deliver::{WebhookRequest, random_webhook_id};
use mailroom::format::{Format, MailgunSignature, Payload};
use mailroom::mail::envelope::Envelope;
use mailroom::mail::mailbox::mailboxes_in;
use mailroom::mail::{self, Email, html};
use mailroom::route::WebhookSecret;
use mailroom_http::{HttpClient, TargetPolicy};
use serde_json::Value;

const BASIC: &str = "anymail:s3cret-pass";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Differences reviewed by hand, each in a malformed message or an attached message, where the payload
/// carries what the source holds and the app's library reads it otherwise than our parser does:
/// (file, format, field, why).
const REVIEWED: [(&str, &str, &str, &str); 11] = [
    (
        "mikel__plain_emails_mix_caps_content_type.eml",
        "mailgun",
        "from",
        "`From: Big Bug bb@bug.com` has no brackets; the email package takes it all for one quoted address",
    ),
    (
        "phpmmp__m0124.eml",
        "mailgun",
        "from",
        "an unquoted 8-bit name with a `<` inside: no address for us, a garbled one for the email package",
    ),
    (
        "enmime__mail_malformed-multiple-address-header-values.eml",
        "mailgun",
        "from",
        "two From headers run together; the email package keeps the first address",
    ),
    (
        "mikel__rfc2822_example10.eml",
        "mailgun",
        "to",
        "an empty group member; the email package drops it",
    ),
    (
        "mikel__rfc2822_example10.eml",
        "mailgun",
        "cc",
        "an empty group member; the email package drops it",
    ),
    (
        "mikel__rfc2822_example13.eml",
        "mailgun",
        "to",
        "RFC 2822's obsolete-syntax example, a name folded away from its address",
    ),
    (
        "mikel__rfc2822_example13.eml",
        "sendgrid",
        "to",
        "RFC 2822's obsolete-syntax example, a name folded away from its address",
    ),
    (
        "mikel__error_emails_missing_body.eml",
        "mailgun",
        "to",
        "`<Undisclosed-Recipient:@host;>`, a group inside brackets",
    ),
    (
        "mikel__plain_emails_raw_email_with_at_display_name.eml",
        "mailgun",
        "to",
        "an unquoted name with an `@` in it",
    ),
    (
        "mikel__multipart_report_emails_multipart_report_multiple_status.eml",
        "*",
        "html",
        "the only HTML is inside an attached message, which the library offers as the body",
    ),
    (
        "*",
        "*",
        "attachments",
        "an attached message: the email package re-serialises it and lists its parts as attachments of their own",
    ),
];

/// Messages with an attached message whose parts the email package lists beside it (checked: each has a
/// message/* attachment).
const NESTED: [&str; 5] = [
    "mailparser__thirdparty_015.eml",
    "mikel__mime_emails_raw_email_with_mimepart_without_content_type.eml",
    "mailparser__rfc_002.eml",
    "mikel__attachment_emails_attachment_message_rfc822.eml",
    "phpmmp__issue274.eml",
];

const PROVIDER_FORMATS: [Format; 6] = [
    Format::Postmark,
    Format::PostmarkRaw,
    Format::Mailgun,
    Format::MailgunMime,
    Format::Sendgrid,
    Format::SendgridRaw,
];

fn path_of(format: Format) -> &'static str {
    match format {
        Format::Postmark | Format::PostmarkRaw => "/postmark",
        Format::Mailgun | Format::MailgunMime => "/mailgun",
        _ => "/sendgrid",
    }
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(repo("tests/corpus"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anymail_reads_every_corpus_message_in_every_provider_format() {
    let app = Anymail::start(BASIC, SECRET);
    let secrets = vec![WebhookSecret::parse(SECRET).unwrap()];
    let client = HttpClient::new(Duration::from_secs(60), TargetPolicy::LOCAL).unwrap();
    let mut mismatches: Vec<String> = Vec::new();
    let mut limitations: Vec<String> = Vec::new();
    let mut seen = [false; REVIEWED.len()];
    let mut checked = 0;
    for (name, raw) in corpus() {
        let email = mail::parse(raw.clone()).unwrap();
        let mut envelope = Envelope::recover(&email);
        if envelope.to.is_empty() {
            envelope = envelope.for_recipient("inbound@mail.example.com");
        }
        for format in PROVIDER_FORMATS {
            let timestamp = chrono::Utc::now().timestamp();
            let payload = Payload::new(format, &email, &envelope)
                .with_mailgun_signature(MailgunSignature::new(timestamp, Some(SECRET)));
            let request = WebhookRequest::new(
                random_webhook_id(),
                timestamp,
                payload.content_type(),
                payload.to_vec(),
                &secrets,
            );
            let url = url::Url::parse(&app.url(BASIC, path_of(format))).unwrap();
            let answer = client.post_following_redirects(&url, &request).await;
            let line = app.next(Duration::from_secs(60));
            let status = answer.as_ref().map(|a| a.response.status).ok();
            let Some(line) = line else {
                mismatches.push(format!("{name} {format}: no line; answered {status:?}"));
                continue;
            };
            if let Some(error) = line.get("error").and_then(Value::as_str) {
                match anymail_limitation(&email, format, error) {
                    Some(reason) => limitations.push(format!("{name} {format}: {reason}")),
                    None => mismatches.push(format!("{name} {format}: {status:?} {error}")),
                }
                continue;
            }
            if status != Some(200) {
                mismatches.push(format!("{name} {format}: answered {status:?}"));
                continue;
            }
            for problem in compare(&email, &envelope, format, &line) {
                let field = problem.split(':').next().unwrap_or("");
                let reviewed = REVIEWED.iter().position(|(file, f, what, _)| {
                    (*file == name || (*file == "*" && NESTED.contains(&name.as_str())))
                        && (*f == "*" || *f == format.as_str())
                        && *what == field
                });
                match reviewed {
                    Some(at)
                        if field != "attachments"
                            || email
                                .attachments
                                .iter()
                                .any(|a| a.content_type.starts_with("message/")) =>
                    {
                        seen[at] = true
                    }
                    _ => mismatches.push(format!("{name} {format}: {problem}")),
                }
            }
            checked += 1;
        }
    }
    // Messages anymail itself cannot hold (each named, its cause checked in the message): the app would
    // answer 500 to the provider's own payload of them too.
    eprintln!(
        "{} POSTs anymail cannot represent:\n{}",
        limitations.len(),
        limitations.join("\n")
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatch(es):\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    for (at, (file, format, field, _)) in REVIEWED.iter().enumerate() {
        assert!(
            seen[at],
            "reviewed difference {file} {format} {field} no longer occurs: remove it"
        );
    }
    assert_eq!(
        checked + limitations.len(),
        363 * 6,
        "every message, every format"
    );
    assert!(checked >= 2_000, "only {checked} POSTs compared");
    assert!(
        mismatches.is_empty(),
        "{} mismatch(es):\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Why anymail cannot take this message in this format, when the cause is in the message itself and the
/// error says exactly that; `None` for any other failure.
fn anymail_limitation(email: &Email, format: Format, error: &str) -> Option<String> {
    let has_from = mailboxes_in(email.header("From").unwrap_or(""))
        .first()
        .is_some_and(|m| {
            mailroom::mail::envelope::is_address(&m.address) && m.address.matches('@').count() == 1
        });
    // Postmark's FromFull of a message without a From address has an empty Email, which anymail refuses.
    if format == Format::Postmark
        && !has_from
        && error.starts_with("AnymailInvalidAddress: Invalid email address ''")
    {
        return Some("no From address".to_owned());
    }
    // anymail reads an attachment's "Content" with `or`, so an empty one falls through to a "Data" key.
    if format == Format::Postmark
        && error == "KeyError: 'Data'"
        && email.attachments.iter().any(|a| a.content.is_empty())
    {
        return Some("an empty attachment".to_owned());
    }
    // Python's email package refuses a second copy of a header that may appear once.
    let duplicated = error
        .strip_prefix("ValueError: There may be at most 1 ")
        .and_then(|rest| rest.strip_suffix(" headers in a message"))?;
    (matches!(format, Format::Postmark | Format::Mailgun)
        && email.header_values(duplicated).count() > 1)
        .then(|| format!("{duplicated} twice"))
}

/// What anymail parsed against the source message; each difference named.
fn compare(email: &Email, envelope: &Envelope, format: Format, got: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |what: &str, ours: Value, theirs: &Value| {
        if &ours != theirs {
            problems.push(format!("{what}: ours {ours} anymail {theirs}"));
        }
    };
    if matches!(
        format,
        Format::PostmarkRaw | Format::MailgunMime | Format::SendgridRaw
    ) {
        // The raw variants hand the app the original itself, which its library parses: the field must be
        // the message, every byte (as text, which is how Django and JSON hand it over).
        use sha2::Digest;
        let ours = format!(
            "{:x}",
            sha2::Sha256::digest(String::from_utf8_lossy(email.raw()).as_bytes())
        );
        check("raw message", Value::from(ours), &got["raw_field_sha256"]);
        check(
            "envelope recipient",
            Value::from(envelope.to.as_str()),
            &got["envelope_recipient"],
        );
        if format == Format::MailgunMime {
            check(
                "Mailgun's documented verification",
                Value::Bool(true),
                &got["mailgun_signature_ok"],
            );
        }
        return problems;
    }
    if got["mailgun_signature_ok"] != Value::Null || format == Format::Mailgun {
        check(
            "Mailgun's documented verification",
            Value::Bool(true),
            &got["mailgun_signature_ok"],
        );
    }
    check(
        "envelope recipient",
        Value::from(envelope.to.as_str()),
        &got["envelope_recipient"],
    );

    // Postmark posts the addresses split (ours: each mailbox with an address); Mailgun and SendGrid post
    // the header text, which the app's library parses itself: there, the header it holds must be the
    // source's (two address parsers read obsolete syntax differently; the text is what the app got).
    let split = format == Format::Postmark;
    for (field, header) in [("from", "From"), ("to", "To"), ("cc", "Cc")] {
        let ours: Vec<Value> = mailboxes_in(email.header(header).unwrap_or(""))
            .into_iter()
            .filter(|m| {
                !split
                    || (mailroom::mail::envelope::is_address(&m.address)
                        && m.address.matches('@').count() == 1)
            })
            .map(|m| Value::from(m.address))
            .take(if field == "from" { 1 } else { usize::MAX })
            .collect();
        let theirs: Vec<Value> = match &got[field] {
            Value::Array(list) if field == "from" => list
                .iter()
                .take(1)
                .map(|a| a["addr_spec"].clone())
                .collect(),
            Value::Array(list) => list.iter().map(|a| a["addr_spec"].clone()).collect(),
            Value::Null => Vec::new(),
            one => vec![one["addr_spec"].clone()],
        };
        let ours = Value::from(ours);
        let theirs = Value::from(theirs);
        if ours != theirs && (split || !same_header(email, header, got)) {
            problems.push(format!("{field}: ours {ours} anymail {theirs}"));
        }
    }
    let subject = email.subject().filter(|s| !s.is_empty());
    let their_subject = got["subject"].as_str().filter(|s| !s.is_empty());
    if subject.map(spaced) != their_subject.map(spaced) && !same_header(email, "Subject", got) {
        problems.push(format!(
            "subject: ours {subject:?} anymail {their_subject:?}"
        ));
    }
    let text = match format {
        Format::Mailgun => email
            .plain
            .clone()
            .or_else(|| email.html.as_deref().map(html::html_to_text)),
        _ => email.plain.clone(),
    };
    for (what, ours, theirs, kind) in [
        ("text", text.as_deref(), got["text"].as_str(), "text/plain"),
        (
            "html",
            email.html.as_deref(),
            got["html"].as_str(),
            "text/html",
        ),
    ] {
        let (ours, theirs) = (lines(ours), lines(theirs));
        // With no body of that type, the library offers the first attached part of it as the body.
        let attached = ours.is_none()
            && email.attachments.iter().any(|a| {
                (a.content_type == kind || a.content_type.starts_with("message/"))
                    && theirs.as_deref().is_some_and(|t| {
                        lines(Some(&String::from_utf8_lossy(&a.content))).as_deref() == Some(t)
                            || String::from_utf8_lossy(&a.content)
                                .replace("\r\n", "\n")
                                .contains(t.trim())
                    })
            });
        if ours != theirs && !attached {
            problems.push(format!("{what}: ours {ours:?} anymail {theirs:?}"));
        }
    }
    compare_attachments(email, format, got, &mut problems);
    problems
}

/// Text with its line ends as LF (a lone CR too, as the email package reads it), `None` for none or
/// empty (providers post `""` for a missing body).
fn lines(text: Option<&str>) -> Option<String> {
    text.filter(|t| !t.is_empty())
        .map(|t| t.replace("\r\n", "\n").replace('\r', "\n"))
}

/// A header value with its runs of white space as one space, trimmed: decoders differ on the space
/// between encoded words and at the ends.
fn spaced(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether the app's message holds the source's header `name` as posted (decoded, spaced), whatever its
/// own address parser makes of it.
fn same_header(email: &Email, name: &str, got: &Value) -> bool {
    let theirs: Vec<String> = got["raw_headers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|pair| {
            pair[0]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .filter_map(|pair| pair[1].as_str())
        .map(|value| spaced(&mailroom::mail::decode_header_value(value.as_bytes())))
        .collect();
    let ours: Vec<String> = email.header_values(name).map(spaced).collect();
    ours == theirs
}

fn compare_attachments(email: &Email, format: Format, got: &Value, problems: &mut Vec<String>) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut theirs: HashMap<(String, String), Vec<Option<String>>> = HashMap::new();
    let mut containers: Vec<String> = Vec::new();
    for part in got["attachments"]
        .as_array()
        .into_iter()
        .chain(got["inlines"].as_array())
        .flatten()
    {
        // The email package lists the containers it built around the parts, and keeps a multipart-typed
        // leaf as one; neither has content to read.
        if part["content_b64"].is_null()
            && let Some(kind) = part["content_type"]
                .as_str()
                .filter(|t| t.starts_with("multipart/"))
        {
            containers.push(kind.to_owned());
            continue;
        }
        let bytes = b64
            .decode(part["content_b64"].as_str().unwrap_or(""))
            .unwrap_or_default();
        let bytes = comparable(part["content_type"].as_str().unwrap_or(""), &bytes);
        let key = (
            part["content_type"].as_str().unwrap_or("").to_owned(),
            format!("{:x}", sha2_digest(&bytes)),
        );
        theirs
            .entry(key)
            .or_default()
            .push(part["filename"].as_str().map(str::to_owned));
    }
    let mut missing = Vec::new();
    for (index, attachment) in email.attachments.iter().enumerate() {
        if let Some(at) = containers
            .iter()
            .position(|kind| *kind == attachment.content_type)
        {
            containers.remove(at);
            continue;
        }
        let key = (
            attachment.content_type.clone(),
            format!(
                "{:x}",
                sha2_digest(&comparable(&attachment.content_type, &attachment.content))
            ),
        );
        let expected = received_name(format, attachment.file_name.as_deref(), index);
        match theirs.get_mut(&key).filter(|names| !names.is_empty()) {
            Some(names) => {
                // Parts with the same bytes are told apart by name.
                let at = names.iter().position(|n| *n == expected).unwrap_or(0);
                let name = names.remove(at);
                if name != expected {
                    problems.push(format!(
                        "attachment name: ours {expected:?} anymail {name:?}"
                    ));
                }
            }
            _ => missing.push(format!(
                "{:?} {} {} bytes",
                attachment.file_name,
                attachment.content_type,
                attachment.content.len()
            )),
        }
    }
    let extra: usize = theirs.values().map(Vec::len).sum();
    if !missing.is_empty() || extra > 0 {
        problems.push(format!(
            "attachments: not received {missing:?}; {extra} received that the message does not have"
        ));
    }
}

fn sha2_digest(bytes: &[u8]) -> impl std::fmt::LowerHex {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
}

/// The bytes to compare: an attached message (`message/*`) is re-serialised by the email package (line
/// ends, header folding, a blank line for an empty header section), so it is compared by what it holds
/// (subject, bodies, attachments, as our parser reads them); every other type byte for byte.
fn comparable(content_type: &str, bytes: &[u8]) -> Vec<u8> {
    if !content_type.starts_with("message/") {
        return bytes.to_vec();
    }
    let normal = String::from_utf8_lossy(bytes).replace("\r\n", "\n");
    let Ok(inner) = mail::parse(normal.trim().as_bytes().to_vec()) else {
        return normal.trim().as_bytes().to_vec();
    };
    let mut summary = format!(
        "{:?}|{:?}|{:?}",
        inner.subject().map(spaced),
        lines(inner.plain.as_deref()).map(|t| t.trim().to_owned()),
        lines(inner.html.as_deref()).map(|t| t.trim().to_owned()),
    );
    for attachment in &inner.attachments {
        summary.push_str(&format!(
            "|{}:{:x}",
            attachment.content_type,
            sha2_digest(&attachment.content)
        ));
    }
    summary.into_bytes()
}

/// The inbound function delivers along routes in the providers' formats: through the real handler, from a
/// message stored in moto's S3 to the anymail app, each route's format; a `mailgun` route whose URL ends in
/// `mime` gets the MIME variant, Mailgun's signature made with the route's secret verifies, and attachments
/// travel as files even where the route's mode would link them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbound_function_delivers_in_each_providers_format() {
    use integration_tests::{LINK_BASE, resources, sdk, store_inbound};
    use lambda_runtime::{Context, LambdaEvent};
    use mailroom::ports::RouteStore;
    use mailroom::route::{AttachmentMode, Route, WebhookTarget};

    let app = Anymail::start(BASIC, SECRET);
    let sdk = sdk().await;
    let res = resources(&sdk, "providers").await;
    let env = |name: &str| -> Option<String> {
        match name {
            "MAILROOM_TABLE" => Some(res.table.clone()),
            "MAILROOM_BUCKET" => Some(res.bucket.clone()),
            "MAILROOM_ALLOW_PRIVATE_TARGETS" | "MAILROOM_ALLOW_HTTP_TARGETS" => {
                Some("true".to_owned())
            }
            "MAILROOM_LINK_BASE_URL" => Some(LINK_BASE.to_owned()),
            "MAILROOM_LINK_KEY_ARN" => Some(res.link_key_arn.clone()),
            // Every payload is over this: a JSON route in `auto` would get links.
            "MAILROOM_INLINE_MAX_BYTES" => Some("100".to_owned()),
            _ => None,
        }
    };
    let inbound = inbound::App::new(inbound::Config::from_lookup(env).unwrap(), &sdk)
        .await
        .unwrap();
    let store = mailroom_aws::dynamo::DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        res.table.clone(),
    );
    for (local, format, path) in [
        ("pm", Format::Postmark, "/postmark"),
        ("mg", Format::Mailgun, "/mailgun.mime"),
        ("sg", Format::Sendgrid, "/sendgrid"),
    ] {
        let mut route = Route::new(format!("{local}@mail.example.com").parse().unwrap());
        route.webhook = Some(WebhookTarget {
            url: app.url(BASIC, path),
            format,
            secrets: vec![WebhookSecret::parse(SECRET).unwrap()],
            attachments: AttachmentMode::Auto,
            disabled: None,
        });
        store.put_route(&route).await.unwrap();
    }

    let pdf: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    for local in ["pm", "mg", "sg"] {
        let raw = format!(
            "From: Ana Lima <ana@sender.example>\r\nTo: {local}+t42@mail.example.com\r\n\
             Subject: Invoice =?utf-8?q?S=C3=A3o_Paulo?=\r\nMessage-ID: <{local}@sender.example>\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the PDF.\r\n\
             --b\r\nContent-Type: application/pdf; name=\"scan.pdf\"\r\n\
             Content-Disposition: attachment; filename=\"scan.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
             {}\r\n--b--\r\n",
            base64::engine::general_purpose::STANDARD.encode(&pdf)
        );
        let (_, event) = store_inbound(&sdk, &res.bucket, raw.into_bytes()).await;
        inbound::handle(&inbound, LambdaEvent::new(event, Context::default()))
            .await
            .unwrap();
        let got = app
            .next(Duration::from_secs(30))
            .expect("the app got a POST");
        assert!(got.get("error").is_none(), "{got}");
        assert_eq!(
            got["envelope_recipient"],
            format!("{local}+t42@mail.example.com")
        );
        assert_eq!(got["subject"], "Invoice São Paulo");
        assert_eq!(got["from"]["addr_spec"], "ana@sender.example");
        assert_eq!(
            got["text"].as_str().map(|t| t.trim_end()),
            Some("See the PDF.")
        );
        let files: Vec<_> = got["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["content_type"] == "application/pdf")
            .collect();
        assert_eq!(files.len(), 1, "{local}: the PDF travels as a file");
        assert_eq!(files[0]["filename"], "scan.pdf");
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(files[0]["content_b64"].as_str().unwrap())
                .unwrap(),
            pdf
        );
        match local {
            "pm" => assert_eq!(got["provider"], "Postmark"),
            "mg" => {
                assert_eq!(got["provider"], "Mailgun");
                assert_eq!(got["mailgun_signature_ok"], true);
                assert!(
                    got["raw_field_sha256"].is_string(),
                    "the MIME variant: body-mime"
                );
            }
            _ => assert_eq!(got["provider"], "SendGrid"),
        }
    }
}

/// The file name the app's framework hands over for attachment `index`: Postmark's `Name` as is (`""`
/// for none); a form's file part named after its field when the part has no name, quoted as the form
/// quotes it, then cut to its last path component as Django does.
fn received_name(format: Format, name: Option<&str>, index: usize) -> Option<String> {
    let name = match (format, name.filter(|n| !n.is_empty())) {
        (Format::Postmark, name) => return Some(name.unwrap_or("").to_owned()),
        (_, Some(name)) => name.to_owned(),
        (Format::Mailgun, None) => format!("attachment-{}", index + 1),
        (_, None) => format!("attachment{}", index + 1),
    };
    // The form quotes a name as browsers do (RFC 7578): `"` and line breaks percent-encoded.
    let name = name
        .replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    let name: String = name.chars().filter(|c| !c.is_control()).collect();
    let base = name.rsplit(['/', '\\']).next().unwrap_or(&name).to_owned();
    Some(base)
}
