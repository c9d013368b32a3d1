//! The links function against moto's server: a signed link answers 302 to a presigned GET that returns
//! the stored object byte for byte; anything else answers 404, a second spelling of a good token
//! included; and a rotation of the key breaks no live link.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use integration_tests::{repo, resources, s3, sdk};
use lambda_runtime::{Context, LambdaEvent};
use mailroom::deliver::links::{LinkKey, LinkKeys, link_url};
use mailroom_aws::setup::Resources;
use serde_json::{Value, json};

struct World {
    res: Resources,
    app: links::App,
    key: LinkKey,
    sdk: aws_config::SdkConfig,
}

async fn world(test: &str) -> World {
    let sdk = sdk().await;
    let res = resources(&sdk, test).await;
    let config = links::Config::from_lookup(|name| match name {
        "MAILROOM_BUCKET" => Some(res.bucket.clone()),
        "MAILROOM_LINK_KEY_ARN" => Some(res.link_key_arn.clone()),
        _ => None,
    })
    .unwrap();
    let app = links::App::new(&config, &sdk).await.unwrap();
    // The test signs with the key the function read, as the inbound function will.
    let text = aws_sdk_secretsmanager::Client::new(&sdk)
        .get_secret_value()
        .secret_id(&res.link_key_arn)
        .send()
        .await
        .unwrap()
        .secret_string
        .unwrap();
    World {
        key: LinkKey::parse(&text).unwrap(),
        res,
        app,
        sdk,
    }
}

impl World {
    async fn put(&self, key: &str, bytes: Vec<u8>) {
        s3(&self.sdk)
            .put_object()
            .bucket(&self.res.bucket)
            .key(key)
            .body(bytes.into())
            .send()
            .await
            .unwrap();
    }

    async fn get(&self, path: &str, method: &str) -> Value {
        let event = json!({
            "version": "2.0",
            "rawPath": path,
            "rawQueryString": "",
            "headers": {"host": "abc.lambda-url.eu-west-1.on.aws"},
            "requestContext": {"http": {"method": method, "path": path}},
            "isBase64Encoded": false
        });
        links::handle(&self.app, LambdaEvent::new(event, Context::default()))
            .await
            .unwrap()
    }

    fn path(&self, object_key: &str, expires: chrono::DateTime<Utc>) -> String {
        let url = link_url(
            "https://abc.lambda-url.eu-west-1.on.aws",
            &self.key.token(object_key, expires),
        );
        url.strip_prefix("https://abc.lambda-url.eu-west-1.on.aws")
            .unwrap()
            .to_owned()
    }
}

