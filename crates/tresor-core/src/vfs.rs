//! A read-only file system view of a repository's snapshots, for `tresor mount`.
//!
//! The view is independent of FUSE: the CLI's adapter translates kernel requests into calls
//! here (lookup, getattr, readdir, readlink, read, xattrs). The layout, as restic's `mount`:
//!
//! ```text
//! /snapshots/<time>/…            every snapshot, named by its UTC time (RFC 3339, seconds)
//! /snapshots/latest → <time>     symlink to the newest snapshot not dated in the future
//! /ids/<short id>/…              every snapshot by the first 8 hex digits of its id
//! /hosts/<host>/<time>/…         the snapshots of each host (+ `latest`)
//! /tags/<tag>/<time>/…           the snapshots carrying each tag (+ `latest`)
//! ```
//!
//! A snapshot's directory holds its root tree. Two snapshots taken in the same second get
//! `<time>-<short id>` for the later ones. The snapshot list is read once when the view is made.
//!
//! Inodes are numbered as entries are first looked up (the root is 1); a directory's entries
//! are all numbered the first time it is listed or looked into, so an inode stays valid for
//! the life of the view. The names of a hard-linked file (same device and inode at backup, in
//! the same snapshot directory) share one inode. File sizes are shown in full: holes of sparse
//! files read as zeros but are not reported as unallocated blocks. File contents are read blob by blob; the last blobs read are kept in a
//! small cache (at most [`BLOB_CACHE_BYTES`]) because the kernel reads in 128 KiB requests and
//! a blob is up to 8 MiB.

use crate::error::{CoreError, Result};
use crate::repo::blobs::BlobReader;
use crate::repo::index::Index;
use crate::repo::snapshots::time_of;
use crate::repo::{Repository, SnapshotList};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use tresor_format::blob::BlobType;
use tresor_format::tree::{MAX_TREE_DEPTH, Node, NodeKind, Timestamp, Xattr};
use tresor_format::{BlobId, ObjectId};
use tresor_storage::Kind;
use tresor_storage::cold::Restore;

/// An inode number of the view; [`ROOT`] is the top directory.
pub type Ino = u64;

/// The inode of the top directory.
pub const ROOT: Ino = 1;

/// Upper bound of the decrypted blob cache, in bytes.
pub const BLOB_CACHE_BYTES: usize = 64 << 20;

/// The attributes of one entry, as `stat` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// Inode number.
    pub ino: Ino,
    /// File type.
    pub kind: NodeKind,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Size in bytes (files: content length; symlinks: target length; directories: 0).
    pub size: u64,
    /// Modification time, UTC.
    pub mtime: Timestamp,
    /// Access time, UTC.
    pub atime: Timestamp,
    /// Status change time, UTC.
    pub ctime: Timestamp,
    /// Hard link count as recorded at backup (1 for directories and virtual entries).
    pub links: u64,
    /// Device number of character and block devices.
    pub rdev: u64,
}

/// One directory entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Its inode.
    pub ino: Ino,
    /// Its file type.
    pub kind: NodeKind,
    /// Its name, raw bytes.
    pub name: Vec<u8>,
}

/// What an inode stands for.
enum Content {
    /// A directory made up by the view (root, `snapshots`, a host…), with its entries.
    Virtual(Vec<(Vec<u8>, Target)>),
    /// A symlink made up by the view (`latest`).
    Link(Vec<u8>),
    /// A snapshot's root directory: its tree, and the snapshot's signer (its copies of blobs are
    /// preferred after full keys', [`BlobReader::for_snapshot`]).
    SnapshotRoot(BlobId, Option<[u8; 32]>, ObjectId),
    /// An entry of a snapshot.
    Node(Box<Node>),
}

/// What a virtual directory entry leads to, before it has an inode.
#[derive(Clone)]
enum Target {
    Dir(Vec<(Vec<u8>, Target)>, Timestamp),
    Link(Vec<u8>, Timestamp),
    Snapshot(BlobId, Option<[u8; 32]>, Timestamp, ObjectId),
}

