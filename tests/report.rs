//! `vqsgd report` end to end: two short real runs under `mpirun -n 2` (dense and
//! cross-polytope on the embedded digits set), a killed run (metrics.csv without summary.json),
//! a missing directory and a quantizer study; the report's files must exist, every SVG must be
//! well-formed XML, the page must reference no URL and only local files that exist, and every
//! run must appear, the incomplete one marked as such.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{assert_success, run_vqsgd, scratch};
use vqsgd::plot::{BarChart, BarSeries};

/// Check that `doc` is well-formed XML: one root element, tags balanced and properly nested,
/// attribute values quoted, no duplicate attributes, only the predefined or numeric entities,
/// no `<` or `&` loose in text or attributes.
fn check_xml(doc: &str) -> Result<(), String> {
    let b = doc.as_bytes();
    let mut i = 0;
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0;
    let err = |i: usize, m: &str| Err(format!("byte {i}: {m}"));
    let check_text = |s: &str, at: usize| -> Result<(), String> {
        let mut rest = s;
        while let Some(k) = rest.find('&') {
            let end = rest[k..]
                .find(';')
                .ok_or(format!("byte {at}: unterminated entity"))?;
            let ent = &rest[k + 1..k + end];
            let ok = matches!(ent, "amp" | "lt" | "gt" | "quot" | "apos")
                || ent
                    .strip_prefix("#x")
                    .is_some_and(|h| u32::from_str_radix(h, 16).is_ok())
                || ent
                    .strip_prefix('#')
                    .is_some_and(|d| d.parse::<u32>().is_ok());
            if !ok {
                return Err(format!("byte {at}: unknown entity &{ent};"));
            }
            rest = &rest[k + end..];
        }
        Ok(())
    };
    while i < b.len() {
        if b[i] != b'<' {
            let next = doc[i..].find('<').map_or(b.len(), |k| i + k);
            let text = &doc[i..next];
            if text.contains('>') && text.contains("]]>") {
                return err(i, "]]> in text");
            }
            if stack.is_empty() && !text.trim().is_empty() {
                return err(i, "text outside the root element");
            }
            check_text(text, i)?;
            i = next;
            continue;
        }
        let rest = &doc[i..];
        if rest.starts_with("<?") {
            let end = rest
                .find("?>")
                .ok_or("unterminated processing instruction")?;
            i += end + 2;
        } else if rest.starts_with("<!--") {
            let end = rest.find("-->").ok_or("unterminated comment")?;
            i += end + 3;
        } else if let Some(r) = rest.strip_prefix("</") {
            let end = r.find('>').ok_or("unterminated end tag")?;
            let name = r[..end].trim();
            match stack.pop() {
                Some(open) if open == name => {}
                other => return err(i, &format!("</{name}> closes {other:?}")),
            }
            i += 2 + end + 1;
        } else {
            // Start tag: name, then name="value" pairs, then > or />.
            let mut j = i + 1;
            let name_end = j + doc[j..]
                .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .ok_or("unterminated tag")?;
            let name = &doc[j..name_end];
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_alphanumeric() || "-_:.".contains(c))
            {
                return err(i, &format!("bad tag name {name:?}"));
            }
            j = name_end;
            let mut attrs: Vec<&str> = Vec::new();
            loop {
                while j < b.len() && (b[j] as char).is_whitespace() {
                    j += 1;
                }
                if j >= b.len() {
                    return err(i, "unterminated tag");
                }
                if b[j] == b'>' || doc[j..].starts_with("/>") {
                    break;
                }
                let eq = j + doc[j..].find('=').ok_or("attribute without value")?;
                let an = doc[j..eq].trim();
                if an.is_empty() || an.contains(|c: char| c.is_whitespace() || c == '<' || c == '>')
                {
                    return err(j, &format!("bad attribute name {an:?}"));
                }
                if attrs.contains(&an) {
                    return err(j, &format!("duplicate attribute {an}"));
                }
                attrs.push(an);
                let q = b.get(eq + 1).copied();
                if q != Some(b'"') && q != Some(b'\'') {
                    return err(eq, &format!("attribute {an} is not quoted"));
                }
                let close = eq + 2 + doc[eq + 2..].find(q.unwrap() as char).ok_or("open quote")?;
                let val = &doc[eq + 2..close];
                if val.contains('<') {
                    return err(eq, "< in attribute value");
                }
                check_text(val, eq)?;
                j = close + 1;
            }
            if doc[j..].starts_with("/>") {
                if stack.is_empty() {
                    roots += 1;
                }
                i = j + 2;
            } else {
                if stack.is_empty() {
                    roots += 1;
                }
                stack.push(name.to_string());
                i = j + 1;
            }
        }
    }
    if !stack.is_empty() {
        return Err(format!("unclosed elements {stack:?}"));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(())
}

#[test]
fn xml_checker_catches_mistakes() {
    assert!(check_xml("<?xml version=\"1.0\"?>\n<a x=\"1\"><b/>t &amp; u</a>\n").is_ok());
    for bad in [
        "<a><b></a></b>",
        "<a x=1/>",
        "<a x=\"1\" x=\"2\"/>",
        "<a>&nbsp;</a>",
        "<a>1 < 2</a>",
        "<a/><b/>",
        "<a>",
        "<a x=\"<\"/>",
    ] {
        assert!(check_xml(bad).is_err(), "accepted {bad}");
    }
}

