//! The `kith` binary: workspaces, exit codes, help and error messages.

use std::os::unix::fs::PermissionsExt;

use crate::support::{kith, synth};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn init_creates_an_owner_only_workspace_and_refuses_to_clobber_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");

    let first = kith().arg("init").arg(&root).output().unwrap();
    assert!(first.status.success(), "{}", text(&first.stderr));
    let key = std::fs::metadata(root.join("secret.key")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    assert_eq!(key.len(), 32);
    let key_bytes = std::fs::read(root.join("secret.key")).unwrap();
    assert!(!text(&first.stdout).contains(&format!("{key_bytes:?}")));

    let second = kith().arg("init").arg(&root).output().unwrap();
    assert_eq!(second.status.code(), Some(5));
    let stderr = text(&second.stderr);
    assert!(stderr.contains("already holds workspace files"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
    assert_eq!(std::fs::read(root.join("secret.key")).unwrap(), key_bytes);
}

#[test]
fn init_uses_the_workspace_option_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("from-env");
    let status = kith().arg("init").env("KITH_WORKSPACE", &root).status().unwrap();
    assert!(status.success());
    let policy = std::fs::read_to_string(root.join("kith.toml")).unwrap();
    assert!(policy.contains("min_cell_size = 11"));
    assert!(policy.contains("steward = ["));
}

#[test]
fn bad_synth_arguments_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let output = kith().args(["synth", "--people", "5", "--out"]).arg(dir.path()).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("`--people` must lie between"));

    let output = kith()
        .args(["synth", "--people", "100", "--start", "2026-02-30", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("not a YYYY-MM-DD date"));
}

#[test]
fn check_reports_clean_and_dirty_exports_with_distinct_exit_codes() {
    let (clean, _) = synth(1_000, 21, 0.0);
    let output = kith().arg("check").arg(clean.path()).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("people"));

    let (dirty, _) = synth(1_000, 21, 0.05);
    let output = kith().arg("check").arg(dirty.path()).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("line "), "{stdout}");
    assert!(!stdout.contains("1985-02-30"), "reports carry reasons, not values");
}

#[test]
fn identifier_columns_refuse_the_export_naming_file_and_column() {
    let (dir, _) = synth(200, 4, 0.0);
    let people = dir.path().join("people.csv");
    let original = std::fs::read_to_string(&people).unwrap();
    let mut lines = original.lines();
    let header = format!("{},email", lines.next().unwrap());
    let body: Vec<String> = lines.map(|l| format!("{l},someone@example.org")).collect();
    std::fs::write(&people, format!("{header}\n{}\n", body.join("\n"))).unwrap();

    let output = kith().arg("check").arg(dir.path()).output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("people.csv, line 1"), "{stderr}");
    assert!(stderr.contains("`email` looks like a direct identifier"), "{stderr}");
    assert!(!stderr.contains("someone@example.org"));
}

#[test]
fn unknown_columns_are_refused_with_the_expected_list() {
    let (dir, _) = synth(200, 4, 0.0);
    let ties = dir.path().join("ties.csv");
    let original = std::fs::read_to_string(&ties).unwrap();
    std::fs::write(&ties, original.replacen("since", "since,strength", 1)).unwrap();

    let output = kith().arg("check").arg(dir.path()).output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("column `strength` is not in the `ties` contract"), "{stderr}");
    assert!(stderr.contains("from_id, to_id, kind, weight, since"), "{stderr}");
}

#[test]
fn demo_runs_on_the_bundled_sample() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/data-samples/program");
    let output = kith().args(["demo", "--sample", sample]).output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("workspace created"), "{stdout}");
    assert!(stdout.contains("snapshot snapshot-000001 written"), "{stdout}");
    assert!(stdout.contains("decisions"), "{stdout}");
    assert!(stdout.contains("published"), "{stdout}");
    assert!(stdout.contains("graph of snapshot-000001 stored"), "{stdout}");
    assert!(stdout.contains("audit log: 4 line(s), chain and MACs verified"), "{stdout}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let output = kith()
        .env_remove("RUST_LOG")
        .args(["--log-format", "json", "synth", "--people", "300", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = text(&output.stderr);
    assert!(!stderr.is_empty());
    for line in stderr.lines() {
        let event: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        assert!(event["fields"]["message"].is_string());
    }
}

#[test]
fn help_reads_like_a_unix_tool() {
    let output = kith().arg("--help").output().unwrap();
    assert!(output.status.success());
    insta::assert_snapshot!("help", text(&output.stdout));
    let output = kith().args(["synth", "--help"]).output().unwrap();
    insta::assert_snapshot!("synth_help", text(&output.stdout));
}
