//! Writes every text/html part of the corpus to target-data/html/<part>.html (the input of html_stress newsletter10mb).
//! Usage: dump_html [corpus dir, default tests/corpus]
use mail_parser::{Message, MessageParser, PartType};
fn collect<'a>(m: &'a Message<'a>, out: &mut Vec<String>) {
    for p in &m.parts { match &p.body { PartType::Html(h) => out.push(h.to_string()), PartType::Message(i) => collect(i, out), _ => {} } }
}
fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| mailroom_bench_libraries::CORPUS.into());
    let out = mailroom_bench_libraries::data_subdir("html");
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "eml") { continue }
        let raw = std::fs::read(&p).unwrap();
        let Some(m) = MessageParser::default().parse(&raw) else { continue };
        let mut v = Vec::new(); collect(&m, &mut v);
        for (i, h) in v.iter().enumerate() {
            std::fs::write(out.join(format!("{}.{i}.html", p.file_stem().unwrap().to_string_lossy())), h).unwrap();
        }
    }
}
