//! The local tree cache of put-only writers.
//!
//! A put-only key cannot read its own previous snapshot, so to skip unchanged files it keeps the
//! trees of its last snapshot (per repository, key, host and path set) in a local file. The
//! repository stays the truth: a lost or damaged cache only means every file is read again
//! (still uploading only new data, thanks to the dedup lists). Each tree is checked against its
//! keyed id when loaded. The file is written atomically with mode 0600; it holds file names and
//! metadata of this host's own files, nothing the host could not read anyway.

use crate::repo::index::IdMap;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use tresor_format::tree::Tree;
use tresor_format::{BlobId, ObjectId};

/// Version 2 added `snapshot`; a version-1 file is not read (one backup reads every file again).
const CACHE_VERSION: u32 = 2;

/// The cache file as read: its trees borrowed from the file's bytes.
#[derive(Deserialize)]
struct CacheFile<'a> {
    version: u32,
    root: BlobId,
    #[serde(borrow)]
    trees: Vec<(BlobId, &'a serde_bytes::Bytes)>,
    /// The snapshot these trees belong to (the next backup's parent).
    snapshot: ObjectId,
}

/// What a cache file holds: the last snapshot's id, its root tree id and its trees.
pub struct CachedParent {
    /// The snapshot (recorded as the next snapshot's parent).
    pub snapshot: ObjectId,
    /// Its root tree.
    pub root: BlobId,
    /// Its trees, encoded (format §10), each verified against its keyed id — so they are the
    /// bytes a backup encoded from a valid tree or read and validated from the repository —
    /// and decoded one at a time as the walk reaches it ([`cached_tree`], on the read-ahead
    /// thread), so memory is about the cache file's size, not the decoded trees'.
    pub trees: IdMap<BlobId, TreeBytes>,
}

/// Cached tree `id`, decoded; `None` when the cache does not hold it or it does not decode
/// (its directory then has no parent: its files are read again).
pub fn cached_tree(trees: &IdMap<BlobId, TreeBytes>, id: &BlobId) -> Option<Tree> {
    trees.get(id).and_then(|b| Tree::decode(b).ok())
}

/// An encoded tree, shared: the loaded cache's trees are slices of the one buffer the file was
/// read into (no copy per tree), and a tree that did not change is kept for the next cache
/// without being copied.
pub type TreeBytes = bytes::Bytes;

/// [`CacheFile`] borrowing its trees, for writing (the same encoding).
#[derive(Serialize)]
struct CacheFileRef<'a> {
    version: u32,
    root: BlobId,
    trees: Vec<(BlobId, &'a serde_bytes::Bytes)>,
    snapshot: ObjectId,
}

/// The cache file for one (repository, key, host, paths).
#[derive(Debug, Clone)]
pub struct TreeCache {
    path: PathBuf,
}

/// The default cache directory: `$XDG_CACHE_HOME/tresor` or `~/.cache/tresor`.
pub fn default_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("tresor"))
}

impl TreeCache {
    /// The cache for a backup of `paths` by `host` with key `key_id` into repository `repo_id`.
    pub fn new(dir: &Path, repo_id: &str, key_id: &str, host: &str, paths: &[String]) -> Self {
        let mut h = blake3::Hasher::new();
        h.update(host.as_bytes());
        for p in paths {
            h.update(b"\0");
            h.update(p.as_bytes());
        }
        let name = format!(
            "parent-{}-{}",
            &key_id[..16.min(key_id.len())],
            &h.finalize().to_hex()[..16]
        );
        TreeCache {
            path: dir.join(repo_id).join(name),
        }
    }

    /// The cached parent, its trees each verified against its id. `None` when absent,
    /// unreadable or of another cache version.
    pub fn load(&self, id_key: &[u8; 32]) -> Option<CachedParent> {
        let bytes = TreeBytes::from(std::fs::read(&self.path).ok()?);
        let file: CacheFile = postcard::from_bytes(&bytes).ok()?;
        if file.version != CACHE_VERSION {
            return None;
        }
        let mut trees = IdMap::default();
        for (id, b) in file.trees {
            // The keyed id proves the bytes are the ones written; decoding them here too would
            // double the cost of an unchanged run (each is decoded when the walk reaches it).
            if BlobId::of(id_key, b) != id {
                return None;
            }
            trees.insert(id, bytes.slice_ref(b));
        }
        Some(CachedParent {
            snapshot: file.snapshot,
            root: file.root,
            trees,
        })
    }

