//! The send API's domain: what a request may ask ([`request`]), how the message is built ([`build`]),
//! and the keys that authenticate it ([`key`]). The use case that ties them to the stores and SES is
//! [`crate::usecases::send`].

pub mod build;
pub mod key;
pub mod request;

use serde::Serialize;

/// The JSON of an error answer, in CloudMailin's shape: `{"status": 422, "error": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    /// The HTTP status, repeated.
    pub status: u16,
    /// What went wrong.
    pub error: String,
}
