//! The send function: behind a Lambda Function URL (auth NONE: the API key in `Authorization: Bearer` is
//! the credential, checked against its salted hash in the table), it answers CloudMailin's
//! `POST /api/v0.1/{account}/messages` ([`mailroom::usecases::send`]): 202 with the message, or 401, 403,
//! 413, 422 in CloudMailin's error shape.

pub mod app;
pub mod config;
pub mod handler;

pub use app::App;
pub use config::Config;
pub use handler::handle;
