//! Who the console answers: requests addressed to a loopback name (or the name given with `--http`), that
//! carry the token printed at start, and for every action a CSRF token derived from it.
//!
//! - A web page the operator visits could point a name of its own at 127.0.0.1 (DNS rebinding) and read
//!   their mail; any other `Host` gets 421.
//! - Another user of the machine (or a page that guesses the port) has no token: 401. The token travels
//!   once in the URL printed at start (as Jupyter's does); the console trades it for an HttpOnly,
//!   SameSite=Strict cookie and drops it from the address bar. Scripts may send `Authorization: Bearer`.
//! - A form posted from elsewhere carries no CSRF token (and a foreign `Origin`): 403.

use std::net::{IpAddr, SocketAddr};

use hmac::{Hmac, Mac};
use hyper::HeaderMap;
use sha2::Sha256;

/// The names the console answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts {
    /// The host of `--http` when it names this machine in a way other than loopback.
    given: Option<String>,
}

impl AllowedHosts {
    /// Loopback names, and the host part of `--http ADDR` unless it is an unspecified address
    /// (`0.0.0.0`, `[::]`), which no request is addressed to.
    pub fn new(http: &str) -> AllowedHosts {
        let host = normalise_host(host_part(http));
        let unspecified = host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified());
        AllowedHosts {
            given: (!host.is_empty() && !unspecified && !is_loopback_name(&host)).then_some(host),
        }
    }

    /// Whether a request addressed to `authority` (`host[:port]`, as the `Host` header has it) is ours.
    pub fn allows(&self, authority: &str) -> bool {
        let host = normalise_host(host_part(authority));
        is_loopback_name(&host) || self.given.as_deref() == Some(host.as_str())
    }

    /// The names, for the warning printed at start.
    pub fn describe(&self) -> String {
        match &self.given {
            Some(given) => format!("localhost, 127.0.0.1, [::1] or {given}"),
            None => "localhost, 127.0.0.1 or [::1]".to_owned(),
        }
    }
}

/// The host of `host[:port]`, `[v6][:port]` or a bare IPv6 address.
fn host_part(authority: &str) -> &str {
    let authority = authority.trim();
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    match authority.rsplit_once(':') {
        // More than one colon and no brackets: a bare IPv6 address, no port.
        Some((host, _)) if !host.contains(':') => host,
        _ => authority,
    }
}

fn normalise_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// `localhost` and its subdomains (RFC 6761: always this machine), and loopback addresses.
fn is_loopback_name(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `host:port` as it should appear in links and in the banner: the name given with `--http`, or for an
/// unspecified address (`0.0.0.0`) the loopback address, which the console answers.
pub fn reachable_authority(http: &str, bound: SocketAddr) -> String {
    let host = host_part(http);
    let unspecified = host
        .trim_matches(['[', ']'])
        .parse::<IpAddr>()
        .map_or(host.is_empty(), |ip| ip.is_unspecified());
    let port = bound.port();
    match (unspecified, bound.ip()) {
        (true, IpAddr::V6(_)) => format!("[::1]:{port}"),
        (true, IpAddr::V4(_)) => format!("127.0.0.1:{port}"),
        (false, IpAddr::V6(ip)) if host.parse::<IpAddr>().is_ok() => format!("[{ip}]:{port}"),
        (false, ip) if host.parse::<IpAddr>().is_ok() => format!("{ip}:{port}"),
        (false, _) => format!("{host}:{port}"),
    }
}

/// How a request proved it may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// The session cookie set after the token was first shown.
    Cookie,
    /// `?token=` in the URL: the link printed at start.
    Query,
    /// `Authorization: Bearer <token>`: a script.
    Bearer,
}

/// The console's secret and the names it answers to.
pub struct Guard {
    token: String,
    hosts: AllowedHosts,
    cookie: String,
}

impl Guard {
    /// A new random token; the cookie's name carries the port, since browsers share cookies between the
    /// ports of one host (a dev server and a console side by side keep their own).
    pub fn new(http: &str, port: u16) -> std::io::Result<Guard> {
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
        Ok(Guard::with_token(http, port, hex(&bytes)))
    }

    /// A guard with a known token (tests).
    pub fn with_token(http: &str, port: u16, token: String) -> Guard {
        Guard {
            token,
            hosts: AllowedHosts::new(http),
            cookie: format!("mailroom_console_{port}"),
        }
    }

    /// The token, for the URL printed at start.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The names it answers to.
    pub fn hosts(&self) -> &AllowedHosts {
        &self.hosts
    }

    /// Whether a request addressed to `authority` is ours.
    pub fn host_allowed(&self, authority: Option<&str>) -> bool {
        authority.is_some_and(|a| self.hosts.allows(a))
    }

    /// The credential a request carries, if it is the token.
    pub fn credential(&self, headers: &HeaderMap, query_token: Option<&str>) -> Option<Credential> {
        let bearer = headers
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if bearer.is_some_and(|t| self.is_token(t)) {
            return Some(Credential::Bearer);
        }
        let cookie = headers
            .get_all(hyper::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == self.cookie)
            .map(|(_, value)| value);
        if cookie.is_some_and(|t| self.is_token(t)) {
            return Some(Credential::Cookie);
        }
        query_token
            .filter(|t| self.is_token(t))
            .map(|_| Credential::Query)
    }

