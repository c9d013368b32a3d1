//! HTML to text over every text/html part of the corpus: mailroom::mail::html::html_to_text vs html2text 0.17.4.
//! Run: cargo run --release --bin html_corpus -- [corpus dir, default tests/corpus] [reps, default 10]
//! Writes every output to target-data/out/<part>.{ours,h2t80,h2traw}.txt for diffing.
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mail_parser::{Message, MessageParser, PartType};

fn collect_html<'a>(msg: &'a Message<'a>, out: &mut Vec<String>) {
    for part in &msg.parts {
        match &part.body {
            PartType::Html(html) => out.push(html.to_string()),
            PartType::Message(inner) => collect_html(inner, out),
            _ => {}
        }
    }
}

type Conv = fn(&str) -> Result<String, String>;

fn ours(h: &str) -> Result<String, String> {
    Ok(mailroom::mail::html::html_to_text(h))
}
/// What an adopter would write first: html2text::from_read(_, 80) (= config::plain(): wraps at 80,
/// `*em*`/`**strong**`, links as `[1]` footnotes, tables with box-drawing borders).
fn h2t80(h: &str) -> Result<String, String> {
    html2text::from_read(h.as_bytes(), 80).map_err(|e| e.to_string())
}
/// html2text set as close to ours as its options go: no decoration, no footnotes, tables read as
/// one column (raw mode, no borders, no cell padding), no wrapping (width 10_000, overflow allowed).
fn h2traw(h: &str) -> Result<String, String> {
    html2text::config::plain_no_decorate()
        .raw_mode(true)
        .allow_width_overflow()
        .string_from_read(h.as_bytes(), 10_000)
        .map_err(|e| e.to_string())
}

fn words(s: &str) -> HashMap<String, i64> {
    let mut m = HashMap::new();
    for w in s.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        *m.entry(w.to_lowercase()).or_insert(0) += 1;
    }
    m
}

#[derive(Default, Debug)]
struct Stats {
    panics: usize,
    errors: usize,
    bytes: usize,
    lines: usize,
    lines_over_80: usize,
    parts_with_footnotes: usize,
    parts_with_borders: usize,
    parts_with_invisible: usize,
    parts_with_nbsp: usize,
    trailing_ws_lines: usize,
    triple_newline: usize,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let corpus = args.next().unwrap_or_else(|| mailroom_bench_libraries::CORPUS.into());
    let reps: usize = args.next().map(|r| r.parse().unwrap()).unwrap_or(10);
    let mut files: Vec<_> = std::fs::read_dir(&corpus).unwrap().filter_map(|e| e.ok()).map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml")).collect();
    files.sort();
    let parts = read_parts(&files);

    // Silence panic messages; count them.
    std::panic::set_hook(Box::new(|_| {}));
    let out_dir = mailroom_bench_libraries::data_subdir("out");
    let convs: [(&str, Conv); 3] = [("ours", ours), ("h2t80", h2t80), ("h2traw", h2traw)];
    let mut outputs: HashMap<&str, Vec<Option<String>>> = HashMap::new();
    for (label, conv) in convs {
        outputs.insert(label, run(label, conv, &parts, reps, &out_dir));
    }
    for other in ["h2t80", "h2traw"] {
        agreement(&parts, &outputs, other);
    }
    reply_plain(&files);
}

/// Every text/html part of the corpus as (name, html); prints the counts.
fn read_parts(files: &[PathBuf]) -> Vec<(String, String)> {
    let mut parts: Vec<(String, String)> = Vec::new();
    let mut html_only = 0;
    let mut with_html = 0;
    for path in files {
        let raw = std::fs::read(path).unwrap();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if let Some(msg) = MessageParser::default().parse(&raw) {
            let mut v = Vec::new();
            collect_html(&msg, &mut v);
            for (i, h) in v.into_iter().enumerate() {
                parts.push((format!("{name}.{i}"), h));
            }
        }
        if let Ok(e) = mailroom::mail::parse(raw) {
            if e.html.is_some() { with_html += 1; if e.plain.is_none() { html_only += 1; } }
        }
    }
    let total_bytes: usize = parts.iter().map(|p| p.1.len()).sum();
    println!("{} messages; {} text/html parts (mail-parser 0.11.9, nested messages included), {} bytes of HTML",
        files.len(), parts.len(), total_bytes);
    println!("mailroom::mail::parse: {with_html} messages with an HTML body, {html_only} of them HTML-only (reply_plain renders these)");
    parts
}

