//! The tamper-evident audit log: one JSON line per command, chained by SHA-256.
//!
//! Each line carries `prev`, the SHA-256 of the line before it (zeros for the first), and
//! ends with `mac`, an HMAC-SHA256 of the rest of the line under the log's own key
//! (`chain.key`, 32 random bytes made at `init`, apart from the identity key so that rotating
//! that key leaves the log verifiable). The MAC pins each line to its exact bytes, so an
//! edited or forged line is named directly; the chain catches deleted and reordered lines.
//! `head.json`, also MAC'd, records how many lines and bytes the log had after the last
//! append, which catches truncation at the end.
//!
//! Appends take an exclusive lock (`audit.lock`), write the line with `O_APPEND` and fsync
//! it, then replace the head atomically. A crash between the two leaves a line the head does
//! not yet cover; its valid MAC proves kith wrote it, so the next append adopts it.
//!
//! Known limitation: someone who saves a copy of the log and head and later restores both
//! rolls the log back undetectably, as with any log kept on one machine. `kith audit verify`
//! prints the head's hash so a scheduler can keep it elsewhere and compare.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, IoContext, Result};
use crate::workspace::SecretKey;

/// The log itself.
pub const LOG_FILE: &str = "audit.log";
/// Line and byte count after the last committed append.
pub const HEAD_FILE: &str = "head.json";
/// The log's MAC key.
pub const CHAIN_KEY_FILE: &str = "chain.key";
/// The file appenders lock.
const LOCK_FILE: &str = "audit.lock";
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const MAC_PREFIX: &str = ",\"mac\":\"";

type HmacSha256 = Hmac<Sha256>;

/// A file a command wrote, by path inside the workspace and content digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputDigest {
    /// Path relative to the workspace root.
    pub path: String,
    /// SHA-256 of the file's bytes, in hex.
    pub sha256: String,
}

/// One audit line, without its MAC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// 1 for the first line, then consecutive.
    pub seq: u64,
    /// UTC time the command finished, RFC 3339.
    pub time: String,
    /// Operating-system user who ran it.
    pub user: String,
    /// Roles the user held in the policy at the time.
    pub roles: Vec<String>,
    /// The operation, as named in the permission table.
    pub command: String,
    /// The command's non-identifying arguments.
    pub args: std::collections::BTreeMap<String, String>,
    /// The vault snapshot the command worked on, if any.
    pub snapshot: Option<String>,
    /// Privacy loss (epsilon) charged by the command.
    pub epsilon_spent: f64,
    /// What it wrote.
    pub outputs: Vec<OutputDigest>,
    /// `ok`, `partial`, `refused` or `failed`.
    pub outcome: String,
    /// The command's exit code.
    pub exit_code: u8,
    /// SHA-256 of the previous line, in hex.
    pub prev: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Head {
    lines: u64,
    bytes: u64,
    last: String,
    mac: String,
}

/// What a successful verification saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Lines in the log.
    pub lines: u64,
    /// SHA-256 of the last line (zeros for an empty log): keep it elsewhere to detect rollback.
    pub last: String,
    /// Lines written by kith after the head's last update (an interrupted append).
    pub uncommitted: u64,
}

/// The audit folder of a workspace.
#[derive(Debug, Clone)]
pub struct AuditLog {
    dir: PathBuf,
}

impl AuditLog {
    /// The audit log in `dir` (the workspace's `audit/` folder).
    pub fn at(dir: &Path) -> AuditLog {
        AuditLog { dir: dir.to_owned() }
    }

    /// Path of the log file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    /// Creates an empty log: its key, an empty log file and the head.
    pub fn create(&self) -> Result<()> {
        SecretKey::generate()?.write_new(&self.dir.join(CHAIN_KEY_FILE))?;
        crate::workspace::write_private_file(&self.path(), b"")?;
        let key = self.key()?;
        write_head(&self.dir, &key, 0, 0, GENESIS)
    }

    fn key(&self) -> Result<SecretKey> {
        SecretKey::read(&self.dir.join(CHAIN_KEY_FILE))
    }

    /// Appends one entry; `entry.seq` and `entry.prev` are filled in here.
    ///
    /// # Errors
    ///
    /// An integrity error when the log does not match its head (truncated, or lines kith did
    /// not write): nothing is appended to a log that fails its own check.
    pub fn append(&self, mut entry: Entry) -> Result<()> {
        let lock_path = self.dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .at("opening", &lock_path)?;
        lock.lock().at("locking", &lock_path)?;

        let key = self.key()?;
        let head = read_head(&self.dir, &key)?;
        let (lines, bytes, last) = self.adopt_uncommitted(&key, &head)?;

        entry.seq = lines + 1;
        entry.prev = last;
        let line = sign(&key, &entry)?;
        let path = self.path();
        let mut log = OpenOptions::new().append(true).open(&path).at("opening", &path)?;
        log.write_all(line.as_bytes()).at("appending to", &path)?;
        log.sync_data().at("flushing", &path)?;

        let hash = sha256_hex(line.trim_end_matches('\n').as_bytes());
        write_head(&self.dir, &key, lines + 1, bytes + line.len() as u64, &hash)?;
        drop(lock);
        Ok(())
    }

