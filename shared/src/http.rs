//! The webhook client over HTTP(S): one `reqwest` client built at init, a guard that refuses internal
//! addresses (checked on the address actually connected to, so DNS rebinding cannot slip past), and bounded
//! reading of the answer.

use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use crate::deliver::WebhookRequest;

/// Most bytes of a target's answer that are read; the rest is not downloaded.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Most redirects followed for one delivery.
pub const MAX_REDIRECTS: usize = 3;

/// The end of a delivery attempt that may have followed redirects.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The last answer received.
    pub response: HttpResponse,
    /// The URL that gave it.
    pub url: Url,
    /// Redirects followed before it.
    pub hops: usize,
    /// Why the last answer, a redirect, was not followed.
    pub unfollowed_redirect: Option<String>,
}

/// Which targets may be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetPolicy {
    /// Permits loopback, private and other internal addresses, and plain `http://`
    /// (`MAILROOM_ALLOW_PRIVATE_TARGETS=true`; what `mailroom dev` and `mailroom post` use).
    pub allow_private: bool,
}

/// What a target answered.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The `Location` header, for redirects.
    pub location: Option<String>,
    /// The `Retry-After` header as a wait, when given in seconds or as a date.
    pub retry_after: Option<Duration>,
    /// The start of the body, at most [`MAX_RESPONSE_BYTES`], never decompressed.
    pub body: Vec<u8>,
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The target is not one we may reach.
    #[error("target refused: {0}")]
    Refused(#[from] Refused),
    /// The target did not answer in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// No connection could be made (DNS, TCP or TLS).
    #[error("could not connect: {0}")]
    Connect(#[source] reqwest::Error),
    /// The request failed another way.
    #[error("request failed: {0}")]
    Other(#[source] reqwest::Error),
}

/// A target refused by the guard, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// The HTTP client could not be built (TLS roots, resolver).
pub type BuildError = reqwest::Error;

/// The HTTP client for webhook targets.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    policy: TargetPolicy,
    timeout: Duration,
}

impl HttpClient {
    /// Builds the client once; `timeout` bounds each request as a whole.
    pub fn new(timeout: Duration, policy: TargetPolicy) -> Result<HttpClient, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would connect on our behalf to addresses the guard never saw.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { policy }))
            .build()?;
        Ok(HttpClient {
            client,
            policy,
            timeout,
        })
    }

    /// The policy this client enforces.
    pub fn policy(&self) -> TargetPolicy {
        self.policy
    }

    /// Refuses a URL before any connection: wrong scheme, or a literal address that is internal in any of
    /// its spellings (`2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]`, ... which URL parsing normalises).
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        check_url(url, self.policy)
    }

    /// POSTs a signed request and reads the start of the answer. Basic-auth credentials in the URL are
    /// sent as an `Authorization` header.
    pub async fn post(
        &self,
        url: &Url,
        request: &WebhookRequest,
    ) -> Result<HttpResponse, SendError> {
        self.check_url(url)?;
        let mut target = url.clone();
        let credentials = basic_auth(&target);
        let _ = target.set_username("");
        let _ = target.set_password(None);

        let mut builder = self.client.post(target).body(request.body.clone());
        for (name, value) in request.headers() {
            builder = builder.header(name, value);
        }
        if let Some((user, password)) = credentials {
            builder = builder.basic_auth(user, password);
        }
        let mut response = builder.send().await.map_err(|e| self.classify(e))?;

        let status = response.status().as_u16();
        let header = |name: reqwest::header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let location = header(reqwest::header::LOCATION);
        let retry_after = header(reqwest::header::RETRY_AFTER).and_then(|v| parse_retry_after(&v));

        let mut body = Vec::new();
        while body.len() < MAX_RESPONSE_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_RESPONSE_BYTES - body.len();
                    body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
                }
                // The status is what counts; a body cut short by the target is kept as far as it came.
                Ok(None) | Err(_) => break,
            }
        }
        Ok(HttpResponse {
            status,
            location,
            retry_after,
            body,
        })
    }

    /// POSTs and follows up to [`MAX_REDIRECTS`] redirects, each hop re-checked like the first; only https
    /// hops are followed unless private targets are allowed. The same signed request goes to every hop.
    pub async fn post_following_redirects(
        &self,
        url: &Url,
        request: &WebhookRequest,
    ) -> Result<Answer, SendError> {
        let mut current = url.clone();
        let mut hops = 0;
        loop {
            let response = self.post(&current, request).await?;
            if !(300..400).contains(&response.status) {
                return Ok(Answer {
                    response,
                    url: current,
                    hops,
                    unfollowed_redirect: None,
                });
            }
            let next = response
                .location
                .as_deref()
                .and_then(|location| current.join(location).ok());
            let refusal = match &next {
                None => Some("the redirect has no usable Location".to_owned()),
                Some(_) if hops >= MAX_REDIRECTS => {
                    Some(format!("more than {MAX_REDIRECTS} redirects"))
                }
                Some(next) if next.scheme() != "https" && !self.policy.allow_private => {
                    Some(format!("redirect to a non-https URL ({})", next.scheme()))
                }
                Some(next) => self.check_url(next).err().map(|r| r.0),
            };
            match (refusal, next) {
                (None, Some(next)) => {
                    current = next;
                    hops += 1;
                }
                (refusal, _) => {
                    return Ok(Answer {
                        response,
                        url: current,
                        hops,
                        unfollowed_redirect: refusal,
                    });
                }
            }
        }
    }

    fn classify(&self, error: reqwest::Error) -> SendError {
        let mut source: Option<&(dyn StdError + 'static)> = Some(&error);
        while let Some(current) = source {
            if let Some(refused) = current.downcast_ref::<Refused>() {
                return SendError::Refused(refused.clone());
            }
            source = current.source();
        }
        if error.is_timeout() {
            SendError::Timeout(self.timeout)
        } else if error.is_connect() {
            SendError::Connect(error)
        } else {
            SendError::Other(error)
        }
    }
}

