//! The feedback Lambda function: SES notifications about mail Mailroom sent, from an SQS batch (the
//! stack's wiring: topic → queue → function) or a plain SNS event, handed to the feedback use case.

pub mod config;
pub mod handler;

pub use config::Config;
pub use handler::{App, HandlerError, handle};
