//! Key management: list, add (full or put-only), remove (revoke), change password, paper export
//! and import.
//!
//! Removing a key writes a revocation first (signed by the admin key) that accepts every index
//! object and snapshot the key wrote so far, then deletes its key file: what the key writes
//! afterwards is ignored by readers and reported by `check`.

use crate::error::{CoreError, Result};
use crate::limits::{self, read_bounded};
use crate::repository::{KeyOwner, Repository, make_key_file};
use crate::trust::KeyInfo;
use std::sync::Arc;
use tresor_format::crypto::MasterKey;
use tresor_format::index::IndexFile;
use tresor_format::keyfile::{KdfParams, KeyFile, KeyKind};
use tresor_format::revocation::Revocation;
use tresor_format::snapshot::Snapshot;
use tresor_format::{ObjectId, sign::Signer};
use tresor_storage::{Kind, Storage};

/// A key as listed.
#[derive(Debug, Clone)]
pub struct KeyListing {
    /// Header information.
    pub info: KeyInfo,
    /// Whether this is the key in use.
    pub current: bool,
    /// Whether the key was removed (a revocation names it) although its key file is present:
    /// it no longer opens the repository and what it writes is ignored.
    pub revoked: bool,
}

/// All certified keys, oldest first.
pub fn list(repo: &Repository) -> Vec<KeyListing> {
    let mut v: Vec<KeyListing> = repo
        .trust()
        .keys()
        .map(|k| KeyListing {
            info: k.clone(),
            current: k.id == repo.key_id(),
            revoked: repo.trust().is_revoked(&k.signing_public),
        })
        .collect();
    v.sort_by(|a, b| {
        a.info
            .created
            .cmp(&b.info.created)
            .then(a.info.id.cmp(&b.info.id))
    });
    v
}

/// Fail when `password` already opens one of the repository's key files. Every key needs a
/// password of its own: opening tries the key files in turn and takes the first that opens, so
/// a put-only key sharing the admin's password could shadow the full key.
///
/// # Errors
/// [`CoreError::Invalid`] naming the key the password opens; storage errors on listing.
pub fn ensure_password_unused(
    storage: &dyn Storage,
    trust: &crate::trust::Trust,
    password: &str,
) -> Result<()> {
    for (name, size) in storage.list(Kind::Key)? {
        let Ok(bytes) = read_bounded(storage, Kind::Key, &name, Some(size), limits::KEY) else {
            continue;
        };
        let Ok(kf) = KeyFile::from_bytes(&bytes) else {
            continue;
        };
        // A removed key's file never opens the repository (its password may be reused).
        if kf.signing_public().is_ok_and(|k| trust.is_revoked(&k)) {
            continue;
        }
        if kf.open(password).is_ok() {
            return Err(CoreError::Invalid(format!(
                "this password already opens key {}: every key needs a password of its own",
                &name[..8.min(name.len())]
            )));
        }
    }
    Ok(())
}

