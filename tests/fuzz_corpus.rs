//! Replays every committed fuzz input through the fuzz harnesses, on stable Rust and without
//! libFuzzer, so plain `cargo test` (and CI) keeps exercising them: the seed corpus
//! (`fuzz/seeds/<target>/`) and the minimised inputs of every crash the fuzzers found
//! (`fuzz/regressions/<target>/`). The harness code is `fuzz/src/lib.rs`, shared with the
//! libFuzzer targets. With `VQSGD_FUZZ_CORPUS=1` the grown, uncommitted corpus
//! (`fuzz/corpus/<target>/`) is replayed as well.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod harness;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files directly in `dir` (none when it does not exist), sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// Run `target`'s harness on every file of `kind/<target>`; returns the number replayed.
fn replay(kind: &str, target: &str, run: fn(&[u8])) -> usize {
    let dir = fuzz_dir().join(kind).join(target);
    let list = files(&dir);
    for p in &list {
        let bytes = std::fs::read(p).unwrap();
        let r = std::panic::catch_unwind(|| run(&bytes));
        assert!(
            r.is_ok(),
            "{target}: {} makes the harness panic",
            p.display()
        );
    }
    list.len()
}

#[test]
fn every_target_has_seeds_and_they_replay_cleanly() {
    for &(target, run) in harness::TARGETS {
        let n = replay("seeds", target, run);
        assert!(n >= 3, "{target}: only {n} seeds in fuzz/seeds/{target}");
    }
}

#[test]
fn every_minimised_crash_input_replays_cleanly() {
    let mut total = 0;
    for &(target, run) in harness::TARGETS {
        total += replay("regressions", target, run);
    }
    // Every target directory under regressions/ must belong to a target.
    for d in std::fs::read_dir(fuzz_dir().join("regressions"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = d.file_name().to_string_lossy().into_owned();
        assert!(
            harness::TARGETS.iter().any(|t| t.0 == name),
            "fuzz/regressions/{name} is not a fuzz target"
        );
    }
    eprintln!("{total} regression inputs replayed");
}

#[test]
fn grown_corpus_replays_cleanly_when_asked() {
    if std::env::var_os("VQSGD_FUZZ_CORPUS").is_none() {
        return;
    }
    for &(target, run) in harness::TARGETS {
        let n = replay("corpus", target, run);
        eprintln!("{target}: {n} corpus inputs replayed");
    }
}

#[test]
fn generated_seeds_replay_cleanly() {
    let seeds = harness::generated_seeds();
    assert!(seeds.iter().filter(|s| s.0 == "payload_decode").count() >= 30);
    for (target, name, bytes) in &seeds {
        let run = harness::TARGETS.iter().find(|t| t.0 == *target).unwrap().1;
        let r = std::panic::catch_unwind(|| run(bytes));
        assert!(
            r.is_ok(),
            "{target}: generated seed {name} makes the harness panic"
        );
    }
}

/// Writes the generated seeds (payloads, checkpoints) into `fuzz/seeds/`; run by hand after
/// a payload or checkpoint format change.
#[test]
#[ignore]
fn write_seeds() {
    for (target, name, bytes) in harness::generated_seeds() {
        let dir = fuzz_dir().join("seeds").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
