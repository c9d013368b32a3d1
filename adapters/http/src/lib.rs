//! The webhook client over HTTP(S): one `reqwest` client built at init, a guard that refuses internal
//! addresses (checked on the address actually connected to, so DNS rebinding cannot slip past), redirects
//! followed only within the target's origin, and bounded reading of the answer.
//!
//! Nothing this module reports names more of a target than its scheme, host and port: reqwest's errors
//! carry the whole URL (a `?token=` in it included), so they are stripped of it before they are kept.

use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use mailroom::deliver::WebhookRequest;
use mailroom::deliver::answer::{
    Answer, HttpResponse, MAX_REDIRECTS, MAX_RESPONSE_BYTES, Refused, SendError,
};
use mailroom::ports::Webhooks;

/// Which targets may be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetPolicy {
    /// Permits loopback, private, link-local and other internal addresses
    /// (`MAILROOM_ALLOW_PRIVATE_TARGETS=true`).
    pub allow_private: bool,
    /// Permits plain `http://` targets (`MAILROOM_ALLOW_HTTP_TARGETS=true`).
    pub allow_http: bool,
}

impl TargetPolicy {
    /// What the stack's functions enforce by default: public https targets only.
    pub const STRICT: TargetPolicy = TargetPolicy {
        allow_private: false,
        allow_http: false,
    };

    /// What runs on the user's own machine allows (`mailroom dev`, `mailroom post`): its own services,
    /// over plain http too.
    pub const LOCAL: TargetPolicy = TargetPolicy {
        allow_private: true,
        allow_http: true,
    };
}

