//! The inbound Lambda function: reads SQS batches (SES notifications or S3 events) and direct S3 events,
//! and hands each stored message to Mailroom's inbound use case.
//!
//! `config` reads the environment, `app` builds the clients and the use case once, `handler` translates
//! each invocation; the batch loop, event sources and error types are the shared edge (`mailroom-lambda`).

pub mod app;
pub mod config;
pub mod handler;

pub use app::{App, AwsInbound, InitError};
pub use config::Config;
pub use handler::handle;
pub use mailroom_lambda::HandlerError;