#[test]
fn bar_charts_are_well_formed() {
    let mut c = BarChart::new("bytes <per> rank & more", "run", "bytes");
    c.categories = (0..12)
        .map(|i| format!("a rather long run label number {i} r{}", i % 4))
        .collect();
    c.series.push(BarSeries::new(
        "sent",
        (0..12).map(|i| 10f64.powi(i % 5)).collect(),
    ));
    c.series
        .push(BarSeries::new("received \"x\"", vec![f64::NAN, -1.0, 3.0]));
    for (stacked, log) in [(false, false), (false, true), (true, false), (true, true)] {
        c.stacked = stacked;
        c.log_y = log;
        let svg = c.to_svg(900, 500);
        check_xml(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        assert!(svg.contains("number 11 r3") && svg.contains("received &quot;x&quot;"));
    }
    // Empty chart.
    check_xml(&BarChart::new("t", "x", "y").to_svg(300, 200)).unwrap();
}

/// The runs all report tests share: `(root of run dirs, [dense, cross_polytope, killed])`.
fn runs() -> &'static (PathBuf, Vec<PathBuf>) {
    static RUNS: OnceLock<(PathBuf, Vec<PathBuf>)> = OnceLock::new();
    RUNS.get_or_init(|| {
        let root = scratch("report-runs");
        let dense = root.join("dense");
        let cp = root.join("cp");
        let d = dense.to_str().unwrap().to_string();
        let c = cp.to_str().unwrap().to_string();
        let base = [
            "train",
            "--config",
            "configs/default.toml",
            "--set",
            "run.epochs=2",
        ];
        let out = run_vqsgd(2, &[&base[..], &["--out", &d]].concat(), 120);
        assert_success(&out, "dense run");
        let cp_args = [
            "--set",
            "compression.scheme=cross_polytope",
            "--set",
            "compression.repetitions=32",
            "--out",
            &c,
        ];
        let out = run_vqsgd(2, &[&base[..], &cp_args[..]].concat(), 120);
        assert_success(&out, "cross_polytope run");
        // A killed job: metrics.csv (with a half-written last line) and config.toml, no summary.
        let killed = root.join("killed");
        std::fs::create_dir_all(&killed).unwrap();
        let mut m = std::fs::read_to_string(cp.join("metrics.csv")).unwrap();
        m.push_str("135,3.0,0.0");
        std::fs::write(killed.join("metrics.csv"), m).unwrap();
        let cfg = std::fs::read_to_string(cp.join("config.toml")).unwrap();
        std::fs::write(
            killed.join("config.toml"),
            cfg.replace("name = \"default\"", "name = \"killed\""),
        )
        .unwrap();
        (root, vec![dense, cp, killed])
    })
}

const LABELS: [&str; 3] = [
    "default dense (2 ranks)",
    "default cross_polytope (2 ranks)",
    "killed cross_polytope",
];

