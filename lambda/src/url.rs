//! A Lambda Function URL's request (payload format 2.0) as the functions behind one read it.

use base64::Engine as _;
use serde_json::Value;

/// The parts of a Function URL request a handler reads.
#[derive(Debug, Clone)]
pub struct UrlRequest<'a> {
    event: &'a Value,
}

impl<'a> UrlRequest<'a> {
    /// Reads `event`, the invocation's payload.
    pub fn new(event: &'a Value) -> UrlRequest<'a> {
        UrlRequest { event }
    }

    /// The method (`GET` when the event does not say).
    pub fn method(&self) -> &'a str {
        self.event
            .pointer("/requestContext/http/method")
            .and_then(Value::as_str)
            .unwrap_or("GET")
    }

    /// The path, still percent-encoded.
    pub fn path(&self) -> &'a str {
        self.event
            .get("rawPath")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// A header's value; Function URLs hand names over lower-cased, so `name` is lower-case.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.event
            .get("headers")
            .and_then(|headers| headers.get(name))
            .and_then(Value::as_str)
    }

    /// The body's bytes (decoded when the URL passed it on as base64); `None` when that base64 is broken.
    pub fn body(&self) -> Option<Vec<u8>> {
        let text = self.event.get("body").and_then(Value::as_str).unwrap_or("");
        if self.event.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
            base64::engine::general_purpose::STANDARD.decode(text).ok()
        } else {
            Some(text.as_bytes().to_vec())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reads_its_method_path_headers_and_body() {
        let event = serde_json::json!({
            "rawPath": "/api/v0.1/k1/messages",
            "headers": {"authorization": "Bearer x"},
            "requestContext": {"http": {"method": "POST"}},
            "body": "aGk=",
            "isBase64Encoded": true,
        });
        let request = UrlRequest::new(&event);
        assert_eq!(request.method(), "POST");
        assert_eq!(request.path(), "/api/v0.1/k1/messages");
        assert_eq!(request.header("authorization"), Some("Bearer x"));
        assert_eq!(request.body().unwrap(), b"hi");
        let broken = serde_json::json!({"body": "***", "isBase64Encoded": true});
        assert!(UrlRequest::new(&broken).body().is_none());
        assert_eq!(UrlRequest::new(&broken).method(), "GET");
    }
}
