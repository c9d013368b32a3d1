//! `mailroom dev`'s HTTP port: the console (the same pages `mailroom console` serves, over the dev store)
//! and `GET /l/{token}`, the stored attachments signed links name. A link's token is its own credential,
//! as on the stack's link endpoint, and the app following one may know the machine by another name: links
//! skip the console's Host and token checks; everything else passes them.

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
