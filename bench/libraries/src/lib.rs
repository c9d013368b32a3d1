//! Measurement programs live in src/bin/. This library only holds the paths they share, so that they run
//! from any clone of the repository.
use std::path::PathBuf;

/// The repository's test corpus (`tests/corpus`), the default input of the corpus programs.
pub const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/corpus");

/// Where the programs write generated files (`out/`, `html/`): `$BENCH_DATA_DIR` if set,
/// else `bench/libraries/target-data` (git-ignored).
pub fn data_dir() -> PathBuf {
    std::env::var_os("BENCH_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target-data")))
}

/// A folder under [`data_dir`], created if missing.
pub fn data_subdir(name: &str) -> PathBuf {
    let dir = data_dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
