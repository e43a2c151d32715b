//! A repository in a local directory.
//!
//! Layout: `<root>/<kind dir>/<name>`, packs sharded as `<root>/data/<first two hex>/<name>`.
//! A write goes to a temporary file `.tmp-<random>` beside the target, is flushed with `fsync`,
//! and is moved into place with `renameat2(RENAME_NOREPLACE)`, so an object is either absent or
//! complete and an existing object is never replaced.

use crate::{ErrorKind, Kind, Result, Storage, StorageError, check_name};
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

    /// Path of an object.
    pub fn path(&self, kind: Kind, name: &str) -> PathBuf {
        let mut p = self.root.join(kind.dir());
        if kind == Kind::Pack {
            p.push(&name[..2.min(name.len())]);
        }
        p.push(name);
        p
    }

    fn write_new(&self, kind: Kind, name: &str, data: &[u8], target: &Path) -> Result<()> {
        let dir = target.parent().expect("object path has a parent");
        let mut rnd = [0u8; 8];
        getrandom::fill(&mut rnd)
            .map_err(|e| StorageError::new(ErrorKind::Other, "write", kind, name, e))?;
        let tmp = dir.join(format!(".tmp-{}", hex::encode(rnd)));
        let io = |e: std::io::Error| StorageError::io("write", kind, name, &e);
        let result = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            Ok::<_, std::io::Error>(())
        })();
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

    fn same_or_conflict(&self, kind: Kind, name: &str, data: &[u8]) -> Result<()> {
        let old = self.read(kind, name)?;
        if old == data {
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

fn is_object_name(n: &str) -> bool {
    n.len() == 64
        && n.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
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
        let base = self.root.join(kind.dir());
        let io =
            |e: std::io::Error| StorageError::io("list", kind, &base.display().to_string(), &e);
        let mut dirs = vec![base.clone()];
        if kind == Kind::Pack {
            dirs.clear();
            for e in fs::read_dir(&base).map_err(io)? {
                let e = e.map_err(io)?;
                if e.file_type().map_err(io)?.is_dir() {
                    dirs.push(e.path());
                }
            }
        }
        let mut out = Vec::new();
        for d in dirs {
            for e in fs::read_dir(&d).map_err(io)? {
                let e = e.map_err(io)?;
                let name = e.file_name();
                let Some(name) = name.to_str() else { continue };
                if is_object_name(name) {
                    // An object deleted while listing (prune runs beside backups) is skipped.
                    match e.metadata() {
                        Ok(m) => out.push((name.to_string(), m.len())),
                        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                        Err(err) => return Err(io(err)),
                    }
                }
            }
        }
        Ok(out)
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
        check_name(kind, name)?;
        let target = self.path(kind, name);
        match self.write_new(kind, name, data, &target) {
            Err(e) if e.kind == ErrorKind::NotFound && kind == Kind::Pack => {
                let dir = target.parent().expect("parent");
                fs::create_dir_all(dir).map_err(|e| StorageError::io("write", kind, name, &e))?;
                self.write_new(kind, name, data, &target)
            }
            r => r,
        }
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
