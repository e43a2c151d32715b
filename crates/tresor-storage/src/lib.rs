//! # tresor-storage: named immutable objects
//!
//! The storage layer knows nothing of encryption, packs or blobs. It stores opaque bytes under a
//! ([`Kind`], name) pair, where the name is 64 lowercase hex digits: the BLAKE3 hash of the
//! bytes (format §2). Objects are written once and never modified; [`Storage::write`] refuses
//! to replace an existing object with different bytes.
//!
//! The rulebook every storage follows is here, once: the object layout and name rules
//! ([`layout`]), the permission table of roles ([`access`]), and the contract itself
//! ([`Storage`], checked by [`conformance::run_all`]).
//!
//! Implementations: [`local::LocalStorage`] (a directory), [`memory::MemoryStorage`] (tests),
//! S3 (`tresor-s3`) and the `tresor serve` client (`tresor-server`). Layers that wrap a storage
//! (fault injection: [`faulty::FaultyStorage`]; bandwidth limits: [`throttle::Throttled`];
//! request counting: [`counted::Counted`]) implement
//! [`Forward`], which passes every method they do not override — the optional ones included —
//! to the wrapped storage. Every implementation passes [`conformance::run_all`].

#![warn(missing_docs)]

pub mod access;
pub mod cold;
pub mod conformance;
pub mod counted;
pub mod direct;
pub mod faulty;
mod forward;
pub mod layout;
pub mod local;
pub mod memory;
pub mod retry;
pub mod throttle;

pub use forward::Forward;
pub use layout::{check_name, is_object_name};

use std::fmt;
use std::sync::Arc;
use thiserror::Error;

/// The kinds of objects and the folder each lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// The repository config (`config/`).
    Config,
    /// Key files (`keys/`).
    Key,
    /// Snapshots (`snapshots/`).
    Snapshot,
    /// Index objects (`index/`).
    Index,
    /// Packs (`data/XX/`, sharded by the first two hex digits).
    Pack,
    /// Key revocations (`revocations/`).
    Revocation,
    /// Prune records: prune state and condemned packs awaiting deletion (`prune/`).
    PruneRecord,
    /// Backup start markers (`markers/`): written when a backup starts, deleted by prune once
    /// a snapshot lists them.
    Marker,
    /// Trust records (`trust/`): the admin-signed, numbered list of trusted and revoked keys
    /// and the config's id (format §4.3).
    Trust,
    /// Restore drill records (`drills/`): what `tresor drill` restored and verified, signed by
    /// a full key (format §18).
    Drill,
}

impl Kind {
    /// All kinds, in the order listings show them (the permission table, IAM policies).
    pub const ALL: [Kind; 10] = [
        Kind::Config,
        Kind::Key,
        Kind::Snapshot,
        Kind::Index,
        Kind::Pack,
        Kind::Revocation,
        Kind::PruneRecord,
        Kind::Marker,
        Kind::Trust,
        Kind::Drill,
    ];
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Config => "config",
            Kind::Key => "key",
            Kind::Snapshot => "snapshot",
            Kind::Index => "index",
            Kind::Pack => "pack",
            Kind::Revocation => "revocation",
            Kind::PruneRecord => "prune record",
            Kind::Marker => "marker",
            Kind::Trust => "trust record",
            Kind::Drill => "drill record",
        })
    }
}

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The object does not exist.
    NotFound,
    /// An object with that name but other bytes exists.
    AlreadyExists,
    /// The storage refused the operation (append-only, read-only, permissions).
    PermissionDenied,
    /// The name is not 64 lowercase hex digits.
    InvalidName,
    /// A range read past the end of the object.
    ShortRead,
    /// The storage is out of space.
    NoSpace,
    /// A passing fault (network, throttling); the operation may succeed when retried.
    Transient,
    /// Any other I/O error.
    Other,
}

