//! A Function URL request → the link use case → an HTTP answer.

use chrono::Utc;
use lambda_runtime::LambdaEvent;
use mailroom::usecases::links::{LinkAnswer, resolve};
use mailroom_lambda::url::UrlRequest;
use serde_json::{Value, json};

use crate::app::App;

/// Answers one Function URL request. Never fails: every outcome is an HTTP answer.
pub async fn handle(
    app: &App,
    event: LambdaEvent<Value>,
) -> Result<Value, std::convert::Infallible> {
    let request = UrlRequest::new(&event.payload);
    let (method, path) = (request.method(), request.path());
    if method != "GET" && method != "HEAD" {
        return Ok(answer(405, None));
    }
    let keys = app.keys_for(path).await;
    Ok(
        match resolve(&keys, &app.presigner, path, Utc::now()).await {
            LinkAnswer::Redirect(url) => answer(302, Some(url)),
            LinkAnswer::NotFound => answer(404, None),
            LinkAnswer::Unavailable => answer(503, None),
        },
    )
}

fn answer(status: u16, location: Option<String>) -> Value {
    let mut headers = json!({
        "cache-control": "no-store",
        "referrer-policy": "no-referrer",
        "content-type": "text/plain; charset=utf-8",
    });
    if let Some(location) = location {
        headers["location"] = Value::String(location);
    }
    let body = match status {
        302 => "Found",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    json!({ "statusCode": status, "headers": headers, "body": body, "isBase64Encoded": false })
}
