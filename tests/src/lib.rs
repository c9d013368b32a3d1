//! The test harness: moto's server (started once per test binary unless `MAILROOM_TEST_AWS_ENDPOINT` names
//! a running one), per-test AWS resources, and a real HTTP receiver on 127.0.0.1:0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, VecDeque};
use std::net::TcpListener as StdListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use mailroom::deliver::signing::verify_any;
use mailroom::route::WebhookSecret;
use mailroom_aws::setup::{Resources, create_all};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// The region every test uses.
pub const REGION: &str = "eu-west-1";

/// The emulator's endpoint, started on first use.
pub fn endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        if let Ok(url) = std::env::var("MAILROOM_TEST_AWS_ENDPOINT")
            && !url.is_empty()
        {
            return url;
        }
        start_moto()
    })
}

fn start_moto() -> String {
    let port = StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A shell watches this test process and stops moto when it ends, so no server outlives the tests.
    let script = format!(
        "python3 -m moto.server -H 127.0.0.1 -p {port} >/dev/null 2>&1 & moto=$!; \
         while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill $moto",
        parent = std::process::id()
    );
    // Never waited on: the shell lives as long as this process, and its end is the process's end.
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .expect("sh runs");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return url;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("moto's server did not start on {url}: is it installed? (pip install 'moto[server]')");
}

/// An SDK config pointed at the emulator with test credentials.
pub async fn sdk() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::new(REGION))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).unwrap();
    format!("{prefix}-{:08x}", u32::from_le_bytes(bytes))
}

/// Fresh resources, as `mailroom setup emulator` makes them.
pub async fn resources(sdk: &SdkConfig, test: &str) -> Resources {
    create_all(sdk, &unique(test))
        .await
        .expect("setup emulator works")
}

/// The inbound function's settings in tests: the emulator's resources, a 5-second webhook timeout, private
/// and plain-http targets allowed (the receivers listen on 127.0.0.1), then `extra`, which win.
pub fn inbound_settings(res: &Resources, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut settings: HashMap<String, String> = [
        ("MAILROOM_TABLE", res.table.as_str()),
        ("MAILROOM_QUEUE_URL", res.queue_url.as_str()),
        ("MAILROOM_DLQ_URL", res.dlq_url.as_str()),
        ("MAILROOM_WEBHOOK_TIMEOUT_SECS", "5"),
        ("MAILROOM_ALLOW_PRIVATE_TARGETS", "true"),
        ("MAILROOM_ALLOW_HTTP_TARGETS", "true"),
    ]
    .iter()
    .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
    .collect();
    for (name, value) in extra {
        settings.insert((*name).to_owned(), (*value).to_owned());
    }
    settings
}

/// Up to `max` messages visible now in `queue_url`, received as Lambda's poller receives them and shaped as
/// the SQS event it hands the function; `None` when none is visible.
pub async fn receive_as_event(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    max: i32,
) -> Option<serde_json::Value> {
    use aws_sdk_sqs::types::MessageSystemAttributeName;
    let messages = sqs
        .receive_message()
        .queue_url(queue_url)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .max_number_of_messages(max)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    if messages.is_empty() {
        return None;
    }
    let queue_name = queue_url.rsplit('/').next().unwrap();
    let records: Vec<serde_json::Value> = messages
        .into_iter()
        .map(|message| {
            let attributes: serde_json::Map<String, serde_json::Value> = message
                .attributes
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.as_str().to_owned(), serde_json::Value::String(v)))
                .collect();
            let message_attributes: serde_json::Map<String, serde_json::Value> = message
                .message_attributes
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| {
                    let value =
                        serde_json::json!({"stringValue": v.string_value, "dataType": v.data_type});
                    (k, value)
                })
                .collect();
            serde_json::json!({
                "messageId": message.message_id,
                "receiptHandle": message.receipt_handle,
                "body": message.body,
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": message.md5_of_body,
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:{REGION}:123456789012:{queue_name}"),
                "awsRegion": REGION
            })
        })
        .collect();
    Some(serde_json::json!({ "Records": records }))
}

/// An S3 client on the emulator, built as the functions build theirs.
pub fn s3(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    mailroom_aws::s3_client(sdk)
}

/// What the receiver answers.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
    /// How long the receiver takes before it answers (a slow target).
    pub delay: Duration,
}

