//! `probe FILE [--runs N]`: times, on one message, the pieces that parse + render is made of, to show where
//! the time of a large message goes. The message's largest base64 body is taken out and timed with:
//! - `simd_chunked_decode`: the shape of `mailroom::mail::transfer`'s decoder (line breaks dropped into a
//!   64 KiB chunk, each chunk decoded by `base64-simd`), which `mailroom::mail::parse` runs since f6d4d85;
//! - `b64crate_strip_decode`: the `base64` crate's scalar decoder after dropping the line breaks (the
//!   fallback of the same module);
//! - `mail_parser_b64_decode`: mail-parser's byte-at-a-time `decode_base64_mime`, which parse used before
//!   (kept for comparison);
//! - `b64crate_encode_48k`: the `base64` crate's encoder in 48 KiB chunks, as the JSON writer runs it;
//! - `line_scan`: a memchr walk over every line of the whole message that looks at each line's start,
//!   the shape of the pass `mailroom`'s limits module makes before parsing;
//! - `mailroom_parse` and `mailroom_convert`: the library itself (parse + envelope, then + JSON to a sink);
//! - `first_message_in_process`: the first parse + render of the process, which pays one-off costs;
//! - `regex_compile_boundary`: compiling the boundary regex of mailroom's limits module (same pattern and
//!   crate features), which the first multipart message of a process pays.
//!
//! Prints `name ms MB/s` lines (MB/s of the input each piece reads), best of N runs.

use std::fs;
use std::hint::black_box;
use std::io;
use std::process::ExitCode;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use mail_parser::parsers::MessageStream;
use mailroom::mail::{self, envelope::Envelope};
use mailroom_bench::convert;

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..runs {
        let start = Instant::now();
        black_box(f());
        best = best.min(start.elapsed().as_secs_f64());
    }
    best
}

fn report(name: &str, secs: f64, input: usize) {
    println!(
        "{name:26} {:9.2} ms {:9.1} MB/s  ({input} input bytes)",
        secs * 1e3,
        input as f64 / 1e6 / secs
    );
}

/// The largest body after `Content-Transfer-Encoding: base64` and a blank line, up to the next `--`.
fn largest_base64_body(raw: &[u8]) -> &[u8] {
    let marker = b"Content-Transfer-Encoding: base64\r\n\r\n";
    let mut best: &[u8] = &[];
    for at in memchr::memmem::find_iter(raw, marker) {
        let start = at + marker.len();
        let rest = raw.get(start..).unwrap_or_default();
        let end = memchr::memmem::find(rest, b"\r\n--").unwrap_or(rest.len());
        let body = rest.get(..end).unwrap_or_default();
        if body.len() > best.len() {
            best = body;
        }
    }
    best
}

