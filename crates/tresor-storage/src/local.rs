//! A repository in a local directory.
//!
//! Layout ([`crate::layout`]): `<root>/<kind dir>/<name>`, packs fanned out as
//! `<root>/data/<first two hex>/<name>`.
//! A write goes to a temporary file `.tmp-<random>` beside the target, is flushed with `fsync`,
//! and is moved into place with `renameat2(RENAME_NOREPLACE)`, so an object is either absent or
//! complete and an existing object is never replaced. A file a writer spooled in
//! [`Storage::spool_dir`] (`<root>/data`, whose own files no listing takes for objects) is stored
//! the same way by [`Storage::write_file`]: flushed, then moved into place — no copy.

use crate::direct::{ALIGN as DIRECT_ALIGN, Bounce, CHUNK as DIRECT_CHUNK};
use crate::layout::{self, check_name};
use crate::{ErrorKind, Kind, Result, Stamped, Storage, StorageError};
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Objects as files under a root directory.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
    /// Open pack files for range reads (restore reads many blobs of the same packs).
    open_packs: std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<fs::File>>>,
    >,
}

/// Open pack files kept for range reads.
const OPEN_PACKS: usize = 64;

impl LocalStorage {
    /// Storage rooted at `root` (not created until [`Storage::create`]).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStorage {
            root: root.into(),
            open_packs: Default::default(),
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of an object: the root joined with its key ([`layout::object_key`]).
    pub fn path(&self, kind: Kind, name: &str) -> PathBuf {
        let mut p = self.root.join(kind.dir());
        if let Some(shard) = layout::shard(kind, name) {
            p.push(shard);
        }
        p.push(name);
        p
    }

