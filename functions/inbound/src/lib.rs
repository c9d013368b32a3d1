//! The inbound Lambda function: reads SQS batches (SES notifications or S3 events) and direct S3 events,
//! and hands each stored message to Mailroom's inbound use case.

pub mod config;
pub use mailroom::aws::events;
pub mod handler;

pub use config::Config;
pub use handler::{App, HandlerError, handle};
