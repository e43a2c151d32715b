//! Opening and initialising repositories; reading and writing snapshots and the index.
//!
//! A [`Repository`] holds the storage, the config and the unlocked key. It is cheap to share
//! (`Arc`) between threads. Write ordering (format §12): packs, then index objects, then the
//! snapshot — every writer in this crate follows it.

use crate::error::{CoreError, Result};
use crate::index::Index;
use std::sync::Arc;
use tresor_format::config::Config;
use tresor_format::crypto::MasterKey;
use tresor_format::index::IndexFile;
use tresor_format::keyfile::{KdfParams, KeyFile, KeyKind};
use tresor_format::snapshot::Snapshot;
use tresor_format::{FormatError, ObjectId};
use tresor_storage::{ErrorKind, Kind, Storage};

/// An open repository: storage, config and unlocked key.
pub struct Repository {
    storage: Arc<dyn Storage>,
    config: Config,
    key: MasterKey,
    key_id: ObjectId,
    key_kind: KeyKind,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Repository({})", self.storage.location())
    }
}

/// Who is creating a key: written into the key file.
#[derive(Debug, Clone)]
pub struct KeyOwner {
    /// Host name.
    pub host: String,
    /// User name.
    pub username: String,
    /// Creation time, RFC 3339.
    pub created: String,
}

impl Repository {
    /// Create a new repository in `storage` with one full key under `password`.
    ///
    /// # Errors
    /// [`CoreError::RepositoryExists`] if a config object is present; storage errors.
    pub fn init(
        storage: Arc<dyn Storage>,
        password: &str,
        kdf: KdfParams,
        owner: &KeyOwner,
        config: Config,
    ) -> Result<Self> {
        storage.create()?;
        if !storage.list(Kind::Config)?.is_empty() {
            return Err(CoreError::RepositoryExists(storage.location()));
        }
        let key = MasterKey::generate()?;
        let kf = KeyFile::create(
            &key,
            password,
            kdf,
            &owner.host,
            &owner.username,
            &owner.created,
        )?;
        let kf_bytes = kf.to_bytes();
        let key_id = ObjectId::of(&kf_bytes);
        storage.write(Kind::Key, &key_id.to_hex(), &kf_bytes)?;
        let cfg_bytes = config.to_bytes();
        storage.write(Kind::Config, &ObjectId::of(&cfg_bytes).to_hex(), &cfg_bytes)?;
        Ok(Repository {
            storage,
            config,
            key,
            key_id,
            key_kind: KeyKind::Full,
        })
    }

    /// Read the config of the repository in `storage`.
    ///
    /// # Errors
    /// [`CoreError::RepositoryNotFound`] when there is none; [`CoreError::Damaged`] when its
    /// name does not match its content or there are several.
    pub fn read_config(storage: &dyn Storage) -> Result<Config> {
        let list = match storage.list(Kind::Config) {
            Ok(l) => l,
            Err(e) if e.kind == ErrorKind::NotFound => {
                return Err(CoreError::RepositoryNotFound(storage.location()));
            }
            Err(e) => return Err(e.into()),
        };
        match list.as_slice() {
            [] => Err(CoreError::RepositoryNotFound(storage.location())),
            [(name, _)] => {
                let bytes = storage.read(Kind::Config, name)?;
                if ObjectId::of(&bytes).to_hex() != *name {
                    return Err(CoreError::Damaged(format!(
                        "config {name}: content does not match its name"
                    )));
                }
                Ok(Config::from_bytes(&bytes)?)
            }
            _ => Err(CoreError::Damaged(format!(
                "{} config objects, expected one",
                list.len()
            ))),
        }
    }

    /// Open the repository in `storage` with `password`, trying every key file.
    ///
    /// # Errors
    /// [`CoreError::RepositoryNotFound`], [`CoreError::WrongPassword`], or damage.
    pub fn open(storage: Arc<dyn Storage>, password: &str) -> Result<Self> {
        let config = Self::read_config(storage.as_ref())?;
        let mut keys = storage.list(Kind::Key)?;
        keys.sort();
        let mut damaged = Vec::new();
        for (name, _) in keys {
            let bytes = storage.read(Kind::Key, &name)?;
            let kf = match KeyFile::from_bytes(&bytes) {
                Ok(kf) if ObjectId::of(&bytes).to_hex() == name => kf,
                Ok(_) => {
                    damaged.push(format!("key {name}: content does not match its name"));
                    continue;
                }
                Err(e) => {
                    damaged.push(format!("key {name}: {e}"));
                    continue;
                }
            };
            match kf.open(password) {
                Ok(key) => {
                    let key_id: ObjectId = name.parse()?;
                    return Ok(Repository {
                        storage,
                        config,
                        key,
                        key_id,
                        key_kind: kf.kind,
                    });
                }
                Err(FormatError::WrongPassword) => continue,
                Err(e) => damaged.push(format!("key {name}: {e}")),
            }
        }
        if damaged.is_empty() {
            Err(CoreError::WrongPassword)
        } else {
            Err(CoreError::Damaged(format!(
                "no key opened; {}",
                damaged.join("; ")
            )))
        }
    }

