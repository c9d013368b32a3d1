//! `mailroom dev`'s HTTP port: the console (the same pages `mailroom console` serves, over the dev store)
//! and `GET /l/{token}`, the stored attachments signed links name. A link's token is its own credential,
//! as on the stack's link endpoint, and the app following one may know the machine by another name: links
//! skip the console's Host and token checks; everything else passes them. `/api/v0.1/…` is the send API
//! (its API key is its credential), as the stack's send function answers it.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use mailroom::ports::{MailLocation, MailStore};
use tokio::net::TcpListener;

use super::{Dev, LOCAL_BUCKET};

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, dev: Arc<Dev>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let dev = dev.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let dev = dev.clone();
                async move { Ok::<_, Infallible>(route(&dev, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(dev: &Dev, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if request.uri().path().starts_with("/api/v0.1/") {
        return send_api(dev, request).await;
    }
    let Some(token) = request
        .uri()
        .path()
        .strip_prefix(mailroom::deliver::links::LINK_PATH_PREFIX)
    else {
        return dev.console.handle(request).await;
    };
    let reply = |status: StatusCode, body: Bytes| {
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        response
    };
    if request.method() != Method::GET {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            Bytes::from_static(b"GET only\n"),
        );
    }
    let Some(key) = dev.verify_link(token) else {
        return reply(StatusCode::NOT_FOUND, Bytes::from_static(b"not found\n"));
    };
    let location = MailLocation {
        bucket: LOCAL_BUCKET.to_owned(),
        key,
    };
    match dev.mail.fetch(&location).await {
        Ok(bytes) => {
            let mut response = reply(StatusCode::OK, bytes);
            if let Ok(value) = "application/octet-stream".parse() {
                response
                    .headers_mut()
                    .insert(hyper::header::CONTENT_TYPE, value);
            }
            response
        }
        Err(_) => reply(StatusCode::NOT_FOUND, Bytes::from_static(b"not found\n")),
    }
}

/// The send API: the request read (at most the Function URL's 6 MB, as on the stack) and answered by
/// the send use case.
async fn send_api(dev: &Dev, request: Request<Incoming>) -> Response<Full<Bytes>> {
    use http_body_util::{BodyExt, Limited};
    use mailroom::usecases::send::{ApiAnswer, ApiRequest, MAX_REQUEST_BYTES};
    let (parts, body) = request.into_parts();
    let answered = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(collected) => {
            let body = collected.to_bytes();
            let authorization = parts
                .headers
                .get(hyper::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            dev.outbound
                .answer(ApiRequest {
                    method: parts.method.as_str(),
                    path: parts.uri.path(),
                    authorization,
                    body: &body,
                    deadline: mailroom::budget::Deadline::none(),
                })
                .await
        }
        Err(_) => ApiAnswer {
            status: 413,
            body: serde_json::json!({
                "status": 413,
                "error": format!("the request is larger than {MAX_REQUEST_BYTES} bytes"),
            }),
        },
    };
    let mut response = Response::new(Full::new(Bytes::from(answered.body.to_string())));
    *response.status_mut() =
        StatusCode::from_u16(answered.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(value) = "application/json".parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}