impl Reply {
    /// A reply with a status and a body.
    pub fn new(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }

    /// The same reply with a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The same reply, given only after `delay`.
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, names lower-case.
    pub headers: HashMap<String, String>,
    /// Body.
    pub body: Vec<u8>,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    /// Verifies the Standard Webhooks signature with any of `secrets`.
    pub fn verifies(&self, secrets: &[WebhookSecret]) -> bool {
        verify_any(
            secrets,
            self.header("webhook-id"),
            self.header("webhook-timestamp"),
            self.header("webhook-signature"),
            &self.body,
            chrono::Utc::now().timestamp(),
        )
        .is_ok()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A real HTTP/1.1 server on 127.0.0.1:0 that records requests and answers from a script.
#[derive(Clone)]
pub struct Receiver {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The port.
    pub port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    replies: Arc<Mutex<VecDeque<Reply>>>,
}

impl Receiver {
    /// Starts a receiver that answers 200 once its script is used up.
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let receiver = Receiver {
            base: format!("http://127.0.0.1:{port}"),
            port,
            requests: Arc::default(),
            replies: Arc::default(),
        };
        let served = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let served = served.clone();
                tokio::spawn(async move { served.serve(stream).await });
            }
        });
        receiver
    }

    /// The URL of a path on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Queues the next replies.
    pub fn reply(&self, replies: impl IntoIterator<Item = Reply>) {
        self.replies.lock().unwrap().extend(replies);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    async fn serve(&self, stream: tokio::net::TcpStream) {
        let mut reader = BufReader::new(stream);
        let Some(request) = read_request(&mut reader).await else {
            return;
        };
        self.requests.lock().unwrap().push(request);
        let reply = self
            .replies
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| Reply::new(200, "ok"));
        tokio::time::sleep(reply.delay).await;
        write_response(
            reader.into_inner(),
            reply.status,
            &reply.headers,
            reply.body.as_bytes(),
        )
        .await;
    }
}

/// Reads one HTTP/1.1 request (a body only by `Content-Length`); `None` when the peer sent nothing.
pub async fn read_request(reader: &mut BufReader<tokio::net::TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("").to_owned();
    let mut headers = HashMap::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await.unwrap();
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.unwrap();
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

/// Writes one answer and closes the connection.
pub async fn write_response(
    mut stream: tokio::net::TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) {
    let mut head = format!(
        "HTTP/1.1 {status} Answer\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        if !name.eq_ignore_ascii_case("content-length") && !name.eq_ignore_ascii_case("connection")
        {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
    let _ = stream.shutdown().await;
}

/// An answer of [`serve_http`]'s handler: status, headers, body.
pub type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// Serves `handler` on 127.0.0.1:0, one request per connection; returns `http://127.0.0.1:PORT`.
pub async fn serve_http<F, Fut>(handler: F) -> String
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Answer> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                let Some(request) = read_request(&mut reader).await else {
                    return;
                };
                let (status, headers, body) = handler(request).await;
                write_response(reader.into_inner(), status, &headers, &body).await;
            });
        }
    });
    base
}

/// A proxy in front of the emulator that keeps every request it passes on: what an AWS API was asked,
/// parameters the emulator does not keep included (SES's `ConfigurationSetName`, `EmailTags`).
pub async fn recording_proxy() -> (String, Arc<Mutex<Vec<Request>>>) {
    let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
    let kept = seen.clone();
    let client = reqwest::Client::new();
    let base = serve_http(move |request: Request| {
        kept.lock().unwrap().push(request.clone());
        let client = client.clone();
        async move {
            let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap();
            let mut forwarded = client.request(method, format!("{}{}", endpoint(), request.path));
            for (name, value) in &request.headers {
                if !["host", "content-length", "connection"].contains(&name.as_str()) {
                    forwarded = forwarded.header(name, value);
                }
            }
            let response = forwarded.body(request.body).send().await.unwrap();
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .filter(|(name, _)| *name != "transfer-encoding")
                .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("").to_owned()))
                .collect();
            let body = response.bytes().await.unwrap().to_vec();
            (status, headers, body)
        }
    })
    .await;
    (base, seen)
}

