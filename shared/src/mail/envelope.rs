//! The SMTP envelope: recovered from the trace headers SES prepends to the object it stores, or given by the
//! caller (an SES notification, `--recipient`), which then wins.

use serde::Serialize;

use super::Email;
use super::headers::{angle_addr, domain_of};

/// What the SMTP conversation said about a message, in CloudMailin's `envelope` shape plus our extensions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Envelope {
    /// The recipient this delivery is for; `""` when unknown.
    pub to: String,
    /// Every SMTP recipient of the message that is known.
    pub recipients: Vec<String>,
    /// The envelope sender (`MAIL FROM`); `""` for a null sender or when unknown.
    pub from: String,
    /// The name the client gave in `HELO`/`EHLO`; `""` when unknown.
    pub helo_domain: String,
    /// The connecting client's IP address; `""` when unknown.
    pub remote_ip: String,
    /// The SPF check of the envelope sender.
    pub spf: Spf,
    /// Whether the connection used TLS; absent when not known (SES does not record it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<bool>,
    /// SES's own verdicts, when SES received the message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ses: Option<SesVerdicts>,
    /// The `+tag` of the recipient's local part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mailbox_hash: Option<String>,
    /// SES's message id: the stored object's name, and the `with SMTP id` of SES's `Received:` line.
    #[serde(skip)]
    pub ses_message_id: Option<String>,
    /// Where `recipients` came from.
    #[serde(skip)]
    pub recipient_source: RecipientSource,
}

/// Result and domain of the SPF check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spf {
    /// `pass`, `fail`, `softfail`, `neutral`, `none`, `temperror` or `permerror`; `none` when not checked.
    pub result: String,
    /// The domain that was checked; `""` when unknown.
    pub domain: String,
}

impl Default for Spf {
    fn default() -> Self {
        Spf {
            result: "none".to_owned(),
            domain: String::new(),
        }
    }
}

/// The verdicts SES attaches to received mail. Each is absent when SES gave none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SesVerdicts {
    /// Spam scan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spam: Option<Verdict>,
    /// Virus scan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virus: Option<Verdict>,
    /// SPF.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spf: Option<Verdict>,
    /// DKIM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dkim: Option<Verdict>,
    /// DMARC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dmarc: Option<Verdict>,
}

/// One SES verdict, in the words of SES's receipt notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// The check passed.
    Pass,
    /// The check failed.
    Fail,
    /// The check was inconclusive.
    Gray,
    /// SES could not run the check.
    ProcessingFailed,
    /// The check is turned off.
    Disabled,
}

impl Verdict {
    /// Parses SES's notification status (`PASS`, `FAIL`, ...), case-insensitively.
    pub fn from_status(status: &str) -> Option<Verdict> {
        let status = status.trim();
        [
            ("PASS", Verdict::Pass),
            ("FAIL", Verdict::Fail),
            ("GRAY", Verdict::Gray),
            ("PROCESSING_FAILED", Verdict::ProcessingFailed),
            ("DISABLED", Verdict::Disabled),
        ]
        .into_iter()
        .find(|(word, _)| word.eq_ignore_ascii_case(status))
        .map(|(_, verdict)| verdict)
    }

    /// Maps an `Authentication-Results` method result (RFC 8601) onto SES's words.
    fn from_auth_result(result: &str) -> Option<Verdict> {
        [
            ("pass", Verdict::Pass),
            ("fail", Verdict::Fail),
            ("hardfail", Verdict::Fail),
            ("softfail", Verdict::Gray),
            ("neutral", Verdict::Gray),
            ("none", Verdict::Gray),
            ("policy", Verdict::Gray),
            ("temperror", Verdict::ProcessingFailed),
            ("permerror", Verdict::ProcessingFailed),
        ]
        .into_iter()
        .find(|(word, _)| word.eq_ignore_ascii_case(result))
        .map(|(_, verdict)| verdict)
    }
}

/// Where the recipient list of an envelope came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RecipientSource {
    /// The SMTP transaction itself: SES's notification, the `for` clause of SES's `Received:` line, or
    /// the caller.
    #[default]
    Smtp,
    /// No SMTP record: the `To`, `Cc` and `Delivered-To` headers, which can miss Bcc recipients.
    Headers,
    /// Nothing at all.
    Unknown,
}