/// A storage error: kind, the object concerned, and a message.
#[derive(Debug, Error)]
#[error("{op} {kind_name} {name}: {message}")]
pub struct StorageError {
    /// Classification.
    pub kind: ErrorKind,
    /// Operation, e.g. "read", "write".
    pub op: &'static str,
    /// Object kind.
    pub kind_name: String,
    /// Object name (or location).
    pub name: String,
    /// Detail.
    pub message: String,
}

impl StorageError {
    /// Build an error.
    pub fn new(
        kind: ErrorKind,
        op: &'static str,
        object: Kind,
        name: &str,
        message: impl fmt::Display,
    ) -> Self {
        StorageError {
            kind,
            op,
            kind_name: object.to_string(),
            name: name.to_string(),
            message: message.to_string(),
        }
    }

    /// Build from an I/O error, classifying it.
    pub fn io(op: &'static str, object: Kind, name: &str, e: &std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let kind = match e.kind() {
            K::NotFound => ErrorKind::NotFound,
            K::AlreadyExists => ErrorKind::AlreadyExists,
            K::PermissionDenied | K::ReadOnlyFilesystem => ErrorKind::PermissionDenied,
            K::StorageFull | K::QuotaExceeded => ErrorKind::NoSpace,
            K::UnexpectedEof => ErrorKind::ShortRead,
            K::Interrupted | K::TimedOut | K::ConnectionReset | K::ConnectionAborted => {
                ErrorKind::Transient
            }
            _ => ErrorKind::Other,
        };
        Self::new(kind, op, object, name, e)
    }
}

/// Result with [`StorageError`].
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// The name content-addressed bytes must have: hex BLAKE3-256.
pub fn name_of(data: &[u8]) -> String {
    name_of_hash(&blake3::hash(data))
}

/// [`name_of`] from a BLAKE3 hash computed elsewhere (e.g. incrementally, as a body arrives).
pub fn name_of_hash(hash: &blake3::Hash) -> String {
    hex::encode(hash.as_bytes())
}

/// The error of a spool file at `path` that holds `got` bytes where object `name` of `kind`
/// should have `len` ([`Storage::write_file`]): [`ErrorKind::Other`], nothing is stored.
pub fn spool_length_error(
    kind: Kind,
    name: &str,
    path: &std::path::Path,
    got: u64,
    len: u64,
) -> StorageError {
    let why = format!("{} holds {got} bytes, not {len}", path.display());
    StorageError::new(ErrorKind::Other, "write", kind, name, why)
}

/// The `len` bytes of the file at `path`, to be stored as object `name` of `kind`
/// ([`Storage::write_file`]).
///
/// # Errors
/// Errors reading the file; [`ErrorKind::Other`] when it does not hold `len` bytes.
pub fn read_spooled(kind: Kind, name: &str, path: &std::path::Path, len: u64) -> Result<Vec<u8>> {
    let data = std::fs::read(path).map_err(|e| StorageError::io("write", kind, name, &e))?;
    if data.len() as u64 != len {
        return Err(spool_length_error(kind, name, path, data.len() as u64, len));
    }
    Ok(data)
}

/// A listing stamped by the storage's own clock ([`Storage::list_stamped`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped {
    /// The storage's current time, read *before* the listing: every age computed against it
    /// is at most the true age (an object written meanwhile gets age 0).
    pub now: std::time::SystemTime,
    /// Each listed object's name and last modification time, by the storage's clock.
    pub objects: Vec<(String, std::time::SystemTime)>,
}

/// One object of a listing with its storage class ([`Storage::list_classes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classed {
    /// The object's name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its storage class as the storage names it (S3: `STANDARD`, `GLACIER`, `DEEP_ARCHIVE`, …;
    /// upper case).
    pub class: String,
}

