//! The links function: behind a Lambda Function URL (auth NONE: the signed link is the credential), it
//! answers a valid, unexpired link with a 302 to a presigned S3 GET valid a few minutes, and anything
//! else with a bare 404.
//!
//! It accepts links signed with the key's current and previous values (Secrets Manager's `AWSCURRENT` and
//! `AWSPREVIOUS`), read at init. A link signed by a key it has not read (the key was rotated since this
//! container started) makes it read the secret again, at most once per [`REFRESH_AT_MOST_EVERY`], so a
//! stream of forged key ids cannot turn into a stream of Secrets Manager calls.

pub mod app;
pub mod config;
pub mod handler;

pub use app::{App, REFRESH_AT_MOST_EVERY};
pub use config::{Config, InitError};
pub use handler::handle;
