//! The workspace on disk: the policy, the secret key and the folders of each stage.
//!
//! A workspace is one folder owned by the data steward. Everything in it is created
//! owner-only (folders 0700, files 0600) because it holds the vault and the identity map;
//! releases are the only files meant to leave it, and they are copied out deliberately.
//! This module owns the layout; stages ask it for their paths instead of joining strings.

mod key;
mod policy;

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

pub use key::{KEY_LEN, KeyRing, SecretKey};
pub use policy::{POLICY_TEMPLATE, Policy, PrivacyPolicy, Roles, ValueBounds};

use crate::error::{Error, IoContext, Result};

/// Name of the policy file at the workspace root.
pub const POLICY_FILE: &str = "kith.toml";
/// Name of the secret key file at the workspace root.
pub const KEY_FILE: &str = "secret.key";
/// The folders `kith init` creates, each owned by one stage.
pub const FOLDERS: [&str; 6] = ["vault", "identity", "releases", "quarantine", "audit", "ledger"];

/// An opened workspace: its root and its checked policy.
#[derive(Debug)]
pub struct Workspace {
    root: PathBuf,
    policy: Policy,
}

impl Workspace {
    /// Creates a new workspace in `root` (made if missing) with `steward` as its only steward.
    ///
    /// # Errors
    ///
    /// Refuses, changing nothing, if `root` already holds a policy, a key or any of the
    /// workspace folders.
    pub fn init(root: &Path, steward: &str) -> Result<Workspace> {
        let existing: Vec<&str> = [POLICY_FILE, KEY_FILE]
            .into_iter()
            .chain(FOLDERS)
            .filter(|name| root.join(name).exists())
            .collect();
        if !existing.is_empty() {
            return Err(Error::Workspace {
                path: root.to_owned(),
                problem: format!("already holds workspace files ({})", existing.join(", ")),
                hint: Some("kith never overwrites a workspace; choose an empty folder".into()),
            });
        }

        create_private_dir(root, true)?;

        // The key goes first: if anything later fails, a rerun stops at the existing key
        // instead of silently minting a second one for the same workspace.
        SecretKey::generate()?.write_new(&root.join(KEY_FILE))?;
        for folder in FOLDERS {
            create_private_dir(&root.join(folder), false)?;
        }
        write_private_file(&root.join(POLICY_FILE), Policy::render_template(steward).as_bytes())?;
        crate::audit::AuditLog::at(&root.join("audit")).create()?;

        tracing::info!(folders = FOLDERS.len(), "workspace created");
        Workspace::open(root)
    }

    /// Opens an existing workspace, checking its policy and its key file's permissions.
    pub fn open(root: &Path) -> Result<Workspace> {
        let policy_path = root.join(POLICY_FILE);
        if !policy_path.is_file() {
            return Err(Error::Workspace {
                path: root.to_owned(),
                problem: format!("no `{POLICY_FILE}` here, so this is not a kith workspace"),
                hint: Some("run `kith init DIR`, or pass `--workspace DIR`".into()),
            });
        }
        let policy = Policy::load(&policy_path)?;
        KeyRing::read(&root.join(KEY_FILE))?;
        Ok(Workspace { root: root.to_owned(), policy })
    }

    /// The workspace's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The checked policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Reads every generation of the secret key; callers hold it only as long as they need it.
    pub fn key_ring(&self) -> Result<KeyRing> {
        KeyRing::read(&self.root.join(KEY_FILE))
    }

    /// Path of the key file, for rotation.
    pub fn key_path(&self) -> PathBuf {
        self.root.join(KEY_FILE)
    }

    /// The folder owned by one stage, one of [`FOLDERS`].
    pub fn folder(&self, name: &str) -> PathBuf {
        debug_assert!(FOLDERS.contains(&name), "unknown workspace folder {name}");
        self.root.join(name)
    }
}

/// Creates a folder with mode 0700. With `allow_existing`, an existing folder is accepted
/// (the user may point `init` at a folder they made), otherwise it is an error.
fn create_private_dir(path: &Path, allow_existing: bool) -> Result<()> {
    match DirBuilder::new().recursive(allow_existing).mode(0o700).create(path) {
        Ok(()) => Ok(()),
        Err(error) => Err(Error::io("creating folder", path, error)),
    }
}

/// Replaces a file atomically: writes an owner-only temporary file beside it, flushes it,
/// renames it over the target and flushes the folder, so readers see the old or the new
/// content, never a mix, even after a crash.
pub fn replace_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    let folder = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = folder.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .at("creating", &temporary)?;
    file.write_all(bytes).at("writing", &temporary)?;
    file.sync_all().at("flushing", &temporary)?;
    std::fs::rename(&temporary, path).at("replacing", path)?;
    std::fs::File::open(folder).and_then(|dir| dir.sync_all()).at("flushing folder", folder)
}

/// Writes a new owner-only file and flushes it to disk.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .at("creating", path)?;
    file.write_all(bytes).at("writing", path)?;
    file.sync_all().at("flushing", path)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn init_lays_out_an_owner_only_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ws");
        let workspace = Workspace::init(&root, "steward-user").unwrap();

        assert_eq!(workspace.policy().roles.steward, vec!["steward-user".to_string()]);
        assert_eq!(mode(&root.join(KEY_FILE)), 0o600);
        assert_eq!(mode(&root.join(POLICY_FILE)), 0o600);
        assert_eq!(mode(&root), 0o700);
        for folder in FOLDERS {
            assert_eq!(mode(&root.join(folder)), 0o700, "{folder}");
        }
    }

    #[test]
    fn init_refuses_to_clobber_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        Workspace::init(dir.path(), "a").unwrap();
        let key_before = std::fs::read(dir.path().join(KEY_FILE)).unwrap();
        let policy_before = std::fs::read(dir.path().join(POLICY_FILE)).unwrap();

        let error = Workspace::init(dir.path(), "b").unwrap_err();
        assert!(error.to_string().contains("already holds workspace files"));
        assert_eq!(std::fs::read(dir.path().join(KEY_FILE)).unwrap(), key_before);
        assert_eq!(std::fs::read(dir.path().join(POLICY_FILE)).unwrap(), policy_before);
    }

    #[test]
    fn init_refuses_a_folder_with_a_stray_vault() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("vault")).unwrap();
        assert!(Workspace::init(dir.path(), "a").is_err());
        assert!(!dir.path().join(KEY_FILE).exists());
    }

    #[test]
    fn open_explains_a_missing_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let error = Workspace::open(dir.path()).unwrap_err();
        assert!(error.hint().unwrap().contains("kith init"));
    }
}
