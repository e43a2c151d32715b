//! The local cache of opened snapshots (`CACHE/<repository id>/snapshots`).
//!
//! Listing the snapshots read every snapshot object and opened it — an HPKE open (X25519) and
//! an Ed25519 signature check, about 0.1 ms of CPU each, and on S3 one GET each — at every
//! backup, `snapshots`, `forget`…: with 200 snapshots an unchanged one-file backup took 27 ms
//! instead of 7. A reading key now keeps what it opened: each snapshot's id, its signer and its
//! contents, so that a listing opens only the snapshots it has not seen. What a cached snapshot
//! is *worth* is judged again every time, as for a fresh one (the signer against the current
//! trust record, the host it may speak for); only the cryptography is not redone, because an id
//! names the object's bytes (format §2) and those were opened and their signature checked.
//! `check`, `repair` and `drill` do not use it (they read the repository).
//!
//! The file is authenticated: BLAKE3 keyed hash (a MAC; the BLAKE3 paper, §2.3 and §5) over
//! its bytes, under [`tresor_format::keyfile::KeyPayload::snapshot_cache_key`] — derived from
//! the opening key's Ed25519 signing secret and the repository id, so only the holder of that
//! key (who could sign snapshots as it anyway) can make entries it accepts; other keys, even of
//! the same repository, cannot, and a file of another key or repository counts as empty. Each
//! cached snapshot is decoded by the same rules as a fresh one ([`Snapshot::decode`]: this
//! format version only). A file that fails the check, does not decode or is larger than
//! [`MAX_BYTES`] counts as empty (the snapshots are then read from the repository and the file
//! written again). Written to a new temporary file (`O_EXCL`, mode 0600) and renamed, not
//! synced: a lost write only costs opening the snapshots again. `forget` drops the snapshots
//! it deletes. It holds snapshot contents in the clear (hosts, paths, times, tags, tree ids),
//! like the other files of the cache directory, which is the user's.
//!
//! Layout: postcard of `(VERSION, [(id, signer, snapshot JSON)])`, then the 32-byte MAC.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tresor_format::ObjectId;
use tresor_format::snapshot::Snapshot;

/// Version of the file's layout; a file of another version counts as empty.
const VERSION: u32 = 1;

/// Files larger than this (bytes) are not read: 64 MiB, about 100,000 snapshots.
pub const MAX_BYTES: u64 = 64 << 20;

/// One cached snapshot as stored: id, signer's Ed25519 public key, the snapshot as JSON.
#[derive(Serialize, Deserialize)]
struct Entry {
    id: ObjectId,
    signer: [u8; 32],
    #[serde(with = "serde_bytes")]
    json: Vec<u8>,
}

/// A snapshot as the cache gives it back: its signer and contents.
pub type Opened = ([u8; 32], Snapshot);

/// The snapshot cache of one repository as one reading key opened it.
pub struct SnapshotCache {
    path: PathBuf,
    key: [u8; 32],
}

impl SnapshotCache {
    /// The cache in directory `dir` (the repository's own directory under the cache
    /// directory), authenticated with `key` (32 bytes: the opening key's
    /// [`tresor_format::keyfile::KeyPayload::snapshot_cache_key`]).
    pub fn new(dir: &Path, key: [u8; 32]) -> Self {
        SnapshotCache {
            path: dir.join("snapshots"),
            key,
        }
    }

    /// The snapshots the file holds, by id; empty when it is absent, larger than
    /// [`MAX_BYTES`], fails its MAC or does not decode (never an error).
    pub fn load(&self) -> HashMap<ObjectId, Opened> {
        self.read().unwrap_or_default()
    }

