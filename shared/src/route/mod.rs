//! Routes: which recipients go where, and the rules that pick the route of an address.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::format::Format;
use crate::mail::envelope::{SesVerdicts, Verdict, mailbox_hash};

mod secret;

pub(crate) use secret::LENIENT_STANDARD;
pub use secret::{
    GENERATED_KEY_LEN, GenerateError, MAX_KEY_LEN, MIN_KEY_LEN, SECRET_PREFIX, SecretError,
    WebhookSecret,
};

/// Which addresses a route takes, from most to least specific.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// One address, e.g. `support@example.com` (also takes `support+tag@example.com`).
    Exact(String),
    /// Every address of one domain: `*@example.com`.
    Domain(String),
    /// Every address of every subdomain of a domain: `*@*.example.com`.
    Subdomains(String),
    /// Every address: `*`.
    CatchAll,
}

/// A pattern that is not an address, `*@domain`, `*@*.domain` or `*`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a route pattern: use an address (support@example.com), *@example.com, *@*.example.com or *"
)]
pub struct BadPattern(pub String);

impl FromStr for Pattern {
    type Err = BadPattern;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let lower = text.trim().to_ascii_lowercase();
        let bad = || BadPattern(text.to_owned());
        if lower == "*" {
            return Ok(Pattern::CatchAll);
        }
        let (local, domain) = lower.rsplit_once('@').ok_or_else(bad)?;
        let valid_domain = |d: &str| {
            !d.is_empty()
                && !d.starts_with('.')
                && !d.ends_with('.')
                && !d.contains("..")
                && d.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        };
        match (local, domain.strip_prefix("*.")) {
            ("*", Some(parent)) if valid_domain(parent) => {
                Ok(Pattern::Subdomains(parent.to_owned()))
            }
            ("*", None) if valid_domain(domain) => Ok(Pattern::Domain(domain.to_owned())),
            (local, None)
                if !local.is_empty()
                    && !local.contains(['*', ' ', '<', '>', '"', ','])
                    && valid_domain(domain) =>
            {
                Ok(Pattern::Exact(lower))
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Exact(address) => f.write_str(address),
            Pattern::Domain(domain) => write!(f, "*@{domain}"),
            Pattern::Subdomains(domain) => write!(f, "*@*.{domain}"),
            Pattern::CatchAll => f.write_str("*"),
        }
    }
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How attachments travel to a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachmentMode {
    /// Base64 inside the payload.
    #[default]
    Inline,
    /// Stored in the bucket; the payload carries a link.
    S3,
    /// Stored only when the inline payload would be too large.
    Auto,
}

impl AttachmentMode {
    /// The word used in routes and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            AttachmentMode::Inline => "inline",
            AttachmentMode::S3 => "s3",
            AttachmentMode::Auto => "auto",
        }
    }
}

impl FromStr for AttachmentMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "inline" => Ok(AttachmentMode::Inline),
            "s3" => Ok(AttachmentMode::S3),
            "auto" => Ok(AttachmentMode::Auto),
            _ => Err(format!(
                "unknown attachments mode `{text}`: use inline, s3 or auto"
            )),
        }
    }
}

/// SES verdicts that drop a message instead of delivering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DropOn {
    /// SES's virus scan failed.
    Virus,
    /// SES's spam scan failed.
    Spam,
}

impl DropOn {
    /// The word used in routes and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            DropOn::Virus => "virus",
            DropOn::Spam => "spam",
        }
    }

    /// Whether the verdicts trip this rule.
    pub fn trips(self, verdicts: Option<&SesVerdicts>) -> bool {
        let verdict = verdicts.and_then(|v| match self {
            DropOn::Virus => v.virus,
            DropOn::Spam => v.spam,
        });
        verdict == Some(Verdict::Fail)
    }
}

impl FromStr for DropOn {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "virus" => Ok(DropOn::Virus),
            "spam" => Ok(DropOn::Spam),
            _ => Err(format!("unknown verdict `{text}`: use virus or spam")),
        }
    }
}

/// Record fields a route keeps out of its delivery records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Redact {
    /// The `Subject`.
    Subject,
    /// The envelope sender.
    Sender,
    /// The recipient.
    Recipient,
    /// The connecting client's IP address.
    SenderIp,
    /// The `Message-ID` header.
    MessageId,
    /// The start of the target's answer.
    ResponseBody,
}

impl Redact {
    /// Every field that can be redacted.
    pub const ALL: [Redact; 6] = [
        Redact::Subject,
        Redact::Sender,
        Redact::Recipient,
        Redact::SenderIp,
        Redact::MessageId,
        Redact::ResponseBody,
    ];

    /// The field's name in records and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Redact::Subject => "subject",
            Redact::Sender => "sender",
            Redact::Recipient => "recipient",
            Redact::SenderIp => "sender_ip",
            Redact::MessageId => "message_id",
            Redact::ResponseBody => "response_body",
        }
    }
}