struct Entry {
    content: Content,
    /// The directory it was first found in (0 for the root), and its name there: for messages.
    parent: Ino,
    name: Vec<u8>,
    /// The snapshot root directory this entry lies in (0 for virtual entries).
    root: Ino,
    /// Directories between the snapshot root and this entry (0 for the root's entries).
    depth: usize,
    /// Time shown for virtual entries and snapshot roots.
    time: Timestamp,
    /// Children, numbered on first use: name → inode.
    children: OnceLock<Vec<(Vec<u8>, Ino)>>,
    /// Files: the end offset of each content blob, numbered on first read.
    offsets: OnceLock<Vec<u64>>,
}

impl Entry {
    /// An entry not yet placed in a directory (`children` sets `parent` and `name`).
    fn new(content: Content, time: Timestamp, root: Ino) -> Self {
        Entry {
            content,
            parent: 0,
            name: Vec::new(),
            root,
            depth: 0,
            time,
            children: OnceLock::new(),
            offsets: OnceLock::new(),
        }
    }
}

/// The read-only view over the snapshots of one repository.
pub struct Vfs {
    repo: Repository,
    index: Index,
    owner: (u32, u32),
    entries: RwLock<Vec<Arc<Entry>>>,
    /// Hard links: (snapshot root, device, inode at backup) → the one inode all names share.
    links: Mutex<HashMap<(Ino, u64, u64), Ino>>,
    cache: Mutex<BlobCache>,
    /// Decoded frames (format §7), shared by the readers of every call.
    frames: Arc<crate::repo::frames::FrameCache>,
}

#[derive(Default)]
struct BlobCache {
    blobs: VecDeque<(BlobId, Arc<Vec<u8>>)>,
    bytes: usize,
}

impl BlobCache {
    fn get(&mut self, id: &BlobId) -> Option<Arc<Vec<u8>>> {
        let pos = self.blobs.iter().position(|(b, _)| b == id)?;
        let hit = self.blobs.remove(pos)?;
        let data = hit.1.clone();
        self.blobs.push_back(hit);
        Some(data)
    }

    fn put(&mut self, id: BlobId, data: Arc<Vec<u8>>) {
        self.bytes += data.len();
        self.blobs.push_back((id, data));
        while self.bytes > BLOB_CACHE_BYTES && self.blobs.len() > 1 {
            if let Some((_, old)) = self.blobs.pop_front() {
                self.bytes -= old.len();
            }
        }
    }
}

fn timestamp(t: jiff::Timestamp) -> Timestamp {
    Timestamp {
        secs: t.as_second(),
        nanos: t.subsec_nanosecond().max(0) as u32,
    }
}

/// Names of snapshot directories (oldest first), unique within `list`: the time in `zone` to
/// the second with its offset ([`crate::time::name`]); a second snapshot of the same second
/// gets `-<short id>`, one with an unreadable time its short id.
fn snapshot_names(list: &SnapshotList, zone: &jiff::tz::TimeZone) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    list.iter()
        .map(|(id, s)| {
            let t = time_of(s);
            let base = if t == jiff::Timestamp::MIN {
                id.short()
            } else {
                crate::time::name(t, zone)
            };
            let name = if seen.contains(&base) {
                format!("{base}-{}", id.short())
            } else {
                base
            };
            seen.insert(name.clone());
            name
        })
        .collect()
}

/// The entry of snapshot `i` of `list` (`signers` in the same order).
fn snapshot_target(list: &SnapshotList, signers: &[Option<[u8; 32]>], i: usize) -> Target {
    let s = &list[i].1;
    Target::Snapshot(s.tree, signers[i], timestamp(time_of(s)), list[i].0)
}

