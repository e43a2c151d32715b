//! The local tree cache of put-only writers.
//!
//! A put-only key cannot read its own previous snapshot, so to skip unchanged files it keeps the
//! trees of its last snapshot (per repository, key, host and path set) in a local file. The
//! repository stays the truth: a lost or damaged cache only means every file is read again
//! (still uploading only new data, thanks to the dedup lists). Each tree is checked against its
//! keyed id when it is read. The file is written atomically with mode 0600; it holds file names and
//! metadata of this host's own files, nothing the host could not read anyway.

use crate::repo::index::IdMap;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use tresor_format::tree::EncodedTree;
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
    /// Its trees, encoded (format §10), left in the file and read one at a time as the walk
    /// reaches them ([`cached_tree`], on the read-ahead thread), each checked against its keyed
    /// id then — so they are the bytes a backup encoded from a valid tree or read and validated
    /// from the repository: memory holds the tree being looked at, not the file.
    pub trees: IdMap<BlobId, TreeBytes>,
    /// The file the trees are read from.
    pub file: std::sync::Arc<OpenCache>,
}

/// Cached tree `id`, validated and kept encoded ([`EncodedTree`]); `None` when the cache does
/// not hold it, it cannot be read, it is not the tree of that id any more, or it does not decode
/// (its directory then has no parent: its files are read again).
pub fn cached_tree(trees: &IdMap<BlobId, TreeBytes>, id: &BlobId) -> Option<EncodedTree<Bytes>> {
    EncodedTree::decode(trees.get(id)?.bytes().ok()?).ok()
}

/// An encoded tree: one this run encoded, held in memory, or one of the loaded cache file,
/// read from it when needed (a tree that did not change is kept for the next cache as such).
#[derive(Clone)]
pub enum TreeBytes {
    /// In memory.
    Held(bytes::Bytes),
    /// In the loaded cache file.
    InFile {
        /// The file, open.
        file: std::sync::Arc<OpenCache>,
        /// Where the tree's bytes start, bytes from the file's start.
        offset: u64,
        /// Their length, bytes.
        len: usize,
        /// The tree's id (what the bytes are checked against when read).
        id: BlobId,
    },
}

/// The cache file a backup loaded, open for reading its trees, and the key that checks them.
pub struct OpenCache {
    file: std::fs::File,
    id_key: [u8; 32],
    /// A tree read from it was not the tree of its id.
    damaged: std::sync::atomic::AtomicBool,
}

