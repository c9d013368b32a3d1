//! Peak memory and time of signing a 40 MB body.
//! Run each mode in its own process under /usr/bin/time -v (see bench-sign.sh):
//!   sign_mem ours-stream   ours, WebhookRequest::streamed, body written in 64 KB chunks (never whole)
//!   sign_mem ours-slice    ours, signing::sign over the whole body in memory
//!   sign_mem theirs        standardwebhooks::Webhook::sign over the whole body in memory
//!   sign_mem baseline      only builds the whole body in memory (the floor for the two slice modes)
use std::io;
use std::sync::Arc;
use std::time::Instant;

use mailroom::deliver::signing;
use mailroom::deliver::{BodyWriter, WebhookRequest};
// Was deliver::signing::WebhookSecret when measured; it has since moved to route (commit 61e6850).
use mailroom::route::WebhookSecret;

const SIZE: usize = 40 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TS: i64 = 1_614_265_330;

/// Chunk `i` of the body: printable ASCII (UTF-8, so standardwebhooks can sign it too).
fn chunk(i: usize, buf: &mut [u8]) {
    for (j, b) in buf.iter_mut().enumerate() {
        *b = b' ' + ((i * 31 + j * 7) % 95) as u8;
    }
}

struct Generated;
impl BodyWriter for Generated {
    fn write_body(&self, out: &mut dyn io::Write) -> io::Result<()> {
        let mut buf = vec![0u8; CHUNK];
        for i in 0..SIZE / CHUNK {
            chunk(i, &mut buf);
            out.write_all(&buf)?;
        }
        Ok(())
    }
}

fn whole() -> Vec<u8> {
    let mut body = Vec::with_capacity(SIZE);
    let mut buf = vec![0u8; CHUNK];
    for i in 0..SIZE / CHUNK {
        chunk(i, &mut buf);
        body.extend_from_slice(&buf);
    }
    body
}

fn main() {
    let mode = std::env::args().nth(1).expect("mode");
    let secret = WebhookSecret::parse(SECRET).unwrap();
    let (sig, secs) = match mode.as_str() {
        "ours-stream" => {
            let t = Instant::now();
            let req = WebhookRequest::streamed(ID, TS, "application/json", Arc::new(Generated), &[secret]).unwrap();
            (req.signature.unwrap(), t.elapsed().as_secs_f64())
        }
        "ours-slice" => {
            let body = whole();
            let t = Instant::now();
            let s = signing::sign(&[secret], ID, TS, &body);
            (s, t.elapsed().as_secs_f64())
        }
        "theirs" => {
            let body = whole();
            let wh = standardwebhooks::Webhook::new(SECRET).unwrap();
            let t = Instant::now();
            let s = wh.sign(ID, TS, &body).unwrap();
            (s, t.elapsed().as_secs_f64())
        }
        "baseline" => {
            let t = Instant::now();
            let body = whole();
            (format!("{} bytes", body.len()), t.elapsed().as_secs_f64())
        }
        other => panic!("unknown mode {other}"),
    };
    println!("{mode}: {sig} in {:.1} ms", secs * 1000.0);
}
