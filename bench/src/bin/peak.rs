//! `peak FILE [--runs N]`: parse + envelope + JSON render of one message into a counting sink, in process.
//!
//! Prints one line of `key=value`: the file's size, the resident set after reading it (`rss_loaded_kb`),
//! the process's peak resident set at the end (`peak_rss_kb`, VmHWM of /proc/self/status, which includes the
//! message itself), the ratio of that peak to the message size, the JSON size, the warnings, and the times
//! of the first run (`parse_ms` = parse + envelope, `render_ms`, `total_ms`) and the best of N runs.

use std::fs;
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use bytes::Bytes;
use mailroom::format::{Format, Payload};
use mailroom::mail::{self, envelope::Envelope};
use mailroom_bench::{Counter, proc_status_kb};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (file, runs) = match args.as_slice() {
        [file] => (file.clone(), 1usize),
        [file, flag, n] if flag == "--runs" => match n.parse() {
            Ok(n) if n > 0 => (file.clone(), n),
            _ => return usage(),
        },
        _ => return usage(),
    };
    let raw = match fs::read(&file) {
        Ok(raw) => Bytes::from(raw),
        Err(error) => {
            eprintln!("error: {file}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let size = raw.len();
    let rss_loaded = proc_status_kb("VmRSS").unwrap_or(0);

    let mut first = None;
    let mut best = f64::INFINITY;
    let mut out_bytes = 0u64;
    let mut warnings = String::new();
    for _ in 0..runs {
        let start = Instant::now();
        let email = match mail::parse(raw.clone()) {
            Ok(email) => email,
            Err(error) => {
                eprintln!("error: {file}: {error}");
                return ExitCode::FAILURE;
            }
        };
        let envelope = Envelope::recover(&email);
        let parsed = start.elapsed();
        let mut counter = Counter::default();
        if let Err(error) = Payload::new(Format::Json, &email, &envelope).write_to(&mut counter) {
            eprintln!("error: {file}: {error}");
            return ExitCode::FAILURE;
        }
        let total = start.elapsed();
        out_bytes = counter.0;
        warnings = email
            .warnings
            .iter()
            .map(|w| w.code)
            .collect::<Vec<_>>()
            .join(",");
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        first.get_or_insert((ms(parsed), ms(total - parsed), ms(total)));
        best = best.min(ms(total));
        drop(email);
    }
    let (parse_ms, render_ms, total_ms) = first.unwrap_or_default();
    let peak = proc_status_kb("VmHWM").unwrap_or(0);
    let line = format!(
        "file={file} size={size} rss_loaded_kb={rss_loaded} peak_rss_kb={peak} peak_over_size={:.2} \
         json_bytes={out_bytes} parse_ms={parse_ms:.2} render_ms={render_ms:.2} total_ms={total_ms:.2} \
         runs={runs} best_total_ms={best:.2} mb_per_s_best={:.1} warnings={}\n",
        peak as f64 * 1024.0 / size.max(1) as f64,
        size as f64 / 1e6 / (best / 1e3),
        if warnings.is_empty() { "-" } else { &warnings },
    );
    let _ = std::io::stdout().write_all(line.as_bytes());
    ExitCode::SUCCESS
}

fn usage() -> ExitCode {
    eprintln!("usage: peak FILE [--runs N]");
    ExitCode::FAILURE
}
