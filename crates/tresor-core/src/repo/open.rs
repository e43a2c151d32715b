//! Creating and opening repositories, and reading their config.

use super::handle::Repository;
use super::highwater::HighWater;
use super::keyfiles::{
    KeyOwner, ReadKeyFile, cheapest_first, make_key_file, read_key_files, trusted_key,
};
use super::limits;
use super::trust::Trust;
use crate::error::{CoreError, Result};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tresor_format::config::Config;
use tresor_format::crypto::MasterKey;
use tresor_format::keyfile::{KdfParams, KeyFile};
use tresor_format::trust::TrustRecord;
use tresor_format::{FormatError, ObjectId};
use tresor_storage::{ErrorKind, Kind, Storage};

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
        let master = MasterKey::generate()?;
        let kf_bytes = make_key_file(&master, master.clone(), password, kdf, owner)?;
        storage.write(Kind::Key, &ObjectId::of(&kf_bytes).to_hex(), &kf_bytes)?;
        // The trust record names the config, which is written last: a repository exists when
        // its config exists (format §2, §12).
        let cfg_bytes = config.to_bytes();
        let cfg_id = ObjectId::of(&cfg_bytes);
        let mut record = TrustRecord::new(1, cfg_id);
        record.trust(trusted_key(&KeyFile::from_bytes(&kf_bytes)?)?);
        super::trust::write_record(storage.as_ref(), &master.admin()?, &record)?;
        storage.write(Kind::Config, &cfg_id.to_hex(), &cfg_bytes)?;
        Self::open(storage, password)
    }

    /// Read the config of the repository in `storage`.
    ///
    /// # Errors
    /// [`CoreError::RepositoryNotFound`] when there is none; [`CoreError::Damaged`] when its
    /// name does not match its content or there are several.
    pub fn read_config(storage: &dyn Storage) -> Result<Config> {
        Ok(Self::read_config_with_id(storage)?.1)
    }

    /// [`Repository::read_config`], with the config object's id (which the trust record must
    /// name, format §4.3).
    ///
    /// # Errors
    /// As [`Repository::read_config`].
    pub fn read_config_with_id(storage: &dyn Storage) -> Result<(ObjectId, Config)> {
        let list = match storage.list(Kind::Config) {
            Ok(l) => l,
            Err(e) if e.kind == ErrorKind::NotFound => {
                return Err(CoreError::RepositoryNotFound(storage.location()));
            }
            Err(e) => return Err(e.into()),
        };
        match list.as_slice() {
            [] => Err(CoreError::RepositoryNotFound(storage.location())),
            [(name, size)] => {
                let bytes =
                    limits::read_bounded(storage, Kind::Config, name, Some(*size), limits::CONFIG)?;
                let id = ObjectId::of(&bytes);
                if id.to_hex() != *name {
                    return Err(CoreError::Damaged(format!(
                        "config {name}: content does not match its name"
                    )));
                }
                Ok((id, Config::from_bytes(&bytes)?))
            }
            _ => Err(CoreError::Damaged(format!(
                "{} config objects, expected one",
                list.len()
            ))),
        }
    }

    /// Open the repository in `storage` with `password`, trying every key file, without
    /// high-water marks ([`Repository::open_with`]).
    ///
    /// # Errors
    /// As [`Repository::open_with`].
    pub fn open(storage: Arc<dyn Storage>, password: &str) -> Result<Self> {
        Self::open_with(storage, password, None)
    }

    /// Open the repository in `storage` with `password`, trying every key file. The config must
    /// be the one the newest trust record names, and the key must be trusted by it. With a
    /// cache directory, the storage's newest trust record must not be older than the newest
    /// this machine has seen ([`HighWater`]).
    ///
    /// # Errors
    /// [`CoreError::RepositoryNotFound`], [`CoreError::WrongPassword`],
    /// [`CoreError::KeyRevoked`] when the password opens only a removed key,
    /// [`CoreError::KeyNotTrusted`] when it opens only keys the trust record does not list,
    /// [`CoreError::Damaged`] for a config the trust record does not name, no trust record, or
    /// a rollback; [`CoreError::Io`] when the cache directory cannot be written.
    pub fn open_with(
        storage: Arc<dyn Storage>,
        password: &str,
        cache_dir: Option<&Path>,
    ) -> Result<Self> {
        let config = Self::read_config_with_id(storage.as_ref())?;
        Self::open_with_config(storage, config, password, cache_dir)
    }

    /// [`Repository::open_with`] with the config object already read by
    /// [`Repository::read_config_with_id`] (a caller that read it to fail early need not list
    /// and read it again: two requests on S3). It is judged as if read here.
    ///
    /// # Errors
    /// As [`Repository::open_with`].
    pub fn open_with_config(
        storage: Arc<dyn Storage>,
        (config_id, config): (ObjectId, Config),
        password: &str,
        cache_dir: Option<&Path>,
    ) -> Result<Self> {
        let mut damaged = Vec::new();
        let (mut revoked, mut unlisted) = (None, None);
        // Cheapest first: a planted key file with costly Argon2id parameters (within the
        // bounds every key file is held to) cannot delay opening with an honest key.
        let keys = read_key_files(storage.as_ref())?;
        for (name, kf) in cheapest_first(&keys, &mut damaged) {
            let payload = match kf.open(password) {
                Ok(p) => p,
                Err(FormatError::WrongPassword) => continue,
                Err(e) => {
                    damaged.push(format!("key {name}: {e}"));
                    continue;
                }
            };
            let key_id: ObjectId = name.parse()?;
            let found = Found {
                config_id: &config_id,
                key_id,
                key_kind: kf.kind,
            };
            match admit(&storage, &config, found, payload, &keys, cache_dir)? {
                Admitted::Open(r) => return Ok(*r),
                Admitted::Revoked => revoked = Some(key_id),
                Admitted::Unlisted => unlisted = Some(key_id),
            }
        }
        if let Some(id) = revoked {
            Err(CoreError::KeyRevoked(id.short()))
        } else if let Some(id) = unlisted {
            Err(CoreError::KeyNotTrusted(id.short()))
        } else if damaged.is_empty() {
            Err(CoreError::WrongPassword)
        } else {
            Err(CoreError::Damaged(format!(
                "no key opened; {}",
                damaged.join("; ")
            )))
        }
    }
}