/// One converter over every part: its outputs (written to `out_dir`), statistics and timing.
fn run(label: &str, conv: Conv, parts: &[(String, String)], reps: usize, out_dir: &Path) -> Vec<Option<String>> {
    let mut st = Stats::default();
    let mut outs = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    for (name, html) in parts {
        let t = Instant::now();
        let r = catch_unwind(AssertUnwindSafe(|| conv(html)));
        let el = t.elapsed();
        if el > slowest.0 { slowest = (el, name.clone()); }
        let out = match r {
            Err(_) => { st.panics += 1; None }
            Ok(Err(e)) => { st.errors += 1; eprintln!("{label} error on {name}: {e}"); None }
            Ok(Ok(s)) => Some(s),
        };
        if let Some(s) = &out {
            std::fs::write(out_dir.join(format!("{name}.{label}.txt")), s).unwrap();
            st.add(s);
        }
        outs.push(out);
    }
    // Timing: `reps` passes over all parts, each pass timed whole; panicking calls included.
    let mut passes = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        for (_, html) in parts {
            let _ = std::hint::black_box(catch_unwind(AssertUnwindSafe(|| conv(html))));
        }
        passes.push(t.elapsed());
    }
    passes.sort();
    println!("{label:8} pass over all parts: median {:.3} ms, min {:.3} ms ({} reps); slowest part {:.2} ms ({}); {:?}",
        passes[reps / 2].as_secs_f64() * 1e3, passes[0].as_secs_f64() * 1e3, reps,
        slowest.0.as_secs_f64() * 1e3, slowest.1, st);
    outs
}

impl Stats {
    /// Counts one output.
    fn add(&mut self, s: &str) {
        let st = self;
        st.bytes += s.len();
        st.lines += s.lines().count();
        st.lines_over_80 += s.lines().filter(|l| l.chars().count() > 80).count();
        st.trailing_ws_lines += s.lines().filter(|l| l.ends_with([' ', '\t']) && !l.ends_with("-- ")).count();
        if s.contains("\n\n\n") { st.triple_newline += 1; }
        let fnote = s.lines().any(|l| l.starts_with('[') && l.split_once("]: ").is_some_and(|(n, _)| n[1..].chars().all(|c| c.is_ascii_digit())));
        if fnote { st.parts_with_footnotes += 1; }
        if s.contains(['─', '│', '┼', '┬', '┴']) { st.parts_with_borders += 1; }
        if s.contains(['\u{200b}', '\u{200c}', '\u{200d}', '\u{2060}', '\u{feff}', '\u{ad}', '\u{34f}']) { st.parts_with_invisible += 1; }
        if s.contains('\u{a0}') { st.parts_with_nbsp += 1; }
    }
}

/// Content agreement: words (alphanumeric runs, lower-cased) of html2text's output vs ours.
fn agreement(parts: &[(String, String)], outputs: &HashMap<&str, Vec<Option<String>>>, other: &str) {
    let (mut identical, mut same_words, mut ours_only_total, mut theirs_only_total, mut ours_total) = (0, 0, 0i64, 0i64, 0i64);
    let mut worst: Vec<(i64, String)> = Vec::new();
    for (i, (name, _)) in parts.iter().enumerate() {
        let (Some(a), Some(b)) = (&outputs["ours"][i], &outputs[other][i]) else { continue };
        if a.trim() == b.trim() { identical += 1; }
        let (wa, wb) = (words(a), words(b));
        let mut ours_only = 0; let mut theirs_only = 0;
        for (w, n) in &wa { ours_only += (n - wb.get(w).copied().unwrap_or(0)).max(0); }
        for (w, n) in &wb { theirs_only += (n - wa.get(w).copied().unwrap_or(0)).max(0); }
        if ours_only == 0 && theirs_only == 0 { same_words += 1; }
        ours_only_total += ours_only; theirs_only_total += theirs_only;
        ours_total += wa.values().sum::<i64>();
        worst.push((ours_only + theirs_only, name.clone()));
    }
    worst.sort_by(|a, b| b.cmp(a));
    println!("ours vs {other}: {identical}/{} outputs identical (trimmed), {same_words} with the same words; \
              words only in ours {ours_only_total}, only in {other} {theirs_only_total} (ours has {ours_total} words); most different: {:?}",
        parts.len(), &worst[..5.min(worst.len())]);
}

/// reply_plain: strip_reply over each rendering, for the HTML-only messages (what the POST's reply_plain field carries).
fn reply_plain(files: &[PathBuf]) {
    let mut same = 0; let mut differ = Vec::new();
    for path in files {
        let Ok(e) = mailroom::mail::parse(std::fs::read(path).unwrap()) else { continue };
        let (None, Some(html)) = (&e.plain, &e.html) else { continue };
        let a = mailroom::mail::reply::strip_reply(&ours(html).unwrap()).trim().to_owned();
        let Ok(Ok(b)) = catch_unwind(AssertUnwindSafe(|| h2traw(html))) else { continue };
        let b = mailroom::mail::reply::strip_reply(&b).trim().to_owned();
        if a == b { same += 1 } else { differ.push(path.file_name().unwrap().to_string_lossy().to_string()) }
    }
    println!("reply_plain of HTML-only messages, ours vs strip_reply(h2traw): {same} identical, {} differ: {:?}", differ.len(), differ);
}
