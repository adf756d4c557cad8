//! Roles, the permission matrix and the tamper-evident audit log, through the binary.
//!
//! The tests run as the workspace owner and act for other users through `SUDO_UID`, the way
//! analysts reach an owner-only workspace. They borrow the system accounts with uids 1, 2
//! and 3 (`daemon`, `bin`, `sys` on Debian) as analyst, researcher and a user without a role.

use std::path::Path;
use std::process::Output;

use kith::audit::{Operation, Role};

use crate::support::{kith, synth};

const ANALYST_UID: &str = "1";
const RESEARCHER_UID: &str = "2";
const NO_ROLE_UID: &str = "3";

fn user_of(uid: &str) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.get(2) == Some(&uid))
        .map(|f| f[0].to_owned())
        .unwrap()
}

/// A workspace whose policy gives the borrowed accounts their roles.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    assert!(kith().arg("init").arg(dir.path()).status().unwrap().success());
    let policy_path = dir.path().join("kith.toml");
    let policy = std::fs::read_to_string(&policy_path).unwrap();
    let policy = policy
        .replace("analyst = []", &format!("analyst = [\"{}\"]", user_of(ANALYST_UID)))
        .replace("researcher = []", &format!("researcher = [\"{}\"]", user_of(RESEARCHER_UID)));
    std::fs::write(&policy_path, policy).unwrap();
    dir
}

fn run_as(root: &Path, uid: Option<&str>, args: &[&str]) -> Output {
    let mut command = kith();
    command.arg("--workspace").arg(root).args(args);
    if let Some(uid) = uid {
        command.env("SUDO_UID", uid);
    }
    command.output().unwrap()
}