fn check_url(url: &Url, policy: TargetPolicy) -> Result<(), Refused> {
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_private => {}
        "http" => {
            return Err(Refused(
                "plain http:// targets are refused; use https:// (or set MAILROOM_ALLOW_PRIVATE_TARGETS=true for local testing)".to_owned(),
            ));
        }
        other => {
            return Err(Refused(format!(
                "the {other}: scheme is not a webhook target"
            )));
        }
    }
    let ip = match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
        Some(Host::Domain(_)) => return Ok(()),
        None => return Err(Refused("the URL has no host".to_owned())),
    };
    match (policy.allow_private, internal_reason(ip)) {
        (false, Some(reason)) => Err(Refused(format!("{ip} is a {reason} address"))),
        _ => Ok(()),
    }
}

/// Why an address must not be reached from Lambda, or `None` for a public address.
pub fn internal_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if a == 100 && (64..128).contains(&b) {
        Some("carrier-grade NAT")
    } else if ip.is_link_local() {
        // 169.254.169.254 (instance metadata) and 169.254.170.2 (container credentials) live here.
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_broadcast() || a >= 240 {
        Some("reserved")
    } else if a == 192 && b == 0 && ip.octets()[2] == 0 {
        Some("IETF protocol assignment")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("benchmarking")
    } else {
        None
    }
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_multicast() {
        return Some("multicast");
    }
    if segments[0] & 0xfe00 == 0xfc00 {
        return Some("unique-local");
    }
    if segments[0] & 0xffc0 == 0xfe80 {
        return Some("link-local");
    }
    if segments[0] & 0xffc0 == 0xfec0 {
        return Some("site-local");
    }
    // Addresses that carry an IPv4 address: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64
    // (64:ff9b::/96 and the local-use 64:ff9b:1::/48) and 6to4 (2002::/16). Each is judged by what it carries.
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    let carried = if let Some(v4) = ip.to_ipv4_mapped() {
        Some(v4)
    } else if segments[..6] == [0, 0, 0, 0, 0, 0]
        || segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
        || segments[..3] == [0x64, 0xff9b, 1]
    {
        Some(embedded(segments[6], segments[7]))
    } else if segments[0] == 0x2002 {
        Some(embedded(segments[1], segments[2]))
    } else {
        None
    };
    match carried.and_then(v4_reason) {
        Some(reason) => Some(reason),
        None if segments[0] == 0x2001 && segments[1] == 0x0db8 => Some("documentation"),
        None => None,
    }
}

fn basic_auth(url: &Url) -> Option<(String, Option<String>)> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    Some((decode(url.username()), url.password().map(decode)))
}

/// `Retry-After` as seconds (`120`) or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = date.timestamp() - chrono::Utc::now().timestamp();
    Some(Duration::from_secs(wait.max(0) as u64))
}

/// Resolves names and keeps only the addresses the policy allows, so the connection can only go to an
/// address that was checked.
struct GuardedResolver {
    policy: TargetPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.policy.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match internal_reason(addr.ip()) {
                    Some(reason) if !allow_private => {
                        refused.get_or_insert_with(|| {
                            format!("{host} resolves to {}, a {reason} address", addr.ip())
                        });
                        false
                    }
                    _ => true,
                })
                .collect();
            if allowed.is_empty() {
                let reason = refused.unwrap_or_else(|| format!("{host} did not resolve"));
                return Err(Box::new(Refused(reason)) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn refused(url: &str) -> bool {
        check_url(
            &Url::parse(url).unwrap(),
            TargetPolicy {
                allow_private: false,
            },
        )
        .is_err()
    }

    #[test]
    fn disguised_internal_addresses_are_refused() {
        for url in [
            "https://127.0.0.1/",
            "https://2130706433/",
            "https://0177.0.0.1/",
            "https://0x7f.1/",
            "https://[::ffff:127.0.0.1]/",
            "https://user@127.0.0.1/",
            "https://user:pw@10.1.2.3/",
            "https://169.254.169.254/latest/meta-data/",
            "https://169.254.170.2/v2/credentials",
            "https://100.64.0.1/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://[::1]/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[64:ff9b::127.0.0.1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://[::]/",
            "https://0.0.0.0/",
            "https://224.0.0.1/",
            "https://[ff02::1]/",
            "http://example.com/",
            "ftp://example.com/",
        ] {
            assert!(refused(url), "{url} must be refused");
        }
    }

    #[test]
    fn public_targets_pass() {
        for url in [
            "https://example.com/hook",
            "https://93.184.215.14/",
            "https://[2606:4700::1111]/",
            "https://user:pw@example.com/x",
        ] {
            assert!(!refused(url), "{url} must pass");
        }
        let allow = TargetPolicy {
            allow_private: true,
        };
        assert!(check_url(&Url::parse("http://127.0.0.1:3000/").unwrap(), allow).is_ok());
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