impl FromStr for Redact {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Redact::ALL
            .into_iter()
            .find(|r| r.as_str() == text.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                format!(
                    "unknown field `{text}`: use subject, sender, recipient, sender_ip, message_id or response_body"
                )
            })
    }
}

/// Where a route POSTs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookTarget {
    /// The target URL; may carry basic-auth credentials, which are never shown or recorded.
    pub url: String,
    /// The POST format.
    #[serde(default)]
    pub format: Format,
    /// One secret, or two while rotating (both signatures are sent).
    #[serde(default, with = "secret_texts")]
    pub secrets: Vec<WebhookSecret>,
    /// How attachments travel.
    #[serde(default)]
    pub attachments: AttachmentMode,
    /// Set when the target answered 410 Gone; cleared by re-enabling the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<Disabled>,
}

/// Secrets stored in their `whsec_…` text form.
pub(crate) mod secret_texts {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::WebhookSecret;

    pub fn serialize<S: Serializer>(
        secrets: &[WebhookSecret],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(secrets.iter().map(ToString::to_string))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<WebhookSecret>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|text| WebhookSecret::parse(text).map_err(serde::de::Error::custom))
            .collect()
    }
}

impl WebhookTarget {
    /// The URL as records, logs and listings show it: scheme, host, port and path; never credentials, a
    /// query or a fragment (where tokens live).
    pub fn display_url(&self) -> String {
        redact_url(&self.url)
    }

    /// Whether posts to it go unsigned: the application cannot tell them from forgeries.
    pub fn is_unsigned(&self) -> bool {
        self.secrets.is_empty()
    }

    /// The key Mailgun's formats sign with: the first secret's text exactly as given (Mailgun's form has
    /// room for one signature; after a rotation the new secret is first).
    pub fn mailgun_signing_key(&self) -> Option<String> {
        self.secrets.first().map(ToString::to_string)
    }
}

/// Why and when a webhook stopped being used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disabled {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    pub reason: String,
}

/// A route: the recipients it takes and what happens to their mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The recipients it takes.
    pub pattern: Pattern,
    /// At most one webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookTarget>,
    /// Addresses the message is forwarded to.
    #[serde(default)]
    pub forward: Vec<String>,
    /// The verified address forwards are sent from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_from: Option<String>,
    /// SES verdicts that drop the message.
    #[serde(default = "default_drop_on")]
    pub drop_on: Vec<DropOn>,
    /// Fields kept out of this route's records.
    #[serde(default)]
    pub redact: Vec<Redact>,
    /// Where bounce, complaint and delivery events of forwarded mail are POSTed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<String>,
    /// A disabled route still claims its recipients; their mail is recorded, not delivered.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn default_drop_on() -> Vec<DropOn> {
    vec![DropOn::Virus]
}

fn enabled_by_default() -> bool {
    true
}

impl Route {
    /// A route with no targets yet, dropping virus-infected mail, enabled.
    pub fn new(pattern: Pattern) -> Route {
        Route {
            pattern,
            webhook: None,
            forward: Vec::new(),
            forward_from: None,
            drop_on: default_drop_on(),
            redact: Vec::new(),
            events: None,
            enabled: true,
        }
    }

    /// Whether the route redacts `field`.
    pub fn redacts(&self, field: Redact) -> bool {
        self.redact.contains(&field)
    }
}

/// How a recipient matched its route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchRule {
    /// The address itself.
    ExactAddress,
    /// The address without its `+tag`.
    AddressWithoutTag,
    /// `*@domain`.
    Domain,
    /// `*@*.domain`.
    Subdomain,
    /// `*`.
    CatchAll,
}

impl MatchRule {
    /// Why, in words, for `mailroom routes test`.
    pub fn describe(self) -> &'static str {
        match self {
            MatchRule::ExactAddress => "exact address",
            MatchRule::AddressWithoutTag => "the address without its +tag",
            MatchRule::Domain => "every address of the domain",
            MatchRule::Subdomain => "every address of a subdomain",
            MatchRule::CatchAll => "catch-all",
        }
    }
}

/// The route of one recipient.
#[derive(Debug, Clone, Copy)]
pub struct RouteMatch<'a> {
    /// The route.
    pub route: &'a Route,
    /// Which rule matched.
    pub rule: MatchRule,
}

/// Picks the most specific route for `recipient`: exact address, the address without its `+tag`, `*@domain`,
/// the closest `*@*.parent`, then `*`.
pub fn resolve<'a>(routes: &'a [Route], recipient: &str) -> Option<RouteMatch<'a>> {
    let address = recipient.trim().to_ascii_lowercase();
    let (local, domain) = address.rsplit_once('@')?;
    let found = |wanted: &Pattern, rule| {
        routes
            .iter()
            .find(|r| &r.pattern == wanted)
            .map(|route| RouteMatch { route, rule })
    };
    if let Some(m) = found(&Pattern::Exact(address.clone()), MatchRule::ExactAddress) {
        return Some(m);
    }
    if mailbox_hash(&address).is_some()
        && let Some((user, _)) = local.split_once('+')
        && let Some(m) = found(
            &Pattern::Exact(format!("{user}@{domain}")),
            MatchRule::AddressWithoutTag,
        )
    {
        return Some(m);
    }
    if let Some(m) = found(&Pattern::Domain(domain.to_owned()), MatchRule::Domain) {
        return Some(m);
    }
    // The closest parent wins: a.b.example.com tries b.example.com, then example.com, then com.
    let mut parent = domain;
    while let Some((_, rest)) = parent.split_once('.') {
        if let Some(m) = found(&Pattern::Subdomains(rest.to_owned()), MatchRule::Subdomain) {
            return Some(m);
        }
        parent = rest;
    }
    found(&Pattern::CatchAll, MatchRule::CatchAll)
}