fn log_lines(root: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(root.join("audit/audit.log"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn verify(root: &Path) -> Output {
    run_as(root, None, &["audit", "verify"])
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_permission_table_is_the_documented_matrix() {
    // Rows as docs/access.md lists them: steward, analyst, researcher.
    let expected = [
        (Operation::Init, [true, false, false]),
        (Operation::Ingest, [true, false, false]),
        (Operation::RotateKey, [true, false, false]),
        (Operation::Graph, [true, false, false]),
        (Operation::Policy, [true, false, false]),
        (Operation::BudgetGrant, [true, false, false]),
        (Operation::BudgetShow, [true, true, true]),
        (Operation::Report, [true, true, false]),
        (Operation::Query, [false, false, true]),
        (Operation::ReadReleases, [true, true, true]),
        (Operation::AuditVerify, [true, false, false]),
        (Operation::AuditShow, [true, false, false]),
    ];
    assert_eq!(expected.len(), Operation::ALL.len());
    for (operation, row) in expected {
        for (role, allowed) in Role::ALL.into_iter().zip(row) {
            assert_eq!(operation.allowed().contains(&role), allowed, "{operation:?} {role}");
        }
    }
}

#[test]
fn every_workspace_command_under_every_role() {
    let dir = workspace();
    let root = dir.path();
    let (export, _) = synth(200, 5, 0.0);
    let export = export.path().to_str().unwrap().to_owned();
    let commands: [(&[&str], Operation); 7] = [
        (&["audit", "verify"], Operation::AuditVerify),
        (&["audit", "show"], Operation::AuditShow),
        (&["ingest", &export], Operation::Ingest),
        (&["rotate-key"], Operation::RotateKey),
        (&["release", "--period", "2026-02"], Operation::Report),
        (&["budget"], Operation::BudgetShow),
        (&["graph"], Operation::Graph),
    ];
    let callers = [
        (None, Some(Role::Steward)),
        (Some(ANALYST_UID), Some(Role::Analyst)),
        (Some(RESEARCHER_UID), Some(Role::Researcher)),
        (Some(NO_ROLE_UID), None),
    ];

    for (args, operation) in commands {
        for (uid, role) in callers {
            let before = log_lines(root).len();
            let policy_before = std::fs::read(root.join("kith.toml")).unwrap();
            let output = run_as(root, uid, args);
            let allowed = role.is_some_and(|r| operation.allowed().contains(&r));

            let lines = log_lines(root);
            assert_eq!(lines.len(), before + 1, "{args:?} as {uid:?} leaves one audit line");
            let last = &lines[before];
            assert_eq!(last["command"], operation.as_str());
            assert_eq!(std::fs::read(root.join("kith.toml")).unwrap(), policy_before);
            if allowed {
                assert_eq!(
                    output.status.code(),
                    Some(0),
                    "{args:?} as {uid:?}: {}",
                    stderr(&output)
                );
                assert_eq!(last["outcome"], "ok");
            } else {
                assert_eq!(output.status.code(), Some(4), "{args:?} as {uid:?}");
                let needs = format!("`{}` needs the", operation.as_str());
                assert!(stderr(&output).contains(&needs), "{}", stderr(&output));
                assert!(output.stdout.is_empty(), "a refused command prints nothing");
                assert_eq!(last["outcome"], "refused");
            }
            if let Some(uid) = uid {
                assert_eq!(last["user"], user_of(uid));
            }
        }
    }
    assert!(verify(root).status.success());
}

#[test]
fn sudo_uid_is_ignored_unless_kith_runs_as_the_workspace_owner() {
    let dir = workspace();
    // The owner's own run is attributed to the delegated user...
    let output = run_as(dir.path(), Some(ANALYST_UID), &["audit", "show"]);
    assert_eq!(output.status.code(), Some(4));
    // ...and a plain run to the owner, who is the steward.
    assert!(run_as(dir.path(), None, &["audit", "show"]).status.success());
    let users: Vec<String> =
        log_lines(dir.path()).iter().map(|l| l["user"].as_str().unwrap().to_owned()).collect();
    assert_eq!(users[1], user_of(ANALYST_UID));
    assert_ne!(users[2], user_of(ANALYST_UID));
}

/// Applies `tamper` to the log's lines and returns what `audit verify` says.
fn verify_after(tamper: impl FnOnce(&mut Vec<String>)) -> (Option<i32>, String) {
    let dir = workspace();
    let root = dir.path();
    for _ in 0..4 {
        assert!(run_as(root, None, &["audit", "show"]).status.success());
    }
    let path = root.join("audit/audit.log");
    let mut lines: Vec<String> =
        std::fs::read_to_string(&path).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 5);
    tamper(&mut lines);
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    let output = verify(root);
    (output.status.code(), stderr(&output))
}

#[test]
fn an_edited_line_is_named() {
    let (code, message) = verify_after(|lines| {
        lines[2] = lines[2].replace("\"outcome\":\"ok\"", "\"outcome\":\"refused\"");
    });
    assert_eq!(code, Some(6));
    assert!(message.contains("line 3: the MAC does not match"), "{message}");
}

#[test]
fn a_deleted_line_is_named() {
    let (code, message) = verify_after(|lines| {
        lines.remove(1);
    });
    assert_eq!(code, Some(6));
    assert!(message.contains("line 2: sequence number 3"), "{message}");
}

#[test]
fn reordered_lines_are_named() {
    let (code, message) = verify_after(|lines| lines.swap(2, 3));
    assert_eq!(code, Some(6));
    assert!(message.contains("line 3: sequence number 4"), "{message}");
}

#[test]
fn a_removed_last_line_is_caught_by_the_head() {
    let (code, message) = verify_after(|lines| {
        lines.pop();
    });
    assert_eq!(code, Some(6));
    assert!(message.contains("line 5: the log ends after line 4"), "{message}");
}

#[test]
fn a_line_cut_short_is_named() {
    let dir = workspace();
    let path = dir.path().join("audit/audit.log");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let output = verify(dir.path());
    assert_eq!(output.status.code(), Some(6));
    assert!(stderr(&output).contains("line 1: the line is cut short"), "{}", stderr(&output));
}

#[test]
fn a_forged_line_is_named() {
    let (code, message) = verify_after(|lines| {
        // A plausible next line: right sequence number and `prev`, with the last line's MAC
        // copied over, since a forger has no key to make one.
        let last = serde_json::from_str::<serde_json::Value>(&lines[4]).unwrap();
        let prev = kith::audit::log::sha256_hex(lines[4].as_bytes());
        let forged = lines[4]
            .replace("\"seq\":5", "\"seq\":6")
            .replace(last["prev"].as_str().unwrap(), &prev)
            .replace("\"command\":\"audit-show\"", "\"command\":\"policy\"");
        lines.push(forged);
    });
    assert_eq!(code, Some(6));
    assert!(message.contains("line 6: the MAC does not match"), "{message}");
}

#[test]
fn concurrent_commands_lose_no_entry() {
    let dir = workspace();
    let root = dir.path().to_owned();
    let (processes, each) = (6, 8);
    let handles: Vec<_> = (0..processes)
        .map(|_| {
            let root = root.clone();
            std::thread::spawn(move || {
                for _ in 0..each {
                    let output = run_as(&root, None, &["audit", "show"]);
                    assert!(output.status.success(), "{}", stderr(&output));
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }

    let lines = log_lines(&root);
    assert_eq!(lines.len(), 1 + processes * each);
    let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=lines.len() as u64).collect::<Vec<_>>());
    assert!(verify(&root).status.success());
}

#[test]
fn the_workspace_holds_no_identity_and_no_key_in_text() {
    let (export, _) = synth(500, 17, 0.02);
    let dir = workspace();
    let root = dir.path();
    assert!(kith().arg("check").arg(export.path()).output().unwrap().status.code().is_some());
    for (uid, args) in [
        (None, &["audit", "show"][..]),
        (Some(ANALYST_UID), &["audit", "verify"][..]),
        (None, &["audit", "show", "--user", "root", "--since", "2026-01-01"][..]),
        (None, &["audit", "verify"][..]),
    ] {
        run_as(root, uid, args);
    }

    let people = crate::support::read_table(&export.path().join("people.csv"));
    let key = std::fs::read(root.join("secret.key")).unwrap();
    let chain_key = std::fs::read(root.join("audit/chain.key")).unwrap();
    let key_hex: Vec<String> = [&key, &chain_key].iter().map(|k| hex(k)).collect();

    for file in walk(root) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if file.extension().is_some_and(|e| e == "key") {
            continue;
        }
        let bytes = std::fs::read(&file).unwrap();
        assert!(!bytes.windows(32).any(|w| w == key || w == chain_key), "{name} holds key bytes");
        let text = String::from_utf8_lossy(&bytes);
        for hex in &key_hex {
            assert!(!text.contains(hex.as_str()), "{name} holds a key in hex");
        }
        for person in &people {
            assert!(!text.contains(person["dob"].as_str()) || person["dob"].is_empty());
            assert!(!text.contains(&format!("\"{}\"", person["ssn_last4"])), "{name}");
            assert!(!text.contains(person["source_id"].as_str()), "{name}");
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        write!(out, "{b:02x}").unwrap();
        out
    })
}
