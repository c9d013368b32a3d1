//! Synthetic worst cases for HTML to text, one conversion per process (a stack overflow aborts the process,
//! catch_unwind cannot catch it). Usage: html_stress <ours|h2t80|h2traw|h2tparse> <case> [stack, e.g. 2m|8m]
//! The conversion runs on a thread with that stack (2 MiB = tokio's worker default, where the Lambda runs it).
//! Run all: bench/libraries/bench-html-stress.sh (newsletter10mb needs dump_html run first)
use std::time::Instant;

fn input(case: &str) -> String {
    const MB10: usize = 10 * 1024 * 1024;
    match case {
        "div10k" => format!("{}x{}", "<div>".repeat(10_000), "</div>".repeat(10_000)),
        "div30k" => format!("{}x{}", "<div>".repeat(30_000), "</div>".repeat(30_000)),
        "div100k" => format!("{}x{}", "<div>".repeat(100_000), "</div>".repeat(100_000)),
        "div100k-open" => format!("{}x", "<div>".repeat(100_000)),
        "blockquote100k" => format!("{}x", "<blockquote>".repeat(100_000)),
        "ul100k" => "<ul><li>a".repeat(100_000),
        "table100" => format!("{}x", "<table><tr><td>".repeat(100)),
        "table1000" => format!("{}x", "<table><tr><td>".repeat(1_000)),
        "span100k" => format!("{}x", "<span>".repeat(100_000)),
        "p10mb" => {
            let p = "<p>Some ordinary paragraph text &amp; more, with <a href=\"https://example.com/a/b?c=d\">a link</a> and <b>bold</b>.</p>\n";
            p.repeat(MB10 / p.len())
        }
        "newsletter10mb" => {
            // A real layout-table newsletter from the corpus, its body repeated to 10 MB.
            let html = std::fs::read_to_string(mailroom_bench_libraries::data_dir().join("html/mikel__error_emails_content_transfer_encoding_with_8bits.0.html"))
                .expect("target-data/html/ missing: run dump_html first");
            let body = html.split_once("<body").map(|(_, b)| b.split_once('>').unwrap().1).unwrap_or(&html);
            let body = body.split("</body>").next().unwrap();
            format!("<html><body>{}</body></html>", body.repeat(MB10 / body.len()))
        }
        "text10mb" => "lorem ipsum dolor sit amet ".repeat(MB10 / 27),
        "lt4m" => "<".repeat(4 << 20),
        "amp4m" => "&amp".repeat(1 << 20),
        _ => panic!("unknown case {case}"),
    }
}

fn main() {
    let mut a = std::env::args().skip(1);
    let which = a.next().expect("impl");
    let case = a.next().expect("case");
    let stack = match a.next().as_deref() { Some("2m") | None => 2 << 20, Some("8m") => 8 << 20, Some(s) => panic!("{s}") };
    let html = input(&case);
    let len = html.len();
    let h = std::thread::Builder::new().stack_size(stack).spawn(move || {
        let t = Instant::now();
        let out: Result<String, String> = match which.as_str() {
            "ours" => Ok(mailroom::mail::html::html_to_text(&html)),
            "h2t80" => html2text::from_read(html.as_bytes(), 80).map_err(|e| e.to_string()),
            "h2traw" => html2text::config::plain_no_decorate().raw_mode(true).allow_width_overflow()
                .string_from_read(html.as_bytes(), 10_000).map_err(|e| e.to_string()),
            // html5ever's parse alone (html2text's first step), to attribute the time.
            "h2tparse" => html2text::config::plain().parse_html(html.as_bytes()).map(|_| String::new()).map_err(|e| e.to_string()),
            w => panic!("unknown impl {w}"),
        };
        (t.elapsed(), out)
    }).unwrap();
    match h.join() {
        Ok((el, Ok(out))) => println!("ok in {:.3} s: input {} B, output {} B", el.as_secs_f64(), len, out.len()),
        Ok((el, Err(e))) => println!("error after {:.3} s: {e}", el.as_secs_f64()),
        Err(_) => println!("panicked"),
    }
}