/// Runs CloudMailin's official client (`tests/cloudmailin/send.mjs`, installed by `npm ci --prefix
/// tests/cloudmailin`) on `calls` against `base_url`; each result is `{ok, data}` or `{ok: false, status,
/// error}`. Call it from a multi-threaded runtime: the server it talks to may be a task of this process.
pub fn cloudmailin(
    base_url: &str,
    username: &str,
    api_key: &str,
    calls: serde_json::Value,
) -> Vec<serde_json::Value> {
    let spec = serde_json::json!({
        "baseURL": base_url,
        "username": username,
        "apiKey": api_key,
        "calls": calls,
    });
    let path = std::env::temp_dir().join(format!("{}.json", unique("cloudmailin-spec")));
    std::fs::write(&path, spec.to_string()).unwrap();
    let out = tokio::task::block_in_place(|| {
        Command::new("node")
            .arg(repo("tests/cloudmailin/send.mjs"))
            .arg(&path)
            .output()
    })
    .expect("node runs (npm ci --prefix tests/cloudmailin)");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A route of `pattern` posting JSON to `url`, attachments inline, unsigned.
pub fn webhook_route(pattern: &str, url: String) -> mailroom::route::Route {
    let mut route = mailroom::route::Route::new(pattern.parse().expect("a route pattern"));
    route.webhook = Some(mailroom::route::WebhookTarget {
        url,
        format: mailroom::format::Format::Json,
        secrets: Vec::new(),
        attachments: mailroom::route::AttachmentMode::Inline,
        disabled: None,
    });
    route
}

/// The repository's root.
pub fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// The ids an SQS handler's answer reports failed (`batchItemFailures`).
pub fn failures(response: &serde_json::Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect()
}

/// Every raw message moto's SES was given (`id`, `source`, `destinations`, `raw_data`), read through moto's
/// own API. That API dumps every service's state, and a write by a test running beside this one can make a
/// dump fail half-way (moto answers 500): a failed dump is asked for again.
pub async fn ses_raw_sends() -> Vec<serde_json::Value> {
    let url = format!("{}/moto-api/data.json", endpoint());
    let mut last = String::new();
    for _ in 0..20 {
        let response = reqwest::get(&url).await.expect("moto's API answers");
        let status = response.status();
        let body = response.bytes().await.expect("moto's API answers");
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(data) if status.is_success() => {
                return data["ses"]["RawMessage"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
            }
            _ => last = format!("{status}: {}", String::from_utf8_lossy(&body)),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("moto's data.json failed 20 times; last: {last}");
}

/// Points a command (the `mailroom` binary) at the emulator, with test credentials and no table of the
/// caller's environment.
pub fn on_emulator(command: &mut std::process::Command) -> &mut std::process::Command {
    command
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("MAILROOM_TABLE")
}

/// The JSON array a successful command printed (`mailroom … --json`).
pub fn printed_array(out: &std::process::Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .expect("JSON on stdout")
        .as_array()
        .expect("a JSON array")
        .clone()
}

/// Stores `raw` in `bucket` under `inbound/<a new id>`, as SES's receipt rule does; the id, and the S3
/// `ObjectCreated` event that announces it.
pub async fn store_inbound(
    sdk: &SdkConfig,
    bucket: &str,
    raw: Vec<u8>,
) -> (String, serde_json::Value) {
    let id = unique("msg");
    let key = format!("inbound/{id}");
    let size = raw.len();
    s3(sdk)
        .put_object()
        .bucket(bucket)
        .key(&key)
        .body(raw.into())
        .send()
        .await
        .expect("the emulator stores the mail");
    let event = serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
        "eventTime": chrono::Utc::now().to_rfc3339(), "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": size}}
    }]});
    (id, event)
}

/// A CloudFormation stack in the emulator whose only content is `outputs`, as a deployed stack's outputs
/// name its resources.
pub async fn stack_with_outputs(sdk: &SdkConfig, name: &str, outputs: &[(&str, &str)]) {
    let outputs: serde_json::Map<String, serde_json::Value> = outputs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), serde_json::json!({ "Value": value })))
        .collect();
    let template = serde_json::json!({
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": outputs
    });
    aws_sdk_cloudformation::Client::new(sdk)
        .create_stack()
        .stack_name(name)
        .template_body(template.to_string())
        .send()
        .await
        .expect("the emulator creates the stack");
}

