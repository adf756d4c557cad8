//! The identity map: from a person's identity pair (`dob`, `ssn_last4`) to the random person ID
//! that is all the vault ever sees.
//!
//! The map is indexed by keyed HMAC-SHA256, never by the pair itself: about 3e8 pairs exist, so
//! a plain hash would be reversed by trying them all. The person ID is drawn from the operating
//! system's random source on first sight, so it carries nothing of the person; the map keeps
//! only (index, ID) pairs and lives in the workspace's `identity` folder, apart from the vault.
//!
//! Key rotation cannot recompute `HMAC(new key, pair)`, because kith never keeps the pairs.
//! Instead the index is chained through every key generation: generation 0 indexes the pair,
//! and each later generation re-keys the previous index (`HMAC(K_n, index_{n-1})`). Rotating
//! wraps every stored index under the new key and keeps every ID. A leaked older key then
//! opens nothing: the stored indexes depend on the newest key too.
//!
//! File format (`identity/map.bin`): `KITHIDM1`, the number of key generations the map is
//! indexed under (u32, little-endian), the entry count (u64), the entries sorted by index
//! (32-byte index, 8-byte ID), and a SHA-256 of everything before it. The checksum catches a
//! torn or altered file; the map is written by atomic replacement.

use std::path::Path;

use hmac::{Hmac, Mac};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::error::{Error, IoContext, Result};
use crate::workspace::{KeyRing, replace_private_file};

const MAGIC: &[u8; 8] = b"KITHIDM1";
const ENTRY: usize = 40;
const PAIR_LABEL: &[u8] = b"kith/identity/v1\0";
const WRAP_LABEL: &[u8] = b"kith/identity/rotate/v1\0";

/// A keyed index of one identity pair.
pub type Index = [u8; 32];

/// The chain of keys an index is computed under.
pub struct Indexer {
    keys: Vec<Hmac<Sha256>>,
}

impl Indexer {
    /// Uses the first `generations` keys of the ring.
    pub fn new(ring: &KeyRing, generations: usize) -> Indexer {
        let keys = ring.generations()[..generations]
            .iter()
            .map(|key| Hmac::<Sha256>::new_from_slice(key.expose()).expect("any key length"))
            .collect();
        Indexer { keys }
    }

    /// The index of an identity pair: date of birth (days since 1970) and the four digits.
    pub fn pair(&self, dob: i32, ssn_last4: [u8; 4]) -> Index {
        self.labelled(PAIR_LABEL, &[&dob.to_le_bytes(), &ssn_last4])
    }

    /// A keyed code for other declared text that must not enter the vault as written (a
    /// household label may be an address).
    pub fn code(&self, label: &[u8], text: &[u8]) -> i64 {
        let index = self.labelled(label, &[text]);
        i64::from_le_bytes(index[..8].try_into().expect("8 bytes")) & i64::MAX
    }

    fn labelled(&self, label: &[u8], parts: &[&[u8]]) -> Index {
        let mut mac = self.keys[0].clone();
        mac.update(label);
        for part in parts {
            mac.update(part);
        }
        let first: Index = mac.finalize().into_bytes().into();
        self.keys[1..].iter().fold(first, |index, key| wrap(key, &index))
    }
}

fn wrap(key: &Hmac<Sha256>, index: &Index) -> Index {
    let mut mac = key.clone();
    mac.update(WRAP_LABEL);
    mac.update(index);
    mac.finalize().into_bytes().into()
}

/// The loaded identity map.
#[derive(Debug, Default)]
pub struct IdentityMap {
    generations: u32,
    /// Sorted by index.
    entries: Vec<(Index, i64)>,
}

impl IdentityMap {
    /// Loads the map, or starts an empty one under every key of the ring when there is none.
    pub fn load(path: &Path, ring: &KeyRing) -> Result<IdentityMap> {
        let ring_generations = ring.generations().len() as u32;
        if !path.exists() {
            return Ok(IdentityMap { generations: ring_generations, entries: Vec::new() });
        }
        let bytes = std::fs::read(path).at("reading the identity map", path)?;
        let map = decode(&bytes).map_err(|problem| Error::Integrity {
            file: path.to_owned(),
            line: None,
            problem: format!("the identity map is damaged: {problem}"),
        })?;
        if map.generations > ring_generations {
            return Err(Error::Workspace {
                path: path.to_owned(),
                problem: format!(
                    "the identity map is indexed under {} key generations but the key file \
                     holds {ring_generations}",
                    map.generations
                ),
                hint: Some("restore the key file that belongs to this map".into()),
            });
        }
        Ok(map)
    }

    /// Number of key generations the map is indexed under.
    pub fn generations(&self) -> usize {
        self.generations as usize
    }

    /// Number of people the map knows.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map knows nobody.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The person ID of each index, drawing random IDs for indexes seen for the first time.
    /// Returns the IDs in input order and how many were new. Indexes must be distinct.
    pub fn assign(&mut self, indexes: &[Index]) -> Result<(Vec<i64>, usize)> {
        let found: Vec<Option<i64>> = indexes
            .par_iter()
            .map(|index| {
                self.entries
                    .binary_search_by(|(known, _)| known.cmp(index))
                    .ok()
                    .map(|at| self.entries[at].1)
            })
            .collect();
        let missing = found.iter().filter(|id| id.is_none()).count();
        let mut fresh = fresh_ids(missing, self.entries.iter().map(|(_, id)| *id))?.into_iter();

        let mut ids = Vec::with_capacity(indexes.len());
        for (index, known) in indexes.iter().zip(found) {
            let id = known.unwrap_or_else(|| {
                let id = fresh.next().expect("one fresh ID per missing index");
                self.entries.push((*index, id));
                id
            });
            ids.push(id);
        }
        self.entries.par_sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok((ids, missing))
    }

