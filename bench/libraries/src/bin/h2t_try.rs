//! html2text configs on one HTML file (args: file); how the "raw" config of html_corpus was chosen.
//! Writes each output to target-data/out/try.<config>.txt.
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let html = std::fs::read(&path).unwrap();
    let cfgs: Vec<(&str, Box<dyn Fn(&[u8]) -> String>)> = vec![
        ("plain80", Box::new(|h| html2text::from_read(h, 80).unwrap())),
        ("nodeco-noborder-w10000", Box::new(|h| html2text::config::plain_no_decorate().no_table_borders().allow_width_overflow().string_from_read(h, 10_000).unwrap())),
        ("nodeco-raw-w10000", Box::new(|h| html2text::config::plain_no_decorate().raw_mode(true).allow_width_overflow().string_from_read(h, 10_000).unwrap())),
        ("nodeco-raw-w80", Box::new(|h| html2text::config::plain_no_decorate().raw_mode(true).allow_width_overflow().string_from_read(h, 80).unwrap())),
    ];
    let out = mailroom_bench_libraries::data_subdir("out");
    for (n, f) in cfgs {
        let s = f(&html);
        let trailing: usize = s.lines().map(|l| l.len() - l.trim_end().len()).sum();
        println!("{n}: {} bytes, {} lines, {} trailing-space bytes", s.len(), s.lines().count(), trailing);
        std::fs::write(out.join(format!("try.{n}.txt")), s).unwrap();
    }
}