    /// After a backup whose root tree is the cached one (`root`, nothing changed): the file
    /// already holds exactly its trees (a root tree id fixes every tree below it), so only the
    /// snapshot id — the file's last field — is rewritten in place, from `old` to `snapshot`,
    /// instead of writing the whole file again (7 MB and an fsync for 60,000 entries). True when
    /// done; false when the file does not start with this version and `root` and end with
    /// `old` (then [`TreeCache::save`] it), or when the id's bytes would cross a 512-byte
    /// sector (a torn write could then mix two ids).
    ///
    /// # Errors
    /// I/O errors.
    pub fn renew(&self, old: ObjectId, snapshot: ObjectId, root: BlobId) -> std::io::Result<bool> {
        use std::os::unix::fs::FileExt;
        let head = postcard::to_allocvec(&(CACHE_VERSION, root)).map_err(std::io::Error::other)?;
        let (was, now) = (encode(&old)?, encode(&snapshot)?);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)?;
        let len = f.metadata()?.len();
        let Some(at) = len.checked_sub(was.len() as u64) else {
            return Ok(false);
        };
        let (mut start, mut end) = (vec![0u8; head.len()], vec![0u8; was.len()]);
        f.read_exact_at(&mut start, 0)?;
        f.read_exact_at(&mut end, at)?;
        let crosses = at / 512 != (len - 1) / 512;
        if start != head || end != was || now.len() != was.len() || crosses {
            return Ok(false);
        }
        f.write_all_at(&now, at)?;
        f.sync_data()?;
        Ok(true)
    }

    /// Replace the cache with the trees of `snapshot`, whose root tree is `root`.
    ///
    /// # Errors
    /// I/O errors.
    pub fn save(
        &self,
        snapshot: ObjectId,
        root: BlobId,
        trees: Vec<(BlobId, TreeBytes)>,
    ) -> std::io::Result<()> {
        let dir = self.path.parent().expect("cache file has a parent");
        std::fs::create_dir_all(dir)?;
        let file = CacheFileRef {
            version: CACHE_VERSION,
            snapshot,
            root,
            trees: trees
                .iter()
                .map(|(i, b)| (*i, serde_bytes::Bytes::new(b)))
                .collect(),
        };
        let tmp = self.path.with_extension("tmp");
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // Streamed to the file: no second copy of the trees in memory.
        let mut w = std::io::BufWriter::new(f);
        postcard::to_io(&file, &mut w).map_err(std::io::Error::other)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }
}

/// A snapshot id as the cache file encodes it (its last field).
fn encode(id: &ObjectId) -> std::io::Result<Vec<u8>> {
    postcard::to_allocvec(id).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache of two trees; `renew` rewrites only the snapshot id when the root is the
    /// cached one and the file ends with the old id, and leaves the file as it was otherwise.
    #[test]
    fn renew_changes_only_the_snapshot_id_of_a_matching_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = [7u8; 32];
        let cache = TreeCache::new(dir.path(), "repo", "key", "host", &["/a".into()]);
        let trees: Vec<(BlobId, TreeBytes)> = [b"tree one".as_slice(), b"tree two"]
            .iter()
            .map(|b| (BlobId::of(&key, b), TreeBytes::from(b.to_vec())))
            .collect();
        let (a, b, c) = (ObjectId::of(b"a"), ObjectId::of(b"b"), ObjectId::of(b"c"));
        let root = trees[0].0;
        cache.save(a, root, trees.clone()).unwrap();
        let before = std::fs::read(&cache.path).unwrap();
        // Another root, or an old id the file does not end with: nothing written.
        assert!(!cache.renew(a, b, trees[1].0).unwrap());
        assert!(!cache.renew(c, b, root).unwrap());
        assert_eq!(std::fs::read(&cache.path).unwrap(), before);
        assert!(cache.renew(a, b, root).unwrap());
        let after = std::fs::read(&cache.path).unwrap();
        assert_eq!(after.len(), before.len());
        let loaded = cache.load(&key).unwrap();
        assert_eq!((loaded.snapshot, loaded.root), (b, root));
        assert_eq!(loaded.trees.len(), 2);
        for (id, bytes) in &trees {
            assert_eq!(loaded.trees.get(id).unwrap(), bytes);
        }
        // The same as writing the file anew for `b`.
        cache.save(b, root, trees).unwrap();
        assert_eq!(std::fs::read(&cache.path).unwrap(), after);
        // A missing file is an error, not a renewal.
        std::fs::remove_file(&cache.path).unwrap();
        assert!(cache.renew(b, c, root).is_err());
    }
}
