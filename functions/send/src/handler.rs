//! A Function URL request → the send use case → an HTTP answer.

use lambda_runtime::LambdaEvent;
use mailroom::budget::Deadline;
use mailroom::usecases::send::{ApiAnswer, ApiRequest};
use mailroom_lambda::url::UrlRequest;
use serde_json::{Value, json};

use crate::app::App;

/// Answers one Function URL request. Never fails: every outcome is an HTTP answer.
pub async fn handle(
    app: &App,
    event: LambdaEvent<Value>,
) -> Result<Value, std::convert::Infallible> {
    let request = UrlRequest::new(&event.payload);
    let Some(body) = request.body() else {
        return Ok(answer(&ApiAnswer {
            status: 400,
            body: json!({"status": 400, "error": "the body is not valid base64"}),
        }));
    };
    let answered = app
        .api
        .answer(ApiRequest {
            method: request.method(),
            path: request.path(),
            authorization: request.header("authorization"),
            body: &body,
            deadline: Deadline::from_unix_millis(event.context.deadline),
        })
        .await;
    Ok(answer(&answered))
}

fn answer(answered: &ApiAnswer) -> Value {
    json!({
        "statusCode": answered.status,
        "headers": {
            "content-type": "application/json",
            "cache-control": "no-store",
        },
        "body": answered.body.to_string(),
        "isBase64Encoded": false,
    })
}