    fn read(&self) -> Option<HashMap<ObjectId, Opened>> {
        let file = std::fs::File::open(&self.path).ok()?;
        if file.metadata().ok()?.len() > MAX_BYTES {
            return None;
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_BYTES), &mut bytes).ok()?;
        let body_len = bytes.len().checked_sub(32)?;
        let (body, mac) = bytes.split_at(body_len);
        // `blake3::Hash`'s equality is constant-time.
        if blake3::keyed_hash(&self.key, body) != blake3::Hash::from_bytes(mac.try_into().ok()?) {
            return None;
        }
        let (version, entries): (u32, Vec<Entry>) = postcard::from_bytes(body).ok()?;
        if version != VERSION {
            return None;
        }
        entries
            .into_iter()
            .map(|e| Some((e.id, (e.signer, Snapshot::decode(&e.json).ok()?))))
            .collect()
    }

    /// Replace the file's contents with `entries` (id, signer, snapshot).
    ///
    /// # Errors
    /// I/O errors of the cache directory (the file is then left as it was).
    pub fn save<'a>(
        &self,
        entries: impl IntoIterator<Item = (ObjectId, [u8; 32], &'a Snapshot)>,
    ) -> std::io::Result<()> {
        let entries: Vec<Entry> = entries
            .into_iter()
            .map(|(id, signer, snap)| Entry {
                id,
                signer,
                json: serde_json::to_vec(snap).expect("a snapshot serializes"),
            })
            .collect();
        let mut bytes = postcard::to_stdvec(&(VERSION, entries)).map_err(std::io::Error::other)?;
        let mac = blake3::keyed_hash(&self.key, &bytes);
        bytes.extend_from_slice(mac.as_bytes());
        std::fs::create_dir_all(self.path.parent().expect("the file is in a directory"))?;
        super::localfile::replace(&self.path, &bytes, false)
    }

    /// Drop `ids` from the file (snapshots `forget` deleted); the file is left as it is when it
    /// holds none of them.
    ///
    /// # Errors
    /// I/O errors of the cache directory.
    pub fn remove(&self, ids: &[ObjectId]) -> std::io::Result<()> {
        let mut held = self.load();
        let before = held.len();
        held.retain(|id, _| !ids.contains(id));
        if held.len() == before {
            return Ok(());
        }
        self.save(held.iter().map(|(id, (signer, s))| (*id, *signer, s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(host: &str) -> Snapshot {
        Snapshot {
            version: tresor_format::FORMAT_VERSION,
            time: "2026-12-07T10:00:00Z".into(),
            tree: tresor_format::BlobId::of(&[3; 32], host.as_bytes()),
            paths: vec!["/a".into(), "/b\n\u{7}".into()],
            hostname: host.into(),
            username: "u".into(),
            uid: 1000,
            gid: 100,
            tags: vec!["t".into()],
            excludes: vec!["*.tmp".into()],
            parent: Some(id(9)),
            summary: None,
            program_version: "tresor 0.1.0".into(),
            markers: vec![id(8)],
            original: None,
        }
    }

    fn id(n: u8) -> ObjectId {
        ObjectId::of(&[n])
    }

    #[test]
    fn saved_snapshots_load_back_field_for_field() {
        let d = tempfile::tempdir().unwrap();
        let c = SnapshotCache::new(d.path(), [7; 32]);
        assert!(c.load().is_empty(), "no file: empty");
        let (a, b) = (snap("one"), snap("two"));
        c.save([(id(1), [1; 32], &a), (id(2), [2; 32], &b)])
            .unwrap();
        let got = c.load();
        assert_eq!(got.len(), 2);
        assert_eq!(got[&id(1)], ([1; 32], a));
        assert_eq!(got[&id(2)], ([2; 32], b));
        let mode = std::fs::metadata(d.path().join("snapshots")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
    }

    #[test]
    fn removed_ids_leave_the_file_and_others_stay() {
        let d = tempfile::tempdir().unwrap();
        let c = SnapshotCache::new(d.path(), [7; 32]);
        let (a, b) = (snap("one"), snap("two"));
        c.save([(id(1), [1; 32], &a), (id(2), [2; 32], &b)])
            .unwrap();
        c.remove(&[id(1), id(5)]).unwrap();
        let got = c.load();
        assert_eq!(got.len(), 1);
        assert_eq!(got[&id(2)], ([2; 32], b));
        assert!(
            std::fs::read_dir(d.path()).unwrap().count() == 1,
            "no temporary file left"
        );
    }

    #[test]
    fn a_snapshot_of_another_format_version_counts_as_empty() {
        let d = tempfile::tempdir().unwrap();
        let c = SnapshotCache::new(d.path(), [7; 32]);
        let mut old = snap("old");
        old.version -= 1;
        c.save([(id(1), [1; 32], &old)]).unwrap();
        assert!(c.load().is_empty());
    }

    #[test]
    fn a_file_changed_in_any_byte_truncated_or_under_another_key_counts_as_empty() {
        let d = tempfile::tempdir().unwrap();
        let c = SnapshotCache::new(d.path(), [7; 32]);
        c.save([(id(1), [1; 32], &snap("one"))]).unwrap();
        let path = d.path().join("snapshots");
        let good = std::fs::read(&path).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            std::fs::write(&path, &bad).unwrap();
            assert!(c.load().is_empty(), "byte {i} flipped");
        }
        for len in [0, 1, 31, 32, good.len() - 1] {
            std::fs::write(&path, &good[..len]).unwrap();
            assert!(c.load().is_empty(), "cut to {len} bytes");
        }
        std::fs::write(&path, &good).unwrap();
        assert_eq!(c.load().len(), 1);
        assert!(SnapshotCache::new(d.path(), [8; 32]).load().is_empty());
    }

    #[test]
    fn an_authentic_file_that_does_not_decode_counts_as_empty() {
        let d = tempfile::tempdir().unwrap();
        let c = SnapshotCache::new(d.path(), [7; 32]);
        for body in [
            b"".to_vec(),
            vec![0xff; 40],
            postcard::to_stdvec(&(VERSION + 1, Vec::<Entry>::new())).unwrap(),
            postcard::to_stdvec(&(
                VERSION,
                vec![Entry {
                    id: id(1),
                    signer: [1; 32],
                    json: b"{not json".to_vec(),
                }],
            ))
            .unwrap(),
        ] {
            let mut bytes = body.clone();
            bytes.extend_from_slice(blake3::keyed_hash(&[7; 32], &body).as_bytes());
            std::fs::write(d.path().join("snapshots"), &bytes).unwrap();
            assert!(c.load().is_empty(), "{body:?}");
        }
    }
}