/// What a caller knows for certain about the envelope; every field given wins over the headers.
#[derive(Debug, Clone, Default)]
pub struct KnownEnvelope {
    /// The SMTP recipients.
    pub recipients: Option<Vec<String>>,
    /// The envelope sender.
    pub from: Option<String>,
    /// The client's `HELO` name.
    pub helo_domain: Option<String>,
    /// The client's IP address.
    pub remote_ip: Option<String>,
    /// The SPF result.
    pub spf: Option<Spf>,
    /// Whether TLS was used.
    pub tls: Option<bool>,
    /// SES's verdicts.
    pub ses: Option<SesVerdicts>,
    /// SES's message id.
    pub ses_message_id: Option<String>,
}

impl Envelope {
    /// Recovers the envelope from the headers SES prepends (`Return-Path`, `Received`, `Received-SPF`,
    /// `Authentication-Results`, `X-SES-*`). Nothing is invented: unknown fields stay empty.
    pub fn recover(email: &Email) -> Envelope {
        let trace = TraceHeaders::of(email);
        let received = trace.received.map(ReceivedLine::parse).unwrap_or_default();
        let spf_fields = trace.received_spf.map(SpfLine::parse).unwrap_or_default();

        let from = match trace.return_path {
            Some(value) => angle_addr(value).to_owned(),
            None => spf_fields.envelope_from.unwrap_or_default().to_owned(),
        };
        let remote_ip = received
            .ip
            .or(spf_fields.client_ip)
            .unwrap_or_default()
            .to_owned();
        let helo_domain = spf_fields
            .helo
            .or(received.from_name)
            .unwrap_or_default()
            .to_owned();
        let spf = match spf_fields.result {
            Some(result) => Spf {
                result: result.to_ascii_lowercase(),
                domain: if from.is_empty() {
                    helo_domain.clone()
                } else {
                    domain_of(&from).to_owned()
                },
            },
            None => Spf::default(),
        };

        let (recipients, recipient_source) = match received.for_addr {
            Some(rcpt) => (vec![rcpt.to_owned()], RecipientSource::Smtp),
            None => {
                let found = header_recipients(email);
                if found.is_empty() {
                    (found, RecipientSource::Unknown)
                } else {
                    (found, RecipientSource::Headers)
                }
            }
        };

        let ses = trace.ses_verdicts();
        let mut envelope = Envelope {
            to: String::new(),
            recipients,
            from,
            helo_domain,
            remote_ip,
            spf,
            tls: None,
            ses,
            mailbox_hash: None,
            // Only SES's own line names SES's message id; another server's `id` is its queue id.
            ses_message_id: received
                .smtp_id
                .filter(|_| trace.received.is_some_and(received_by_ses))
                .map(str::to_owned),
            recipient_source,
        };
        envelope.set_to_first();
        envelope
    }

    /// Lets what the caller knows win over what the headers said.
    pub fn with_known(mut self, known: KnownEnvelope) -> Envelope {
        if let Some(recipients) = known.recipients.filter(|r| !r.is_empty()) {
            self.recipients = recipients;
            self.recipient_source = RecipientSource::Smtp;
            self.to.clear();
            self.set_to_first();
        }
        if let Some(from) = known.from {
            if self.spf.domain.is_empty() || known.spf.is_none() {
                self.spf.domain = domain_of(&from).to_owned();
            }
            self.from = from;
        }
        if let Some(helo) = known.helo_domain {
            self.helo_domain = helo;
        }
        if let Some(ip) = known.remote_ip {
            self.remote_ip = ip;
        }
        if let Some(spf) = known.spf {
            self.spf = spf;
        }
        if known.tls.is_some() {
            self.tls = known.tls;
        }
        if known.ses.is_some() {
            self.ses = known.ses;
        }
        if known.ses_message_id.is_some() {
            self.ses_message_id = known.ses_message_id;
        }
        self
    }

    /// The same envelope addressed to one of its recipients: `to` is that address and `mailbox_hash` its
    /// `+tag`.
    pub fn for_recipient(&self, recipient: &str) -> Envelope {
        let mut envelope = self.clone();
        envelope.to = recipient.to_owned();
        envelope.mailbox_hash = mailbox_hash(recipient).map(str::to_owned);
        envelope
    }

    fn set_to_first(&mut self) {
        if self.to.is_empty()
            && let Some(first) = self.recipients.first()
        {
            self.to = first.clone();
            self.mailbox_hash = mailbox_hash(first).map(str::to_owned);
        }
    }
}