impl Webhooks for HttpClient {
    fn post(
        &self,
        url: &Url,
        request: &WebhookRequest,
    ) -> impl Future<Output = Result<Answer, SendError>> + Send {
        self.post_following_redirects(url, request)
    }
}

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

    /// The URL to connect to, checked, without its credentials, and those credentials (sent as basic auth).
    fn target(&self, url: &Url) -> Result<(Url, Option<BasicAuth>), Refused> {
        self.check_url(url)?;
        let mut target = url.clone();
        let credentials = basic_auth(&target);
        let _ = target.set_username("");
        let _ = target.set_password(None);
        Ok((target, credentials))
    }

    /// GETs a URL without a body, as a 303 answer to a POST asks, and reads the start of the answer.
    /// Basic-auth credentials in the URL are sent as an `Authorization` header.
    pub async fn get(
        &self,
        url: &Url,
        request: &WebhookRequest,
    ) -> Result<HttpResponse, SendError> {
        let (target, credentials) = self.target(url)?;
        // No body, so no content type and no signature: only who asks, and for which delivery.
        let mut builder = self
            .client
            .get(target)
            .header(reqwest::header::USER_AGENT, mailroom::deliver::USER_AGENT)
            .header(mailroom::deliver::signing::HEADER_ID, request.id.as_str());
        if let Some((user, password)) = credentials {
            builder = builder.basic_auth(user, password);
        }
        let response = builder.send().await.map_err(|e| self.classify(e))?;
        Ok(read_answer(response).await)
    }

    /// POSTs a signed request and reads the start of the answer. Basic-auth credentials in the URL are
    /// sent as an `Authorization` header.
    pub async fn post(
        &self,
        url: &Url,
        request: &WebhookRequest,
    ) -> Result<HttpResponse, SendError> {
        let (target, credentials) = self.target(url)?;
        let mut builder = self.client.post(target).body(send_body(&request.body));
        if let mailroom::deliver::RequestBody::Streamed { len, .. } = &request.body {
            builder = builder.header(reqwest::header::CONTENT_LENGTH, *len);
        }
        for (name, value) in request.headers() {
            builder = builder.header(name, value);
        }
        if let Some((user, password)) = credentials {
            builder = builder.basic_auth(user, password);
        }
        let response = builder.send().await.map_err(|e| self.classify(e))?;
        Ok(read_answer(response).await)
    }

    /// POSTs and follows up to [`MAX_REDIRECTS`] redirects within the target's origin (same scheme, host
    /// and port), each hop re-checked like the first. A 301, 302, 307 or 308 gets the same signed POST
    /// again; a 303 gets a GET without the body (and every hop after it too). A redirect to another origin
    /// is not followed: the signed body and any credentials stay with the host they were meant for.
    pub async fn post_following_redirects(
        &self,
        url: &Url,
        request: &WebhookRequest,
    ) -> Result<Answer, SendError> {
        let mut current = url.clone();
        let mut hops = 0;
        let mut get = false;
        loop {
            let response = if get {
                self.get(&current, request).await?
            } else {
                self.post(&current, request).await?
            };
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
                Some(next) => redirect_refusal(&current, next)
                    .or_else(|| self.check_url(next).err().map(|r| r.0)),
            };
            match (refusal, next) {
                (None, Some(mut next)) => {
                    // Same origin, so the credentials the target was given still belong there.
                    if next.username().is_empty() && next.password().is_none() {
                        let _ = next.set_username(current.username());
                        let _ = next.set_password(current.password());
                    }
                    get = get || response.status == 303;
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
        // The URL may hold a token in its query: it stays out of every message kept or logged.
        let error = error.without_url();
        if error.is_timeout() {
            SendError::Timeout(self.timeout)
        } else if error.is_connect() {
            SendError::Connect(Box::new(error))
        } else {
            SendError::Other(Box::new(error))
        }
    }
}

/// Why a redirect from `from` to `to` is not followed, or `None`: only redirects within one origin are.
fn redirect_refusal(from: &Url, to: &Url) -> Option<String> {
    if from.origin() == to.origin() {
        return None;
    }
    Some(match (to.scheme(), to.host_str()) {
        (scheme, _) if scheme != from.scheme() => {
            format!(
                "redirect to another scheme ({scheme}); only redirects within the target's origin are followed"
            )
        }
        (_, Some(host)) => format!(
            "redirect to another origin ({host}); only redirects within the target's origin are followed"
        ),
        (_, None) => "redirect to a URL without a host".to_owned(),
    })
}

/// Reads the status, the headers that matter and the start of the body of an answer.
async fn read_answer(mut response: reqwest::Response) -> HttpResponse {
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
    HttpResponse {
        status,
        location,
        retry_after,
        body,
    }
}

fn check_url(url: &Url, policy: TargetPolicy) -> Result<(), Refused> {
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        "http" => {
            return Err(Refused(
                "plain http:// targets are refused; use https:// (or set MAILROOM_ALLOW_HTTP_TARGETS=true for local testing)".to_owned(),
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
    } else if matches!(
        (a, b, ip.octets()[2]),
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113)
    ) {
        Some("documentation")
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
    // IPv4-translated addresses of SIIT (::ffff:0:a.b.c.d, RFC 6052/7915) reach IPv4 hosts through a
    // translator; Teredo (2001::/32) tunnels to an obfuscated IPv4 address; 100::/64 is discard-only.
    // None is a webhook's address, and what they lead to cannot be checked: all are refused outright.
    if segments[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return Some("IPv4-translated (SIIT)");
    }
    if segments[0] == 0x2001 && segments[1] == 0 {
        return Some("Teredo");
    }
    if segments[..4] == [0x0100, 0, 0, 0] {
        return Some("discard-only");
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

/// The body as reqwest sends it. A streamed body is written by a blocking task into a small channel, so
/// at most a few chunks of it are in memory at once; if the request ends early the writer stops.
fn send_body(body: &mailroom::deliver::RequestBody) -> reqwest::Body {
    use mailroom::deliver::RequestBody;
    match body {
        RequestBody::Bytes(bytes) => reqwest::Body::from(bytes.clone()),
        RequestBody::Streamed { writer, .. } => {
            let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
            let writer = writer.clone();
            tokio::task::spawn_blocking(move || {
                let mut out = ChannelWriter {
                    sender,
                    chunk: Vec::with_capacity(STREAM_CHUNK),
                };
                let written = writer.write_body(&mut out).and_then(|()| {
                    use std::io::Write;
                    out.flush()
                });
                if let Err(error) = written {
                    // Tell the reader why the body stopped short; nobody listens when it hung up.
                    let _ = out.sender.blocking_send(Err(error));
                }
            });
            reqwest::Body::wrap_stream(futures_util::stream::unfold(
                receiver,
                |mut receiver| async move { receiver.recv().await.map(|item| (item, receiver)) },
            ))
        }
    }
}

/// Bytes per chunk of a streamed body.
const STREAM_CHUNK: usize = 64 * 1024;

/// An `io::Write` that hands full chunks to the request being sent.
struct ChannelWriter {
    sender: tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>,
    chunk: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = STREAM_CHUNK - self.chunk.len();
        let taken = buf.len().min(room);
        self.chunk
            .extend_from_slice(buf.get(..taken).unwrap_or_default());
        if self.chunk.len() >= STREAM_CHUNK {
            self.flush()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(STREAM_CHUNK));
        self.sender
            .blocking_send(Ok(bytes::Bytes::from(full)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the request ended"))
    }
}

/// A user name and an optional password, sent as basic auth.
type BasicAuth = (String, Option<String>);

fn basic_auth(url: &Url) -> Option<BasicAuth> {
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
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn refused(url: &str) -> bool {
        check_url(&Url::parse(url).unwrap(), TargetPolicy::STRICT).is_err()
    }

    /// One address of each range refused since issue #14, in the spellings URL parsing accepts.
    const NEWLY_REFUSED: [&str; 12] = [
        // ::ffff:0:0/96, IPv4-translated (SIIT), whatever IPv4 address it carries.
        "https://[::ffff:0:7f00:1]/",
        "https://[::ffff:0:5db8:d70e]/",
        // 2001::/32, Teredo.
        "https://[2001::1]/",
        "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
        // 100::/64, discard-only.
        "https://[100::1]/",
        "https://[100::ffff:ffff:ffff:ffff]/",
        // 192.0.0.0/24, IETF protocol assignments.
        "https://192.0.0.8/",
        // 198.18.0.0/15, benchmarking.
        "https://198.18.0.1/",
        "https://198.19.255.254/",
        // 240.0.0.0/4, reserved.
        "https://240.0.0.1/",
        "https://255.255.255.254/",
        // Documentation.
        "https://203.0.113.7/",
    ];

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
        for url in NEWLY_REFUSED {
            assert!(refused(url), "{url} must be refused");
        }
    }

    #[test]
    fn the_neighbours_of_refused_ranges_pass() {
        for url in [
            // Beside 2001::/32 (Teredo) and 2001:db8::/32 (documentation).
            "https://[2001:4860:4860::8888]/",
            // Beside 100::/64.
            "https://[100:0:0:1::1]/",
            // Beside 198.18.0.0/15 and 192.0.0.0/24.
            "https://198.20.0.1/",
            "https://192.0.1.1/",
        ] {
            assert!(!refused(url), "{url} must pass");
        }
    }

    #[tokio::test]
    async fn each_new_range_is_refused_before_any_connection() {
        let client = HttpClient::new(Duration::from_secs(5), TargetPolicy::STRICT).unwrap();
        let request = WebhookRequest::new("msg_1", 0, "text/plain", "x", &[]);
        for url in NEWLY_REFUSED {
            match client.post(&Url::parse(url).unwrap(), &request).await {
                Err(SendError::Refused(_)) => {}
                other => panic!("{url}: {other:?}"),
            }
        }
        // A name that resolves into one of them is refused by the resolver, before a connection too.
        for literal in [
            "::ffff:0:7f00:1",
            "2001::1",
            "100::1",
            "198.18.0.1",
            "240.0.0.1",
        ] {
            let resolver = GuardedResolver {
                policy: TargetPolicy::STRICT,
            };
            let resolved = resolver.resolve(literal.parse::<Name>().unwrap()).await;
            let error = resolved.err().expect("refused");
            assert!(
                error.downcast_ref::<Refused>().is_some(),
                "{literal}: {error}"
            );
        }
    }

    #[test]
    fn plain_http_and_private_addresses_are_separate_settings() {
        let url = |u: &str| Url::parse(u).unwrap();
        let http_only = TargetPolicy {
            allow_private: false,
            allow_http: true,
        };
        assert!(check_url(&url("http://example.com/"), http_only).is_ok());
        assert!(check_url(&url("http://127.0.0.1/"), http_only).is_err());
        let private_only = TargetPolicy {
            allow_private: true,
            allow_http: false,
        };
        assert!(check_url(&url("https://127.0.0.1/"), private_only).is_ok());
        assert!(check_url(&url("http://127.0.0.1/"), private_only).is_err());
    }

    #[test]
    fn only_redirects_within_the_origin_are_followed() {
        let url = |u: &str| Url::parse(u).unwrap();
        let from = url("https://app.example.com/hook?token=secret");
        assert_eq!(
            redirect_refusal(&from, &url("https://app.example.com/other")),
            None
        );
        assert_eq!(
            redirect_refusal(&from, &url("https://app.example.com:443/x")),
            None,
            "the default port is the same origin"
        );
        for other in [
            "https://evil.example.net/hook",
            "https://app.example.com:8443/hook",
            "http://app.example.com/hook",
            "https://sub.app.example.com/hook",
        ] {
            let why = redirect_refusal(&from, &url(other)).expect(other);
            assert!(!why.contains("secret") && !why.contains("/hook"), "{why}");
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
        assert!(
            check_url(
                &Url::parse("http://127.0.0.1:3000/").unwrap(),
                TargetPolicy::LOCAL
            )
            .is_ok()
        );
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