impl Repository {
    /// Open the repository in `storage` with an unlocked key file (format §4.4): no password,
    /// no Argon2id. The key is the one whose key file carries the payload's signing public key;
    /// the trust record judges it as for [`Repository::open_with`].
    ///
    /// # Errors
    /// [`CoreError::Invalid`] when the file is for another repository;
    /// [`CoreError::KeyRevoked`] when no key file of the repository has its signing key (a
    /// removed key's file is gone); otherwise as
    /// [`Repository::open_with`] ([`CoreError::KeyRevoked`], [`CoreError::KeyNotTrusted`]).
    pub fn open_unlocked(
        storage: Arc<dyn Storage>,
        unlocked: tresor_format::unlocked::UnlockedKey,
        cache_dir: Option<&Path>,
    ) -> Result<Self> {
        let config = Self::read_config_with_id(storage.as_ref())?;
        Self::open_unlocked_with_config(storage, config, unlocked, cache_dir)
    }

    /// [`Repository::open_unlocked`] with the config object already read by
    /// [`Repository::read_config_with_id`], as for [`Repository::open_with_config`].
    ///
    /// # Errors
    /// As [`Repository::open_unlocked`].
    pub fn open_unlocked_with_config(
        storage: Arc<dyn Storage>,
        (config_id, config): (ObjectId, Config),
        unlocked: tresor_format::unlocked::UnlockedKey,
        cache_dir: Option<&Path>,
    ) -> Result<Self> {
        if unlocked.repository != config.id {
            return Err(CoreError::Invalid(format!(
                "the unlocked key file is for repository {}, not {}",
                unlocked.repository, config.id
            )));
        }
        let public = hex::encode(unlocked.payload.signer().public());
        let mut damaged = Vec::new();
        let keys = read_key_files(storage.as_ref())?;
        let files = cheapest_first(&keys, &mut damaged);
        // Only a certified key file tells the key's kind: the storage may plant others.
        let admin = unlocked.payload.master.admin_public;
        let Some((name, kf)) = files
            .into_iter()
            .find(|(_, kf)| kf.signing_public == public && kf.certified_by(&admin))
        else {
            // Removing a key deletes its key file: the signing key names it.
            return Err(CoreError::KeyRevoked(public[..16].to_string()));
        };
        let key_id: ObjectId = name.parse()?;
        let found = Found {
            config_id: &config_id,
            key_id,
            key_kind: kf.kind,
        };
        match admit(&storage, &config, found, unlocked.payload, &keys, cache_dir)? {
            Admitted::Open(r) => Ok(*r),
            Admitted::Revoked => Err(CoreError::KeyRevoked(key_id.short())),
            Admitted::Unlisted => Err(CoreError::KeyNotTrusted(key_id.short())),
        }
    }
}