/// The key files that parse (KDF parameters within bounds, `KdfParams::validate`) and match
/// their names, cheapest Argon2id cost first, then by name. The others are described in
/// `damaged`, one line each (`key <name>: <problem>`).
///
/// # Errors
/// Storage errors on listing and reading.
pub(crate) fn key_files_cheapest_first(
    storage: &dyn Storage,
    damaged: &mut Vec<String>,
) -> Result<Vec<(String, KeyFile)>> {
    let mut out = Vec::new();
    for (name, size) in storage.list(Kind::Key)? {
        let bytes =
            crate::limits::read_bounded(storage, Kind::Key, &name, Some(size), crate::limits::KEY)?;
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

/// Add a key: a full key, or a put-only key (no secret key, no admin secret). Needs a full key.
///
/// # Errors
/// [`CoreError::PutOnly`] when the current key is put-only; [`CoreError::Invalid`] when the
/// password already opens a key ([`ensure_password_unused`]); storage errors.
pub fn add(
    repo: &Repository,
    password: &str,
    kind: KeyKind,
    kdf: KdfParams,
    owner: &KeyOwner,
) -> Result<ObjectId> {
    repo.key()
        .admin()
        .map_err(|_| CoreError::PutOnly("adding keys"))?;
    ensure_password_unused(repo.storage().as_ref(), repo.trust(), password)?;
    let master = match kind {
        KeyKind::Full => repo.key().clone(),
        KeyKind::PutOnly => repo.key().put_only(),
    };
    let bytes = make_key_file(repo.key(), master, password, kdf, owner)?;
    repo.write_object(Kind::Key, &bytes)
}

/// Change the password of the key in use: writes a new key file with the same key material and
/// signing key, then deletes the old one. Returns the new key file's id.
///
/// # Errors
/// [`CoreError::Invalid`] when the password already opens a key (this one included); storage
/// errors (the old key file stays when the delete is refused).
pub fn change_password(repo: &Repository, password: &str, kdf: KdfParams) -> Result<ObjectId> {
    ensure_password_unused(repo.storage().as_ref(), repo.trust(), password)?;
    let old = KeyFile::from_bytes(&repo.read_object(Kind::Key, &repo.key_id())?)?;
    let payload = tresor_format::keyfile::KeyPayload {
        master: repo.key().clone(),
        signing_secret: *repo.signer().secret(),
    };
    let mut cert = [0u8; 64];
    hex::decode_to_slice(&old.certificate, &mut cert)
        .map_err(|e| CoreError::Damaged(format!("key {}: certificate: {e}", repo.key_id())))?;
    let kf = KeyFile::create(
        &payload,
        password,
        kdf,
        (&old.host, &old.username, &old.created),
        cert,
    )?;
    let id = repo.write_object(Kind::Key, &kf.to_bytes())?;
    repo.storage().delete(Kind::Key, &repo.key_id().to_hex())?;
    Ok(id)
}

/// The objects (index objects and snapshots) one key signed, with their kind.
type Signed = Vec<(Kind, ObjectId)>;

/// Signed objects by signer public key.
type BySigner = std::collections::HashMap<[u8; 32], Signed>;

/// Index and snapshot objects grouped by signer, each object read once.
fn objects_by_signer(storage: &dyn Storage) -> Result<BySigner> {
    let mut out = BySigner::default();
    let config = crate::Repository::read_config(storage)?;
    for kind in [Kind::Index, Kind::Snapshot] {
        let limit = limits::max_object_size(kind, &config);
        for (name, size) in storage.list(kind)? {
            let Ok(bytes) = read_bounded(storage, kind, &name, Some(size), limit) else {
                continue;
            };
            let signer = match kind {
                Kind::Index => IndexFile::envelope(&bytes).map(|(s, _)| s),
                _ => Snapshot::signer_of(&bytes),
            };
            if let Ok(s) = signer {
                out.entry(s).or_default().push((kind, name.parse()?));
            }
        }
    }
    Ok(out)
}

/// Write the admin revocation of `signer` that accepts `objects` (its objects so far; format
/// §4.2). `key` is the revoked key's kind and certified host when a key file told them.
fn write_revocation(
    storage: &dyn Storage,
    admin: &Signer,
    signer: &[u8; 32],
    objects: &[(Kind, ObjectId)],
    key: Option<(KeyKind, &str)>,
    now: &str,
) -> Result<()> {
    let mut accepted: Vec<ObjectId> = objects.iter().map(|(_, id)| *id).collect();
    accepted.sort();
    let rev = Revocation {
        version: 1,
        revoked: hex::encode(signer),
        created: now.to_string(),
        accepted,
        kind: key.map(|k| k.0),
        host: key.map(|k| k.1.to_string()),
    };
    let b = rev.to_object(admin);
    storage.write(Kind::Revocation, &ObjectId::of(&b).to_hex(), &b)?;
    Ok(())
}

/// Remove (revoke) a key by key file id prefix. Refuses the key in use and the last full key.
///
/// # Errors
/// [`CoreError::Invalid`] for those refusals or an unknown id; [`CoreError::PutOnly`].
pub fn remove(repo: &Repository, id_prefix: &str, now: &str) -> Result<ObjectId> {
    let admin = repo
        .key()
        .admin()
        .map_err(|_| CoreError::PutOnly("removing keys"))?;
    let keys = list(repo);
    let matches: Vec<_> = keys
        .iter()
        .filter(|k| {
            k.info
                .id
                .to_hex()
                .starts_with(&id_prefix.to_ascii_lowercase())
        })
        .collect();
    let k = match matches.as_slice() {
        [k] => *k,
        [] => return Err(CoreError::Invalid(format!("no key {id_prefix:?}"))),
        _ => {
            return Err(CoreError::Invalid(format!(
                "key id prefix {id_prefix:?} is ambiguous"
            )));
        }
    };
    if k.current {
        return Err(CoreError::Invalid(
            "refusing to remove the key in use; open the repository with another key".into(),
        ));
    }
    if k.info.kind == KeyKind::Full
        && keys.iter().filter(|o| o.info.kind == KeyKind::Full).count() == 1
    {
        return Err(CoreError::Invalid(
            "refusing to remove the last full key".into(),
        ));
    }
    let storage = repo.storage().as_ref();
    let objects = objects_by_signer(storage)?
        .remove(&k.info.signing_public)
        .unwrap_or_default();
    write_revocation(
        storage,
        &admin,
        &k.info.signing_public,
        &objects,
        Some((k.info.kind, &k.info.host)),
        now,
    )?;
    repo.storage().delete(Kind::Key, &k.info.id.to_hex())?;
    Ok(k.info.id)
}

/// Paper export of the full key material, typed back by [`import_paper`].
///
/// Layout: a header line `tresor paper key v1 <repository id>`, then the key material
/// (X25519 secret, X25519 public, id key, chunker seed, admin secret; 136 bytes) in lines of 16
/// bytes, hex in groups of 4 digits, each line ending with a 4-digit checksum (the first two
/// bytes of BLAKE3 over the line number and the line's bytes).
///
/// # Errors
/// [`CoreError::PutOnly`] for put-only keys.
pub fn export_paper(repo: &Repository) -> Result<String> {
    let k = repo.key();
    let (Some(secret), Some(admin)) = (k.secret_key, k.admin_secret) else {
        return Err(CoreError::PutOnly("paper export"));
    };
    let mut bytes = Vec::with_capacity(136);
    bytes.extend_from_slice(&secret);
    bytes.extend_from_slice(&k.public_key);
    bytes.extend_from_slice(&k.id_key);
    bytes.extend_from_slice(&k.chunker_seed.to_le_bytes());
    bytes.extend_from_slice(&admin);
    let mut out = format!("tresor paper key v1 {}\n", repo.config().id);
    for (i, line) in bytes.chunks(16).enumerate() {
        let groups: Vec<String> = line.chunks(2).map(hex::encode).collect();
        out.push_str(&format!(
            "{:02}: {}  {}\n",
            i + 1,
            groups.join(" "),
            line_checksum(i, line)
        ));
    }
    zeroize::Zeroize::zeroize(&mut bytes);
    Ok(out)
}

fn line_checksum(i: usize, line: &[u8]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(&[i as u8]);
    h.update(line);
    hex::encode(&h.finalize().as_bytes()[..2])
}

/// Parse a paper key; errors name the line to check.
///
/// # Errors
/// [`CoreError::Invalid`] naming the line with a typo.
pub fn parse_paper(text: &str) -> Result<(String, MasterKey)> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let header = lines
        .next()
        .ok_or_else(|| CoreError::Invalid("empty paper key".into()))?;
    let repo_id = header
        .strip_prefix("tresor paper key v1 ")
        .ok_or_else(|| CoreError::Invalid("not a tresor paper key (first line)".into()))?
        .to_string();
    let mut bytes = Vec::new();
    for (i, l) in lines.enumerate() {
        let body = l.split_once(':').map(|(_, b)| b).unwrap_or(l);
        let mut groups: Vec<&str> = body.split_whitespace().collect();
        let sum = groups
            .pop()
            .ok_or_else(|| CoreError::Invalid(format!("line {}: empty", i + 1)))?;
        let line = hex::decode(groups.concat())
            .map_err(|_| CoreError::Invalid(format!("line {}: not hex digits", i + 1)))?;
        if line_checksum(i, &line) != sum.to_ascii_lowercase() {
            return Err(CoreError::Invalid(format!(
                "line {}: checksum does not match (typo?)",
                i + 1
            )));
        }
        bytes.extend(line);
    }
    if bytes.len() != 136 {
        return Err(CoreError::Invalid(format!(
            "paper key has {} bytes, expected 136 (missing lines?)",
            bytes.len()
        )));
    }
    let arr = |r: std::ops::Range<usize>| -> [u8; 32] { bytes[r].try_into().expect("32 bytes") };
    let master = MasterKey {
        secret_key: Some(arr(0..32)),
        public_key: arr(32..64),
        id_key: arr(64..96),
        chunker_seed: u64::from_le_bytes(bytes[96..104].try_into().expect("8 bytes")),
        admin_public: Signer::from_secret(&arr(104..136)).public(),
        admin_secret: Some(arr(104..136)),
    };
    Ok((repo_id, master))
}

/// A signer of index objects or snapshots with no certified key file and no revocation: its
/// objects are ignored by readers (format §4.2) until the admin accepts it.
#[derive(Debug, Clone)]
pub struct UnknownSigner {
    /// Its Ed25519 public key.
    pub signer: [u8; 32],
    /// Its snapshots, oldest first, as far as they decrypt (object id, snapshot).
    pub snapshots: Vec<(ObjectId, Option<Snapshot>)>,
    /// How many index objects it signed.
    pub index_objects: usize,
}

/// The signers nobody vouches for in `trust` (see [`UnknownSigner`]): a key whose key file was
/// lost, or a forger (e.g. a put-only host signing with a made-up key after its revocation).
///
/// # Errors
/// Storage errors on listing.
pub fn unknown_signers(
    storage: &dyn Storage,
    master: &MasterKey,
    trust: &crate::trust::Trust,
) -> Result<Vec<UnknownSigner>> {
    let mut out = Vec::new();
    for (signer, objects) in unknown_objects(trust, objects_by_signer(storage)?) {
        let mut u = UnknownSigner {
            signer,
            snapshots: Vec::new(),
            index_objects: objects.iter().filter(|(k, _)| *k == Kind::Index).count(),
        };
        for (_, id) in objects.iter().filter(|(k, _)| *k == Kind::Snapshot) {
            let snap = read_bounded(
                storage,
                Kind::Snapshot,
                &id.to_hex(),
                None,
                limits::SNAPSHOT,
            )
            .ok()
            .and_then(|b| Snapshot::open(master, &b).ok())
            .map(|(_, s)| s);
            u.snapshots.push((*id, snap));
        }
        u.snapshots.sort_by(|a, b| {
            let t = |s: &Option<Snapshot>| s.as_ref().map(|s| s.time.clone());
            t(&a.1).cmp(&t(&b.1)).then(a.0.cmp(&b.0))
        });
        out.push(u);
    }
    Ok(out)
}

/// The signers of `by_signer` with no certified key file and no revocation, in key order,
/// with their objects.
fn unknown_objects(trust: &crate::trust::Trust, by_signer: BySigner) -> Vec<([u8; 32], Signed)> {
    let mut v: Vec<_> = by_signer
        .into_iter()
        .filter(|(s, _)| trust.key(s).is_none() && !trust.is_revoked(s))
        .collect();
    v.sort();
    v
}

/// Accept the objects of unknown signers (those whose public key starts with one of the hex
/// `prefixes`, or all with `"all"`): writes, for each, an admin revocation that accepts every
/// object it signed so far (format §4.2); what it signs later stays ignored. Returns the
/// signers accepted.
///
/// # Errors
/// [`CoreError::PutOnly`] without the admin key; [`CoreError::Invalid`] for a prefix that is
/// not at least 4 hex digits (nor `"all"`) or names no unknown signer; storage errors.
pub fn accept_signers(
    storage: &dyn Storage,
    master: &MasterKey,
    trust: &crate::trust::Trust,
    prefixes: &[String],
    now: &str,
) -> Result<Vec<[u8; 32]>> {
    let admin = master
        .admin()
        .map_err(|_| CoreError::PutOnly("accepting signers"))?;
    let unknown = unknown_objects(trust, objects_by_signer(storage)?);
    let mut chosen = Vec::new();
    for p in prefixes {
        let p = p.to_ascii_lowercase();
        if p != "all" && (p.len() < 4 || !p.bytes().all(|b| b.is_ascii_hexdigit())) {
            return Err(CoreError::Invalid(format!(
                "{p:?} is not a signer: give at least 4 hex digits of one, or \"all\""
            )));
        }
        let before = chosen.len();
        chosen.extend(
            unknown
                .iter()
                .filter(|(signer, _)| p == "all" || hex::encode(signer).starts_with(&p)),
        );
        if chosen.len() == before && p != "all" {
            return Err(CoreError::Invalid(format!("no unknown signer {p:?}")));
        }
    }
    chosen.sort_by_key(|(signer, _)| *signer);
    chosen.dedup_by_key(|(signer, _)| *signer);
    for (signer, objects) in &chosen {
        write_revocation(storage, &admin, signer, objects, None, now)?;
    }
    let chosen = chosen.into_iter().map(|(signer, _)| *signer).collect();
    Ok(chosen)
}

/// Check that typed-back key material is this repository's: the X25519 pair matches, the
/// admin key certifies the remaining key files (if any), and it decrypts a snapshot or index
/// object (if any). An empty repository has nothing to check against.
fn verify_material(storage: &dyn Storage, master: &MasterKey) -> Result<()> {
    let foreign = |why: String| {
        CoreError::Invalid(format!(
            "this paper key does not belong to this repository: {why}"
        ))
    };
    if !master.is_consistent() {
        return Err(foreign(
            "its secret and public keys do not match (typo in lines 1-4?)".into(),
        ));
    }
    let keys = storage.list(Kind::Key)?;
    if !keys.is_empty() {
        let certified = keys.iter().any(|(name, size)| {
            read_bounded(storage, Kind::Key, name, Some(*size), limits::KEY)
                .ok()
                .and_then(|b| KeyFile::from_bytes(&b).ok())
                .is_some_and(|kf| kf.certified_by(&master.admin_public))
        });
        if !certified {
            return Err(foreign(format!(
                "none of its {} key files is certified by its admin key",
                keys.len()
            )));
        }
    }
    let config = Repository::read_config(storage)?;
    for kind in [Kind::Snapshot, Kind::Index] {
        let names = storage.list(kind)?;
        let mut tried = 0;
        for (name, size) in names.iter().take(5) {
            let limit = limits::max_object_size(kind, &config);
            let Ok(bytes) = read_bounded(storage, kind, name, Some(*size), limit) else {
                continue;
            };
            tried += 1;
            let opened = match kind {
                Kind::Snapshot => Snapshot::open(master, &bytes).is_ok(),
                _ => IndexFile::open(master, &bytes).is_ok(),
            };
            if opened {
                return Ok(());
            }
        }
        if tried > 0 {
            return Err(foreign(format!(
                "it decrypts none of {tried} {kind:?} objects tried"
            )));
        }
    }
    Ok(())
}

/// What [`import_paper`] did.
#[derive(Debug)]
pub struct Imported {
    /// The new key file.
    pub id: ObjectId,
    /// Signers whose objects stay ignored until accepted ([`accept_signers`]).
    pub unknown: Vec<UnknownSigner>,
}

/// Create a full key from a paper key (e.g. when every key file was lost or every password
/// forgotten), after checking the material against the repository (`verify_material`).
///
/// Objects of signers without a key file are *not* accepted here: a lost key and a forger look
/// alike. They are returned for the admin to judge, then [`accept_signers`].
///
/// # Errors
/// [`CoreError::Invalid`] for a paper key with a typo (naming the line), of another
/// repository, or a password that already opens a key; storage errors.
pub fn import_paper(
    storage: Arc<dyn Storage>,
    text: &str,
    password: &str,
    kdf: KdfParams,
    owner: &KeyOwner,
) -> Result<Imported> {
    let config = Repository::read_config(storage.as_ref())?;
    let (repo_id, master) = parse_paper(text)?;
    if repo_id != config.id {
        return Err(CoreError::Invalid(format!(
            "this paper key belongs to repository {repo_id}, not {}",
            config.id
        )));
    }
    verify_material(storage.as_ref(), &master)?;
    let trust = crate::trust::Trust::load(storage.as_ref(), &master)?;
    ensure_password_unused(storage.as_ref(), &trust, password)?;
    let bytes = make_key_file(&master, master.clone(), password, kdf, owner)?;
    let id = ObjectId::of(&bytes);
    storage.write(Kind::Key, &id.to_hex(), &bytes)?;
    // The new key signed nothing yet: the trust loaded before it judges the signers alike.
    let unknown = unknown_signers(storage.as_ref(), &master, &trust)?;
    Ok(Imported { id, unknown })
}
