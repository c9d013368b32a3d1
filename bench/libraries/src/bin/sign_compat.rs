//! Signing interoperability: ours (mailroom::deliver::signing) vs standardwebhooks 1.0.1.
//! Run: cargo run --release --bin sign_compat -- [corpus dir, default tests/corpus]
use std::io;
use std::sync::Arc;

use mailroom::deliver::signing;
use mailroom::deliver::{BodyWriter, WebhookRequest};
use mailroom::format::{Format, Payload};
use mailroom::mail::envelope::Envelope;
// Was deliver::signing::WebhookSecret when measured; it has since moved to route (commit 61e6850).
use mailroom::route::WebhookSecret;
use standardwebhooks::Webhook;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn headers(id: &str, ts: i64, sig: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert("webhook-id", id.parse().unwrap());
    h.insert("webhook-timestamp", ts.to_string().parse().unwrap());
    h.insert("webhook-signature", sig.parse().unwrap());
    h
}

/// Writes a body in 64 KB chunks, as the Lambda's streamed bodies do.
struct Chunked(Vec<u8>);
impl BodyWriter for Chunked {
    fn write_body(&self, out: &mut dyn io::Write) -> io::Result<()> {
        for c in self.0.chunks(64 * 1024) {
            out.write_all(c)?;
        }
        Ok(())
    }
}

fn main() {
    let corpus = std::env::args().nth(1).unwrap_or_else(|| mailroom_bench_libraries::CORPUS.into());

    // 1. The published spec test vector, both libraries.
    let vs = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (vid, vts, vbody) = ("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330i64, br#"{"test": 2432232314}"#);
    let ours = signing::sign(&[WebhookSecret::parse(vs).unwrap()], vid, vts, vbody);
    let theirs = Webhook::new(vs).unwrap().sign(vid, vts, vbody).unwrap();
    println!("spec vector: ours={ours} theirs={theirs} equal={}", ours == theirs);

    // 2. Ours signs (fresh secret, now), theirs verifies; and the reverse.
    let secret = WebhookSecret::generate().unwrap();
    let text = secret.to_string();
    let wh = Webhook::new(&text).unwrap();
    let ts = now();
    let body = br#"{"envelope":{"to":"a@example.com"},"plain":"hello \u00e9"}"#;
    let sig = signing::sign(std::slice::from_ref(&secret), "msg_1", ts, body);
    println!("ours->theirs (json): {:?}", wh.verify(body, &headers("msg_1", ts, &sig)));
    let sig2 = wh.sign("msg_1", ts, body).unwrap();
    println!(
        "theirs->ours (json): {:?}",
        signing::verify(&secret, "msg_1", &ts.to_string(), &sig2, body, now())
    );

    // 3. Rotation: two secrets, one header; theirs verifies with either secret.
    let old = WebhookSecret::generate().unwrap();
    let both = signing::sign(&[old.clone(), secret.clone()], "msg_2", ts, body);
    for (name, s) in [("old", &old), ("new", &secret)] {
        let w = Webhook::new(&s.to_string()).unwrap();
        println!("rotation header, theirs with {name} secret: {:?}", w.verify(body, &headers("msg_2", ts, &both)));
    }

    // 4. Streamed signing (WebhookRequest::streamed, 64 KB chunks) of a 5 MB body, verified by theirs.
    let big: Vec<u8> = (0..5_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let req = WebhookRequest::streamed("msg_3", ts, "application/json", Arc::new(Chunked(big.clone())), std::slice::from_ref(&secret)).unwrap();
    let sig = req.signature.clone().unwrap();
    println!("ours streamed 5 MB -> theirs: {:?}", wh.verify(&big, &headers("msg_3", ts, &sig)));

    // 5. A body that is not UTF-8 (e.g. a multipart/form-data payload carrying a PDF).
    let bin = [b'-', b'-', b'x', 0xff, 0x00, 0xfe, 0x80];
    let sig = signing::sign(std::slice::from_ref(&secret), "msg_4", ts, &bin);
    println!("ours->theirs (binary 7 B): {:?}", wh.verify(&bin, &headers("msg_4", ts, &sig)));
    println!("theirs sign (binary 7 B): {:?}", wh.sign("msg_4", ts, &bin));

    // 6. Every corpus message in every Mailroom format: signed by ours, verified by theirs.
    let mut files: Vec<_> = std::fs::read_dir(&corpus).unwrap().filter_map(|e| e.ok()).map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml")).collect();
    files.sort();
    for format in [Format::Json, Format::Multipart, Format::Raw] {
        let (mut ok, mut fail, mut not_utf8) = (0, 0, 0);
        let mut first_fail = None;
        for path in &files {
            let Ok(email) = mailroom::mail::parse(std::fs::read(path).unwrap()) else { continue };
            let env = Envelope::recover(&email);
            let body = Payload::new(format, &email, &env).with_boundary("B0undary").to_vec();
            let sig = signing::sign(std::slice::from_ref(&secret), "msg_c", ts, &body);
            if std::str::from_utf8(&body).is_err() { not_utf8 += 1; }
            match wh.verify(&body, &headers("msg_c", ts, &sig)) {
                Ok(()) => ok += 1,
                Err(e) => { fail += 1; first_fail.get_or_insert((path.file_name().unwrap().to_owned(), e.to_string())); }
            }
            // and ours verifies its own
            signing::verify(&secret, "msg_c", &ts.to_string(), &sig, &body, now()).unwrap();
        }
        println!("corpus {format:?}: {} messages, theirs verified {ok}, failed {fail} (bodies not UTF-8: {not_utf8}); first failure: {first_fail:?}", files.len());
    }
}
