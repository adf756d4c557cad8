//! `kith release` and `kith budget` end to end: the cache, the caps, the ledger's durability
//! under faults and kills, and concurrent spenders.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use kith::privacy::ledger::Ledger;

use crate::support::{kith, synth};

/// A workspace with one snapshot of a small synthetic export.
fn workspace_with_snapshot(people: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    assert!(kith().arg("init").arg(&root).output().unwrap().status.success());
    let (export, _) = synth(people, 11, 0.0);
    let ingest = kith().arg("--workspace").arg(&root).arg("ingest").arg(export.path()).output();
    assert_eq!(ingest.unwrap().status.code(), Some(0));
    (dir, root)
}

fn run(root: &Path, args: &[&str]) -> Output {
    kith().arg("--workspace").arg(root).args(args).output().unwrap()
}

fn release_files(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("releases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn released_rho(path: &Path) -> f64 {
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    value["privacy"]["rho"].as_f64().unwrap()
}

fn ledger_rho(root: &Path) -> f64 {
    Ledger::at(&root.join("ledger")).spends().unwrap().iter().map(|s| s.cost.rho).sum()
}

#[test]
fn a_repeated_request_returns_the_same_bytes_and_spends_nothing() {
    let (_dir, root) = workspace_with_snapshot(1500);
    let first = run(&root, &["release", "--period", "2026-02"]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let files = release_files(&root);
    assert_eq!(files.len(), 1);
    let bytes = std::fs::read(&files[0]).unwrap();
    let spent = ledger_rho(&root);
    assert!(spent > 0.0);

    let again = run(&root, &["release", "--from", "2026-02-01", "--to", "2026-02-28"]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing spent"));
    assert_eq!(release_files(&root), files);
    assert_eq!(std::fs::read(&files[0]).unwrap(), bytes);
    let spends = Ledger::at(&root.join("ledger")).spends().unwrap();
    assert_eq!(spends.len(), 1, "the cache hit spent nothing");

    let release: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(release["release"], "community-health");
    assert_eq!(release["privacy"]["unit"], "person");
    assert!(release["privacy"]["rho"].as_f64().unwrap() <= spent);
    let communities = release["communities"].as_array().unwrap();
    assert!(!communities.is_empty());
    for community in communities {
        assert!(community["people"]["value"].as_f64().unwrap() >= 11.0, "small cells withheld");
        let domains = community["domains"].as_array().unwrap();
        assert_eq!(domains.len(), 8);
        // Suppression carries over: a withheld count takes its rate with it, a shown rate
        // has healthy and unhealthy counts of at least the minimum cell, and the community
        // total adds up the shown domains only.
        let mut shown_total = 0.0;
        for domain in domains {
            let Some(count) = domain["decisions"]["value"].as_f64() else {
                assert!(domain["healthy_rate"].is_null(), "{domain}");
                continue;
            };
            assert!(count >= 11.0, "{domain}");
            shown_total += count;
            if let Some(rate) = domain["healthy_rate"]["value"].as_f64() {
                assert!(rate * count >= 11.0 - 1e-9 && (1.0 - rate) * count >= 11.0 - 1e-9);
            }
        }
        let total = community["decisions"]["value"].as_f64().unwrap();
        assert!((total - shown_total).abs() < 1e-6 * total.abs().max(1.0), "{community}");
    }
    assert!(release.get("withheld_communities").is_none(), "an exact count is never released");
}

#[test]
fn a_spend_over_the_cap_is_refused_before_anything_runs() {
    let (_dir, root) = workspace_with_snapshot(400);
    assert!(run(&root, &["release", "--period", "2026-01", "--epsilon", "1.5"]).status.success());
    let spent = ledger_rho(&root);

    // ρ adds, so ε does not: two spends of ε 1.5 come to about ε 2.03 at δ 1e-7, past ε 2.
    let refused = run(&root, &["release", "--period", "2026-01", "--epsilon", "1.51"]);
    assert_eq!(refused.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("2026-01 period budget"), "{stderr}");
    assert!(stderr.contains("remains"), "{stderr}");
    assert_eq!(release_files(&root).len(), 1);
    assert!((ledger_rho(&root) - spent).abs() < 1e-15, "the refusal spent nothing");

    let budget = run(&root, &["budget", "--period", "2026-03"]);
    assert!(budget.status.success());
    let text = String::from_utf8_lossy(&budget.stdout);
    assert!(text.contains("2026-01") && text.contains("2026-03") && text.contains("last 365 days"));

    let usage = run(&root, &["release", "--period", "2026-13"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn an_injected_fault_never_leaves_a_release_without_its_spend() {
    let (_dir, root) = workspace_with_snapshot(400);
    let ledger = Ledger::at(&root.join("ledger"));
    // (step, whether the spend is on disk when kith stops there)
    let steps = [("release-read", false), ("ledger-append", false), ("ledger-flushed", true)];
    let steps = steps.into_iter().chain([("release-write", true)]);
    for (round, (step, reserved)) in steps.enumerate() {
        for mode in ["fail", "crash"] {
            let before = ledger.spends().unwrap().len();
            let epsilon = format!("0.0{}", round * 2 + usize::from(mode == "crash") + 1);
            let output = kith()
                .arg("--workspace")
                .arg(&root)
                .args(["release", "--period", "2026-02", "--epsilon", &epsilon])
                .env("KITH_FAULT", format!("{mode}:{step}"))
                .output()
                .unwrap();
            assert!(!output.status.success(), "{mode}:{step}");
            assert_ne!(output.status.code(), Some(4), "{mode}:{step} was not refused");
            let after = ledger.spends().expect("the ledger parses").len();
            assert_eq!(after, before + usize::from(reserved), "{mode}:{step}");
        }
    }
    assert!(release_files(&root).is_empty(), "every attempt stopped before its file");
}

#[test]
fn a_refused_release_reads_nothing() {
    let (_dir, root) = workspace_with_snapshot(300);
    assert!(run(&root, &["release", "--period", "2026-01", "--epsilon", "1.9"]).status.success());
    // A fault where the snapshot is read would stop a release that got that far (exit 5);
    // the refusal (exit 4) comes first.
    let refused = kith()
        .arg("--workspace")
        .arg(&root)
        .args(["release", "--period", "2026-01", "--epsilon", "1.0"])
        .env("KITH_FAULT", "fail:release-read")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(4), "{}", String::from_utf8_lossy(&refused.stderr));
}

#[test]
fn killing_releases_at_random_moments_never_under_counts() {
    let (_dir, root) = workspace_with_snapshot(3000);
    let started = Instant::now();
    assert!(run(&root, &["release", "--period", "2026-01", "--epsilon", "0.01"]).status.success());
    let full = started.elapsed().as_micros() as u64 + 1;

    let mut state = u64::from(std::process::id()) | 1;
    let mut killed = 0;
    for run_number in 0..54 {
        // A new ε each time makes a new release (no cache hit).
        let epsilon = format!("{:.5}", 0.001 + 0.0001 * f64::from(run_number));
        let mut child = kith()
            .arg("--workspace")
            .arg(&root)
            .args(["release", "--period", "2026-02", "--epsilon", &epsilon])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        std::thread::sleep(Duration::from_micros((state >> 33) % (full + full / 3)));
        let _ = child.kill();
        if child.wait().unwrap().code().is_none() {
            killed += 1;
        }

        // Every published file has its own spend in the ledger, at least as large as the
        // cost the file states.
        let spends = Ledger::at(&root.join("ledger")).spends().expect("the ledger parses");
        for file in release_files(&root) {
            let name = file.file_stem().unwrap().to_string_lossy().into_owned();
            let key = name.rsplit('_').next().unwrap().to_owned();
            let spend = spends.iter().find(|s| s.definition.starts_with(&key));
            let spend = spend.unwrap_or_else(|| panic!("run {run_number}: {name} has no spend"));
            assert!(spend.cost.rho >= released_rho(&file), "run {run_number}: {name}");
        }
        assert!(spends.len() >= release_files(&root).len());
    }
    assert!(killed >= 10, "only {killed} kills landed mid-way");
}

#[test]
fn concurrent_spenders_cannot_overspend() {
    let (_dir, root) = workspace_with_snapshot(300);
    // Each asks for about ε 1.2 in the same month; zCDP composition lets two fit under the
    // month's cap of ε 2 and never three.
    let rho = kith::privacy::mechanism::rho_for_epsilon(1.2, 1e-7).unwrap();
    assert!(kith::privacy::mechanism::epsilon(2.0 * rho, 1e-7).unwrap() < 2.0);
    assert!(kith::privacy::mechanism::epsilon(3.0 * rho, 1e-7).unwrap() > 2.0);
    let children: Vec<_> = (0..6)
        .map(|i| {
            let epsilon = format!("1.2{i}");
            kith()
                .arg("--workspace")
                .arg(&root)
                .args(["release", "--period", "2026-02", "--epsilon", &epsilon])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let codes: Vec<Option<i32>> =
        children.into_iter().map(|mut c| c.wait().unwrap().code()).collect();
    let published = codes.iter().filter(|c| **c == Some(0)).count();
    assert_eq!(published, 2, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == Some(4)).count(), 6 - published);
    assert_eq!(release_files(&root).len(), published);
    let budget = run(&root, &["budget"]);
    let text = String::from_utf8_lossy(&budget.stdout);
    let february = text.lines().find(|l| l.starts_with("2026-02")).unwrap();
    let spent: f64 = february.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(spent <= 2.0, "{february}");
}
