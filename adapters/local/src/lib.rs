//! Adapters for `mailroom dev`: the same ports as the AWS adapters, on one machine with no AWS.
//!
//! A folder stands in for the S3 bucket ([`files::LocalMailStore`]) and one SQLite file for the DynamoDB
//! table and the SQS retry queue ([`sqlite::SqliteStore`]). Their semantics follow the AWS adapters, so
//! the inbound use case behaves the same in both. An outbox folder ([`outbox::Outbox`]) stands in for
//! SES sending. Every folder and file they create is private to the user ([`private`]).

pub mod files;
pub mod outbox;
pub mod private;
pub mod sqlite;