/// The key a password or an unlocked key file opened, and where it was found.
struct Found<'a> {
    config_id: &'a ObjectId,
    key_id: ObjectId,
    key_kind: tresor_format::keyfile::KeyKind,
}

/// What the trust record says of an opened key.
enum Admitted {
    /// Trusted: the repository is open.
    Open(Box<Repository>),
    /// Removed (a revocation names it).
    Revoked,
    /// Not listed by the newest trust record.
    Unlisted,
}

/// Judge the key of `payload` by the repository's trust record (which must name the config
/// `found.config_id`) and, with a cache directory, by this machine's high-water marks.
///
/// # Errors
/// [`CoreError::Damaged`] for a config the trust record does not name, no trust record, or a
/// rollback; storage errors.
fn admit(
    storage: &Arc<dyn Storage>,
    config: &Config,
    found: Found<'_>,
    payload: tresor_format::keyfile::KeyPayload,
    keys: &[ReadKeyFile],
    cache_dir: Option<&Path>,
) -> Result<Admitted> {
    let trust = Trust::load_with_key_files(storage.as_ref(), &payload.master, keys)?;
    trust.authenticate_config(found.config_id)?;
    // Before judging the key: an older trust record may not list it yet.
    let (marks, cache_problem) = high_water(cache_dir, &config.id, trust.seq())?;
    let signer = payload.signer();
    if trust.is_revoked(&signer.public()) {
        // A removed key whose key file is back (or was never deleted).
        return Ok(Admitted::Revoked);
    }
    if trust.key(&signer.public()).is_none() {
        return Ok(Admitted::Unlisted);
    }
    Ok(Admitted::Open(Box::new(Repository {
        storage: storage.clone(),
        config: config.clone(),
        signer,
        payload,
        key_id: found.key_id,
        key_kind: found.key_kind,
        trust,
        signers: Mutex::default(),
        marks,
        cache_problem,
    })))
}

/// The high-water marks under `cache_dir` after checking the storage's trust `seq` against
/// them; a cache directory that cannot be written gives no marks and a problem to report.
///
/// # Errors
/// [`CoreError::Damaged`] when the storage rolled back.
fn high_water(
    cache_dir: Option<&Path>,
    repo_id: &str,
    seq: u64,
) -> Result<(Option<HighWater>, Option<String>)> {
    let Some(dir) = cache_dir else {
        return Ok((None, None));
    };
    let marks = HighWater::new(dir, repo_id);
    match marks.check_trust_seq(seq) {
        Ok(()) => Ok((Some(marks), None)),
        Err(e @ CoreError::Io { .. }) => Ok((None, Some(e.to_string()))),
        Err(e) => Err(e),
    }
}