impl OpenCache {
    /// `file`, whose trees are checked against their ids under `id_key`.
    fn new(file: std::fs::File, id_key: &[u8; 32]) -> Self {
        OpenCache {
            file,
            id_key: *id_key,
            damaged: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether a tree read from the file failed its check (then the file is written anew, not
    /// renewed).
    pub fn damaged(&self) -> bool {
        self.damaged.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl TreeBytes {
    /// The tree's bytes: held ones shared, others read from the cache file and checked against
    /// their keyed id.
    ///
    /// # Errors
    /// I/O errors; `InvalidData` when the bytes read are not the tree of that id.
    pub fn bytes(&self) -> std::io::Result<bytes::Bytes> {
        use std::os::unix::fs::FileExt;
        match self {
            TreeBytes::Held(b) => Ok(b.clone()),
            TreeBytes::InFile {
                file,
                offset,
                len,
                id,
            } => {
                let mut buf = vec![0u8; *len];
                file.file.read_exact_at(&mut buf, *offset)?;
                if BlobId::of(&file.id_key, &buf) != *id {
                    file.damaged
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "cached tree changed",
                    ));
                }
                Ok(buf.into())
            }
        }
    }
}

/// The trees a backup collects for the next cache file ([`TreeCache::save`]). A tree this run
/// encoded is appended to an unnamed temporary file in the cache directory as it is made
/// (`O_TMPFILE`: no name another process could open; gone when closed) and read back, checked
/// against its id, when the cache is written: memory holds about 100 bytes per tree, not the
/// trees (3.5 MB for the 60,000 entries of the bench tree; a host's whole metadata for a large
/// one). Trees of the loaded cache are kept where they are. When the file cannot be made or
/// written, trees are held in memory as before.
pub struct Collected {
    trees: Vec<(BlobId, TreeBytes)>,
    /// The temporary file and its length, bytes; made at the first tree.
    spill: Option<(std::sync::Arc<OpenCache>, u64)>,
    /// Where it is made, and the key its trees are checked with.
    dir: PathBuf,
    id_key: [u8; 32],
    /// The file could not be made or written: hold the trees in memory.
    in_memory: bool,
}

impl Collected {
    /// Add tree `id` with its bytes; one held in memory goes to the temporary file.
    pub fn push(&mut self, id: BlobId, bytes: TreeBytes) {
        match bytes {
            TreeBytes::Held(b) => self.push_encoded(id, &b),
            other => self.trees.push((id, other)),
        }
    }

    /// Add tree `id` whose encoded bytes are `b`, written to the temporary file.
    pub fn push_encoded(&mut self, id: BlobId, b: &[u8]) {
        let spilled = match self.in_memory {
            false => self.spill(b).ok(),
            true => None,
        };
        let bytes = match spilled {
            Some((file, offset)) => TreeBytes::InFile {
                file,
                offset,
                len: b.len(),
                id,
            },
            None => {
                self.in_memory = true;
                TreeBytes::Held(Bytes::copy_from_slice(b))
            }
        };
        self.trees.push((id, bytes));
    }

    /// Append `b` to the temporary file (made first if need be): the file and where `b` starts.
    fn spill(&mut self, b: &[u8]) -> std::io::Result<(std::sync::Arc<OpenCache>, u64)> {
        use std::os::unix::fs::FileExt;
        if self.spill.is_none() {
            std::fs::create_dir_all(&self.dir)?;
            let open = OpenCache::new(tempfile::tempfile_in(&self.dir)?, &self.id_key);
            self.spill = Some((std::sync::Arc::new(open), 0));
        }
        let (file, end) = self.spill.as_mut().expect("made above");
        file.file.write_all_at(b, *end)?;
        let at = *end;
        *end += b.len() as u64;
        Ok((file.clone(), at))
    }

    /// The trees collected, in the order they were added.
    pub fn into_trees(self) -> Vec<(BlobId, TreeBytes)> {
        self.trees
    }
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

    /// A collection of trees for the next [`TreeCache::save`], spilled to a temporary file in
    /// this cache's directory; `id_key` checks them when they are read back.
    pub fn collector(&self, id_key: &[u8; 32]) -> Collected {
        Collected {
            trees: Vec::new(),
            spill: None,
            dir: self
                .path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            id_key: *id_key,
            in_memory: false,
        }
    }

    /// The cached parent, its trees located in the file (each is checked against its id when
    /// read, [`TreeBytes::bytes`]). `None` when absent, unreadable or of another cache version.
    pub fn load(&self, id_key: &[u8; 32]) -> Option<CachedParent> {
        // Read through the descriptor the trees are read from later: the same file.
        let f = std::fs::File::open(&self.path).ok()?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut &f, &mut bytes).ok()?;
        let file: CacheFile = postcard::from_bytes(&bytes).ok()?;
        if file.version != CACHE_VERSION {
            return None;
        }
        let open = std::sync::Arc::new(OpenCache::new(f, id_key));
        let mut trees = IdMap::default();
        for (id, b) in file.trees {
            // Each tree is checked against its keyed id when it is read (`TreeBytes::bytes`),
            // and decoded only then: a tree that fails the check is no parent for its directory
            // (its files are read again), the others stay usable.
            let offset = (b.as_ptr() as usize - bytes.as_ptr() as usize) as u64;
            let (file, len) = (open.clone(), b.len());
            trees.insert(
                id,
                TreeBytes::InFile {
                    file,
                    offset,
                    len,
                    id,
                },
            );
        }
        Some(CachedParent {
            snapshot: file.snapshot,
            root: file.root,
            trees,
            file: open,
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
    /// Not synced (an `fdatasync` was 0.5–1 ms of a one-file unchanged rerun): the snapshot is
    /// durable before this is called, and a crash that loses the write leaves `old`, a
    /// snapshot with the same root tree — a put-only key's next parent is then `old`; a full
    /// key finds `snapshot` as its parent, does not match the cache and reads the parent's trees
    /// from the repository instead.
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
        let tmp = self.path.with_extension("tmp");
        let written = write_cache_file(&tmp, snapshot, root, &trees)
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        if written.is_err() {
            // A failed save leaves the old cache and no partial file behind.
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }
}

/// Write a cache file at `path` (mode 0600), streamed field by field (postcard encodes a struct
/// as its fields one after the other, a sequence as its length and its items): one tree in
/// memory at a time; synced before [`TreeCache::save`] renames it into place. The sync is
/// needed: [`TreeCache::load`] checks every tree against its id, but not `root` or the snapshot
/// id (a put-only key's next parent), and on file systems that may commit a rename before the
/// data (ext4 `data=writeback`, XFS) a crash could leave a full-length file with blocks never
/// written, whose fields then decode from the wrong place.
fn write_cache_file(
    path: &Path,
    snapshot: ObjectId,
    root: BlobId,
    trees: &[(BlobId, TreeBytes)],
) -> std::io::Result<()> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    let mut w = std::io::BufWriter::new(f);
    put(&mut w, &CACHE_VERSION)?;
    put(&mut w, &root)?;
    put(&mut w, &trees.len())?;
    for (id, b) in trees {
        put(&mut w, id)?;
        put(&mut w, serde_bytes::Bytes::new(&b.bytes()?))?;
    }
    put(&mut w, &snapshot)?;
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()
}

/// Append `value`'s postcard encoding to `w`.
fn put<T: Serialize + ?Sized>(w: &mut impl std::io::Write, value: &T) -> std::io::Result<()> {
    postcard::to_io(value, w)
        .map(|_| ())
        .map_err(std::io::Error::other)
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
            .map(|b| (BlobId::of(&key, b), TreeBytes::Held(b.to_vec().into())))
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
            let read = loaded.trees.get(id).unwrap().bytes().unwrap();
            assert_eq!(read, bytes.bytes().unwrap());
        }
        // The same as writing the file anew for `b`.
        cache.save(b, root, trees).unwrap();
        assert_eq!(std::fs::read(&cache.path).unwrap(), after);
        // A missing file is an error, not a renewal.
        std::fs::remove_file(&cache.path).unwrap();
        assert!(cache.renew(b, c, root).is_err());
    }

    /// The streamed file is byte for byte what postcard makes of the whole structure (the
    /// format did not change), trees held and trees read from a loaded file alike; a tree
    /// changed in the file after loading is not returned.
    #[test]
    fn the_streamed_file_is_the_postcard_encoding_and_trees_are_checked_when_read() {
        #[derive(Serialize)]
        struct Whole {
            version: u32,
            root: BlobId,
            trees: Vec<(BlobId, serde_bytes::ByteBuf)>,
            snapshot: ObjectId,
        }
        let dir = tempfile::tempdir().unwrap();
        let key = [9u8; 32];
        let cache = TreeCache::new(dir.path(), "repo", "key", "host", &["/".into()]);
        let raw: Vec<Vec<u8>> = (0..300u32)
            .map(|i| vec![i as u8; (i * 37 % 1000) as usize])
            .collect();
        let trees: Vec<(BlobId, TreeBytes)> = raw
            .iter()
            .map(|b| (BlobId::of(&key, b), TreeBytes::Held(b.clone().into())))
            .collect();
        let (snap, root) = (ObjectId::of(b"s"), trees[5].0);
        cache.save(snap, root, trees.clone()).unwrap();
        let whole = Whole {
            version: CACHE_VERSION,
            root,
            trees: raw
                .iter()
                .map(|b| (BlobId::of(&key, b), serde_bytes::ByteBuf::from(b.clone())))
                .collect(),
            snapshot: snap,
        };
        let want = postcard::to_allocvec(&whole).unwrap();
        assert!(std::fs::read(&cache.path).unwrap() == want);
        // Saved again from the loaded file's trees: the same bytes.
        let loaded = cache.load(&key).unwrap();
        let again: Vec<(BlobId, TreeBytes)> = raw
            .iter()
            .map(|b| {
                let id = BlobId::of(&key, b);
                (id, loaded.trees.get(&id).unwrap().clone())
            })
            .collect();
        cache.save(snap, root, again).unwrap();
        assert!(std::fs::read(&cache.path).unwrap() == want);
        // A tree changed in place after loading is refused when read.
        let loaded = cache.load(&key).unwrap();
        let id = BlobId::of(&key, &raw[7]);
        let TreeBytes::InFile { offset, .. } = loaded.trees.get(&id).unwrap().clone() else {
            panic!("a loaded tree is read from the file");
        };
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&cache.path)
            .unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, b"X", offset).unwrap();
        assert!(loaded.trees.get(&id).unwrap().bytes().is_err());
        assert!(cached_tree(&loaded.trees, &id).is_none());
    }
    /// Trees a backup collects leave memory for an unnamed file in the cache directory (no
    /// name appears there), are read back checked, and the cache saved from them is the one
    /// saved from the trees held; trees of a loaded cache stay in their file.
    #[test]
    fn collected_trees_are_spilled_to_an_unnamed_file_and_saved_as_held_ones() {
        let dir = tempfile::tempdir().unwrap();
        let key = [3u8; 32];
        let cache = TreeCache::new(&dir.path().join("c"), "repo", "key", "host", &["/".into()]);
        let raw: Vec<Vec<u8>> = (0..50u32).map(|i| vec![i as u8; 10 + i as usize]).collect();
        let held: Vec<(BlobId, TreeBytes)> = raw
            .iter()
            .map(|b| (BlobId::of(&key, b), TreeBytes::Held(b.clone().into())))
            .collect();
        let mut c = cache.collector(&key);
        for (id, b) in &held {
            c.push(*id, b.clone());
        }
        let listed = || {
            std::fs::read_dir(cache.path.parent().unwrap())
                .unwrap()
                .count()
        };
        assert_eq!(listed(), 0, "the file has no name");
        let trees = c.into_trees();
        for ((id, t), b) in trees.iter().zip(&raw) {
            assert!(matches!(t, TreeBytes::InFile { .. }), "not held in memory");
            assert_eq!(*id, BlobId::of(&key, b));
            assert_eq!(t.bytes().unwrap(), b.as_slice());
        }
        let (snap, root) = (ObjectId::of(b"s"), held[0].0);
        cache.save(snap, root, trees).unwrap();
        let spilled = std::fs::read(&cache.path).unwrap();
        cache.save(snap, root, held).unwrap();
        assert!(std::fs::read(&cache.path).unwrap() == spilled);
        // A loaded cache's tree is kept where it is (not copied to the new file).
        let loaded = cache.load(&key).unwrap();
        let mut c = cache.collector(&key);
        c.push(root, loaded.trees.get(&root).unwrap().clone());
        let trees = c.into_trees();
        let TreeBytes::InFile { file, .. } = &trees[0].1 else {
            panic!("in a file");
        };
        assert!(std::sync::Arc::ptr_eq(file, &loaded.file));
    }