    /// Every file at its own key ([`layout::name_at`]) with its metadata: packs only in their
    /// fan-out folder.
    fn list_metadata(&self, kind: Kind) -> Result<Vec<(String, fs::Metadata)>> {
        let base = self.root.join(kind.dir());
        let io =
            |e: std::io::Error| StorageError::io("list", kind, &base.display().to_string(), &e);
        let mut folders = vec![String::new()];
        if kind.is_sharded() {
            folders.clear();
            for e in fs::read_dir(&base).map_err(io)? {
                let e = e.map_err(io)?;
                let name = e.file_name();
                match name.to_str() {
                    Some(n) if layout::is_shard(n) && e.file_type().map_err(io)?.is_dir() => {
                        folders.push(format!("{n}/"));
                    }
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        for folder in folders {
            for e in fs::read_dir(base.join(&folder)).map_err(io)? {
                let e = e.map_err(io)?;
                let file = e.file_name();
                let Some(file) = file.to_str() else { continue };
                let rel = format!("{folder}{file}");
                let Some(name) = layout::name_at(kind, &rel) else {
                    continue;
                };
                // An object deleted while listing (prune runs beside backups) is skipped.
                match e.metadata() {
                    Ok(m) => out.push((name.to_string(), m)),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(err) => return Err(io(err)),
                }
            }
        }
        Ok(out)
    }

    /// The time the file system stamps on a file created now: that of a fresh temporary file
    /// in `kind`'s folder (removed at once). On a local file system this is the kernel's clock;
    /// on a network file system (NFS, SMB) it is the server's, which also stamped the listed
    /// files — so ages never mix the client's clock with the server's. `None` when no file can
    /// be created there (a read-only repository): then the storage cannot tell the time.
    fn stamp_now(&self, kind: Kind) -> Option<std::time::SystemTime> {
        let mut rnd = [0u8; 8];
        getrandom::fill(&mut rnd).ok()?;
        let tmp = self
            .root
            .join(kind.dir())
            .join(format!(".tmp-now-{}", hex::encode(rnd)));
        let made = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .and_then(|f| f.metadata())
            .and_then(|m| m.modified());
        let _ = fs::remove_file(&tmp);
        made.ok()
    }

    fn write_new(&self, kind: Kind, name: &str, data: &[&[u8]], target: &Path) -> Result<()> {
        let dir = target.parent().expect("object path has a parent");
        let mut rnd = [0u8; 8];
        getrandom::fill(&mut rnd)
            .map_err(|e| StorageError::new(ErrorKind::Other, "write", kind, name, e))?;
        let tmp = dir.join(format!(".tmp-{}", hex::encode(rnd)));
        let io = |e: std::io::Error| StorageError::io("write", kind, name, &e);
        let result = write_file(&tmp, data);
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(io(e));
        }
        let renamed = rustix::fs::renameat_with(
            rustix::fs::CWD,
            &tmp,
            rustix::fs::CWD,
            target,
            rustix::fs::RenameFlags::NOREPLACE,
        );
        match renamed {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                if e == rustix::io::Errno::EXIST {
                    self.same_or_conflict(kind, name, data)
                } else {
                    Err(io(e.into()))
                }
            }
        }
    }

    /// [`Storage::write_file`] into `target`, whose folder exists: `fsync` the file, move it
    /// into place without replacing anything; copy it when it lies on another file system.
    fn move_new(&self, kind: Kind, name: &str, path: &Path, len: u64, target: &Path) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let io = |e: std::io::Error| StorageError::io("write", kind, name, &e);
        let f = fs::File::open(path).map_err(io)?;
        let meta = f.metadata().map_err(io)?;
        if meta.len() != len {
            return Err(crate::spool_length_error(kind, name, path, meta.len(), len));
        }
        // Objects are the owner's alone, as `write_new` makes them.
        if meta.permissions().mode() & 0o077 != 0 {
            f.set_permissions(fs::Permissions::from_mode(0o600))
                .map_err(io)?;
        }
        f.sync_all().map_err(io)?;
        // Its pages, written through the cache, are clean now: a backup has no use for them
        // (the objects written from memory bypass the cache, `write_file`). Only advice.
        let _ = rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed);
        let renamed = rustix::fs::renameat_with(
            rustix::fs::CWD,
            path,
            rustix::fs::CWD,
            target,
            rustix::fs::RenameFlags::NOREPLACE,
        );
        match renamed {
            Ok(()) => Ok(()),
            Err(e) if e == rustix::io::Errno::EXIST => {
                let data = crate::read_spooled(kind, name, path, len)?;
                self.same_or_conflict(kind, name, &[&data])
            }
            Err(e) if e == rustix::io::Errno::XDEV => {
                let data = crate::read_spooled(kind, name, path, len)?;
                self.write_new(kind, name, &[&data], target)
            }
            Err(e) => Err(io(e.into())),
        }
    }

    fn same_or_conflict(&self, kind: Kind, name: &str, data: &[&[u8]]) -> Result<()> {
        let old = self.read(kind, name)?;
        let same = old.len() == data.iter().map(|p| p.len()).sum::<usize>() && {
            let mut at = 0;
            data.iter().all(|p| {
                let eq = old[at..at + p.len()] == **p;
                at += p.len();
                eq
            })
        };
        if same {
            Ok(())
        } else {
            Err(StorageError::new(
                ErrorKind::AlreadyExists,
                "write",
                kind,
                name,
                "object exists with other content",
            ))
        }
    }
}

/// Objects at least this large (bytes) are written with `O_DIRECT` where the file system
/// allows it (see [`write_file`]).
const DIRECT_MIN: usize = 1 << 20;
thread_local! {
    static BOUNCE: std::cell::RefCell<Bounce> = std::cell::RefCell::new(Bounce::default());
}

/// Write `data` to the new file `tmp` and `fsync` it. Large objects (packs) bypass the page cache
/// with `O_DIRECT`, through an aligned bounce buffer, then the file is cut to its length: on
/// virtual machines copying into fresh page-cache pages costs more CPU than the whole rest of
/// writing, and a backup has no use for its packs in the cache. File systems that refuse
/// `O_DIRECT` (`EINVAL`, e.g. tmpfs) get a plain buffered write.
fn write_file(tmp: &Path, data: &[&[u8]]) -> std::io::Result<()> {
    if data.iter().map(|p| p.len()).sum::<usize>() >= DIRECT_MIN {
        match write_direct(tmp, data) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                let _ = fs::remove_file(tmp);
            }
            Err(e) => return Err(e),
        }
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    for part in data {
        f.write_all(part)?;
    }
    f.sync_all()
}

