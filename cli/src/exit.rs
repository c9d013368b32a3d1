//! Exit codes, so scripts can tell failures apart.

use std::process::ExitCode;

use mailroom::ports::StoreError;

/// Something failed (the default).
pub const FAILURE: u8 = 1;
/// The arguments are wrong (clap uses 2 as well).
pub const BAD_ARGUMENTS: u8 = 2;
/// No AWS credentials were found.
pub const NO_CREDENTIALS: u8 = 3;
/// The stack, table or queue does not exist.
pub const NOT_FOUND: u8 = 4;
/// Nothing matched (no such route, message or address).
pub const NOTHING_MATCHED: u8 = 5;

/// An error that says which exit code it deserves.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    /// The exit code.
    pub code: u8,
    /// What went wrong and what to do.
    pub message: String,
}

impl CliError {
    /// An error with an exit code.
    pub fn new(code: u8, message: impl Into<String>) -> CliError {
        CliError {
            code,
            message: message.into(),
        }
    }
}

/// A store error, classified: missing credentials, a missing resource, or anything else.
pub fn from_store(error: StoreError) -> anyhow::Error {
    let text = format!("{error:#}");
    let chain = {
        let mut all = text.clone();
        let mut source = std::error::Error::source(&error);
        while let Some(s) = source {
            all.push_str(&format!(": {s}"));
            source = s.source();
        }
        all
    };
    let lower = chain.to_ascii_lowercase();
    if lower.contains("credentials")
        && (lower.contains("no credentials")
            || lower.contains("failed to load")
            || lower.contains("provider"))
    {
        // The SDK's own account of the credential chain is long; what to do is short.
        let doing = text.split(": ").next().unwrap_or(&text);
        return CliError::new(
            NO_CREDENTIALS,
            format!("{doing}: no AWS credentials found; set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        )
        .into();
    }
    if lower.contains("resourcenotfound")
        || lower.contains("nonexistentqueue")
        || lower.contains("nosuchbucket")
        || lower.contains("does not exist")
    {
        return CliError::new(
            NOT_FOUND,
            format!("{text}: check the name (and AWS_REGION)"),
        )
        .into();
    }
    // The message already carries the service's code and text; the SDK's own chain would repeat it.
    CliError::new(FAILURE, text).into()
}

/// The exit code an error deserves.
pub fn code_of(error: &anyhow::Error) -> ExitCode {
    match error.downcast_ref::<CliError>() {
        Some(cli) => ExitCode::from(cli.code),
        None => ExitCode::from(FAILURE),
    }
}