#[tokio::test]
async fn a_signed_link_redirects_to_the_object_byte_for_byte() {
    let w = world("links-ok").await;
    // 12 MB of varied bytes, as a large attachment would be.
    let attachment: Vec<u8> = (0..12 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    w.put("attachments/m1/0", attachment.clone()).await;
    w.put(
        "inbound/m1",
        b"Subject: the original\r\n\r\nhi\r\n".to_vec(),
    )
    .await;

    for (object, expected) in [
        ("attachments/m1/0", &attachment[..]),
        (
            "inbound/m1",
            b"Subject: the original\r\n\r\nhi\r\n".as_slice(),
        ),
    ] {
        let answer = w
            .get(&w.path(object, Utc::now() + Duration::days(7)), "GET")
            .await;
        assert_eq!(answer["statusCode"], 302, "{object}: {answer}");
        assert_eq!(answer["headers"]["cache-control"], "no-store");
        let location = answer["headers"]["location"].as_str().unwrap();
        assert!(
            location.contains("X-Amz-Expires=300"),
            "valid minutes, not days: {location}"
        );
        let body = reqwest::get(location).await.unwrap();
        assert_eq!(body.status().as_u16(), 200);
        assert!(
            body.bytes().await.unwrap() == expected,
            "{object} byte for byte"
        );
    }
}

#[tokio::test]
async fn tampered_expired_and_unknown_links_are_a_bare_404() {
    let w = world("links-no").await;
    w.put("attachments/m1/0", b"secret".to_vec()).await;
    w.put("outbound/m1", b"not linkable".to_vec()).await;
    let good = w.path("attachments/m1/0", Utc::now() + Duration::days(7));
    let mut tampered = good.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let paths = [
        String::from_utf8(tampered).unwrap(),
        w.path("attachments/m1/0", Utc::now() - Duration::seconds(1)),
        w.path("attachments/m1/1", Utc::now() + Duration::days(7)),
        w.path("outbound/m1", Utc::now() + Duration::days(7)),
        "/l/".to_owned(),
        "/".to_owned(),
        "/l/garbage".to_owned(),
    ];
    for path in &paths {
        let answer = w.get(path, "GET").await;
        assert_eq!(answer["statusCode"], 404, "{path}: {answer}");
        assert_eq!(answer["body"], "Not Found", "no detail");
        assert!(answer["headers"].get("location").is_none());
    }
    assert_eq!(w.get(&good, "POST").await["statusCode"], 405);
    assert_eq!(w.get(&good, "GET").await["statusCode"], 302);
}

#[test]
fn the_sample_function_url_event_is_a_link_request() {
    let event: Value =
        serde_json::from_slice(&std::fs::read(repo("events/function-url-link.json")).unwrap())
            .unwrap();
    assert!(event["rawPath"].as_str().unwrap().starts_with("/l/"));
    assert_eq!(event["requestContext"]["http"]["method"], "GET");
}

/// A token's parts: key id, object, expiry, signature.
fn parts(path: &str) -> Vec<String> {
    path.trim_start_matches("/l/")
        .split('.')
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_second_spelling_of_the_expiry_is_a_404() {
    let w = world("links-spelling").await;
    w.put("attachments/m1/0", b"secret".to_vec()).await;
    let good = w.path("attachments/m1/0", Utc::now() + Duration::days(7));
    assert_eq!(w.get(&good, "GET").await["statusCode"], 302);
    let p = parts(&good);
    assert_eq!(p.len(), 4, "{good}");
    for expiry in [format!("+{}", p[2]), format!("0{}", p[2])] {
        let path = format!("/l/{}.{}.{expiry}.{}", p[0], p[1], p[3]);
        let answer = w.get(&path, "GET").await;
        assert_eq!(answer["statusCode"], 404, "{path}: {answer}");
    }
}

#[tokio::test]
async fn links_signed_with_the_previous_key_still_open_after_a_rotation() {
    let w = world("links-rotate").await;
    w.put("attachments/m1/0", b"before".to_vec()).await;
    w.put("attachments/m2/0", b"after".to_vec()).await;
    let before = w.path("attachments/m1/0", Utc::now() + Duration::days(7));
    assert_eq!(w.get(&before, "GET").await["statusCode"], 302);

    let secrets = mailroom_aws::secrets::client(&w.sdk);
    let rotated: LinkKeys = mailroom_aws::secrets::rotate_link_key(&secrets, &w.res.link_key_arn)
        .await
        .unwrap();
    assert_ne!(rotated.current().id(), w.key.id());
    assert_eq!(rotated.previous().map(LinkKey::id), Some(w.key.id()));
    let after = link_url(
        "https://abc.lambda-url.eu-west-1.on.aws",
        &rotated
            .current()
            .token("attachments/m2/0", Utc::now() + Duration::days(7)),
    )
    .strip_prefix("https://abc.lambda-url.eu-west-1.on.aws")
    .unwrap()
    .to_owned();

    // A container started after the rotation reads both values of the secret.
    let config = links::Config::from_lookup(|name| match name {
        "MAILROOM_BUCKET" => Some(w.res.bucket.clone()),
        "MAILROOM_LINK_KEY_ARN" => Some(w.res.link_key_arn.clone()),
        _ => None,
    })
    .unwrap();
    let cold = links::App::new(&config, &w.sdk).await.unwrap();
    for path in [&before, &after] {
        let event = json!({"rawPath": path, "requestContext": {"http": {"method": "GET"}}});
        let answer = links::handle(&cold, LambdaEvent::new(event, Context::default()))
            .await
            .unwrap();
        assert_eq!(answer["statusCode"], 302, "{path}: {answer}");
    }
    // The container started before it still opens the links it knew.
    assert_eq!(w.get(&before, "GET").await["statusCode"], 302);
    // A second rotation retires the first key: its links stop opening.
    mailroom_aws::secrets::rotate_link_key(&secrets, &w.res.link_key_arn)
        .await
        .unwrap();
    let later = links::App::new(&config, &w.sdk).await.unwrap();
    let event = json!({"rawPath": before, "requestContext": {"http": {"method": "GET"}}});
    let answer = links::handle(&later, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    assert_eq!(answer["statusCode"], 404, "{answer}");
}

#[tokio::test]
async fn a_warm_function_reads_a_rotated_key_when_a_link_names_it() {
    let w = world("links-warm").await;
    w.put("attachments/m2/0", b"after".to_vec()).await;
    // Started before the rotation, allowed to read the secret again at once.
    let config = links::Config::from_lookup(|name| match name {
        "MAILROOM_BUCKET" => Some(w.res.bucket.clone()),
        "MAILROOM_LINK_KEY_ARN" => Some(w.res.link_key_arn.clone()),
        _ => None,
    })
    .unwrap();
    let warm = links::App::new(&config, &w.sdk)
        .await
        .unwrap()
        .refreshing_at_most_every(std::time::Duration::ZERO);
    let before = w.path("attachments/m2/0", Utc::now() + Duration::days(7));
    let secrets = mailroom_aws::secrets::client(&w.sdk);
    let rotated = mailroom_aws::secrets::rotate_link_key(&secrets, &w.res.link_key_arn)
        .await
        .unwrap();
    let token = rotated
        .current()
        .token("attachments/m2/0", Utc::now() + Duration::days(7));
    for path in [format!("/l/{token}"), before] {
        let event = json!({"rawPath": path, "requestContext": {"http": {"method": "GET"}}});
        let answer = links::handle(&warm, LambdaEvent::new(event, Context::default()))
            .await
            .unwrap();
        assert_eq!(answer["statusCode"], 302, "{path}: {answer}");
    }
    // A link of a key nobody has is still a bare 404.
    let stranger = LinkKey::parse(&LinkKey::generate().unwrap())
        .unwrap()
        .token("attachments/m2/0", Utc::now() + Duration::days(7));
    let event =
        json!({"rawPath": format!("/l/{stranger}"), "requestContext": {"http": {"method": "GET"}}});
    let answer = links::handle(&warm, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    assert_eq!(answer["statusCode"], 404);
}
