//! What a request asks and how the console answers: parameters, forms, replies with their security
//! headers, and HTML escaping.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use serde_json::Value;

/// A reply.
pub type Reply = Response<Full<Bytes>>;

/// The largest form the console reads (a route, an address, a few buttons).
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Name–value pairs of a query string or a form, in order.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Reads `a=1&b=2` (form encoding).
    pub fn parse(text: &str) -> Params {
        Params(
            url::form_urlencoded::parse(text.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, trimmed, unless it is empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Every non-empty value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
            .collect()
    }
}

/// A request, read.
pub struct Asked {
    /// GET, POST, …
    pub method: Method,
    /// The path, still percent-encoded.
    pub path: String,
    /// The query string's parameters.
    pub query: Params,
    /// A POSTed form's fields (empty for other requests).
    pub form: Params,
    /// The headers.
    pub headers: HeaderMap,
    /// `host[:port]` the request was addressed to.
    pub authority: Option<String>,
}

impl Asked {
    /// Reads the request; a form larger than [`MAX_FORM_BYTES`] is refused with 413.
    pub async fn read(request: Request<Incoming>) -> Result<Asked, Reply> {
        let (parts, body) = request.into_parts();
        let authority = parts
            .uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                parts
                    .headers
                    .get(hyper::header::HOST)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            });
        let query = Params::parse(parts.uri.query().unwrap_or(""));
        let form = if parts.method == Method::POST {
            let bytes = Limited::new(body, MAX_FORM_BYTES)
                .collect()
                .await
                .map_err(|_| text(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large\n"))?
                .to_bytes();
            Params::parse(&String::from_utf8_lossy(&bytes))
        } else {
            Params::default()
        };
        Ok(Asked {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            query,
            form,
            headers: parts.headers,
            authority,
        })
    }

    /// The path's segments, percent-decoded.
    pub fn segments(&self) -> Vec<String> {
        self.path
            .trim_matches('/')
            .split('/')
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect()
    }

    /// Whether the client asked for JSON rather than a page.
    pub fn wants_json(&self) -> bool {
        self.path.starts_with("/api/")
    }
}

/// A reply with a body and a content type.
pub fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

/// An HTML page.
pub fn html(status: StatusCode, body: String) -> Reply {
    reply(status, "text/html; charset=utf-8", body)
}

/// Plain text.
pub fn text(status: StatusCode, body: &str) -> Reply {
    reply(status, "text/plain; charset=utf-8", body.to_owned())
}

/// JSON.
pub fn json(status: StatusCode, value: &Value) -> Reply {
    reply(
        status,
        "application/json",
        serde_json::to_vec_pretty(value).unwrap_or_default(),
    )
}

/// 303 See Other: where a browser goes after a form.
pub fn redirect(location: &str) -> Reply {
    let mut response = reply(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    if let Ok(value) = location.parse() {
        response
            .headers_mut()
            .insert(hyper::header::LOCATION, value);
    }
    response
}

/// Sets a header, unless the value cannot be one.
pub fn set_header(reply: &mut Reply, name: hyper::header::HeaderName, value: &str) {
    if let Ok(value) = value.parse() {
        reply.headers_mut().insert(name, value);
    }
}

/// Text made safe for HTML, in element content and in quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A value made safe for a URL's query or path segment.
pub fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The query string of these pairs, empty values left out.
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        out.append_pair(name, value);
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_mail_is_shown_not_run() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn parameters_are_decoded_and_blank_ones_ignored() {
        let params = Params::parse("a=%20x+y%20&b=&c=1&c=2");
        assert_eq!(params.get("a"), Some("x y"));
        assert_eq!(params.get("b"), None);
        assert_eq!(params.all("c"), vec!["1", "2"]);
        assert_eq!(query_string(&[("a", "x y"), ("b", "")]), "a=x+y");
    }
}