/// A URL as it may be recorded, logged or shown: scheme, host, port and path. `user:password@`, the query
/// and the fragment are removed, since that is where credentials and tokens travel.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.set_fragment(None);
            parsed.to_string()
        }
        Err(_) => "(invalid URL)".to_owned(),
    }
}

/// A URL's scheme, host and port only (`https://app.example.com`, `http://127.0.0.1:3000`): what a
/// data-protection export says about a route's targets.
pub fn url_origin(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => match (parsed.host_str(), parsed.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}", parsed.scheme()),
            (Some(host), None) => format!("{}://{host}", parsed.scheme()),
            (None, _) => "(no host)".to_owned(),
        },
        Err(_) => "(invalid URL)".to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn route(pattern: &str) -> Route {
        Route::new(pattern.parse().unwrap())
    }

    fn pick(routes: &[Route], address: &str) -> Option<(String, MatchRule)> {
        resolve(routes, address).map(|m| (m.route.pattern.to_string(), m.rule))
    }

    #[test]
    fn patterns_parse_and_print() {
        for text in [
            "support@example.com",
            "*@example.com",
            "*@*.example.com",
            "*",
        ] {
            assert_eq!(text.parse::<Pattern>().unwrap().to_string(), text);
        }
        assert_eq!(
            "Support@Example.COM".parse::<Pattern>().unwrap(),
            Pattern::Exact("support@example.com".into())
        );
        for bad in [
            "",
            "example.com",
            "*@",
            "a@b@",
            "*.example.com",
            "a*@example.com",
            "@example.com",
            "x@exa mple.com",
        ] {
            assert!(bad.parse::<Pattern>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_most_specific_route_wins() {
        let routes = vec![
            route("*"),
            route("*@*.example.com"),
            route("*@*.eu.example.com"),
            route("*@example.com"),
            route("support@example.com"),
            route("support+vip@example.com"),
        ];
        assert_eq!(
            pick(&routes, "support@example.com").unwrap().1,
            MatchRule::ExactAddress
        );
        assert_eq!(
            pick(&routes, "Support+VIP@Example.com").unwrap(),
            ("support+vip@example.com".into(), MatchRule::ExactAddress)
        );
        assert_eq!(
            pick(&routes, "support+t42@example.com").unwrap(),
            ("support@example.com".into(), MatchRule::AddressWithoutTag)
        );
        assert_eq!(
            pick(&routes, "sales@example.com").unwrap(),
            ("*@example.com".into(), MatchRule::Domain)
        );
        assert_eq!(
            pick(&routes, "a@mail.eu.example.com").unwrap(),
            ("*@*.eu.example.com".into(), MatchRule::Subdomain)
        );
        assert_eq!(
            pick(&routes, "a@us.example.com").unwrap(),
            ("*@*.example.com".into(), MatchRule::Subdomain)
        );
        assert_eq!(
            pick(&routes, "a@other.test").unwrap(),
            ("*".into(), MatchRule::CatchAll)
        );
        assert!(pick(&routes[1..], "a@other.test").is_none());
        assert!(pick(&routes, "not-an-address").is_none());
    }

    #[test]
    fn credentials_and_tokens_never_leave_the_url_field() {
        assert_eq!(
            redact_url("https://user:secret@hooks.example.com/in?x=1"),
            "https://hooks.example.com/in"
        );
        assert_eq!(
            redact_url("https://hooks.example.com:8443/in?token=SUPERSECRET#frag"),
            "https://hooks.example.com:8443/in"
        );
        assert_eq!(
            redact_url("https://hooks.example.com/in"),
            "https://hooks.example.com/in"
        );
        assert_eq!(
            url_origin("https://u:p@hooks.example.com/in?token=x"),
            "https://hooks.example.com"
        );
        assert_eq!(
            url_origin("http://127.0.0.1:3000/mail"),
            "http://127.0.0.1:3000"
        );
    }

    #[test]
    fn drop_rules_read_ses_verdicts() {
        let failed = SesVerdicts {
            virus: Some(Verdict::Fail),
            spam: Some(Verdict::Pass),
            ..SesVerdicts::default()
        };
        assert!(DropOn::Virus.trips(Some(&failed)));
        assert!(!DropOn::Spam.trips(Some(&failed)));
        assert!(!DropOn::Virus.trips(None));
        assert_eq!(route("*").drop_on, vec![DropOn::Virus]);
    }
}