fn report(args: &[&str]) -> std::process::Output {
    run_vqsgd(0, &[&["report"], args].concat(), 60)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every `href`/`src` value of an HTML page.
fn references(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["href=\"", "src=\"", "href='", "src='"] {
        let q = attr.chars().last().unwrap();
        let mut rest = html;
        while let Some(k) = rest.find(attr) {
            rest = &rest[k + attr.len()..];
            let end = rest.find(q).unwrap();
            out.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    out
}

#[test]
fn report_from_real_runs() {
    let (_, dirs) = runs();
    let out = scratch("report-out").join("report");
    let study = scratch("report-study").join("bits_vs_error.csv");
    std::fs::write(
        &study,
        "scheme,params,bits,rel_err,rel_err_se,lower_bound_err\n\
         cross_polytope,s=1,56,100000.9,0.3,1287.120572\n\
         cross_polytope,s=10,216,9998.8,0.4,332.957185\n\
         sparse+rot (rice),k=100,1570,637.1,2.0,44.945\n\
         sparse+rot (rice),k=1000,12911,63.2,0.2,4.586\n",
    )
    .unwrap();
    let missing = dirs[0].with_file_name("never-ran");
    let o = report(&[
        s(&dirs[0]),
        s(&dirs[1]),
        s(&dirs[2]),
        s(&missing),
        "--out",
        s(&out),
        "--target-accuracy",
        "0.3",
        "--bits-vs-error",
        s(&study),
    ]);
    assert_success(&o, "vqsgd report");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("incomplete") && stdout.contains("never-ran"),
        "{stdout}"
    );

    // Files.
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let svgs: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    // One group (digits, mlp): accuracy vs bits, vs time, bytes per rank, time split; one study.
    assert_eq!(svgs.len(), 5, "{svgs:?}");
    for kind in [
        "accuracy-vs-bits",
        "accuracy-vs-time",
        "bytes-per-rank",
        "time-split",
    ] {
        assert!(
            svgs.iter().any(|p| s(p).ends_with(&format!("{kind}.svg"))),
            "no {kind} plot"
        );
    }
    assert!(out.join("quantizers-1.svg").is_file());

    // Every SVG file is well-formed XML; the page inlines each of them.
    for p in &svgs {
        let svg = std::fs::read_to_string(p).unwrap();
        check_xml(&svg).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(!svg.contains("NaN"), "{}", p.display());
    }
    assert_eq!(html.matches("<svg").count(), svgs.len());
    assert!(html.contains(&format!("data-plots=\"{}\"", svgs.len())));
    // Each inlined SVG is itself well-formed.
    let mut rest = html.as_str();
    while let Some(k) = rest.find("<svg") {
        let end = rest[k..].find("</svg>").unwrap() + k + 6;
        check_xml(&rest[k..end]).unwrap();
        rest = &rest[end..];
    }

    // Self-contained: no URL at all, every reference a file in the report directory.
    for url in ["http:", "https:", "ftp:", "file:", "data:"] {
        assert!(!html.contains(url), "index.html contains {url}");
    }
    let refs = references(&html);
    assert!(refs.len() >= svgs.len() + 2, "{refs:?}");
    for r in refs {
        assert!(
            !r.starts_with("//") && !r.starts_with('/') && !r.contains(':'),
            "{r}"
        );
        let file = r.split('#').next().unwrap();
        if !file.is_empty() {
            assert!(
                out.join(file).is_file(),
                "index.html references missing {r}"
            );
        }
    }

    // Every run in the page and the tables; the killed one marked incomplete.
    for l in LABELS {
        assert!(html.contains(l), "index.html lacks {l}");
        assert!(md.contains(l), "summary.md lacks {l}");
        assert!(csv.contains(l), "summary.csv lacks {l}");
    }
    let row = |label: &str| {
        md.lines()
            .find(|l| l.starts_with(&format!("| {label} |")))
            .unwrap()
    };
    assert!(
        row(LABELS[0]).contains("| complete |"),
        "{}",
        row(LABELS[0])
    );
    assert!(row(LABELS[1]).contains("| complete |"));
    assert!(
        row(LABELS[2]).contains("| incomplete |"),
        "{}",
        row(LABELS[2])
    );
    assert!(md.contains("no summary.json"), "{md}");
    let miss = md
        .lines()
        .find(|l| l.contains("never-ran"))
        .expect("missing dir not listed");
    assert!(md.contains("| never-ran | unreadable |"), "{miss}\n{md}");
    assert!(md.contains("no such file or directory"));
    // The killed run joined the digits group (its config names the same data set and model).
    assert!(
        row(LABELS[2]).contains("digits / mlp 64-64-10"),
        "{}",
        row(LABELS[2])
    );
    // Table values: dense ratio 1.0x, compressed ratio far above, time to 0.3 reached.
    assert!(row(LABELS[0]).contains("| 1.0x |"));
    assert!(row(LABELS[0]).contains("| 153,920 |"), "{}", row(LABELS[0]));
    assert!(md.contains("time to accuracy >= 0.3"));
    assert!(row(LABELS[0]).contains(" s | "));
    // The quantizer study has the bound curve.
    let q = std::fs::read_to_string(out.join("quantizers-1.svg")).unwrap();
    assert!(q.contains("lower bound") && q.contains("sparse+rot (rice)"));
}

#[test]
fn directory_of_runs_and_regrouping() {
    let (root, _) = runs();
    let out = scratch("report-dir").join("r");
    let o = report(&[s(root), "--out", s(&out)]);
    assert_success(&o, "vqsgd report DIR");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    for l in LABELS {
        assert!(md.contains(l), "summary.md lacks {l}:\n{md}");
    }
    // Without --target-accuracy the column falls back to summary.json (no target: "-").
    assert!(md.contains("time to target"));
}

#[test]
fn fails_only_when_nothing_is_readable_or_out_unwritable() {
    let tmp = scratch("report-fail");
    let empty = tmp.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = report(&[s(&tmp.join("nope")), s(&empty), "--out", s(&tmp.join("r"))]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("nope") && err.contains("empty"), "{err}");

    // A directory with a garbage summary.json and nothing else is still a directory to list,
    // and a bad file next to a good run does not fail the report.
    let junk = tmp.join("junk");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("summary.json"), "{ not json").unwrap();
    std::fs::write(junk.join("ranks.csv"), "rank,bytes_sent\n0,zzz\n").unwrap();
    let (_, dirs) = runs();
    let o = report(&[s(&dirs[0]), s(&junk), "--out", s(&tmp.join("r2"))]);
    assert_success(&o, "report with a junk directory");
    let md = std::fs::read_to_string(tmp.join("r2/summary.md")).unwrap();
    assert!(
        md.contains("junk") && md.contains("summary.json does not parse"),
        "{md}"
    );

    // Output directory that cannot be created: the error names it.
    let file = tmp.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let bad_out = file.join("report");
    let o = report(&[s(&dirs[0]), "--out", s(&bad_out)]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(s(&bad_out)), "{err}");
}