/// Whether a `Received:` line was written by SES's inbound servers (`by inbound-smtp.<region>.amazonaws.com`).
fn received_by_ses(value: &str) -> bool {
    let words = words_outside_comments(value);
    words
        .iter()
        .zip(words.iter().skip(1))
        .find(|(word, _)| word.eq_ignore_ascii_case("by"))
        .is_some_and(|(_, host)| {
            let host = host.to_ascii_lowercase();
            host.ends_with(".amazonaws.com") || host.ends_with(".amazonses.com")
        })
}

/// The `tag` of `user+tag@domain`.
pub fn mailbox_hash(address: &str) -> Option<&str> {
    let (local, _) = address.rsplit_once('@')?;
    let (_, tag) = local.split_once('+')?;
    (!tag.is_empty()).then_some(tag)
}

/// The normal form of an address wherever it is a key: the suppression list, the soft-bounce counts and
/// the records' indexes.
pub fn normalise_address(address: &str) -> String {
    address.trim().to_lowercase()
}

/// The top-most of each trace header SES prepends.
struct TraceHeaders<'a> {
    return_path: Option<&'a str>,
    received: Option<&'a str>,
    received_spf: Option<&'a str>,
    spam: Option<&'a str>,
    virus: Option<&'a str>,
    auth_results: Option<&'a str>,
}

impl<'a> TraceHeaders<'a> {
    fn of(email: &'a Email) -> TraceHeaders<'a> {
        let mut trace = TraceHeaders {
            return_path: None,
            received: None,
            received_spf: None,
            spam: None,
            virus: None,
            auth_results: None,
        };
        // SES writes its verdicts above the message's own headers; the same names further down were written
        // by the sender and must not stand in for SES's.
        let mut above_message_headers = true;
        let mut buffer = [0u8; 32];
        for header in &email.headers {
            let name = lower_short(&header.name, &mut buffer);
            let slot = match name {
                "return-path" => &mut trace.return_path,
                "received" => &mut trace.received,
                "received-spf" => &mut trace.received_spf,
                "x-ses-spam-verdict" if above_message_headers => &mut trace.spam,
                "x-ses-virus-verdict" if above_message_headers => &mut trace.virus,
                "authentication-results"
                    if above_message_headers
                        && header
                            .value
                            .trim_start()
                            .get(..13)
                            .is_some_and(|id| id.eq_ignore_ascii_case("amazonses.com")) =>
                {
                    &mut trace.auth_results
                }
                "from" | "to" | "cc" | "subject" | "date" | "message-id" | "mime-version"
                | "reply-to" | "sender" => {
                    above_message_headers = false;
                    continue;
                }
                _ => {
                    if header
                        .name
                        .get(..8)
                        .is_some_and(|p| p.eq_ignore_ascii_case("content-"))
                    {
                        above_message_headers = false;
                    }
                    continue;
                }
            };
            if slot.is_none() {
                *slot = Some(header.value.as_str());
            }
        }
        trace
    }

    fn ses_verdicts(&self) -> Option<SesVerdicts> {
        let mut verdicts = SesVerdicts {
            spam: self.spam.and_then(Verdict::from_status),
            virus: self.virus.and_then(Verdict::from_status),
            ..SesVerdicts::default()
        };
        if let Some(results) = self.auth_results {
            for (method, result) in auth_methods(results) {
                let slot = match method {
                    m if m.eq_ignore_ascii_case("spf") => &mut verdicts.spf,
                    m if m.eq_ignore_ascii_case("dkim") => &mut verdicts.dkim,
                    m if m.eq_ignore_ascii_case("dmarc") => &mut verdicts.dmarc,
                    _ => continue,
                };
                if slot.is_none() {
                    *slot = Verdict::from_auth_result(result);
                }
            }
        }
        (verdicts != SesVerdicts::default()).then_some(verdicts)
    }
}

/// The methods and results of an `Authentication-Results` value (`spf=pass (…) smtp.mailfrom=…; dkim=…`).
fn auth_methods(results: &str) -> impl Iterator<Item = (&str, &str)> {
    results.split(';').skip(1).filter_map(|clause| {
        let (name, rest) = clause.trim().split_once('=')?;
        let result = rest
            .split(|c: char| c.is_whitespace() || c == '(')
            .next()
            .unwrap_or("");
        Some((name.trim(), result))
    })
}

/// The parts of a `Received:` line we use: `from NAME (… [IP])`, `with SMTP id ID`, `for <RCPT>`.
#[derive(Default)]
struct ReceivedLine<'a> {
    from_name: Option<&'a str>,
    ip: Option<&'a str>,
    smtp_id: Option<&'a str>,
    for_addr: Option<&'a str>,
}