    /// Lines, bytes and last hash of the log, including valid lines past the head.
    fn adopt_uncommitted(&self, key: &SecretKey, head: &Head) -> Result<(u64, u64, String)> {
        let path = self.path();
        let size = std::fs::metadata(&path).at("reading", &path)?.len();
        if size == head.bytes {
            return Ok((head.lines, head.bytes, head.last.clone()));
        }
        if size < head.bytes {
            return Err(integrity(&path, None, "the log is shorter than its head records"));
        }
        let bytes = std::fs::read(&path).at("reading", &path)?;
        let boundary = head.bytes == 0 || bytes.get(head.bytes as usize - 1) == Some(&b'\n');
        let tail = std::str::from_utf8(&bytes[head.bytes as usize..])
            .ok()
            .filter(|_| boundary)
            .ok_or_else(|| {
                integrity(
                    &path,
                    None,
                    "the log changed after its last committed line; \
                                        run `kith audit verify` to find where",
                )
            })?;
        let (mut lines, mut last) = (head.lines, head.last.clone());
        for line in tail.split_inclusive('\n') {
            let Some(text) = line.strip_suffix('\n') else {
                return Err(integrity(&path, Some(lines + 1), "a partial line ends the log"));
            };
            check_line(key, text, lines + 1, &last)
                .map_err(|p| integrity(&path, Some(lines + 1), &p))?;
            lines += 1;
            last = sha256_hex(text.as_bytes());
        }
        tracing::warn!(adopted = lines - head.lines, "audit head lagged the log; lines adopted");
        Ok((lines, size, last))
    }

    /// Checks the whole log against its MACs, its chain and its head.
    ///
    /// # Errors
    ///
    /// An integrity error naming the first bad line and what is wrong with it.
    pub fn verify(&self) -> Result<Verified> {
        let key = self.key()?;
        let head = read_head(&self.dir, &key)?;
        let path = self.path();
        let bytes = std::fs::read(&path).at("reading", &path)?;
        let text = String::from_utf8(bytes).map_err(|e| {
            integrity(&path, None, &format!("not UTF-8 at byte {}", e.utf8_error().valid_up_to()))
        })?;

        let mut last = GENESIS.to_owned();
        let mut lines = 0u64;
        let mut hash_at_head = (head.lines == 0).then(|| GENESIS.to_owned());
        for line in text.split_inclusive('\n') {
            let number = lines + 1;
            let Some(line) = line.strip_suffix('\n') else {
                return Err(integrity(&path, Some(number), "the line is cut short (no line end)"));
            };
            check_line(&key, line, number, &last)
                .map_err(|p| integrity(&path, Some(number), &p))?;
            last = sha256_hex(line.as_bytes());
            lines = number;
            if lines == head.lines {
                hash_at_head = Some(last.clone());
            }
        }

        if lines < head.lines {
            return Err(integrity(
                &path,
                Some(lines + 1),
                &format!(
                    "the log ends after line {lines} but its head records {} lines",
                    head.lines
                ),
            ));
        }
        if hash_at_head.as_deref() != Some(head.last.as_str()) {
            return Err(integrity(
                &path,
                Some(head.lines),
                "the line does not match the head's hash",
            ));
        }
        Ok(Verified { lines, last, uncommitted: lines - head.lines })
    }

    /// Every entry, in order, after checking the log.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        self.verify()?;
        let path = self.path();
        let text = std::fs::read_to_string(&path).at("reading", &path)?;
        text.lines().map(|line| parse_entry(line).map_err(|p| integrity(&path, None, &p))).collect()
    }
}

/// Serialises `entry` and appends its MAC, giving the full line with its line break.
fn sign(key: &SecretKey, entry: &Entry) -> Result<String> {
    let body = serde_json::to_string(entry)
        .map_err(|e| Error::internal(format!("serialising an audit entry: {e}")))?;
    let mac = mac_hex(key, body.as_bytes());
    let open = body.strip_suffix('}').ok_or_else(|| Error::internal("entry is not an object"))?;
    Ok(format!("{open}{MAC_PREFIX}{mac}\"}}\n"))
}

/// Checks one line's MAC, sequence number and link to the previous line.
fn check_line(
    key: &SecretKey,
    line: &str,
    number: u64,
    prev: &str,
) -> std::result::Result<(), String> {
    let (body, mac) = split_mac(line).ok_or("the line has no MAC")?;
    let mut verifier = HmacSha256::new_from_slice(key.expose()).expect("HMAC takes any key length");
    verifier.update(body.as_bytes());
    let mac = decode_hex(mac).ok_or("the MAC is not hex")?;
    verifier
        .verify_slice(&mac)
        .map_err(|_| "the MAC does not match: the line was altered or forged")?;

    let entry: Entry =
        serde_json::from_str(&body).map_err(|e| format!("not an audit entry: {e}"))?;
    if entry.seq != number {
        return Err(format!("sequence number {} where {number} was expected", entry.seq));
    }
    if entry.prev != prev {
        return Err(
            "its `prev` does not match the line before it (a line was removed or moved)".into()
        );
    }
    Ok(())
}

