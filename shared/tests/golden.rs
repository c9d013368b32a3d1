//! Golden files: for a reviewed selection of corpus messages, the expected JSON payload, compared field by
//! field with the source message when it was checked in (see tests/golden/REVIEW.md).
//!
//! `MAILROOM_BLESS=1 cargo test -p mailroom --test golden` rewrites the files from the current output;
//! review every changed line against the source message before committing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs;

#[test]
fn golden_files_match() {
    let bless = std::env::var("MAILROOM_BLESS").is_ok_and(|v| v == "1");
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(support::golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    entries.sort();
    for expected_path in entries {
        let name = expected_path
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        // Corpus messages, or cases of our own (tests/golden/cases/) for what the corpus lacks.
        let raw = fs::read(support::corpus_dir().join(&name))
            .or_else(|_| fs::read(support::golden_dir().join("cases").join(&name)))
            .unwrap_or_else(|_| {
                panic!("neither tests/corpus/{name} nor tests/golden/cases/{name}")
            });
        let actual = support::normalized(support::render_json(&raw));
        let actual_text = serde_json::to_string_pretty(&actual).unwrap() + "\n";
        if bless {
            fs::write(&expected_path, &actual_text).unwrap();
        }
        let expected_text = fs::read_to_string(&expected_path).unwrap();
        let expected: serde_json::Value = serde_json::from_str(&expected_text).unwrap();
        if expected != actual {
            let diff = similar::TextDiff::from_lines(&expected_text, &actual_text);
            failures.push(format!(
                "{name}:\n{}",
                diff.unified_diff()
                    .context_radius(3)
                    .header("expected", "actual")
            ));
        }
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} golden files");
    assert!(
        failures.is_empty(),
        "{} golden mismatch(es):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
