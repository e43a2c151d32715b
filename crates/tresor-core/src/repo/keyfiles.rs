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

/// The key files that parse (KDF parameters within bounds, `KdfParams::validate`) and match
/// their names, cheapest Argon2id cost first, then by name. The others are described in
/// `damaged`, one line each (`key <name>: <problem>`).
///
/// # Errors
/// Storage errors on listing and reading.
pub fn key_files_cheapest_first(
    storage: &dyn Storage,
    damaged: &mut Vec<String>,
) -> Result<Vec<(String, KeyFile)>> {
    let mut out = Vec::new();
    for (name, size) in storage.list(Kind::Key)? {
        let bytes = limits::read_bounded(storage, Kind::Key, &name, Some(size), limits::KEY)?;
        match KeyFile::from_bytes(&bytes) {
            Ok(kf) if ObjectId::of(&bytes).to_hex() == name => out.push((name, kf)),
            Ok(_) => damaged.push(format!("key {name}: content does not match its name")),
            Err(e) => damaged.push(format!("key {name}: {e}")),
        }
    }
    damaged.sort();
    out.sort_by(|(a, ka), (b, kb)| (ka.params.cost(), a).cmp(&(kb.params.cost(), b)));
    Ok(out)
}