impl<'a> ReceivedLine<'a> {
    fn parse(value: &'a str) -> ReceivedLine<'a> {
        // The date follows the last `;` and is not needed.
        let clauses = value.rsplit_once(';').map(|(c, _)| c).unwrap_or(value);
        // Clauses are read outside comments: `(qmail 5683 invoked from network)` names no client.
        let words = words_outside_comments(clauses);
        let mut line = ReceivedLine::default();
        for (i, word) in words.iter().enumerate() {
            let next = words.get(i + 1).copied();
            if i == 0 && word.eq_ignore_ascii_case("from") {
                line.from_name = next;
            } else if word.eq_ignore_ascii_case("id")
                && line.smtp_id.is_none()
                && i >= 2
                && words
                    .get(i - 2)
                    .is_some_and(|w| w.eq_ignore_ascii_case("with"))
            {
                line.smtp_id = next;
            } else if word.eq_ignore_ascii_case("for") && line.for_addr.is_none() {
                line.for_addr = next
                    .map(|n| angle_addr(n.trim_end_matches(';')))
                    .filter(|n| is_address(n));
            }
        }
        line.ip = first_bracketed_ip(clauses);
        line
    }
}

/// The whitespace-separated words of `text` that lie outside `(comments)`, which may nest.
fn words_outside_comments(text: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let mut depth = 0usize;
    let mut start = None;
    for (i, c) in text.char_indices() {
        match c {
            '(' => {
                if let Some(s) = start.take() {
                    words.push(text.get(s..i).unwrap_or(""));
                }
                depth += 1;
            }
            ')' => depth = depth.saturating_sub(1),
            c if c.is_whitespace() => {
                if let Some(s) = start.take() {
                    words.push(text.get(s..i).unwrap_or(""));
                }
            }
            _ if depth == 0 && start.is_none() => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push(text.get(s..).unwrap_or(""));
    }
    words
}

/// Whether `text` looks like one mailbox address: a local part, one `@`, a domain, nothing that cannot
/// appear in an unquoted address.
pub fn is_address(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\\\"".contains(c))
}

fn first_bracketed_ip(text: &str) -> Option<&str> {
    let mut rest = text;
    while let Some(start) = rest.find('[') {
        let after = rest.get(start + 1..)?;
        let end = after.find(']')?;
        let candidate = after.get(..end)?;
        let candidate = candidate
            .strip_prefix("IPv6:")
            .or_else(|| candidate.strip_prefix("ipv6:"))
            .unwrap_or(candidate);
        if candidate.parse::<std::net::IpAddr>().is_ok() {
            return Some(candidate);
        }
        rest = after.get(end + 1..)?;
    }
    None
}

/// The parts of `Received-SPF: RESULT (comment) client-ip=…; envelope-from=…; helo=…;`.
#[derive(Default)]
struct SpfLine<'a> {
    result: Option<&'a str>,
    client_ip: Option<&'a str>,
    envelope_from: Option<&'a str>,
    helo: Option<&'a str>,
}

impl<'a> SpfLine<'a> {
    fn parse(value: &'a str) -> SpfLine<'a> {
        let mut line = SpfLine {
            result: value
                .split_whitespace()
                .next()
                .filter(|r| r.chars().all(|c| c.is_ascii_alphabetic()) && !r.is_empty()),
            ..SpfLine::default()
        };
        for pair in value.split([';', ' ']) {
            let Some((key, val)) = pair.trim().split_once('=') else {
                continue;
            };
            let val = val.trim().trim_matches('"');
            let val = angle_addr(val);
            if val.is_empty() {
                continue;
            }
            match key.trim().to_ascii_lowercase().as_str() {
                "client-ip" => line.client_ip = line.client_ip.or(Some(val)),
                "envelope-from" => line.envelope_from = line.envelope_from.or(Some(val)),
                "helo" => line.helo = line.helo.or(Some(val)),
                _ => {}
            }
        }
        line
    }
}

/// A short header name in lower case, without allocating; `""` for a name too long to be one we look for.
fn lower_short<'b>(name: &str, buffer: &'b mut [u8; 32]) -> &'b str {
    let Some(slot) = buffer.get_mut(..name.len()) else {
        return "";
    };
    slot.copy_from_slice(name.as_bytes());
    slot.make_ascii_lowercase();
    std::str::from_utf8(slot).unwrap_or("")
}