    /// The `Set-Cookie` value that keeps the session.
    pub fn set_cookie(&self) -> String {
        format!(
            "{}={}; Path=/; HttpOnly; SameSite=Strict",
            self.cookie, self.token
        )
    }

    fn is_token(&self, given: &str) -> bool {
        equal_in_constant_time(given.trim().as_bytes(), self.token.as_bytes())
    }

    /// The CSRF token every form carries: a keyed digest of the session's token, so it proves the page
    /// came from this console without being the token itself.
    pub fn csrf(&self) -> String {
        self.digest("csrf")
    }

    /// Whether a form's CSRF token is right.
    pub fn csrf_ok(&self, given: Option<&str>) -> bool {
        given.is_some_and(|g| equal_in_constant_time(g.as_bytes(), self.csrf().as_bytes()))
    }

    /// The signature that lets a sandboxed frame (which sends no cookie of ours) load one message's
    /// HTML body or parts.
    pub fn frame_signature(&self, message_id: &str) -> String {
        self.digest(&format!("frame\0{message_id}"))
    }

    /// Whether a frame signature is right for the message.
    pub fn frame_ok(&self, message_id: &str, given: Option<&str>) -> bool {
        given.is_some_and(|g| {
            equal_in_constant_time(g.as_bytes(), self.frame_signature(message_id).as_bytes())
        })
    }

    fn digest(&self, purpose: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.token.as_bytes()) else {
            return String::new();
        };
        mac.update(purpose.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// Whether a POST's `Origin` (when the browser sends one) is this console.
    pub fn origin_ok(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers
            .get(hyper::header::ORIGIN)
            .and_then(|v| v.to_str().ok())
        else {
            return true;
        };
        origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|authority| self.hosts.allows(authority))
    }
}

fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_names_and_the_given_name_are_answered() {
        let hosts = AllowedHosts::new("127.0.0.1:8026");
        for ok in [
            "127.0.0.1:8026",
            "localhost:8026",
            "LOCALHOST.",
            "[::1]:8026",
            "a.localhost",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example:8026",
            "127.0.0.1.evil.example",
            "10.0.0.1",
            "",
        ] {
            assert!(!hosts.allows(bad), "{bad}");
        }
        let named = AllowedHosts::new("devbox.lan:8026");
        assert!(named.allows("devbox.lan:8026"));
        assert!(!named.allows("other.lan"));
        assert!(!AllowedHosts::new("0.0.0.0:8026").allows("0.0.0.0:8026"));
    }

    #[test]
    fn links_name_a_host_that_answers() {
        let bound: SocketAddr = "0.0.0.0:8026".parse().unwrap();
        assert_eq!(reachable_authority("0.0.0.0:8026", bound), "127.0.0.1:8026");
        let bound: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        assert_eq!(reachable_authority("localhost:0", bound), "localhost:9000");
    }

    #[test]
    fn the_token_is_needed_and_a_wrong_one_is_refused() {
        let guard = Guard::with_token("127.0.0.1:0", 4242, "secret-token".to_owned());
        let mut headers = HeaderMap::new();
        assert_eq!(guard.credential(&headers, None), None);
        assert_eq!(guard.credential(&headers, Some("secret-tokem")), None);
        assert_eq!(
            guard.credential(&headers, Some("secret-token")),
            Some(Credential::Query)
        );
        headers.insert(
            hyper::header::COOKIE,
            hyper::header::HeaderValue::from_static("a=b; mailroom_console_4242=secret-token"),
        );
        assert_eq!(guard.credential(&headers, None), Some(Credential::Cookie));
        let mut other_port = HeaderMap::new();
        other_port.insert(
            hyper::header::COOKIE,
            hyper::header::HeaderValue::from_static("mailroom_console_1=secret-token"),
        );
        assert_eq!(guard.credential(&other_port, None), None);
    }

    #[test]
    fn csrf_and_frame_signatures_are_keyed_by_the_token() {
        let one = Guard::with_token("127.0.0.1:0", 1, "one".to_owned());
        let two = Guard::with_token("127.0.0.1:0", 1, "two".to_owned());
        assert!(one.csrf_ok(Some(&one.csrf())));
        assert!(!one.csrf_ok(Some(&two.csrf())));
        assert!(!one.csrf_ok(None));
        assert!(one.frame_ok("m1", Some(&one.frame_signature("m1"))));
        assert!(!one.frame_ok("m2", Some(&one.frame_signature("m1"))));
        let mut headers = HeaderMap::new();
        assert!(one.origin_ok(&headers));
        headers.insert(
            hyper::header::ORIGIN,
            hyper::header::HeaderValue::from_static("http://evil.example"),
        );
        assert!(!one.origin_ok(&headers));
        headers.insert(
            hyper::header::ORIGIN,
            hyper::header::HeaderValue::from_static("http://127.0.0.1:8026"),
        );
        assert!(one.origin_ok(&headers));
    }
}