    /// Where no file can be made (the cache directory is a regular file) trees are held in
    /// memory; a save that fails (a spilled tree changed before it) leaves the old cache as it
    /// was and no partial file.
    #[test]
    fn collected_trees_fall_back_to_memory_and_a_failed_save_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let key = [5u8; 32];
        let blocked = dir.path().join("blocked");
        std::fs::write(&blocked, b"a file where the cache directory would be").unwrap();
        let cache = TreeCache::new(&blocked, "repo", "key", "host", &["/".into()]);
        let mut c = cache.collector(&key);
        c.push_encoded(BlobId::of(&key, b"t1"), b"t1");
        c.push_encoded(BlobId::of(&key, b"t2"), b"t2");
        let trees = c.into_trees();
        assert!(trees.iter().all(|(_, t)| matches!(t, TreeBytes::Held(_))));
        assert_eq!(trees[1].1.bytes().unwrap(), &b"t2"[..]);

        let cache = TreeCache::new(dir.path(), "repo", "key", "host", &["/".into()]);
        let (snap, root) = (ObjectId::of(b"s"), BlobId::of(&key, b"t1"));
        cache.save(snap, root, trees).unwrap();
        let before = std::fs::read(&cache.path).unwrap();
        let mut c = cache.collector(&key);
        c.push_encoded(root, b"t1");
        let trees = c.into_trees();
        let TreeBytes::InFile { file, offset, .. } = &trees[0].1 else {
            panic!("spilled");
        };
        std::os::unix::fs::FileExt::write_all_at(&file.file, b"X", *offset).unwrap();
        assert!(cache.save(ObjectId::of(b"s2"), root, trees).is_err());
        assert_eq!(std::fs::read(&cache.path).unwrap(), before);
        assert!(!cache.path.with_extension("tmp").exists());
    }
}