/// The storage contract. All methods are blocking and safe to call from many threads.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Human-readable location (path or URL, never credentials).
    fn location(&self) -> String;

    /// How many object writes a writer should keep in flight at once (the backup's pack
    /// uploads): 1 for storage where a write is bound by local CPU and disk, more for storage
    /// behind a network round trip.
    fn write_concurrency(&self) -> usize {
        1
    }

    /// Create the folders of a new repository. Idempotent.
    ///
    /// # Errors
    /// I/O errors.
    fn create(&self) -> Result<()>;

    /// All objects of `kind` with their sizes in bytes, in no particular order.
    ///
    /// # Errors
    /// I/O errors.
    fn list(&self, kind: Kind) -> Result<Vec<(String, u64)>>;

    /// All objects of `kind` with their modification times and the storage's current time,
    /// all by the storage's own clock (never the client's), or `None` when the storage cannot
    /// tell (the default: a network client without such a call, memory). `prune` uses it to
    /// judge the age of backup markers (format §16.1); with `None` it judges none.
    ///
    /// # Errors
    /// As [`Storage::list`].
    fn list_stamped(&self, kind: Kind) -> Result<Option<Stamped>> {
        let _ = kind;
        Ok(None)
    }

    /// All objects of `kind` with their sizes and storage classes as the storage lists them
    /// (S3: ListObjectsV2's `StorageClass`, which lifecycle rules and earlier writers may have
    /// made anything), or `None` when the storage has no classes or cannot tell (the default:
    /// local, memory, the `tresor serve` client). `cost` prices by it.
    ///
    /// # Errors
    /// As [`Storage::list`].
    fn list_classes(&self, kind: Kind) -> Result<Option<Vec<Classed>>> {
        let _ = kind;
        Ok(None)
    }

    /// The whole object.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] and I/O errors.
    fn read(&self, kind: Kind, name: &str) -> Result<Vec<u8>>;

    /// `length` bytes from `offset`. A read past the end is [`ErrorKind::ShortRead`].
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`], [`ErrorKind::ShortRead`] and I/O errors.
    fn read_range(&self, kind: Kind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>>;

    /// Store a new object atomically: readers see all of it or nothing. Writing bytes that are
    /// already stored under that name succeeds; other bytes under an existing name are refused.
    ///
    /// # Errors
    /// [`ErrorKind::AlreadyExists`], [`ErrorKind::PermissionDenied`], [`ErrorKind::NoSpace`],
    /// I/O errors.
    fn write(&self, kind: Kind, name: &str, data: &[u8]) -> Result<()>;

    /// [`Storage::write`] of an owned buffer. Returns a buffer the caller may reuse for its next
    /// object, or `None`: storages that send the buffer itself (no copy) return one whose
    /// earlier write has completed. The default writes `data` and returns it.
    ///
    /// # Errors
    /// As [`Storage::write`].
    fn write_vec(&self, kind: Kind, name: &str, data: Vec<u8>) -> Result<Option<Vec<u8>>> {
        self.write(kind, name, &data)?;
        Ok(Some(data))
    }

    /// [`Storage::write_vec`] of an object that must stay readable without a thaw however packs
    /// are stored: a pack of tree blobs. Storages with a storage class per object kind (S3's
    /// `--s3-storage-class-data`) give it the metadata class. The default is
    /// [`Storage::write_vec`].
    ///
    /// # Errors
    /// As [`Storage::write`].
    fn write_vec_hot(&self, kind: Kind, name: &str, data: Vec<u8>) -> Result<Option<Vec<u8>>> {
        self.write_vec(kind, name, data)
    }

    /// [`Storage::write`] of the concatenation of `parts`, for callers that hold an object in
    /// pieces (a server receiving a body): storages that can write the pieces as they are avoid
    /// joining them first. The default joins them.
    ///
    /// # Errors
    /// As [`Storage::write`].
    fn write_parts(&self, kind: Kind, name: &str, parts: &[&[u8]]) -> Result<()> {
        match parts {
            [one] => self.write(kind, name, one),
            _ => self.write(kind, name, &parts.concat()),
        }
    }

    /// A directory where a writer may prepare a file to store with [`Storage::write_file`] at
    /// the least cost: one on the same file system as the objects, so that the file is moved
    /// into place, not copied. `None` (the default: memory, network storages) when there is no
    /// such place; writers then use the system's temporary directory. Files a writer leaves
    /// there must not look like objects (their names are not object names, [`layout`]).
    fn spool_dir(&self) -> Option<std::path::PathBuf> {
        None
    }

    /// Store the `len` bytes of the file at `path` as a new object, as [`Storage::write`] would
    /// (with `hot`, as [`Storage::write_vec_hot`]): for a writer that spooled a large object to a
    /// file instead of holding it in memory. The storage may move the file into place (the
    /// local storage does, when it lies on the same file system), so `path` may be gone when
    /// this returns, and must not be used again; when it is still there, it is the caller's to
    /// remove. The default reads the file (`len` bytes held while it is written) and calls
    /// [`Storage::write_vec`] or [`Storage::write_vec_hot`].
    ///
    /// # Errors
    /// As [`Storage::write`]; [`ErrorKind::Other`] when the file does not hold `len` bytes, and
    /// the errors of reading it.
    fn write_file(
        &self,
        kind: Kind,
        name: &str,
        path: &std::path::Path,
        len: u64,
        hot: bool,
    ) -> Result<()> {
        let data = read_spooled(kind, name, path, len)?;
        match hot {
            true => self.write_vec_hot(kind, name, data),
            false => self.write_vec(kind, name, data),
        }
        .map(drop)
    }

    /// Remove an object. Removing a missing object is [`ErrorKind::NotFound`].
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`], [`ErrorKind::PermissionDenied`], I/O errors.
    fn delete(&self, kind: Kind, name: &str) -> Result<()>;

    /// Size of an object in bytes.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] and I/O errors.
    fn size(&self, kind: Kind, name: &str) -> Result<u64>;

    /// Until when the store will refuse to delete this object (S3 Object Lock retention or legal
    /// hold), or `None` when nothing holds it. `prune` must not try to delete an object before
    /// then: the delete fails (`PermissionDenied`), and on S3 the object stays billed. The default
    /// (storages without locks) is `None` and does not check that the object exists (it does
    /// check the name). On S3 this
    /// costs one `HEAD` per object: ask only about objects that are about to be deleted. A legal
    /// hold, which has no end date, is reported as 9999-12-31.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidName`], [`ErrorKind::NotFound`], [`ErrorKind::PermissionDenied`] (S3: the credentials lack
    /// `s3:GetObject` or `s3:GetObjectRetention`), I/O errors.
    fn locked_until(&self, kind: Kind, name: &str) -> Result<Option<std::time::SystemTime>> {
        check_name(kind, name)?;
        Ok(None)
    }

    /// Whether the object lies in a cold class ([`cold::ColdClass`]) and where its thaw stands;
    /// `None` when it can be read as it is. The default (storages without cold classes) is
    /// `None` and checks only the name. On S3 this costs one `HEAD`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidName`], [`ErrorKind::NotFound`], [`ErrorKind::PermissionDenied`], I/O
    /// errors.
    fn cold_state(&self, kind: Kind, name: &str) -> Result<Option<cold::ColdState>> {
        check_name(kind, name)?;
        Ok(None)
    }

    /// Ask for a readable copy of a cold object, kept `days` days, thawed at `tier` (S3
    /// `RestoreObject`). Asking again while a thaw is under way is harmless (S3 answers 409,
    /// taken as success). The default (no cold classes) does nothing.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidName`], [`ErrorKind::NotFound`], [`ErrorKind::PermissionDenied`], I/O
    /// errors.
    fn request_thaw(&self, kind: Kind, name: &str, tier: cold::ThawTier, days: u32) -> Result<()> {
        let _ = (tier, days);
        check_name(kind, name)
    }

    /// Tell `observer` whenever a request waits for the store (throttling or a passing failure
    /// retried, see [`retry`]); `None` stops that. Returns the observer set before. Storages
    /// that never wait (a directory, memory) keep none: the default ignores it.
    fn set_wait_observer(
        &self,
        observer: Option<Arc<dyn retry::WaitObserver>>,
    ) -> Option<Arc<dyn retry::WaitObserver>> {
        let _ = observer;
        None
    }
}
