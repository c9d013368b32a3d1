//! What Mailroom's benchmarks share: loading a generated set into memory and the conversion they time.
//!
//! The conversion is the one the inbound function does for a JSON target: parse, recover the envelope,
//! stream the CloudMailin JSON body into a writer.

use std::error::Error;
use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;

use bytes::Bytes;
use mailroom::format::{Format, Payload};
use mailroom::mail::{self, envelope::Envelope};

/// `bench/data`, or `$MAILROOM_BENCH_DATA` when set.
pub fn data_dir() -> PathBuf {
    std::env::var_os("MAILROOM_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data"))
}

/// Every `.eml` of `data_dir()/set`, sorted by name, read into memory.
pub fn load_set(set: &str) -> io::Result<Vec<(String, Bytes)>> {
    let dir = data_dir().join(set);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{}: {e} (run bench/gen_corpus.py first)", dir.display()),
            )
        })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            fs::read(&path).map(|raw| (name, Bytes::from(raw)))
        })
        .collect()
}

/// Parse + envelope + JSON render of one message into `out`.
pub fn convert(raw: Bytes, out: impl Write) -> Result<(), Box<dyn Error>> {
    let email = mail::parse(raw)?;
    let envelope = Envelope::recover(&email);
    Payload::new(Format::Json, &email, &envelope).write_to(out)?;
    Ok(())
}

/// A writer that throws the bytes away, like `io::sink()`, but counts them.
#[derive(Debug, Default)]
pub struct Counter(pub u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A line of `/proc/self/status` in kB, e.g. `VmHWM` (peak resident set) or `VmRSS`.
pub fn proc_status_kb(field: &str) -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}