fn write_direct(tmp: &Path, data: &[&[u8]]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_DIRECT)
        .open(tmp)?;
    BOUNCE.with(|b| {
        let mut b = b.borrow_mut();
        let buf = b.buf();
        // Fill the bounce buffer from the parts in order; write it whenever it is full.
        let (mut off, mut fill) = (0u64, 0usize);
        for part in data {
            let mut rest: &[u8] = part;
            while !rest.is_empty() {
                let n = rest.len().min(DIRECT_CHUNK - fill);
                buf[fill..fill + n].copy_from_slice(&rest[..n]);
                fill += n;
                rest = &rest[n..];
                if fill == DIRECT_CHUNK {
                    f.write_all_at(buf, off)?;
                    off += fill as u64;
                    fill = 0;
                }
            }
        }
        if fill > 0 {
            let padded = fill.div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN;
            buf[fill..padded].fill(0);
            f.write_all_at(&buf[..padded], off)?;
        }
        Ok::<_, std::io::Error>(())
    })?;
    f.set_len(data.iter().map(|p| p.len() as u64).sum())?;
    f.sync_all()
}

impl Storage for LocalStorage {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn create(&self) -> Result<()> {
        for k in Kind::ALL {
            let d = self.root.join(k.dir());
            fs::create_dir_all(&d)
                .map_err(|e| StorageError::io("create", k, &d.display().to_string(), &e))?;
        }
        Ok(())
    }

    fn list(&self, kind: Kind) -> Result<Vec<(String, u64)>> {
        let listed = self.list_metadata(kind)?;
        Ok(listed.into_iter().map(|(n, m)| (n, m.len())).collect())
    }

    /// Modification times of the files; "now" is the stamp of a fresh file, taken first
    /// (`None` when no file can be created: a read-only repository).
    fn list_stamped(&self, kind: Kind) -> Result<Option<Stamped>> {
        let Some(now) = self.stamp_now(kind) else {
            return Ok(None);
        };
        let io = |e: std::io::Error| StorageError::io("list", kind, "", &e);
        let mut objects = Vec::new();
        for (name, m) in self.list_metadata(kind)? {
            objects.push((name, m.modified().map_err(io)?));
        }
        Ok(Some(Stamped { now, objects }))
    }

    fn read(&self, kind: Kind, name: &str) -> Result<Vec<u8>> {
        check_name(kind, name)?;
        fs::read(self.path(kind, name)).map_err(|e| StorageError::io("read", kind, name, &e))
    }

    fn read_range(&self, kind: Kind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        check_name(kind, name)?;
        let io = |e: std::io::Error| StorageError::io("read", kind, name, &e);
        let cached = if kind == Kind::Pack {
            self.open_packs
                .lock()
                .expect("open packs")
                .get(name)
                .cloned()
        } else {
            None
        };
        let f = match cached {
            Some(f) => f,
            None => {
                let f = std::sync::Arc::new(fs::File::open(self.path(kind, name)).map_err(io)?);
                if kind == Kind::Pack {
                    let mut m = self.open_packs.lock().expect("open packs");
                    if m.len() >= OPEN_PACKS {
                        m.clear();
                    }
                    m.insert(name.to_string(), f.clone());
                }
                f
            }
        };
        let len = usize::try_from(length).map_err(|_| {
            StorageError::new(ErrorKind::Other, "read", kind, name, "length too large")
        })?;
        let mut buf = vec![0u8; len];
        use std::os::unix::fs::FileExt;
        match f.read_exact_at(&mut buf, offset) {
            Ok(()) => Ok(buf),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(StorageError::new(
                ErrorKind::ShortRead,
                "read",
                kind,
                name,
                format!("range {offset}+{length} beyond end of object"),
            )),
            Err(e) => Err(io(e)),
        }
    }

    fn write(&self, kind: Kind, name: &str, data: &[u8]) -> Result<()> {
        self.write_parts(kind, name, &[data])
    }

