//! Criterion: in-process parse + envelope + JSON render into `io::sink()` over each generated set.
//!
//! One iteration converts every message of a set, so throughput is the set's raw bytes per second.
//! `convert/*` is the whole conversion; `parse/*` is parse + envelope alone (no JSON), to see where time goes.
//! Needs `bench/data` (python3 bench/gen_corpus.py).

use std::hint::black_box;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use mailroom::mail::{self, envelope::Envelope};
use mailroom_bench::{convert, load_set};

/// Sets, with the measurement time each gets (an iteration of the big ones is long).
const SETS: &[(&str, u64)] = &[("small", 6), ("medium", 8), ("large", 10), ("xl", 8)];

fn sets() -> Vec<(&'static str, u64, Vec<Bytes>)> {
    SETS.iter()
        .map(|&(set, secs)| match load_set(set) {
            Ok(files) if !files.is_empty() => {
                (set, secs, files.into_iter().map(|(_, raw)| raw).collect())
            }
            Ok(_) => panic!("bench/data/{set} is empty: run python3 bench/gen_corpus.py"),
            Err(error) => panic!("{error}"),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let sets = sets();
    for (group_name, whole) in [("convert", true), ("parse", false)] {
        let mut group = c.benchmark_group(group_name);
        group.sample_size(10).warm_up_time(Duration::from_secs(2));
        for (set, secs, files) in &sets {
            let bytes: usize = files.iter().map(Bytes::len).sum();
            group
                .throughput(Throughput::Bytes(bytes as u64))
                .measurement_time(Duration::from_secs(*secs))
                .sampling_mode(SamplingMode::Flat);
            group.bench_function(*set, |b| {
                b.iter(|| {
                    for raw in files {
                        // Cloning `Bytes` shares the buffer: no copy of the message is timed.
                        if whole {
                            if let Err(error) = convert(raw.clone(), io::sink()) {
                                panic!("{set}: {error}");
                            }
                        } else {
                            match mail::parse(raw.clone()) {
                                Ok(email) => {
                                    black_box(Envelope::recover(&email));
                                    black_box(email);
                                }
                                Err(error) => panic!("{set}: {error}"),
                            }
                        }
                    }
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
