//! A Function URL request → the send use case → an HTTP answer.

use base64::Engine as _;
use lambda_runtime::LambdaEvent;
use mailroom::usecases::send::{ApiAnswer, ApiRequest};
use serde_json::{Value, json};

use crate::app::App;

/// Answers one Function URL request. Never fails: every outcome is an HTTP answer.
pub async fn handle(
    app: &App,
    event: LambdaEvent<Value>,
) -> Result<Value, std::convert::Infallible> {
    let request = event.payload;
    let method = request
        .pointer("/requestContext/http/method")
        .and_then(Value::as_str)
        .unwrap_or("GET");
    let path = request.get("rawPath").and_then(Value::as_str).unwrap_or("");
    // Function URLs hand headers over lower-cased.
    let authorization = request
        .pointer("/headers/authorization")
        .and_then(Value::as_str);
    let text = request.get("body").and_then(Value::as_str).unwrap_or("");
    let body = if request.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        match base64::engine::general_purpose::STANDARD.decode(text) {
            Ok(bytes) => bytes,
            Err(_) => {
                return Ok(answer(&ApiAnswer {
                    status: 400,
                    body: json!({"status": 400, "error": "the body is not valid base64"}),
                }));
            }
        }
    } else {
        text.as_bytes().to_vec()
    };
    let answered = app
        .api
        .answer(ApiRequest {
            method,
            path,
            authorization,
            body: &body,
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