    fn write_parts(&self, kind: Kind, name: &str, data: &[&[u8]]) -> Result<()> {
        check_name(kind, name)?;
        let target = self.path(kind, name);
        match self.write_new(kind, name, data, &target) {
            Err(e) if e.kind == ErrorKind::NotFound && kind.is_sharded() => {
                let dir = target.parent().expect("parent");
                fs::create_dir_all(dir).map_err(|e| StorageError::io("write", kind, name, &e))?;
                self.write_new(kind, name, data, &target)
            }
            r => r,
        }
    }

    /// `<root>/data`: on the packs' file system (unless a fan-out folder is a mount point of
    /// its own; then [`Storage::write_file`] copies).
    fn spool_dir(&self) -> Option<PathBuf> {
        Some(self.root.join(Kind::Pack.dir()))
    }

    /// Moves the file into place when it lies on the repository's file system, after `fsync`
    /// and with `renameat2(RENAME_NOREPLACE)` as every write here (an existing object with the
    /// same bytes is success, with other bytes [`ErrorKind::AlreadyExists`]); copies it
    /// otherwise. The file becomes the object's, mode `0600`.
    fn write_file(&self, kind: Kind, name: &str, path: &Path, len: u64, _hot: bool) -> Result<()> {
        check_name(kind, name)?;
        let target = self.path(kind, name);
        let dir = target.parent().expect("object path has a parent");
        if kind.is_sharded() && !dir.is_dir() {
            fs::create_dir_all(dir).map_err(|e| StorageError::io("write", kind, name, &e))?;
        }
        self.move_new(kind, name, path, len, &target)
    }

    fn delete(&self, kind: Kind, name: &str) -> Result<()> {
        check_name(kind, name)?;
        if kind == Kind::Pack {
            self.open_packs.lock().expect("open packs").remove(name);
        }
        fs::remove_file(self.path(kind, name))
            .map_err(|e| StorageError::io("delete", kind, name, &e))
    }