fn parse_entry(line: &str) -> std::result::Result<Entry, String> {
    let (body, _) = split_mac(line).ok_or("the line has no MAC")?;
    serde_json::from_str(&body).map_err(|e| e.to_string())
}

/// Splits a line into the signed body (with its closing brace restored) and the MAC's hex.
fn split_mac(line: &str) -> Option<(String, &str)> {
    let rest = line.strip_suffix("\"}")?;
    let at = rest.rfind(MAC_PREFIX)?;
    let mac = &rest[at + MAC_PREFIX.len()..];
    Some((format!("{}}}", &rest[..at]), mac))
}

fn head_message(lines: u64, bytes: u64, last: &str) -> String {
    format!("kith-audit-head:{lines}:{bytes}:{last}")
}

fn write_head(dir: &Path, key: &SecretKey, lines: u64, bytes: u64, last: &str) -> Result<()> {
    let mac = mac_hex(key, head_message(lines, bytes, last).as_bytes());
    let head = Head { lines, bytes, last: last.to_owned(), mac };
    let text = serde_json::to_vec(&head).map_err(|e| Error::internal(format!("head: {e}")))?;
    crate::workspace::replace_private_file(&dir.join(HEAD_FILE), &text)
}

fn read_head(dir: &Path, key: &SecretKey) -> Result<Head> {
    let path = dir.join(HEAD_FILE);
    let text = std::fs::read(&path).at("reading", &path)?;
    let head: Head = serde_json::from_slice(&text)
        .map_err(|e| integrity(&path, None, &format!("the head does not parse: {e}")))?;
    let mut verifier = HmacSha256::new_from_slice(key.expose()).expect("HMAC takes any key length");
    verifier.update(head_message(head.lines, head.bytes, &head.last).as_bytes());
    let mac = decode_hex(&head.mac).unwrap_or_default();
    verifier
        .verify_slice(&mac)
        .map_err(|_| integrity(&path, None, "the head's MAC does not match"))?;
    Ok(head)
}

fn integrity(file: &Path, line: Option<u64>, problem: &str) -> Error {
    Error::Integrity { file: file.to_owned(), line, problem: problem.to_owned() }
}

fn mac_hex(key: &SecretKey, bytes: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key.expose()).expect("HMAC takes any key length");
    mac.update(bytes);
    hex(&mac.finalize().into_bytes())
}

/// SHA-256 of `bytes` in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// SHA-256 of a file, read in blocks.
pub fn file_digest(path: &Path) -> Result<String> {
    let mut file = File::open(path).at("reading", path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).at("reading", path)?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(command: &str) -> Entry {
        Entry {
            seq: 0,
            time: "2026-01-01T00:00:00Z".into(),
            user: "sam".into(),
            roles: vec!["steward".into()],
            command: command.into(),
            args: std::collections::BTreeMap::new(),
            snapshot: None,
            epsilon_spent: 0.0,
            outputs: vec![],
            outcome: "ok".into(),
            exit_code: 0,
            prev: String::new(),
        }
    }

    fn new_log() -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::at(dir.path());
        log.create().unwrap();
        (dir, log)
    }

    #[test]
    fn appended_lines_verify_and_chain() {
        let (_dir, log) = new_log();
        for command in ["init", "ingest", "graph"] {
            log.append(entry(command)).unwrap();
        }
        let verified = log.verify().unwrap();
        assert_eq!((verified.lines, verified.uncommitted), (3, 0));
        let entries = log.entries().unwrap();
        assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(entries[0].prev, GENESIS);
    }

    #[test]
    fn an_append_interrupted_before_the_head_is_adopted() {
        let (dir, log) = new_log();
        log.append(entry("init")).unwrap();
        let head_before = std::fs::read(dir.path().join(HEAD_FILE)).unwrap();
        log.append(entry("ingest")).unwrap();
        // The crash: the line reached the disk, the head update did not.
        std::fs::write(dir.path().join(HEAD_FILE), head_before).unwrap();

        assert_eq!(log.verify().unwrap().uncommitted, 1);
        log.append(entry("graph")).unwrap();
        let verified = log.verify().unwrap();
        assert_eq!((verified.lines, verified.uncommitted), (3, 0));
    }

    #[test]
    fn a_tampered_head_is_refused() {
        let (dir, log) = new_log();
        log.append(entry("init")).unwrap();
        let path = dir.path().join(HEAD_FILE);
        let head = std::fs::read_to_string(&path).unwrap().replace("\"lines\":1", "\"lines\":0");
        std::fs::write(&path, head).unwrap();
        assert!(log.verify().unwrap_err().to_string().contains("head's MAC does not match"));
        assert!(log.append(entry("ingest")).is_err(), "nothing is added to a broken log");
    }

    #[test]
    fn hex_round_trips() {
        let bytes = [0u8, 1, 127, 128, 255];
        assert_eq!(decode_hex(&hex(&bytes)).unwrap(), bytes);
        assert!(decode_hex("abc").is_none());
        assert!(decode_hex("zz").is_none());
    }
}
