//! The Lambda edge: what every function does the same way between Lambda's event and its use case.
//!
//! - [`trigger`]: which service invoked the function (SQS, SNS, or anything else) and the invocation's
//!   deadline;
//! - [`batch`]: one SQS batch, record by record to work items, processed together, each record settled
//!   (acknowledged, hidden for its wait, handed back, or dead-lettered) with partial batch failures;
//! - [`error`]: a handler's failure as Lambda's `errorType` (`Retryable` or `Permanent`);
//! - [`secrets`]: a secret configured by ARN (Secrets Manager) or in plain text;
//! - [`url`]: a Function URL's request (method, path, headers, body).

pub mod batch;
pub mod error;
pub mod secrets;
pub mod trigger;
pub mod url;

pub use batch::{BatchWork, Verdict, run_batch};
pub use error::HandlerError;
pub use trigger::{Invocation, Trigger};