    /// The storage.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }
    /// The config.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// The unlocked key.
    pub fn key(&self) -> &MasterKey {
        &self.key
    }
    /// Id of the key file that was opened.
    pub fn key_id(&self) -> ObjectId {
        self.key_id
    }
    /// Whether the opened key is full or put-only.
    pub fn key_kind(&self) -> KeyKind {
        self.key_kind
    }

    /// Fail with [`CoreError::PutOnly`] unless the key can read.
    ///
    /// # Errors
    /// [`CoreError::PutOnly`] naming `what`.
    pub fn require_read(&self, what: &'static str) -> Result<()> {
        if self.key.can_read() {
            Ok(())
        } else {
            Err(CoreError::PutOnly(what))
        }
    }

    /// Store an object under the hash of its bytes; returns its id.
    ///
    /// # Errors
    /// Storage errors.
    pub fn write_object(&self, kind: Kind, bytes: &[u8]) -> Result<ObjectId> {
        let id = ObjectId::of(bytes);
        self.storage.write(kind, &id.to_hex(), bytes)?;
        Ok(id)
    }

    /// Read an object and check that its bytes hash to its name.
    ///
    /// # Errors
    /// Storage errors; [`CoreError::Damaged`] on a hash mismatch.
    pub fn read_object(&self, kind: Kind, id: &ObjectId) -> Result<Vec<u8>> {
        let bytes = self.storage.read(kind, &id.to_hex())?;
        if ObjectId::of(&bytes) != *id {
            return Err(CoreError::Damaged(format!(
                "{kind} {id}: content does not match its name"
            )));
        }
        Ok(bytes)
    }

    /// Seal and store a snapshot; returns its id.
    ///
    /// # Errors
    /// Storage errors.
    pub fn save_snapshot(&self, snap: &Snapshot) -> Result<ObjectId> {
        self.write_object(Kind::Snapshot, &snap.seal(&self.key)?)
    }

    /// Load one snapshot.
    ///
    /// # Errors
    /// [`CoreError::PutOnly`], storage errors, damage.
    pub fn load_snapshot(&self, id: &ObjectId) -> Result<Snapshot> {
        self.require_read("reading snapshots")?;
        let bytes = self.read_object(Kind::Snapshot, id)?;
        Snapshot::open(&self.key, &bytes)
            .map_err(|e| CoreError::Damaged(format!("snapshot {id}: {e}")))
    }

    /// Ids of all snapshot objects (unsorted).
    ///
    /// # Errors
    /// Storage errors.
    pub fn snapshot_ids(&self) -> Result<Vec<ObjectId>> {
        self.storage
            .list(Kind::Snapshot)?
            .into_iter()
            .map(|(n, _)| n.parse().map_err(CoreError::from))
            .collect()
    }

    /// Load every snapshot, oldest first. Damaged snapshots are returned in the second list.
    ///
    /// # Errors
    /// [`CoreError::PutOnly`], storage errors on listing.
    pub fn load_snapshots(
        &self,
    ) -> Result<(Vec<(ObjectId, Snapshot)>, Vec<(ObjectId, CoreError)>)> {
        self.require_read("listing snapshots")?;
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        for id in self.snapshot_ids()? {
            match self.load_snapshot(&id) {
                Ok(s) => ok.push((id, s)),
                Err(e) => bad.push((id, e)),
            }
        }
        ok.sort_by(|a, b| {
            crate::snapshots::time_of(&a.1)
                .cmp(&crate::snapshots::time_of(&b.1))
                .then(a.0.cmp(&b.0))
        });
        Ok((ok, bad))
    }

    /// Load and merge all index objects. Superseded index objects are skipped.
    ///
    /// # Errors
    /// [`CoreError::PutOnly`]; the first damaged index object as [`CoreError::Damaged`].
    pub fn load_index(&self) -> Result<Index> {
        let (index, errors) = self.load_index_lenient()?;
        match errors.into_iter().next() {
            Some((id, e)) => Err(CoreError::Damaged(format!("index {id}: {e}"))),
            None => Ok(index),
        }
    }

    /// Load and merge all index objects, returning damaged ones separately instead of failing.
    ///
    /// # Errors
    /// [`CoreError::PutOnly`], storage errors on listing.
    pub fn load_index_lenient(&self) -> Result<(Index, Vec<(ObjectId, CoreError)>)> {
        self.require_read("reading the index")?;
        let mut files = Vec::new();
        let mut errors = Vec::new();
        for (name, _) in self.storage.list(Kind::Index)? {
            let id: ObjectId = name.parse()?;
            let r = self
                .read_object(Kind::Index, &id)
                .and_then(|b| IndexFile::open(&self.key, &b).map_err(CoreError::from));
            match r {
                Ok(f) => files.push((id, f)),
                Err(e) => errors.push((id, e)),
            }
        }
        let superseded: std::collections::HashSet<ObjectId> = files
            .iter()
            .flat_map(|(_, f)| f.supersedes.iter().copied())
            .collect();
        let mut index = Index::default();
        for (id, f) in files {
            if !superseded.contains(&id) {
                index.add_file(id, &f);
            }
        }
        Ok((index, errors))
    }
}
