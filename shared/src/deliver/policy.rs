//! What a target's answer means, and when to try again (docs/architecture.md, "Delivery semantics").

use std::time::Duration;

use crate::deliver::answer::{Answer, SendError};

/// Waits between attempts: after the first failure 5 s, then 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
pub const BACKOFF: [Duration; 9] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(14 * 3600),
    Duration::from_secs(20 * 3600),
    Duration::from_secs(24 * 3600),
];

/// Delivery stops this long after the message was first received.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(72 * 3600);

/// The longest wait one SQS visibility change can carry; longer waits are split.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

/// The longest `Retry-After` honoured: a target cannot push a message past the schedule's longest wait.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How much of a target's answer a record keeps.
pub const RECORDED_RESPONSE_BYTES: usize = 2048;

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// A 2xx: done.
    Delivered,
    /// Try again later (408, 429, 5xx, timeout, connection or TLS failure), after `retry_after` if the
    /// target asked for a wait.
    Retry {
        /// Why, for the record.
        reason: String,
        /// The target's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// Never try again.
    Reject {
        /// Why, for the record.
        reason: String,
        /// 410 Gone: the route's webhook is disabled until re-enabled.
        disable_webhook: bool,
    },
}

/// Judges one attempt.
pub fn judge(result: &Result<Answer, SendError>) -> Judgement {
    let answer = match result {
        Ok(answer) => answer,
        Err(SendError::Refused(refused)) => {
            return Judgement::Reject {
                reason: format!("target refused: {refused}"),
                disable_webhook: false,
            };
        }
        Err(error) => {
            return Judgement::Retry {
                reason: error.to_string(),
                retry_after: None,
            };
        }
    };
    let status = answer.response.status;
    match status {
        200..=299 => Judgement::Delivered,
        300..=399 => Judgement::Reject {
            reason: answer
                .unfollowed_redirect
                .clone()
                .map(|why| format!("HTTP {status}: redirect not followed: {why}"))
                .unwrap_or_else(|| format!("HTTP {status}")),
            disable_webhook: false,
        },
        408 | 429 | 500..=599 => Judgement::Retry {
            reason: format!("HTTP {status}"),
            retry_after: answer.response.retry_after,
        },
        410 => Judgement::Reject {
            reason: "HTTP 410 Gone: the webhook is disabled until the route is re-enabled"
                .to_owned(),
            disable_webhook: true,
        },
        _ => Judgement::Reject {
            reason: format!("HTTP {status}"),
            disable_webhook: false,
        },
    }
}

/// When the next attempt is due, given the attempts made so far (≥ 1), the target's `Retry-After`, and the
/// time left before [`GIVE_UP_AFTER`]. `None` means give up now.
pub fn next_wait(
    attempts: u32,
    retry_after: Option<Duration>,
    time_left: Duration,
) -> Option<Duration> {
    let index = (attempts.max(1) - 1) as usize;
    let scheduled = *BACKOFF.get(index)?;
    let wait = retry_after
        .map(|asked| asked.min(MAX_RETRY_AFTER).max(scheduled))
        .unwrap_or(scheduled);
    if time_left.is_zero() {
        return None;
    }
    // The last attempt happens at the deadline rather than being skipped.
    Some(wait.min(time_left))
}

/// The start of a target's answer as a record keeps it: at most [`RECORDED_RESPONSE_BYTES`], cut on a
/// character boundary.
pub fn response_excerpt(body: &[u8]) -> String {
    let cut = body.get(..RECORDED_RESPONSE_BYTES).unwrap_or(body);
    let text = String::from_utf8_lossy(cut);
    text.trim_end_matches('\u{FFFD}').to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::deliver::answer::HttpResponse;

    fn answer(status: u16) -> Result<Answer, SendError> {
        Ok(Answer {
            response: HttpResponse {
                status,
                location: None,
                retry_after: Some(Duration::from_secs(90)),
                body: Vec::new(),
            },
            url: url::Url::parse("https://example.com").unwrap(),
            hops: 0,
            unfollowed_redirect: None,
        })
    }

    #[test]
    fn statuses_are_judged_as_the_design_says() {
        assert_eq!(judge(&answer(200)), Judgement::Delivered);
        assert_eq!(judge(&answer(204)), Judgement::Delivered);
        for status in [408, 429, 500, 502, 503, 599] {
            assert!(
                matches!(judge(&answer(status)), Judgement::Retry { .. }),
                "{status}"
            );
        }
        assert!(matches!(
            judge(&answer(410)),
            Judgement::Reject {
                disable_webhook: true,
                ..
            }
        ));
        for status in [301, 400, 401, 403, 404, 413, 422] {
            assert!(
                matches!(
                    judge(&answer(status)),
                    Judgement::Reject {
                        disable_webhook: false,
                        ..
                    }
                ),
                "{status}"
            );
        }
        let refused = Err(SendError::Refused(crate::deliver::answer::Refused(
            "127.0.0.1 is loopback".into(),
        )));
        assert!(matches!(judge(&refused), Judgement::Reject { .. }));
        assert_eq!(
            judge(&answer(503)),
            Judgement::Retry {
                reason: "HTTP 503".into(),
                retry_after: Some(Duration::from_secs(90))
            }
        );
    }

    #[test]
    fn the_schedule_and_its_deadline() {
        let plenty = GIVE_UP_AFTER;
        assert_eq!(next_wait(1, None, plenty), Some(Duration::from_secs(5)));
        assert_eq!(next_wait(2, None, plenty), Some(Duration::from_secs(300)));
        assert_eq!(
            next_wait(9, None, plenty),
            Some(Duration::from_secs(24 * 3600))
        );
        assert_eq!(next_wait(10, None, plenty), None, "the schedule is spent");
        assert_eq!(
            next_wait(1, Some(Duration::from_secs(120)), plenty),
            Some(Duration::from_secs(120)),
            "Retry-After is honoured"
        );
        assert_eq!(
            next_wait(3, Some(Duration::from_secs(1)), plenty),
            Some(Duration::from_secs(1800)),
            "but never shortens the schedule"
        );
        assert_eq!(
            next_wait(1, Some(Duration::from_secs(7 * 24 * 3600)), plenty),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            next_wait(9, None, Duration::from_secs(60)),
            Some(Duration::from_secs(60))
        );
        assert_eq!(next_wait(2, None, Duration::ZERO), None);
    }

    #[test]
    fn excerpts_are_bounded() {
        assert_eq!(response_excerpt(b"ok"), "ok");
        let long = "é".repeat(2000);
        let excerpt = response_excerpt(long.as_bytes());
        assert!(excerpt.len() <= RECORDED_RESPONSE_BYTES);
        assert!(excerpt.chars().all(|c| c == 'é'));
    }
}