    /// Wraps every index under the next key generation of `ring` (see the module docs).
    pub fn wrap_next(&mut self, ring: &KeyRing) {
        let key = &ring.generations()[self.generations as usize];
        let key = Hmac::<Sha256>::new_from_slice(key.expose()).expect("any key length");
        self.entries.par_iter_mut().for_each(|(index, _)| *index = wrap(&key, index));
        self.entries.par_sort_unstable_by(|a, b| a.0.cmp(&b.0));
        self.generations += 1;
    }

    /// Every person ID the map holds, sorted.
    pub fn ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.entries.iter().map(|(_, id)| *id).collect();
        ids.sort_unstable();
        ids
    }

    /// Writes the map by atomic replacement.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut bytes = Vec::with_capacity(8 + 4 + 8 + self.entries.len() * ENTRY + 32);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&self.generations.to_le_bytes());
        bytes.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for (index, id) in &self.entries {
            bytes.extend_from_slice(index);
            bytes.extend_from_slice(&id.to_le_bytes());
        }
        let checksum = Sha256::digest(&bytes);
        bytes.extend_from_slice(&checksum);
        replace_private_file(path, &bytes)
    }
}

fn decode(bytes: &[u8]) -> std::result::Result<IdentityMap, String> {
    if bytes.len() < 8 + 4 + 8 + 32 || &bytes[..8] != MAGIC {
        return Err("not a kith identity map".into());
    }
    let (body, checksum) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != checksum {
        return Err("its checksum does not match".into());
    }
    let generations = u32::from_le_bytes(body[8..12].try_into().expect("4 bytes"));
    let count = u64::from_le_bytes(body[12..20].try_into().expect("8 bytes"));
    let entries_bytes = &body[20..];
    if generations == 0 || entries_bytes.len() as u64 != count.saturating_mul(ENTRY as u64) {
        return Err("its header does not match its length".into());
    }
    let entries: Vec<(Index, i64)> = entries_bytes
        .chunks_exact(ENTRY)
        .map(|entry| {
            let index: Index = entry[..32].try_into().expect("32 bytes");
            (index, i64::from_le_bytes(entry[32..].try_into().expect("8 bytes")))
        })
        .collect();
    if entries.windows(2).any(|pair| pair[0].0 >= pair[1].0) {
        return Err("its entries are out of order".into());
    }
    Ok(IdentityMap { generations, entries })
}

/// Draws `count` positive random IDs that collide neither with `taken` nor with each other.
fn fresh_ids(count: usize, taken: impl Iterator<Item = i64>) -> Result<Vec<i64>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let mut taken: std::collections::HashSet<i64, foldhash::fast::RandomState> = taken.collect();
    let mut ids = Vec::with_capacity(count);
    let mut buffer = vec![0u8; 8 * count];
    while ids.len() < count {
        let wanted = count - ids.len();
        getrandom::fill(&mut buffer[..8 * wanted])
            .map_err(|error| Error::internal(format!("the OS random source failed: {error}")))?;
        for raw in buffer[..8 * wanted].chunks_exact(8) {
            let id = i64::from_le_bytes(raw.try_into().expect("8 bytes")) & i64::MAX;
            if id != 0 && taken.insert(id) {
                ids.push(id);
            }
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::SecretKey;

    fn ring(dir: &Path) -> (KeyRing, std::path::PathBuf) {
        let path = dir.join("secret.key");
        SecretKey::generate().unwrap().write_new(&path).unwrap();
        (KeyRing::read(&path).unwrap(), path)
    }

    #[test]
    fn same_pair_same_id_across_loads_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let (ring, key_path) = ring(dir.path());
        let map_path = dir.path().join("map.bin");
        let pairs = [(1000, *b"0042"), (1000, *b"0043"), (-5000, *b"9999")];

        let mut map = IdentityMap::load(&map_path, &ring).unwrap();
        let indexer = Indexer::new(&ring, map.generations());
        let first: Vec<Index> = pairs.iter().map(|&(d, s)| indexer.pair(d, s)).collect();
        let (ids, new) = map.assign(&first).unwrap();
        assert_eq!(new, 3);
        assert!(ids.iter().all(|id| *id > 0));
        map.save(&map_path).unwrap();

        let ring = ring.rotate(&key_path).unwrap();
        let mut map = IdentityMap::load(&map_path, &ring).unwrap();
        map.wrap_next(&ring);
        map.save(&map_path).unwrap();

        let mut map = IdentityMap::load(&map_path, &ring).unwrap();
        assert_eq!(map.generations(), 2);
        let indexer = Indexer::new(&ring, map.generations());
        let rotated: Vec<Index> = pairs.iter().map(|&(d, s)| indexer.pair(d, s)).collect();
        assert_ne!(rotated, first, "rotation changes every index");
        assert_eq!(map.assign(&rotated).unwrap(), (ids, 0));
    }

    #[test]
    fn damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let (ring, _) = ring(dir.path());
        let path = dir.path().join("map.bin");
        let mut map = IdentityMap { generations: 1, entries: Vec::new() };
        map.assign(&[Indexer::new(&ring, 1).pair(1, *b"1234")]).unwrap();
        map.save(&path).unwrap();

        let mut bytes = std::fs::read(&path).unwrap();
        bytes[30] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let error = IdentityMap::load(&path, &ring).unwrap_err();
        assert!(error.to_string().contains("checksum"), "{error}");
    }

    #[test]
    fn fresh_ids_avoid_taken_ones() {
        let taken: Vec<i64> = (1..1000).collect();
        let ids = fresh_ids(500, taken.iter().copied()).unwrap();
        assert_eq!(ids.len(), 500);
        assert!(ids.iter().all(|id| *id >= 1000 || !taken.contains(id)));
    }
}