    fn size(&self, kind: Kind, name: &str) -> Result<u64> {
        check_name(kind, name)?;
        fs::metadata(self.path(kind, name))
            .map(|m| m.len())
            .map_err(|e| StorageError::io("stat", kind, name, &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Large objects (written with `O_DIRECT` where possible) and small ones read back byte for
    /// byte with their exact length, on the test machine's temp folder and on tmpfs (which
    /// refuses `O_DIRECT`: the buffered fallback), for lengths around the alignment.
    #[test]
    fn large_and_small_objects_round_trip_on_every_file_system_at_hand() {
        let mut roots = vec![tempfile::tempdir().unwrap()];
        if Path::new("/dev/shm").is_dir()
            && let Ok(d) = tempfile::tempdir_in("/dev/shm")
        {
            roots.push(d);
        }
        for root in &roots {
            let s = LocalStorage::new(root.path().join("repo"));
            s.create().unwrap();
            for (i, len) in [
                DIRECT_MIN - 1,
                DIRECT_MIN,
                DIRECT_MIN + 1,
                DIRECT_CHUNK,
                DIRECT_CHUNK + DIRECT_ALIGN - 1,
                3 * DIRECT_CHUNK + 17,
                100,
            ]
            .into_iter()
            .enumerate()
            {
                let bytes = data(len, i as u8);
                let name = crate::name_of(&bytes);
                s.write(Kind::Pack, &name, &bytes).unwrap();
                assert_eq!(s.size(Kind::Pack, &name).unwrap(), len as u64);
                assert_eq!(s.read(Kind::Pack, &name).unwrap(), bytes, "{len} bytes");
                // Writing the same bytes again is fine, other bytes are refused.
                s.write(Kind::Pack, &name, &bytes).unwrap();
                let e = s.write(Kind::Pack, &name, &data(len, 99)).unwrap_err();
                assert_eq!(e.kind, ErrorKind::AlreadyExists);
                // The same in pieces of odd sizes (as a server receives a body).
                let (a, b) = (len / 3, len / 3 + len / 5 + 1);
                let parts = [&bytes[..a], &bytes[a..b.min(len)], &bytes[b.min(len)..]];
                s.write_parts(Kind::Pack, &name, &parts).unwrap();
                let other = data(len, 98);
                let e = s
                    .write_parts(Kind::Pack, &name, &[&other[..a], &other[a..]])
                    .unwrap_err();
                assert_eq!(e.kind, ErrorKind::AlreadyExists);
                let fresh = LocalStorage::new(root.path().join(format!("fresh-{i}")));
                fresh.create().unwrap();
                fresh.write_parts(Kind::Pack, &name, &parts).unwrap();
                assert_eq!(
                    fresh.read(Kind::Pack, &name).unwrap(),
                    bytes,
                    "{len} in parts"
                );
            }
            // No temporary files are left behind.
            for entry in walk(root.path()) {
                let n = entry.file_name().unwrap().to_string_lossy().into_owned();
                assert!(!n.starts_with(".tmp-"), "{n}");
            }
        }
    }

    /// A stamped listing gives each file's modification time (here set back by an hour) and
    /// "now" from a fresh file, which it leaves no trace of; an empty folder lists nothing.
    #[test]
    fn stamped_listing_gives_file_times_and_the_file_system_clock() {
        use std::time::{Duration, SystemTime};
        let root = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(root.path());
        s.create().unwrap();
        let (old, new) = (crate::name_of(b"old"), crate::name_of(b"new"));
        s.write(Kind::Marker, &old, b"old").unwrap();
        s.write(Kind::Marker, &new, b"new").unwrap();
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        let f = fs::File::options()
            .write(true)
            .open(s.path(Kind::Marker, &old))
            .unwrap();
        f.set_modified(hour_ago).unwrap();
        let before = SystemTime::now();
        let mut stamped = s.list_stamped(Kind::Marker).unwrap().expect("local stamps");
        let after = SystemTime::now();
        // The kernel stamps files with its coarse clock: up to a tick behind `now()`.
        let tick = Duration::from_millis(50);
        assert!(
            stamped.now + tick >= before && stamped.now <= after,
            "{stamped:?}"
        );
        stamped.objects.sort();
        let mut want = vec![
            (old.clone(), hour_ago),
            (new.clone(), SystemTime::UNIX_EPOCH),
        ];
        want.sort();
        assert_eq!(stamped.objects.len(), 2);
        for ((name, at), (want_name, want_at)) in stamped.objects.iter().zip(&want) {
            assert_eq!(name, want_name);
            if *name == old {
                assert_eq!(*at, *want_at);
            } else {
                assert!(*at + tick >= before - Duration::from_secs(60) && *at <= after);
            }
        }
        let left: Vec<_> = walk(root.path())
            .into_iter()
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        let empty = s
            .list_stamped(Kind::Snapshot)
            .unwrap()
            .expect("local stamps");
        assert!(empty.objects.is_empty());
    }

    /// A spooled file in the storage's spool folder is moved into place (gone from the spool,
    /// mode 0600, in its fan-out folder); one elsewhere is stored the same.
    #[test]
    fn spooled_files_are_moved_into_place() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(root.path().join("repo"));
        s.create().unwrap();
        let spool = s.spool_dir().unwrap();
        assert_eq!(spool, root.path().join("repo/data"));
        let bytes = data(3 * DIRECT_CHUNK + 5, 1);
        let name = crate::name_of(&bytes);
        let path = spool.join(".tmp-spool-test");
        fs::write(&path, &bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let ino = fs::metadata(&path).unwrap().ino();
        s.write_file(Kind::Pack, &name, &path, bytes.len() as u64, false)
            .unwrap();
        assert!(!path.exists(), "moved, not copied");
        let stored = fs::metadata(s.path(Kind::Pack, &name)).unwrap();
        assert_eq!((stored.ino(), stored.mode() & 0o777), (ino, 0o600));
        assert_eq!(s.read(Kind::Pack, &name).unwrap(), bytes);
        assert_eq!(s.list(Kind::Pack).unwrap(), [(name, bytes.len() as u64)]);
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
}