/// Addresses in `To`, `Cc` and `Delivered-To`, in order, without duplicates.
fn header_recipients(email: &Email) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut buffer = [0u8; 32];
    for header in &email.headers {
        if !matches!(
            lower_short(&header.name, &mut buffer),
            "to" | "cc" | "delivered-to"
        ) {
            continue;
        }
        for address in addresses_in(&header.value) {
            if !found.iter().any(|f| f.eq_ignore_ascii_case(&address)) {
                found.push(address);
            }
        }
    }
    found
}

/// The addresses of an address-list header value: `"Name" <a@b>, c@d, Group: e@f;`.
pub(crate) fn addresses_in(value: &str) -> Vec<String> {
    // The address parser finishes its last address at the end of the line.
    let line = format!("{value}\n");
    match mail_parser::parsers::MessageStream::new(line.as_bytes()).parse_address() {
        mail_parser::HeaderValue::Address(address) => address
            .iter()
            .filter_map(|a| a.address())
            .filter_map(|a| {
                // `mailing list x@example.com` (Delivered-To of some list servers): the address is the last word.
                let a = a.trim();
                let last = a.rsplit(char::is_whitespace).next().unwrap_or(a);
                is_address(last).then(|| last.to_owned())
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::mail::parse;

    const SES_STORED: &str = "Return-Path: <alice@sender.example>\r\n\
Received: from mail-wr1-f54.google.com (mail-wr1-f54.google.com [209.85.221.54])\r\n by inbound-smtp.eu-west-1.amazonaws.com with SMTP id 0n1kq9ar8s2fdqnv0c4kh2kt4v8p2dq5tr5bt2g1\r\n for support+t42@mail.example.com;\r\n Tue, 05 Mar 2024 10:02:11 +0000 (UTC)\r\n\
X-SES-Spam-Verdict: PASS\r\n\
X-SES-Virus-Verdict: FAIL\r\n\
Received-SPF: pass (spfCheck: domain of sender.example designates 209.85.221.54 as permitted sender) client-ip=209.85.221.54; envelope-from=alice@sender.example; helo=mail-wr1-f54.google.com;\r\n\
Authentication-Results: amazonses.com;\r\n spf=pass (spfCheck: domain of sender.example designates 209.85.221.54 as permitted sender) smtp.mailfrom=alice@sender.example;\r\n dkim=pass header.i=@sender.example;\r\n dmarc=fail header.from=sender.example;\r\n\
X-SES-RECEIPT: AEFBQUFBQUFBQUFH\r\n\
X-SES-Virus-Verdict: PASS\r\n\
From: Alice <alice@sender.example>\r\n\
To: support@mail.example.com\r\n\
Subject: hi\r\n\
\r\n\
body\r\n";

    #[test]
    fn recovers_everything_ses_records() {
        let email = parse(SES_STORED.as_bytes().to_vec()).unwrap();
        let env = Envelope::recover(&email);
        assert_eq!(env.to, "support+t42@mail.example.com");
        assert_eq!(env.recipients, vec!["support+t42@mail.example.com"]);
        assert_eq!(env.mailbox_hash.as_deref(), Some("t42"));
        assert_eq!(env.from, "alice@sender.example");
        assert_eq!(env.helo_domain, "mail-wr1-f54.google.com");
        assert_eq!(env.remote_ip, "209.85.221.54");
        assert_eq!(
            env.spf,
            Spf {
                result: "pass".into(),
                domain: "sender.example".into()
            }
        );
        assert_eq!(env.tls, None);
        assert_eq!(
            env.ses_message_id.as_deref(),
            Some("0n1kq9ar8s2fdqnv0c4kh2kt4v8p2dq5tr5bt2g1")
        );
        let relayed = parse(
            b"Received: from a.example by company2.com (Postfix) with ESMTPS id 8025F4681306; Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: s\r\n\r\nb".to_vec(),
        )
        .unwrap();
        assert_eq!(
            Envelope::recover(&relayed).ses_message_id,
            None,
            "a queue id is no SES id"
        );
        let ses = env.ses.unwrap();
        assert_eq!(ses.spam, Some(Verdict::Pass));
        // The top-most verdict is SES's; the PASS further down was written by someone else.
        assert_eq!(ses.virus, Some(Verdict::Fail));
        assert_eq!(ses.spf, Some(Verdict::Pass));
        assert_eq!(ses.dkim, Some(Verdict::Pass));
        assert_eq!(ses.dmarc, Some(Verdict::Fail));
        assert_eq!(env.recipient_source, RecipientSource::Smtp);
    }

    #[test]
    fn sender_written_verdicts_below_the_trace_block_are_ignored() {
        let raw = "Received: from a (b [192.0.2.1]) by c with SMTP id x for <r@d.example>; date\r\n\
From: x@y.example\r\nX-SES-Virus-Verdict: PASS\r\nSubject: s\r\n\r\nb";
        let env = Envelope::recover(&parse(raw.as_bytes().to_vec()).unwrap());
        assert_eq!(env.ses, None);
        assert_eq!(env.to, "r@d.example");
        assert_eq!(env.remote_ip, "192.0.2.1");
    }

    #[test]
    fn several_recipients_fall_back_to_headers() {
        let raw = "Received: from a (b [2001:db8::1]) by c with SMTP id x; date\r\n\
To: \"One\" <one@d.example>, two@d.example\r\nCc: Group: three@d.example;\r\nDelivered-To: one@d.example\r\n\r\nb";
        let env = Envelope::recover(&parse(raw.as_bytes().to_vec()).unwrap());
        assert_eq!(
            env.recipients,
            vec!["one@d.example", "two@d.example", "three@d.example"]
        );
        assert_eq!(env.to, "one@d.example");
        assert_eq!(env.recipient_source, RecipientSource::Headers);
        assert_eq!(env.remote_ip, "2001:db8::1");
        assert_eq!(env.spf, Spf::default());
    }

    #[test]
    fn nothing_is_invented() {
        let env = Envelope::recover(&parse(b"Subject: x\r\n\r\nbody".to_vec()).unwrap());
        assert_eq!(env.to, "");
        assert!(env.recipients.is_empty());
        assert_eq!(env.from, "");
        assert_eq!(env.remote_ip, "");
        assert_eq!(env.helo_domain, "");
        assert_eq!(env.spf.result, "none");
        assert_eq!(env.tls, None);
        assert_eq!(env.ses, None);
        assert_eq!(env.recipient_source, RecipientSource::Unknown);
    }

    #[test]
    fn the_caller_wins() {
        let email = parse(SES_STORED.as_bytes().to_vec()).unwrap();
        let env = Envelope::recover(&email).with_known(KnownEnvelope {
            recipients: Some(vec![
                "bcc@mail.example.com".into(),
                "support@mail.example.com".into(),
            ]),
            tls: Some(true),
            ..KnownEnvelope::default()
        });
        assert_eq!(env.to, "bcc@mail.example.com");
        assert_eq!(env.mailbox_hash, None);
        assert_eq!(env.recipients.len(), 2);
        assert_eq!(env.tls, Some(true));
        assert_eq!(env.from, "alice@sender.example");
        let one = env.for_recipient("support+x@mail.example.com");
        assert_eq!(one.to, "support+x@mail.example.com");
        assert_eq!(one.mailbox_hash.as_deref(), Some("x"));
    }

    #[test]
    fn comments_and_non_addresses_are_not_taken_for_clauses() {
        let raw = "Received: (qmail 5683 invoked from network); 19 Nov 2014 08:00:00 -0000\r\n\
Delivered-To: mailing list internals@lists.php.net\r\nTo: Undisclosed-Recipient:@mailman.example.com;\r\n\r\nb";
        let env = Envelope::recover(&parse(raw.as_bytes().to_vec()).unwrap());
        assert_eq!(env.helo_domain, "");
        assert_eq!(env.recipients, vec!["internals@lists.php.net"]);
        assert!(!is_address("Undisclosed-Recipient:@mailman.example.com;"));
        assert!(is_address("a.b+c@example.com"));
    }

    #[test]
    fn null_sender_stays_empty() {
        let raw = "Return-Path: <>\r\nReceived-SPF: none (no sender) client-ip=192.0.2.9; helo=mx.example;\r\nSubject: bounce\r\n\r\nb";
        let env = Envelope::recover(&parse(raw.as_bytes().to_vec()).unwrap());
        assert_eq!(env.from, "");
        assert_eq!(env.remote_ip, "192.0.2.9");
        assert_eq!(env.helo_domain, "mx.example");
        assert_eq!(env.spf.result, "none");
        assert_eq!(env.spf.domain, "mx.example");
    }
}
