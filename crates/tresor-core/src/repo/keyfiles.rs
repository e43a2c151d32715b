//! Key files as the repository holds them: making certified ones, reading them cheapest first,
//! and the trust record entry of one (format §4).

use super::limits;
use crate::error::{CoreError, Result};
use tresor_format::ObjectId;
use tresor_format::crypto::MasterKey;
use tresor_format::keyfile::{KdfParams, KeyFile, KeyKind, KeyPayload};
use tresor_format::sign::Signer;
use tresor_format::trust::TrustedKey;
use tresor_storage::{Kind, Storage};

/// Who a key is made by or for: written into the key file.
#[derive(Debug, Clone)]
pub struct KeyOwner {
    /// Host name.
    pub host: String,
    /// User name.
    pub username: String,
    /// Creation time, RFC 3339.
    pub created: String,
}

/// Create a certified key file for `master` (full, or put-only when `master` has no secret key)
/// with a fresh signing key, certified by `admin` (a full key). Returns the stored bytes.
///
/// # Errors
/// [`CoreError::PutOnly`] when `admin` cannot certify; format errors.
pub fn make_key_file(
    admin: &MasterKey,
    master: MasterKey,
    password: &str,
    kdf: KdfParams,
    owner: &KeyOwner,
) -> Result<Vec<u8>> {
    let signer = Signer::generate()?;
    let kind = if master.can_read() {
        KeyKind::Full
    } else {
        KeyKind::PutOnly
    };
    let cert = KeyFile::certify(admin, kind, &signer.public(), &owner.host, &owner.created)
        .map_err(|_| CoreError::PutOnly("adding keys"))?;
    let payload = KeyPayload {
        master,
        signing_secret: *signer.secret(),
    };
    let kf = KeyFile::create(
        &payload,
        password,
        kdf,
        (&owner.host, &owner.username, &owner.created),
        cert,
    )?;
    Ok(kf.to_bytes())
}

/// The trust record entry of a key file (kind, host and creation time as certified).
///
/// # Errors
/// [`tresor_format::FormatError::Malformed`] for a key file whose signing key is not 32 hex
/// bytes.
pub fn trusted_key(kf: &KeyFile) -> Result<TrustedKey> {
    Ok(TrustedKey {
        signing_public: kf.signing_public()?,
        kind: kf.kind,
        host: kf.host.clone(),
        created: kf.created.clone(),
    })
}

/// A key file as read: its name and the file, or why it is not one (its content does not match
/// its name, or it does not parse).
pub type ReadKeyFile = (String, std::result::Result<KeyFile, String>);

/// Every key file of the storage, read once: opening a repository picks its key from them
/// ([`cheapest_first`]) and the trust is built from the same reads
/// ([`crate::repo::trust::Trust::load_with_key_files`]) — not listed and read twice (two
/// requests and a read per key on S3).
///
/// # Errors
/// Storage errors on listing and reading.
pub fn read_key_files(storage: &dyn Storage) -> Result<Vec<ReadKeyFile>> {
    let mut out = Vec::new();
    for (name, size) in storage.list(Kind::Key)? {
        let bytes = limits::read_bounded(storage, Kind::Key, &name, Some(size), limits::KEY)?;
        let parsed = key_file_of(&name, &bytes);
        out.push((name, parsed));
    }
    Ok(out)
}

/// The key file stored as `name` with content `bytes`, or why it is none: the content does not
/// match its name (checked first: then the bytes are not that object), or it does not parse.
/// Opening, the trust and `check` judge key files by this one rule.
///
/// # Errors
/// The reason, as text for a problem line (`key <name>: <reason>`).
pub fn key_file_of(name: &str, bytes: &[u8]) -> std::result::Result<KeyFile, String> {
    if ObjectId::of(bytes).to_hex() != name {
        return Err("content does not match its name".to_string());
    }
    KeyFile::from_bytes(bytes).map_err(|e| e.to_string())
}

/// Of the key files `read` ([`read_key_files`]), those that parse (KDF parameters within
/// bounds, `KdfParams::validate`) and match their names, cheapest Argon2id cost first, then by
/// name. The others are described in `damaged`, one line each (`key <name>: <problem>`).
pub fn cheapest_first(read: &[ReadKeyFile], damaged: &mut Vec<String>) -> Vec<(String, KeyFile)> {
    let mut out = Vec::new();
    for (name, parsed) in read {
        match parsed {
            Ok(kf) => out.push((name.clone(), kf.clone())),
            Err(e) => damaged.push(format!("key {name}: {e}")),
        }
    }
    damaged.sort();
    out.sort_by(|(a, ka), (b, kb)| (ka.params.cost(), a).cmp(&(kb.params.cost(), b)));
    out
}
