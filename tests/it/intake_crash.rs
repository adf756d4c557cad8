//! Crash safety of `kith ingest` and `kith rotate-key`: after a failure or a kill at any
//! moment, the vault holds the previous snapshot or the new one, each whole, and the identity
//! map still gives every known person their ID.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kith::intake::vault::{self, Manifest};
use sha2::{Digest, Sha256};

use crate::support::kith;

fn synth_into(dir: &Path, people: usize, weeks: u32) {
    let status = kith()
        .args(["synth", "--people", &people.to_string(), "--seed", "3", "--weeks"])
        .arg(weeks.to_string())
        .arg("--out")
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
}

fn init(dir: &Path) -> PathBuf {
    let root = dir.join("ws");
    assert!(kith().arg("init").arg(&root).status().unwrap().success());
    root
}

fn ingest(root: &Path, export: &Path) -> Command {
    let mut command = kith();
    command.arg("--workspace").arg(root).arg("ingest").arg(export);
    command
}

/// Every committed snapshot, each checked whole: its manifest parses and every part's bytes
/// match the manifest's SHA-256.
fn whole_snapshots(root: &Path) -> Vec<Manifest> {
    let vault_dir = root.join("vault");
    vault::snapshots(&vault_dir)
        .unwrap()
        .iter()
        .map(|name| {
            let dir = vault_dir.join(name);
            let manifest = vault::read_manifest(&dir).expect("a committed snapshot has a manifest");
            for table in &manifest.tables {
                for file in &table.files {
                    let bytes = std::fs::read(dir.join(&file.path)).expect("every part exists");
                    let digest = kith::intake::source::hex(&Sha256::digest(&bytes));
                    assert_eq!(digest, file.sha256, "{name}/{}", file.path);
                }
            }
            manifest
        })
        .collect()
}

/// People in the identity map, from its header (magic, generations, count).
fn map_entries(root: &Path) -> u64 {
    let bytes = std::fs::read(root.join("identity/map.bin")).unwrap();
    u64::from_le_bytes(bytes[12..20].try_into().unwrap())
}

#[test]
fn an_injected_failure_at_every_write_step_keeps_the_previous_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("a"), dir.path().join("b"));
    synth_into(&first, 400, 8);
    synth_into(&second, 400, 9);

    for mode in ["fail", "crash"] {
        for step in ["staging", "parts", "quarantine", "manifest", "identity", "commit"] {
            let case = tempfile::tempdir().unwrap();
            let root = init(case.path());
            assert!(ingest(&root, &first).status().unwrap().code().is_some_and(|c| c <= 1));

            let output = ingest(&root, &second)
                .env("KITH_FAULT", format!("{mode}:{step}"))
                .output()
                .unwrap();
            match mode {
                "fail" => assert_eq!(output.status.code(), Some(5), "{step}"),
                _ => assert_eq!(output.status.code(), None, "{step}: killed by abort"),
            }
            let after = whole_snapshots(&root);
            assert_eq!(after.len(), 1, "{mode}:{step} left only the previous snapshot");

            let retry = ingest(&root, &second).output().unwrap();
            assert!(retry.status.code().is_some_and(|c| c <= 1), "{mode}:{step}");
            let after = whole_snapshots(&root);
            assert_eq!(after.len(), 2);
            assert_eq!(after[1].people_new, 0, "{mode}:{step}: every person kept their ID");
        }
    }
}

/// A small linear congruential generator: the kill moments need spread, not quality.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    *state >> 33
}

#[test]
fn killing_ingest_at_random_moments_never_leaves_a_partial_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let exports = [dir.path().join("a"), dir.path().join("b")];
    synth_into(&exports[0], 6000, 8);
    synth_into(&exports[1], 6000, 9);
    let root = init(dir.path());

    let started = Instant::now();
    assert!(ingest(&root, &exports[0]).status().unwrap().code().is_some_and(|c| c <= 1));
    let full = started.elapsed().as_micros() as u64 + 1;
    let known = map_entries(&root);
    assert_eq!(known, 6000);

    let mut state = u64::from(std::process::id());
    let mut committed = whole_snapshots(&root).len();
    let mut killed_mid_way = 0;
    for run in 0..36 {
        let export = &exports[(run + 1) % 2];
        let mut child =
            ingest(&root, export).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_micros(next(&mut state) % (full + full / 4)));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.code().is_none() {
            killed_mid_way += 1;
        }

        let after = whole_snapshots(&root);
        assert!(
            after.len() == committed || after.len() == committed + 1,
            "run {run}: {} snapshots after {committed}",
            after.len()
        );
        committed = after.len();
        // Whatever happened, the next ingest finds the map whole and everyone known.
        if run % 6 == 5 {
            let retry = ingest(&root, export).output().unwrap();
            assert!(retry.status.code().is_some_and(|c| c <= 1));
            let after = whole_snapshots(&root);
            if after.len() > 1 {
                assert_eq!(after.last().unwrap().people_new, 0, "run {run}");
            }
            assert_eq!(map_entries(&root), known, "run {run}: the map neither lost nor gained");
            committed = after.len();
        }
    }
    assert!(killed_mid_way >= 5, "only {killed_mid_way} kills landed mid-way");
    let verify = kith().arg("--workspace").arg(&root).args(["audit", "verify"]).output().unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
}

#[test]
fn an_interrupted_key_rotation_is_finished_and_keeps_every_id() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("a"), dir.path().join("b"));
    synth_into(&first, 300, 8);
    synth_into(&second, 300, 9);
    let root = init(dir.path());
    assert!(ingest(&root, &first).status().unwrap().code().is_some_and(|c| c <= 1));
    let map_before = std::fs::read(root.join("identity/map.bin")).unwrap();

    let exports = [&second, &first];
    let faults = ["fail:rotate-key", "crash:rotate-key", "fail:rotate-map", "crash:rotate-map"];
    for (round, fault) in faults.into_iter().enumerate() {
        // A rotation that was cut short is finished by the next one, so some of these succeed.
        kith()
            .arg("--workspace")
            .arg(&root)
            .arg("rotate-key")
            .env("KITH_FAULT", fault)
            .output()
            .unwrap();
        let export = exports[round % 2];
        assert!(ingest(&root, export).status().unwrap().code().is_some_and(|c| c <= 1), "{fault}");
        let snapshots = whole_snapshots(&root);
        assert_eq!(snapshots.len(), round + 2, "{fault}");
        assert_eq!(snapshots.last().unwrap().people_new, 0, "{fault}: every ID kept");
    }
    let rotate = kith().arg("--workspace").arg(&root).arg("rotate-key").output().unwrap();
    assert!(rotate.status.success(), "{}", String::from_utf8_lossy(&rotate.stderr));
    assert_ne!(std::fs::read(root.join("identity/map.bin")).unwrap(), map_before);
    assert!(std::fs::metadata(root.join("secret.key")).unwrap().len() > 32);

    assert!(ingest(&root, &second).status().unwrap().code().is_some_and(|c| c <= 1));
    let snapshots = whole_snapshots(&root);
    assert_eq!(snapshots.len(), 6);
    assert_eq!(snapshots.last().unwrap().people_new, 0, "rotation kept every person's ID");
}