/// Base64 with line breaks, decoded the way `mailroom::mail::transfer` does it (a private module): trimmed
/// lines gathered into a 64 KiB chunk, whole quads of each chunk decoded by `base64-simd`.
fn simd_chunked_decode(body: &[u8]) -> Option<Vec<u8>> {
    const CHUNK: usize = 64 * 1024;
    fn decode_into(encoded: &[u8], out: &mut Vec<u8>) -> Option<()> {
        if encoded.is_empty() {
            return Some(());
        }
        let start = out.len();
        out.resize(start + encoded.len().div_ceil(4) * 3, 0);
        let engine = if encoded.len().is_multiple_of(4) {
            &base64_simd::STANDARD
        } else {
            &base64_simd::STANDARD_NO_PAD
        };
        let written = engine
            .decode(encoded, base64_simd::Out::from_slice(out.get_mut(start..)?))
            .ok()?
            .len();
        out.truncate(start + written);
        Some(())
    }
    let mut out = Vec::with_capacity(body.len() / 4 * 3 + 3);
    let mut chunk = Vec::with_capacity(CHUNK + 1024);
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len())) {
        let line = body.get(start..end).unwrap_or_default().trim_ascii();
        start = end + 1;
        chunk.extend_from_slice(line);
        if chunk.len() >= CHUNK {
            let whole = chunk.len() / 4 * 4;
            decode_into(chunk.get(..whole)?, &mut out)?;
            chunk.drain(..whole);
        }
    }
    decode_into(&chunk, &mut out)?;
    Some(out)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (file, runs) = match args.as_slice() {
        [file] => (file.clone(), 5usize),
        [file, flag, n] if flag == "--runs" => (file.clone(), n.parse().unwrap_or(5).max(1)),
        _ => {
            eprintln!("usage: probe FILE [--runs N]");
            return ExitCode::FAILURE;
        }
    };
    let raw = match fs::read(&file) {
        Ok(raw) => raw,
        Err(error) => {
            eprintln!("error: {file}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let body = largest_base64_body(&raw);
    println!(
        "{file}: {} bytes, largest base64 body {} bytes, best of {runs} runs",
        raw.len(),
        body.len()
    );

    probe_base64(body, runs);
    probe_line_scan(&raw, runs);

    let shared = Bytes::from(raw);
    let start = Instant::now();
    let first_ok = convert(shared.clone(), io::sink()).is_ok();
    report(
        "first_message_in_process",
        start.elapsed().as_secs_f64(),
        shared.len(),
    );
    black_box(first_ok);
    let t = best_of(runs, || {
        regex::bytes::Regex::new(r#"(?i)boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))"#)
            .is_ok()
    });
    report("regex_compile_boundary", t, 0);
    let t = best_of(runs, || match mail::parse(shared.clone()) {
        Ok(email) => {
            black_box(Envelope::recover(&email));
            email.attachments.len()
        }
        Err(_) => 0,
    });
    report("mailroom_parse", t, shared.len());
    let t = best_of(runs, || convert(shared.clone(), io::sink()).is_ok());
    report("mailroom_convert", t, shared.len());
    ExitCode::SUCCESS
}

/// The base64 decoders and encoder the conversion could build on, on the message's largest body.
fn probe_base64(body: &[u8], runs: usize) {
    let t = best_of(runs, || simd_chunked_decode(body).map_or(0, |v| v.len()));
    report("simd_chunked_decode", t, body.len());

    let mut stripped = Vec::with_capacity(body.len());
    let mut decoded = vec![0u8; body.len() / 4 * 3 + 3];
    let t = best_of(runs, || {
        stripped.clear();
        for line in body.split(|&b| b == b'\n') {
            stripped.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
        }
        STANDARD.decode_slice(&stripped, &mut decoded).unwrap_or(0)
    });
    report("b64crate_strip_decode", t, body.len());

    let t = best_of(runs, || {
        MessageStream::new(body).decode_base64_mime(b"").1.len()
    });
    report("mail_parser_b64_decode", t, body.len());

    let content = MessageStream::new(body)
        .decode_base64_mime(b"")
        .1
        .into_owned();
    let mut encoded = vec![0u8; 48 * 1024 / 3 * 4];
    let t = best_of(runs, || {
        let mut n = 0;
        for chunk in content.chunks(48 * 1024) {
            n += STANDARD.encode_slice(chunk, &mut encoded).unwrap_or(0);
        }
        n
    });
    report("b64crate_encode_48k", t, content.len());
}

/// One pass over the lines of the whole message, the floor of any MIME scan.
fn probe_line_scan(raw: &[u8], runs: usize) {
    let t = best_of(runs, || {
        let (mut pos, mut dashes) = (0usize, 0usize);
        while pos < raw.len() {
            let end = memchr::memchr(b'\n', raw.get(pos..).unwrap_or_default())
                .map_or(raw.len(), |i| pos + i + 1);
            if raw.get(pos..end).is_some_and(|l| l.starts_with(b"--")) {
                dashes += 1;
            }
            pos = end;
        }
        dashes
    });
    report("line_scan", t, raw.len());
}
