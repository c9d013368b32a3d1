//! What a webhook target answered, or why it did not: the words the delivery policy decides with, whatever
//! HTTP client carried the request.

use std::time::Duration;

use url::Url;

/// The underlying failure of a request, kept as the source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

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
    Connect(#[source] BoxError),
    /// The request failed another way.
    #[error("request failed: {0}")]
    Other(#[source] BoxError),
}

/// A target refused by the guard, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);
