//! Every corpus payload type-checks under `tsc --strict` against CloudMailin's published `IncomingMail`
//! type (npm package `cloudmailin`), with only our documented extensions (tests/typescript/mailroom.d.ts).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::process::Command;

#[test]
fn payloads_type_check_against_cloudmailins_incoming_mail() {
    let checker = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/typescript");
    assert!(
        checker.join("node_modules/cloudmailin").is_dir()
            && checker.join("node_modules/typescript").is_dir(),
        "the TypeScript checker is not installed: run `npm ci --prefix tests/typescript` (./scripts/test does)"
    );
    let out = std::env::temp_dir().join(format!("mailroom-ts-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    for file in support::corpus_files() {
        let raw = std::fs::read(&file).unwrap();
        if mailroom::mail::parse(raw.clone()).is_err() {
            // Not a message (tests/corpus.rs names the one such file).
            continue;
        }
        let mut json = support::render_json(&raw);
        // Content is a string either way; keeping it short keeps tsc fast.
        for attachment in json["attachments"].as_array_mut().unwrap() {
            attachment["content"] = "QUJD".into();
        }
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        std::fs::write(
            out.join(format!("{name}.json")),
            serde_json::to_vec(&json).unwrap(),
        )
        .unwrap();
    }
    let status = Command::new("node")
        .arg(checker.join("check.mjs"))
        .arg(&out)
        .status()
        .expect("node is installed");
    std::fs::remove_dir_all(&out).unwrap();
    assert!(
        status.success(),
        "tsc --strict rejected a payload (see above)"
    );
}
