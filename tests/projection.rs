//! The committed scaling projection is reproducible: `benchmarks/cluster/project.py` run on the
//! committed `summary.json` files of the 2- and 4-rank simulated-cluster results writes the
//! committed `projection.md` byte for byte, with a model-check row for every measured point and
//! a prediction for every (rate, ranks, scheme).

mod common;

use std::process::Command;

use common::{root, scratch};

#[test]
fn projection_is_reproducible_from_committed_runs() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("SKIP projection_is_reproducible_from_committed_runs: python3 not found");
        return;
    }
    let root = root();
    let res = root.join("benchmarks/results");
    let out = scratch("projection");
    let status = Command::new("python3")
        .arg(root.join("benchmarks/cluster/project.py"))
        .arg("--runs")
        .arg(res.join("cluster-4ranks"))
        .arg(res.join("cluster-2ranks"))
        .args(["--base-ranks", "2", "--out"])
        .arg(&out)
        .output()
        .expect("run project.py");
    assert!(
        status.status.success(),
        "project.py failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let got = std::fs::read_to_string(out.join("projection.md")).unwrap();
    let want = std::fs::read_to_string(res.join("projection/projection.md")).unwrap();
    assert_eq!(got, want, "projection.md differs from the committed one");

    // Model check: one row per measured (ranks, rate, scheme) with a summary.json.
    let rows = got
        .lines()
        .filter(|l| l.starts_with("| 2 |") || l.starts_with("| 4 |"));
    let mut points = std::collections::BTreeSet::new();
    for l in rows {
        let f: Vec<&str> = l.split('|').map(str::trim).collect();
        points.insert((f[1].to_string(), f[2].to_string(), f[5].to_string()));
    }
    let rates = ["1gbit", "100mbit"];
    for r in rates {
        for s in ["dense", "fp16", "cp-s9000-rice", "topk-1%"] {
            for p in ["2", "4"] {
                assert!(
                    points.contains(&(p.to_string(), r.to_string(), s.to_string())),
                    "no model check for {s} at {p} ranks, {r}"
                );
            }
        }
    }
    // Predictions: 3 rates x 10 rank counts (2..1024) x 7 schemes of the 2-rank runs.
    let csv = std::fs::read_to_string(out.join("projection.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 3 * 10 * 7, "projection.csv rows");
    for rate in ["10gbit", "25gbit", "100gbit"] {
        let svg = std::fs::read_to_string(out.join(format!("projection-{rate}.svg"))).unwrap();
        assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
    }
}
