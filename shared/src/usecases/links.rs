//! The link endpoint's use case: a signed, days-long link in, a minutes-long presigned URL (or a plain 404)
//! out.

use chrono::{DateTime, Utc};

use crate::deliver::links::{LinkKeys, PRESIGNED_FOR, token_from_path};
use crate::ports::Presigner;

/// What the link endpoint answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkAnswer {
    /// 302 to this presigned URL.
    Redirect(String),
    /// 404, whatever the reason: a bad, foreign or expired token, or an object that is gone.
    NotFound,
    /// 503: the store failed; the link may work later.
    Unavailable,
}

/// Answers a request for `path` on the link endpoint.
pub async fn resolve<P: Presigner>(
    keys: &LinkKeys,
    presigner: &P,
    path: &str,
    now: DateTime<Utc>,
) -> LinkAnswer {
    let Some(object_key) = token_from_path(path).and_then(|token| keys.verify(token, now)) else {
        return LinkAnswer::NotFound;
    };
    match presigner.presign(&object_key, PRESIGNED_FOR).await {
        Ok(Some(url)) => LinkAnswer::Redirect(url),
        Ok(None) => LinkAnswer::NotFound,
        Err(error) => {
            tracing::warn!(error = %error, "cannot presign a link");
            LinkAnswer::Unavailable
        }
    }
}
