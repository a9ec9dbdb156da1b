//! Every shipped config parses and validates; misspelled keys are rejected with their name.

use vqsgd::config::Config;

#[test]
fn every_file_in_configs_parses_and_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            Config::load(&p, &[]).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            n += 1;
        }
    }
    assert!(n >= 5, "only {n} configs found");
}

#[test]
fn misspelled_key_in_a_file_is_rejected() {
    let p = std::env::temp_dir().join(format!("vqsgd-bad-{}.toml", std::process::id()));
    std::fs::write(&p, "[compression]\nshceme = \"dense\"\n").unwrap();
    let e = Config::load(&p, &[]).unwrap_err().to_string();
    assert!(
        e.contains("shceme") && e.contains(p.to_str().unwrap()),
        "{e}"
    );
    assert!(e.contains("scheme"), "should list the allowed keys: {e}");
    std::fs::remove_file(&p).unwrap();
}
