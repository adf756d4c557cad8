//! The workspace's secret keys: 32 bytes each from the operating system's random source.
//!
//! The workspace key file is a [`KeyRing`]: one key per generation, oldest first, appended by
//! `kith rotate-key`. The ring indexes the identity map by chained keyed HMAC; whoever holds it
//! can test guesses of a person's identity pair, so the file is created owner-only and kith
//! refuses to use a key that others can read. The bytes never appear in output, logs or
//! errors: the `Debug` forms print a placeholder.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// Length of the key in bytes (256 bits, the HMAC-SHA256 block-size guidance).
pub const KEY_LEN: usize = 32;

/// The workspace's secret key.
pub struct SecretKey([u8; KEY_LEN]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// Draws a fresh key from the operating system's random source.
    pub fn generate() -> Result<SecretKey> {
        let mut bytes = [0u8; KEY_LEN];
        getrandom::fill(&mut bytes)
            .map_err(|error| Error::internal(format!("the OS random source failed: {error}")))?;
        Ok(SecretKey(bytes))
    }

    /// The raw bytes, for the keyed-hash constructors only.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Writes the key to a new file readable and writable by the owner only (0600), and
    /// flushes it to disk. Refuses to replace an existing file.
    pub fn write_new(&self, path: &Path) -> Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .at("creating key file", path)?;
        file.write_all(&self.0).at("writing key file", path)?;
        file.sync_all().at("flushing key file", path)
    }

    /// Reads the key, refusing a file that group or others can access.
    pub fn read(path: &Path) -> Result<SecretKey> {
        let bytes = read_private(path)?;
        let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|bytes: Vec<u8>| Error::Workspace {
            path: path.to_owned(),
            problem: format!("the key file holds {} bytes, expected {KEY_LEN}", bytes.len()),
            hint: Some("restore the key from the steward's backup".into()),
        })?;
        Ok(SecretKey(bytes))
    }
}

/// Reads a key file after checking that only its owner can access it.
fn read_private(path: &Path) -> Result<Vec<u8>> {
    let metadata = std::fs::metadata(path).at("reading key file", path)?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::Workspace {
            path: path.to_owned(),
            problem: format!("the secret key is readable by others (mode {mode:o})"),
            hint: Some(format!("run `chmod 600 {}` and consider rotating it", path.display())),
        });
    }
    std::fs::read(path).at("reading key file", path)
}

/// Every generation of the workspace key, oldest first; the last is the current one.
///
/// Older generations stay because the identity map is indexed through all of them in turn
/// (see `intake::identity`): rotation wraps the index under the new key instead of needing
/// the identity pairs again, which kith never keeps.
pub struct KeyRing(Vec<SecretKey>);

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyRing(<{} redacted generations>)", self.0.len())
    }
}

impl KeyRing {
    /// Reads a ring of one or more keys, refusing a file that group or others can access.
    pub fn read(path: &Path) -> Result<KeyRing> {
        let bytes = read_private(path)?;
        if bytes.is_empty() || bytes.len() % KEY_LEN != 0 {
            return Err(Error::Workspace {
                path: path.to_owned(),
                problem: format!(
                    "the key file holds {} bytes, not a whole number of {KEY_LEN}-byte keys",
                    bytes.len()
                ),
                hint: Some("restore the key file from the steward's backup".into()),
            });
        }
        let keys = bytes
            .chunks_exact(KEY_LEN)
            .map(|chunk| SecretKey(chunk.try_into().expect("chunks have KEY_LEN bytes")))
            .collect();
        Ok(KeyRing(keys))
    }

    /// The generations, oldest first.
    pub fn generations(&self) -> &[SecretKey] {
        &self.0
    }

    /// The current (newest) key.
    pub fn current(&self) -> &SecretKey {
        self.0.last().expect("a ring holds at least one key")
    }

    /// Appends a fresh key and replaces the file atomically, so a crash leaves the old ring
    /// or the new one.
    pub fn rotate(mut self, path: &Path) -> Result<KeyRing> {
        self.0.push(SecretKey::generate()?);
        let bytes: Vec<u8> = self.0.iter().flat_map(|key| key.0).collect();
        super::replace_private_file(path, &bytes)?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_owner_only_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let key = SecretKey::generate().unwrap();
        key.write_new(&path).unwrap();

        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(SecretKey::read(&path).unwrap().expose(), key.expose());
        assert!(key.write_new(&path).is_err(), "an existing key must never be replaced");
    }

    #[test]
    fn readable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        SecretKey::generate().unwrap().write_new(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

        let error = SecretKey::read(&path).unwrap_err();
        assert!(error.to_string().contains("readable by others"));
        assert!(error.hint().unwrap().contains("chmod 600"));
    }

    #[test]
    fn debug_never_shows_the_bytes() {
        let key = SecretKey::generate().unwrap();
        assert_eq!(format!("{key:?}"), "SecretKey(<redacted>)");
    }

    #[test]
    fn ring_rotation_appends_and_keeps_older_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let first = SecretKey::generate().unwrap();
        first.write_new(&path).unwrap();

        let ring = KeyRing::read(&path).unwrap().rotate(&path).unwrap();
        let reread = KeyRing::read(&path).unwrap();
        assert_eq!(reread.generations().len(), 2);
        assert_eq!(reread.generations()[0].expose(), first.expose());
        assert_eq!(reread.current().expose(), ring.current().expose());
        assert_ne!(reread.current().expose(), first.expose());
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

        std::fs::write(&path, [0u8; 40]).unwrap();
        assert!(KeyRing::read(&path).unwrap_err().to_string().contains("whole number"));
    }

    #[test]
    fn two_keys_differ() {
        let a = SecretKey::generate().unwrap();
        let b = SecretKey::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
    }
}
