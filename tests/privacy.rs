//! What is recorded about a target holds no secret of its URL, and only same-origin redirects are
//! followed: the real inbound handler, moto's server through the real SDK, real HTTP receivers on
//! 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{Receiver, Reply, resources, sdk, store_inbound};
use lambda_runtime::{Context, LambdaEvent};
use mailroom::format::Format;
use mailroom::ports::RouteStore;
use mailroom::route::{AttachmentMode, Route, WebhookTarget};
use mailroom_aws::dynamo::DynamoStore;
use mailroom_aws::setup::Resources;
use serde_json::Value;

struct World {
    sdk: aws_config::SdkConfig,
    res: Resources,
    app: inbound::App,
    store: DynamoStore,
}

async fn world(test: &str) -> World {
    let sdk = sdk().await;
    let res = resources(&sdk, test).await;
    let env = integration_tests::inbound_settings(&res, &[]);
    let config = inbound::Config::from_lookup(|name| env.get(name).cloned()).unwrap();
    let app = inbound::App::new(config, &sdk).await.unwrap();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), res.table.clone());
    World {
        sdk,
        res,
        app,
        store,
    }
}

impl World {
    async fn route(&self, pattern: &str, url: &str) {
        let mut route = Route::new(pattern.parse().unwrap());
        route.webhook = Some(WebhookTarget {
            url: url.to_owned(),
            format: Format::Json,
            secrets: Vec::new(),
            attachments: AttachmentMode::Inline,
            disabled: None,
        });
        self.store.put_route(&route).await.unwrap();
    }

    /// Stores a message to `to` as SES would, runs the handler on it, and returns its records as stored
    /// (every attribute of every item, as JSON text).
    async fn deliver_to(&self, to: &str) -> Vec<String> {
        let raw = format!(
            "Return-Path: <ana@client.example>\r\nFrom: Ana <ana@client.example>\r\nTo: {to}\r\n\
             Subject: hello\r\nMessage-ID: <m@client.example>\r\n\r\nhi\r\n"
        );
        let (id, event) = store_inbound(&self.sdk, &self.res.bucket, raw.into_bytes()).await;
        let _ = inbound::handle(&self.app, LambdaEvent::new(event, Context::default())).await;
        aws_sdk_dynamodb::Client::new(&self.sdk)
            .query()
            .table_name(&self.res.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("MSG#{id}")))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
            .iter()
            .map(|item| format!("{item:?}"))
            .collect()
    }
}

fn record(items: &[String]) -> Value {
    assert_eq!(items.len(), 1, "{items:?}");
    // The Debug form of the item is enough to look for a secret; the fields are read back as a record.
    Value::String(items[0].clone())
}

#[tokio::test]
async fn a_token_in_a_webhook_url_reaches_no_record() {
    let w = world("privacy-token").await;
    let live = Receiver::start().await;
    // A port nothing listens on: the attempt fails to connect, and reqwest's error names the URL.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    w.route(
        "live@mail.example.com",
        &format!("{}/hook?token=SECRET_LIVE#frag", live.base),
    )
    .await;
    w.route(
        "closed@mail.example.com",
        &format!("http://user:PASSWORD@127.0.0.1:{closed}/hook?token=SECRET_CLOSED"),
    )
    .await;

    let delivered = w.deliver_to("live@mail.example.com").await;
    let text = record(&delivered).to_string();
    assert!(text.contains("delivered"), "{text}");
    assert!(
        text.contains(&format!("webhook {}/hook", live.base)),
        "scheme, host, port and path are kept: {text}"
    );
    assert!(
        !text.contains("SECRET_LIVE") && !text.contains("frag"),
        "{text}"
    );
    assert_eq!(
        live.requests()[0].path,
        "/hook?token=SECRET_LIVE",
        "the target itself gets its token"
    );

    let failed = w.deliver_to("closed@mail.example.com").await;
    let text = record(&failed).to_string();
    assert!(text.contains("retrying"), "{text}");
    assert!(
        text.contains("could not connect"),
        "the error is kept: {text}"
    );
    for secret in ["SECRET_CLOSED", "PASSWORD", "token="] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[tokio::test]
async fn only_same_origin_redirects_are_followed_and_a_303_becomes_a_get() {
    let w = world("privacy-redirect").await;
    let target = Receiver::start().await;
    let elsewhere = Receiver::start().await;
    w.route("away@mail.example.com", &target.url("/away")).await;
    w.route("see@mail.example.com", &target.url("/see")).await;

    // Another port is another origin: the signed body does not follow.
    let mut away = Reply::new(307, "");
    away.headers.push((
        "Location".to_owned(),
        elsewhere.url("/stolen?token=SECRET_AWAY"),
    ));
    target.reply([away]);
    let text = record(&w.deliver_to("away@mail.example.com").await).to_string();
    assert!(text.contains("rejected"), "{text}");
    assert!(text.contains("another origin"), "{text}");
    assert!(
        !text.contains("SECRET_AWAY") && !text.contains("/stolen"),
        "{text}"
    );
    assert!(elsewhere.requests().is_empty(), "nothing went elsewhere");

    // A 303 says "done, see there": a GET without the body, on the same origin.
    let mut see = Reply::new(303, "");
    see.headers
        .push(("Location".to_owned(), "/done".to_owned()));
    target.reply([see, Reply::new(200, "ok")]);
    let text = record(&w.deliver_to("see@mail.example.com").await).to_string();
    assert!(text.contains("delivered"), "{text}");
    let requests = target.requests();
    let last = requests.last().unwrap();
    assert_eq!((last.method.as_str(), last.path.as_str()), ("GET", "/done"));
    assert!(last.body.is_empty());
    assert!(last.header("webhook-signature").is_empty());
    let post = &requests[requests.len() - 2];
    assert_eq!((post.method.as_str(), post.path.as_str()), ("POST", "/see"));
}