/// The link endpoint the tests configure (`MAILROOM_LINK_BASE_URL`).
pub const LINK_BASE: &str = "https://links.mailroom.test";

/// Follows a link to [`LINK_BASE`] through the real links handler, then the presigned URL it redirects
/// to: the bytes served.
pub async fn follow_link(app: &links::App, url: &str) -> Vec<u8> {
    let path = url
        .strip_prefix(LINK_BASE)
        .expect("a link to the link endpoint");
    let event = serde_json::json!({"rawPath": path, "requestContext": {"http": {"method": "GET"}}});
    let answer = links::handle(
        app,
        lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()),
    )
    .await
    .expect("the links handler answers");
    assert_eq!(answer["statusCode"], 302, "{answer}");
    let location = answer["headers"]["location"].as_str().expect("a redirect");
    let response = reqwest::get(location)
        .await
        .expect("the presigned URL answers");
    assert_eq!(response.status().as_u16(), 200);
    response.bytes().await.expect("a body").to_vec()
}

/// A new domain, verified in the emulator's SES, that mail may be sent from.
pub async fn verified_domain(sdk: &SdkConfig, prefix: &str) -> String {
    let domain = format!("{}.example.com", unique(prefix));
    aws_sdk_sesv2::Client::new(sdk)
        .create_email_identity()
        .email_identity(&domain)
        .send()
        .await
        .expect("the emulator verifies the identity");
    domain
}

/// Every file under `dir` whose bytes contain `needle` (case-insensitive).
pub fn files_containing(dir: &std::path::Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap().to_ascii_lowercase();
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found.push(path.display().to_string());
                }
            }
        }
    }
    found
}

/// django-anymail's inbound views in a real Django app (tests/anymail/receiver.py), the way an app written
/// for Postmark, Mailgun or SendGrid receives their webhooks: each POST it parses becomes one JSON line.
pub struct Anymail {
    child: std::process::Child,
    port: u16,
    lines: std::sync::mpsc::Receiver<serde_json::Value>,
}

impl Anymail {
    /// The Python of the virtualenv scripts/test makes (`MAILROOM_ANYMAIL_PYTHON` overrides it).
    pub fn python() -> std::path::PathBuf {
        if let Ok(python) = std::env::var("MAILROOM_ANYMAIL_PYTHON") {
            return python.into();
        }
        let home = std::env::var("HOME").unwrap_or_default();
        std::path::Path::new(&home).join(".cache/mailroom/anymail-venv/bin/python")
    }

    /// Starts the app: anymail requires `basic` ("user:password") as HTTP basic auth on every POST and
    /// checks Mailgun signatures against `mailgun_signing_key`.
    pub fn start(basic: &str, mailgun_signing_key: &str) -> Anymail {
        let python = Anymail::python();
        assert!(
            python.exists(),
            "{} is missing: run scripts/test, or python3 -m venv ~/.cache/mailroom/anymail-venv && \
             ~/.cache/mailroom/anymail-venv/bin/pip install -r tests/anymail/requirements.txt",
            python.display()
        );
        let mut child = Command::new(&python)
            .arg(repo("tests/anymail/receiver.py"))
            .env("ANYMAIL_WEBHOOK_SECRET", basic)
            .env("MAILGUN_WEBHOOK_SIGNING_KEY", mailgun_signing_key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the anymail receiver starts");
        let stdout = child.stdout.take().unwrap();
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let (tx, lines) = std::sync::mpsc::channel();
        // A reader thread: the app writes each line before it answers, so lines must be read meanwhile.
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = line.strip_prefix("listening ") {
                    let _ = port_tx.send(port.trim().parse::<u16>().unwrap());
                } else if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                    break;
                }
            }
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the anymail receiver prints its port");
        Anymail { child, port, lines }
    }

    /// `http://user:password@127.0.0.1:port{path}`.
    pub fn url(&self, basic: &str, path: &str) -> String {
        format!("http://{basic}@127.0.0.1:{}{path}", self.port)
    }

    /// The next line the app printed: what anymail parsed, or why it failed.
    pub fn next(&self, timeout: Duration) -> Option<serde_json::Value> {
        self.lines.recv_timeout(timeout).ok()
    }
}

impl Drop for Anymail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
