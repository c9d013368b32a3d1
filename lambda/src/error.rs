//! A handler's failure, as Lambda reports it: the `errorType` says whether a retry may help.

use lambda_runtime::Diagnostic;

/// Why an invocation failed, as Lambda's `errorType`.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth retrying: for a direct (asynchronous) invocation, Lambda's own retries bring the event back.
    #[error("{0}")]
    Retryable(String),
    /// Will fail again.
    #[error("{0}")]
    Permanent(String),
}

impl From<HandlerError> for Diagnostic {
    fn from(error: HandlerError) -> Diagnostic {
        let error_type = match error {
            HandlerError::Retryable(_) => "Retryable",
            HandlerError::Permanent(_) => "Permanent",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_type_says_whether_to_retry() {
        let retryable = Diagnostic::from(HandlerError::Retryable("throttled".to_owned()));
        assert_eq!(retryable.error_type, "Retryable");
        assert_eq!(retryable.error_message, "throttled");
        let permanent = Diagnostic::from(HandlerError::Permanent("unreadable".to_owned()));
        assert_eq!(permanent.error_type, "Permanent");
    }
}
