//! The feedback Lambda function: SES notifications about mail Mailroom sent, from an SQS batch (the
//! stack's wiring: topic → queue → function) or a plain SNS event, handed to the feedback use case.
//!
//! `config` reads the environment, `app` builds the clients and the use case once and turns one
//! notification into a verdict, `handler` translates each invocation; the batch loop, event sources and
//! error types are the shared edge (`mailroom-lambda`).

pub mod app;
pub mod config;
pub mod handler;

pub use app::{App, AwsNotifications, Notice};
pub use config::Config;
pub use handler::handle;
pub use mailroom_lambda::HandlerError;
