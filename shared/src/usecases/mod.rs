//! The use cases: what the Lambda functions and `mailroom dev` run, written against the traits of
//! [`crate::ports`] only.

pub mod erasure;
pub mod feedback;
pub mod inbound;
pub mod links;
pub mod send;