/// A directory of snapshots (oldest first) named by time, with `latest` (the newest not dated in
/// the future, [`crate::repo::snapshots::is_future`]) when there is one.
fn snapshot_dir(
    list: &SnapshotList,
    signers: &[Option<[u8; 32]>],
    names: &[String],
    pick: &[usize],
) -> Target {
    let mut out: Vec<(Vec<u8>, Target)> = pick
        .iter()
        .map(|&i| {
            (
                names[i].clone().into_bytes(),
                snapshot_target(list, signers, i),
            )
        })
        .collect();
    let future = crate::repo::snapshots::future_after();
    let newest = pick
        .iter()
        .filter(|&&i| !crate::repo::snapshots::is_future(&list[i].1, future))
        .max_by_key(|&&i| (time_of(&list[i].1), i));
    let time = newest.map_or_else(Timestamp::default, |&i| timestamp(time_of(&list[i].1)));
    if let Some(&i) = newest {
        out.push((
            b"latest".to_vec(),
            Target::Link(names[i].clone().into_bytes(), time),
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Target::Dir(out, time)
}

/// A directory of groups (hosts, tags), each a snapshot directory.
fn grouped(
    list: &SnapshotList,
    signers: &[Option<[u8; 32]>],
    names: &[String],
    keys: impl Fn(&tresor_format::snapshot::Snapshot) -> Vec<String>,
    time: Timestamp,
) -> Target {
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, (_, s)) in list.iter().enumerate() {
        for k in keys(s) {
            groups.entry(k).or_default().push(i);
        }
    }
    let mut taken = std::collections::HashSet::new();
    let entries = groups
        .into_iter()
        .map(|(k, pick)| {
            // A name must not contain '/' or be "." / ".."; two groups that come out the same
            // ("a/b" and "a_b") are told apart by a counter.
            let base = match k.replace('/', "_").as_str() {
                "" | "." | ".." => format!("_{k}"),
                n => n.to_string(),
            };
            let mut name = base.clone();
            let mut n = 1;
            while !taken.insert(name.clone()) {
                n += 1;
                name = format!("{base}~{n}");
            }
            (name.into_bytes(), snapshot_dir(list, signers, names, &pick))
        })
        .collect();
    Target::Dir(entries, time)
}

impl Vfs {
    /// A view of the snapshots in `list` (oldest first, as [`Repository::load_snapshots`]
    /// returns them), reading blobs through `index`. Virtual directories are owned by `owner`
    /// (uid, gid), normally the user who mounts.
    ///
    /// # Errors
    /// [`CoreError::PutOnly`] when the key cannot read.
    pub fn new(
        repo: Repository,
        index: Index,
        list: &SnapshotList,
        owner: (u32, u32),
    ) -> Result<Self> {
        repo.require_read("mount")?;
        let names = snapshot_names(list, &crate::time::local_zone());
        // Known without a read when `list` was loaded through `repo`.
        let signers: Vec<Option<[u8; 32]>> = list
            .iter()
            .map(|(id, _)| repo.snapshot_signer(id).ok())
            .collect();
        // Virtual directories show the time of the newest snapshot.
        let newest = list
            .iter()
            .map(|(_, s)| timestamp(time_of(s)))
            .max()
            .unwrap_or_default();
        let all: Vec<usize> = (0..list.len()).collect();
        let ids = list
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (id.short().into_bytes(), snapshot_target(list, &signers, i)))
            .collect();
        let root = vec![
            (
                b"hosts".to_vec(),
                grouped(list, &signers, &names, |s| vec![s.hostname.clone()], newest),
            ),
            (b"ids".to_vec(), Target::Dir(ids, newest)),
            (
                b"snapshots".to_vec(),
                snapshot_dir(list, &signers, &names, &all),
            ),
            (
                b"tags".to_vec(),
                grouped(list, &signers, &names, |s| s.tags.clone(), newest),
            ),
        ];
        let root_entry = Entry::new(Content::Virtual(root), newest, 0);
        Ok(Vfs {
            repo,
            index,
            owner,
            // Inode 0 is not used; the root is inode 1.
            entries: RwLock::new(vec![
                Arc::new(Entry::new(Content::Virtual(Vec::new()), newest, 0)),
                Arc::new(root_entry),
            ]),
            links: Mutex::new(HashMap::new()),
            cache: Mutex::new(BlobCache::default()),
            frames: Arc::default(),
        })
    }

    /// A blob reader for the snapshot whose root directory is inode `root` (its signer's
    /// copies preferred after full keys').
    fn reader(&self, root: Ino) -> BlobReader<'_> {
        let signer = match self.entry(root).as_deref().map(|e| &e.content) {
            Some(Content::SnapshotRoot(_, signer, _)) => *signer,
            _ => None,
        };
        BlobReader::for_snapshot(&self.repo, &self.index, signer)
            .sharing_frames(self.frames.clone())
    }

    fn entry(&self, ino: Ino) -> Option<Arc<Entry>> {
        if ino == 0 {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(usize::try_from(ino).ok()?).cloned()
    }

    fn push(&self, new: Entry) -> Ino {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.push(Arc::new(new));
        (entries.len() - 1) as Ino
    }

    fn not_found(ino: Ino) -> CoreError {
        CoreError::Invalid(format!("inode {ino} does not exist"))
    }

    /// The children of a directory, numbering them on first use.
    fn children(&self, ino: Ino, e: &Entry) -> Result<Vec<(Vec<u8>, Ino)>> {
        if let Some(c) = e.children.get() {
            return Ok(c.clone());
        }
        let not_dir = || CoreError::Invalid(format!("inode {ino} is not a directory"));
        let mut new: Vec<(Vec<u8>, Entry)> = match &e.content {
            Content::Virtual(list) => list
                .iter()
                .map(|(name, t)| (name.clone(), entry_of(t)))
                .collect(),
            Content::SnapshotRoot(tree, ..) => self
                .tree_entries(tree, ino, 0)
                .map_err(|err| self.damage_at(ino, err))?,
            Content::Node(n) => match (n.kind, n.subtree) {
                (NodeKind::Dir, Some(tree)) => self
                    .tree_entries(&tree, e.root, e.depth + 1)
                    .map_err(|err| self.damage_at(ino, err))?,
                (NodeKind::Dir, None) => Vec::new(),
                _ => return Err(not_dir()),
            },
            Content::Link(_) => return Err(not_dir()),
        };
        // Listings are kept sorted by name bytes for lookup (trees are stored sorted; virtual
        // directories are sorted here, and two snapshots with the same short id show once).
        new.sort_by(|a, b| a.0.cmp(&b.0));
        new.dedup_by(|a, b| a.0 == b.0);
        // Two threads may race here; the first to finish wins and the other's inodes stay
        // unused (harmless: they are never handed out).
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        let made: Vec<(Vec<u8>, Ino)> = new
            .into_iter()
            .map(|(name, mut entry)| {
                entry.parent = ino;
                entry.name = name.clone();
                let link = match &entry.content {
                    Content::Node(n) if n.kind == NodeKind::File && n.links > 1 => {
                        Some((entry.root, n.device, n.inode))
                    }
                    _ => None,
                };
                let ino = match link.and_then(|k| links.get(&k).copied()) {
                    Some(shared) => shared,
                    None => {
                        let ino = self.push(entry);
                        if let Some(k) = link {
                            links.insert(k, ino);
                        }
                        ino
                    }
                };
                (name, ino)
            })
            .collect();
        drop(links);
        Ok(e.children.get_or_init(|| made).clone())
    }

    /// The entries of `tree`, lying `depth` directories below the root directory `root` of
    /// their snapshot.
    ///
    /// # Errors
    /// Damage: the tree does not load, or lies deeper than [`MAX_TREE_DEPTH`].
    fn tree_entries(
        &self,
        tree: &BlobId,
        root: Ino,
        depth: usize,
    ) -> Result<Vec<(Vec<u8>, Entry)>> {
        if depth > MAX_TREE_DEPTH {
            return Err(CoreError::Damaged(crate::repo::limits::too_deep()));
        }
        let t = self.reader(root).load_tree(tree)?;
        Ok(t.nodes
            .into_iter()
            .map(|n| {
                let name = n.name.clone();
                let time = n.mtime;
                let mut e = Entry::new(Content::Node(Box::new(n)), time, root);
                e.depth = depth;
                (name, e)
            })
            .collect())
    }

    /// The attributes of inode `ino`.
    ///
    /// # Errors
    /// [`CoreError::Invalid`] for an unknown inode.
    pub fn getattr(&self, ino: Ino) -> Result<Attr> {
        let e = self.entry(ino).ok_or_else(|| Self::not_found(ino))?;
        Ok(self.attr_of(ino, &e))
    }

    fn attr_of(&self, ino: Ino, e: &Entry) -> Attr {
        let (uid, gid) = self.owner;
        let virtual_attr = |kind, size| Attr {
            ino,
            kind,
            mode: 0o555,
            uid,
            gid,
            size,
            mtime: e.time,
            atime: e.time,
            ctime: e.time,
            links: 1,
            rdev: 0,
        };
        match &e.content {
            Content::Virtual(_) | Content::SnapshotRoot(..) => virtual_attr(NodeKind::Dir, 0),
            Content::Link(t) => Attr {
                mode: 0o777,
                ..virtual_attr(NodeKind::Symlink, t.len() as u64)
            },
            Content::Node(n) => Attr {
                ino,
                kind: n.kind,
                mode: n.mode,
                uid: n.uid,
                gid: n.gid,
                size: match n.kind {
                    NodeKind::File => n.size,
                    NodeKind::Symlink => n.target.len() as u64,
                    _ => 0,
                },
                mtime: n.mtime,
                atime: n.atime,
                ctime: n.ctime,
                links: if n.kind == NodeKind::Dir {
                    1
                } else {
                    n.links.max(1)
                },
                rdev: n.rdev,
            },
        }
    }

    /// Look up `name` in the directory `parent`: `Ok(None)` when there is no such entry.
    ///
    /// # Errors
    /// [`CoreError::Invalid`] when `parent` is unknown or not a directory; damage when its
    /// tree cannot be read.
    pub fn lookup(&self, parent: Ino, name: &[u8]) -> Result<Option<Attr>> {
        let e = self.entry(parent).ok_or_else(|| Self::not_found(parent))?;
        let children = self.children(parent, &e)?;
        let Ok(i) = children.binary_search_by(|(n, _)| n.as_slice().cmp(name)) else {
            return Ok(None);
        };
        self.getattr(children[i].1).map(Some)
    }

    /// The entries of the directory `ino`, in name order (without `.` and `..`).
    ///
    /// # Errors
    /// As [`Vfs::lookup`].
    pub fn readdir(&self, ino: Ino) -> Result<Vec<DirEntry>> {
        let e = self.entry(ino).ok_or_else(|| Self::not_found(ino))?;
        let children = self.children(ino, &e)?;
        children
            .into_iter()
            .map(|(name, child)| {
                let kind = self.getattr(child)?.kind;
                Ok(DirEntry {
                    ino: child,
                    kind,
                    name,
                })
            })
            .collect()
    }

    /// The target of the symlink `ino`, raw bytes.
    ///
    /// # Errors
    /// [`CoreError::Invalid`] when `ino` is unknown or not a symlink.
    pub fn readlink(&self, ino: Ino) -> Result<Vec<u8>> {
        let e = self.entry(ino).ok_or_else(|| Self::not_found(ino))?;
        match &e.content {
            Content::Link(t) => Ok(t.clone()),
            Content::Node(n) if n.kind == NodeKind::Symlink => Ok(n.target.clone()),
            _ => Err(CoreError::Invalid(format!("inode {ino} is not a symlink"))),
        }
    }

    /// The extended attributes of `ino` (sorted by name; none for virtual entries).
    ///
    /// # Errors
    /// [`CoreError::Invalid`] for an unknown inode.
    pub fn xattrs(&self, ino: Ino) -> Result<Vec<Xattr>> {
        let e = self.entry(ino).ok_or_else(|| Self::not_found(ino))?;
        Ok(match &e.content {
            Content::Node(n) => n.xattrs.clone(),
            _ => Vec::new(),
        })
    }

    /// Up to `size` bytes of the file `ino` from byte `offset`; fewer only at the end of the
    /// file. Every blob read is authenticated, its id checked, and its length checked against
    /// the length its preferred index entry gives (which places the blobs in the file).
    ///
    /// # Errors
    /// [`CoreError::Invalid`] when `ino` is not a file; [`CoreError::Damaged`] when a blob is
    /// missing, damaged or of another length than indexed (naming the blob and the file).
    pub fn read(&self, ino: Ino, offset: u64, size: usize) -> Result<Vec<u8>> {
        let e = self.entry(ino).ok_or_else(|| Self::not_found(ino))?;
        let not_file = || CoreError::Invalid(format!("inode {ino} is not a file"));
        let Content::Node(n) = &e.content else {
            return Err(not_file());
        };
        if n.kind != NodeKind::File {
            return Err(not_file());
        }
        let reader = self.reader(e.root);
        let ends = match e.offsets.get() {
            Some(o) => o,
            None => {
                let ends = blob_ends(&reader, n).map_err(|err| self.damage_at(ino, err))?;
                e.offsets.get_or_init(|| ends)
            }
        };
        let total = ends.last().copied().unwrap_or(0);
        let stop = total.min(offset.saturating_add(size as u64));
        let mut out = Vec::with_capacity(stop.saturating_sub(offset) as usize);
        let mut pos = offset;
        // The first blob that ends after `pos`.
        let mut i = ends.partition_point(|&end| end <= pos);
        while pos < stop && i < ends.len() {
            let start = if i == 0 { 0 } else { ends[i - 1] };
            let id = &n.content[i];
            let blob = self
                .blob(&reader, id, ends[i] - start)
                .map_err(|err| self.read_error(ino, e.root, id, err))?;
            let from = (pos - start) as usize;
            let to = (stop.min(ends[i]) - start) as usize;
            out.extend_from_slice(&blob[from..to]);
            pos = start + to as u64;
            i += 1;
        }
        Ok(out)
    }

    /// Blob `id`, verified, which must be `len` bytes long (a shorter or longer blob would put
    /// wrong bytes at wrong offsets: damage).
    fn blob(&self, reader: &BlobReader<'_>, id: &BlobId, len: u64) -> Result<Arc<Vec<u8>>> {
        let cached = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(id);
        let data = match cached {
            Some(b) => b,
            None => {
                let data = Arc::new(reader.load(id, BlobType::Data)?);
                self.cache
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .put(*id, data.clone());
                data
            }
        };
        if data.len() as u64 != len {
            return Err(CoreError::Damaged(format!(
                "blob {id} is {} bytes, the index says {len}",
                data.len()
            )));
        }
        Ok(data)
    }

    /// The path of `ino` in the view (`/snapshots/<time>/home/me/file`), by the names it was
    /// first found under.
    pub fn path_of(&self, ino: Ino) -> String {
        let mut parts = Vec::new();
        let mut at = ino;
        // Bounded: every entry's parent was numbered before it.
        while let Some(e) = self.entry(at).filter(|_| at != ROOT) {
            parts.push(String::from_utf8_lossy(&e.name).into_owned());
            if e.parent >= at {
                break;
            }
            at = e.parent;
        }
        parts.reverse();
        format!("/{}", parts.join("/"))
    }

    /// The error of reading blob `id` of file `ino` (in the snapshot whose root is `root`):
    /// [`CoreError::Cold`] when the blob's pack lies in a cold storage class and cannot be read
    /// now (the storage's `cold_state`, as `check` asks after a failed read), else `err` as
    /// damage at the file's path.
    fn read_error(&self, ino: Ino, root: Ino, id: &BlobId, err: CoreError) -> CoreError {
        let Some(loc) = self.index.get(id) else {
            return self.damage_at(ino, err);
        };
        let pack = self.index.pack(loc.pack).id;
        let state = match self.repo.storage().cold_state(Kind::Pack, &pack.to_hex()) {
            Ok(Some(state)) if !state.readable() => state,
            _ => return self.damage_at(ino, err),
        };
        let file = self.path_of(ino);
        let snapshot = match self.entry(root).as_deref().map(|e| &e.content) {
            Some(Content::SnapshotRoot(_, _, sid)) => Some(*sid),
            _ => None,
        };
        let inside = file.strip_prefix(&self.path_of(root)).unwrap_or("/");
        CoreError::Cold {
            file: file.clone(),
            class: state.class.as_s3(),
            pack: pack.short(),
            state: if state.restore == Restore::Ongoing {
                "still thawing"
            } else {
                "not thawed"
            },
            snapshot_path: snapshot.map(|s| format!("{}:{inside}", s.short())),
        }
    }

    /// Damage found while serving `ino`: the message names its path in the view.
    fn damage_at(&self, ino: Ino, err: CoreError) -> CoreError {
        match err {
            CoreError::Damaged(m) => CoreError::Damaged(format!("{}: {m}", self.path_of(ino))),
            other => other,
        }
    }

    /// How many inodes have been numbered so far (the root included).
    pub fn inode_count(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len() - 1
    }
}

/// The end offset of each content blob of file `n` in the file, from the plaintext lengths of
/// the blobs' preferred index entries.
fn blob_ends(reader: &BlobReader<'_>, n: &Node) -> Result<Vec<u64>> {
    let mut end = 0u64;
    let mut ends = Vec::with_capacity(n.content.len());
    for id in &n.content {
        let loc = reader
            .location(id)
            .ok_or_else(|| reader.not_indexed_error(id))?;
        end += u64::from(loc.raw_length);
        ends.push(end);
    }
    Ok(ends)
}

fn entry_of(t: &Target) -> Entry {
    match t {
        Target::Dir(list, time) => Entry::new(Content::Virtual(list.clone()), *time, 0),
        Target::Link(to, time) => Entry::new(Content::Link(to.clone()), *time, 0),
        Target::Snapshot(tree, signer, time, id) => {
            Entry::new(Content::SnapshotRoot(*tree, *signer, *id), *time, 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_are_local_seconds_and_unique() {
        let snap = |time: &str| tresor_format::snapshot::Snapshot {
            version: 2,
            time: time.into(),
            tree: BlobId([7; 32]),
            paths: vec![],
            hostname: "h".into(),
            username: "u".into(),
            uid: 0,
            gid: 0,
            tags: vec![],
            excludes: vec![],
            parent: None,
            summary: None,
            program_version: String::new(),
            markers: vec![],
            original: None,
        };
        let list = vec![
            (ObjectId([1; 32]), snap("2026-01-02T09:34:05.1Z")),
            (ObjectId([2; 32]), snap("2026-01-02T15:04:05.9+05:30")),
            (ObjectId([3; 32]), snap("garbage")),
        ];
        let zone = jiff::tz::TimeZone::posix("IST-5:30").unwrap();
        assert_eq!(
            snapshot_names(&list, &zone),
            [
                "2026-01-02T15:04:05+05:30",
                "2026-01-02T15:04:05+05:30-02020202",
                "03030303"
            ]
        );
    }

    #[test]
    fn blob_cache_evicts_oldest_beyond_its_budget() {
        let mut c = BlobCache::default();
        let a = BlobId([1; 32]);
        let b = BlobId([2; 32]);
        let d = BlobId([3; 32]);
        c.put(a, Arc::new(vec![0; BLOB_CACHE_BYTES / 2]));
        c.put(b, Arc::new(vec![0; BLOB_CACHE_BYTES / 2]));
        assert!(c.get(&a).is_some(), "a is used again: now the newest");
        c.put(d, Arc::new(vec![0; 1]));
        assert!(c.get(&b).is_none(), "b was the least recently used");
        assert!(c.get(&a).is_some());
        assert!(c.get(&d).is_some());
        assert_eq!(c.bytes, BLOB_CACHE_BYTES / 2 + 1);
    }
}
