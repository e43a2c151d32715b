//! Key management: list, add (full or put-only), remove (revoke), change password, paper export
//! and import.
//!
//! Removing a key writes a revocation first (signed by the admin key) that accepts every index
//! object and snapshot the key wrote so far, then deletes its key file: what the key writes
//! afterwards is ignored by readers and reported by `check`.

use crate::error::{CoreError, Result};
use crate::repo::highwater::HighWater;
use crate::repo::limits::{self, read_bounded};
use crate::repo::trust::{KeyInfo, Standing};
use crate::repo::{KeyOwner, Repository, make_key_file, trusted_key};
use std::sync::Arc;
use tresor_format::crypto::MasterKey;
use tresor_format::index::IndexFile;
use tresor_format::keyfile::{KdfParams, KeyFile, KeyKind};
use tresor_format::revocation::Revocation;
use tresor_format::snapshot::Snapshot;
use tresor_format::trust::{RevokedKey, TrustRecord};
use tresor_format::{ObjectId, sign::Signer};
use tresor_storage::{Kind, Storage};
use zeroize::Zeroizing;

/// A key as listed.
#[derive(Debug, Clone)]
pub struct KeyListing {
    /// Header information.
    pub info: KeyInfo,
    /// Whether this is the key in use.
    pub current: bool,
    /// Trusted; or removed (a revocation names it) although its key file is present — it no
    /// longer opens the repository and what it writes is ignored; or not in the trust record.
    pub standing: Standing,
}

/// All certified key files, oldest first.
pub fn list(repo: &Repository) -> Vec<KeyListing> {
    let mut v: Vec<KeyListing> = repo
        .trust()
        .key_files()
        .map(|(k, standing)| KeyListing {
            info: k.clone(),
            current: k.id == repo.key_id(),
            standing,
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
    trust: &crate::repo::trust::Trust,
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
    let id = repo.write_object(Kind::Key, &bytes)?;
    let entry = trusted_key(&KeyFile::from_bytes(&bytes)?)?;
    let rec = crate::repo::trust::update(repo.storage().as_ref(), repo.key(), |r| r.trust(entry))?;
    repo.note_trust_seq(rec.seq)?;
    Ok(id)
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
/// Returns its id.
fn write_revocation(
    storage: &dyn Storage,
    admin: &Signer,
    signer: &[u8; 32],
    objects: &[ObjectId],
    key: Option<(KeyKind, &str)>,
    now: &str,
) -> Result<ObjectId> {
    let mut accepted = objects.to_vec();
    accepted.sort();
    accepted.dedup();
    let rev = Revocation {
        version: tresor_format::FORMAT_VERSION,
        revoked: hex::encode(signer),
        created: now.to_string(),
        accepted,
        kind: key.map(|k| k.0),
        host: key.map(|k| k.1.to_string()),
    };
    let b = rev.to_object(admin);
    let id = ObjectId::of(&b);
    storage.write(Kind::Revocation, &id.to_hex(), &b)?;
    Ok(id)
}

/// Remove (revoke) a key by key file id prefix: write its revocation (accepting what it signed
/// so far — nothing for a key the trust record never listed), then a trust record that lists it
/// as revoked, then delete its key file. A key already revoked (its key file is back) only loses
/// its key file: a second revocation would accept what it signed after the first. Refuses the
/// key in use and the last trusted full key.
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
    let trusted_full =
        |o: &KeyListing| o.info.kind == KeyKind::Full && o.standing == Standing::Trusted;
    if trusted_full(k) && keys.iter().filter(|o| trusted_full(o)).count() == 1 {
        return Err(CoreError::Invalid(
            "refusing to remove the last full key".into(),
        ));
    }
    if k.standing != Standing::Revoked {
        revoke(repo, &admin, k, now)?;
    }
    repo.storage().delete(Kind::Key, &k.info.id.to_hex())?;
    Ok(k.info.id)
}

/// Bytes of key material on a paper key: X25519 secret, X25519 public, id key, chunker key,
/// admin secret (32 each).
const PAPER_BYTES: usize = 160;
/// First words of a paper key's header line (the repository id follows).
const PAPER_HEADER: &str = "tresor paper key v2 ";

/// The revocation and trust record of [`remove`].
fn revoke(repo: &Repository, admin: &Signer, k: &KeyListing, now: &str) -> Result<()> {
    let storage = repo.storage().as_ref();
    let objects: Vec<ObjectId> = match k.standing {
        Standing::Trusted => objects_by_signer(storage)?
            .remove(&k.info.signing_public)
            .unwrap_or_default()
            .into_iter()
            .map(|(_, id)| id)
            .collect(),
        // Never trusted: nothing it signed was ever accepted.
        _ => Vec::new(),
    };
    let signer = k.info.signing_public;
    let key = Some((k.info.kind, k.info.host.as_str()));
    let rev = write_revocation(storage, admin, &signer, &objects, key, now)?;
    let entry = RevokedKey {
        signing_public: signer,
        kind: Some(k.info.kind),
        host: Some(k.info.host.clone()),
        revocation: rev,
    };
    let rec = crate::repo::trust::update(storage, repo.key(), |r| r.revoke(entry))?;
    repo.note_trust_seq(rec.seq)
}

/// Paper export of the full key material, typed back by [`import_paper`].
///
/// Layout: a header line `tresor paper key v2 <repository id>`, then the key material
/// (X25519 secret, X25519 public, id key, chunker key, admin secret; 160 bytes) in lines of 16
/// bytes, hex in groups of 4 digits, each line ending with a 4-digit checksum (the first two
/// bytes of BLAKE3 over the line number and the line's bytes). The text is wiped when dropped.
///
/// # Errors
/// [`CoreError::PutOnly`] for put-only keys.
pub fn export_paper(repo: &Repository) -> Result<Zeroizing<String>> {
    let k = repo.key();
    let (Some(secret), Some(admin)) = (k.secret_key, k.admin_secret) else {
        return Err(CoreError::PutOnly("paper export"));
    };
    let mut bytes = Zeroizing::new(Vec::with_capacity(PAPER_BYTES));
    for part in [&secret, &k.public_key, &k.id_key, &k.chunker_key, &admin] {
        bytes.extend_from_slice(part);
    }
    let mut out = Zeroizing::new(String::with_capacity(64 * 11));
    out.push_str(PAPER_HEADER);
    out.push_str(&repo.config().id);
    out.push('\n');
    for (i, line) in bytes.chunks(16).enumerate() {
        out.push_str(&format!("{:02}:", i + 1));
        for group in line.chunks(2) {
            out.push(' ');
            for b in group {
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
        out.push_str("  ");
        out.push_str(&line_checksum(i, line));
        out.push('\n');
    }
    Ok(out)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

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
        .strip_prefix(PAPER_HEADER)
        .ok_or_else(|| CoreError::Invalid("not a tresor paper key (first line)".into()))?
        .to_string();
    let mut bytes = Zeroizing::new(Vec::new());
    for (i, l) in lines.enumerate() {
        let body = l.split_once(':').map(|(_, b)| b).unwrap_or(l);
        let mut groups: Vec<&str> = body.split_whitespace().collect();
        let sum = groups
            .pop()
            .ok_or_else(|| CoreError::Invalid(format!("line {}: empty", i + 1)))?;
        let line = Zeroizing::new(
            hex::decode(Zeroizing::new(groups.concat()).as_bytes())
                .map_err(|_| CoreError::Invalid(format!("line {}: not hex digits", i + 1)))?,
        );
        if line_checksum(i, &line) != sum.to_ascii_lowercase() {
            return Err(CoreError::Invalid(format!(
                "line {}: checksum does not match (typo?)",
                i + 1
            )));
        }
        bytes.extend_from_slice(&line);
    }
    if bytes.len() != PAPER_BYTES {
        return Err(CoreError::Invalid(format!(
            "paper key has {} bytes, expected {PAPER_BYTES} (missing lines?)",
            bytes.len()
        )));
    }
    let arr = |i: usize| -> [u8; 32] { bytes[32 * i..32 * i + 32].try_into().expect("32 bytes") };
    let master = MasterKey {
        secret_key: Some(arr(0)),
        public_key: arr(1),
        id_key: arr(2),
        chunker_key: arr(3),
        admin_public: Signer::from_secret(&arr(4)).public(),
        admin_secret: Some(arr(4)),
    };
    Ok((repo_id, master))
}

/// A signer of index objects or snapshots that no trusted key and no revocation vouches for:
/// its objects are ignored by readers (format §4.2) until the admin accepts it.
#[derive(Debug, Clone)]
pub struct UnknownSigner {
    /// Its Ed25519 public key.
    pub signer: [u8; 32],
    /// Its snapshots, oldest first, as far as they decrypt (object id, snapshot).
    pub snapshots: Vec<(ObjectId, Option<Snapshot>)>,
    /// How many index objects it signed.
    pub index_objects: usize,
    /// Every object it signed (index objects and snapshots), sorted: what accepting it accepts.
    pub objects: Vec<ObjectId>,
}

/// The signers nobody vouches for in `trust` (see [`UnknownSigner`]): a key whose key file was
/// lost, or a forger (e.g. a put-only host signing with a made-up key after its revocation).
///
/// # Errors
/// Storage errors on listing.
pub fn unknown_signers(
    storage: &dyn Storage,
    master: &MasterKey,
    trust: &crate::repo::trust::Trust,
) -> Result<Vec<UnknownSigner>> {
    let mut out = Vec::new();
    for (signer, objects) in unknown_objects(trust, objects_by_signer(storage)?) {
        let mut ids: Vec<ObjectId> = objects.iter().map(|(_, id)| *id).collect();
        ids.sort();
        let mut u = UnknownSigner {
            signer,
            snapshots: Vec::new(),
            index_objects: objects.iter().filter(|(k, _)| *k == Kind::Index).count(),
            objects: ids,
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

/// The signers of `by_signer` with no trusted key and no revocation, in key order, with their
/// objects.
fn unknown_objects(
    trust: &crate::repo::trust::Trust,
    by_signer: BySigner,
) -> Vec<([u8; 32], Signed)> {
    let mut v: Vec<_> = by_signer
        .into_iter()
        .filter(|(s, _)| trust.key(s).is_none() && !trust.is_revoked(s))
        .collect();
    v.sort();
    v
}

/// Fewest hex digits of a signer that `key signers --accept` takes: 8 (32 bits), so that a key
/// ground to share a lost key's short prefix cannot ride along unnoticed — and a prefix that
/// matches two signers is refused anyway.
pub const MIN_SIGNER_PREFIX: usize = 8;

/// The unknown signers `specs` name: each spec is `all`, or a prefix of at least
/// [`MIN_SIGNER_PREFIX`] hex digits (up to the full 64) that matches exactly one of `unknown`.
/// The result is sorted by signer, without duplicates.
///
/// # Errors
/// [`CoreError::Invalid`] for a spec that is not such a prefix, names no unknown signer, or
/// matches several (naming them all).
pub fn choose_signers<'a>(
    unknown: &'a [UnknownSigner],
    specs: &[String],
) -> Result<Vec<&'a UnknownSigner>> {
    let mut chosen: Vec<&UnknownSigner> = Vec::new();
    for spec in specs {
        let p = spec.to_ascii_lowercase();
        if p == "all" {
            chosen.extend(unknown);
            continue;
        }
        if !(MIN_SIGNER_PREFIX..=64).contains(&p.len()) || !p.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(CoreError::Invalid(format!(
                "{spec:?} is not a signer: give at least {MIN_SIGNER_PREFIX} hex digits of one \
                 (or all 64), or \"all\""
            )));
        }
        let hits: Vec<&UnknownSigner> = unknown
            .iter()
            .filter(|u| hex::encode(u.signer).starts_with(&p))
            .collect();
        match hits.as_slice() {
            [] => return Err(CoreError::Invalid(format!("no unknown signer {p}"))),
            [one] => chosen.push(one),
            many => {
                let names: Vec<String> = many.iter().map(|u| hex::encode(u.signer)).collect();
                return Err(CoreError::Invalid(format!(
                    "signer prefix {p} is ambiguous: it matches {} unknown signers ({}); give \
                     more digits or the full key",
                    many.len(),
                    names.join(", ")
                )));
            }
        }
    }
    chosen.sort_by_key(|u| u.signer);
    chosen.dedup_by_key(|u| u.signer);
    Ok(chosen)
}

/// Accept unknown signers chosen by [`choose_signers`]: writes, for each, an admin revocation
/// that accepts exactly the objects listed in [`UnknownSigner::objects`] (format §4.2) — what
/// it signs later stays ignored — then one trust record listing them as revoked. Returns the
/// signers accepted.
///
/// # Errors
/// [`CoreError::PutOnly`] without the admin key; storage errors.
pub fn accept_signers(
    repo: &Repository,
    chosen: &[&UnknownSigner],
    now: &str,
) -> Result<Vec<[u8; 32]>> {
    let admin = repo
        .key()
        .admin()
        .map_err(|_| CoreError::PutOnly("accepting signers"))?;
    if chosen.is_empty() {
        return Ok(Vec::new());
    }
    let storage = repo.storage().as_ref();
    let mut entries = Vec::new();
    for u in chosen {
        let rev = write_revocation(storage, &admin, &u.signer, &u.objects, None, now)?;
        entries.push(RevokedKey {
            signing_public: u.signer,
            kind: None,
            host: None,
            revocation: rev,
        });
    }
    let rec = crate::repo::trust::update(storage, repo.key(), |r| {
        for e in entries {
            r.revoke(e);
        }
    })?;
    repo.note_trust_seq(rec.seq)?;
    Ok(chosen.iter().map(|u| u.signer).collect())
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
    /// No trust record was found: a new one was written that trusts the config as it is now
    /// and only the new key (the caller shows the config for the admin to check).
    pub trust_rebuilt: bool,
}

/// Create a full key from a paper key (e.g. when every key file was lost or every password
/// forgotten), after checking the material against the repository (`verify_material`) and the
/// config against the trust record, then add it to the trust record. Without any trust record
/// (every one lost) a new one is written, trusting the config as it is and only the new key,
/// numbered above the highest `seq` in `marks`.
///
/// Objects of signers without a trusted key are *not* accepted here: a lost key and a forger
/// look alike. They are returned for the admin to judge, then [`accept_signers`].
///
/// # Errors
/// [`CoreError::Invalid`] for a paper key with a typo (naming the line), of another
/// repository, or a password that already opens a key; [`CoreError::Damaged`] for a config the
/// trust record does not name; storage errors.
pub fn import_paper(
    storage: Arc<dyn Storage>,
    text: &str,
    password: &str,
    kdf: KdfParams,
    owner: &KeyOwner,
    marks: Option<&HighWater>,
) -> Result<Imported> {
    let (config_id, config) = Repository::read_config_with_id(storage.as_ref())?;
    let (repo_id, master) = parse_paper(text)?;
    if repo_id != config.id {
        return Err(CoreError::Invalid(format!(
            "this paper key belongs to repository {repo_id}, not {}",
            config.id
        )));
    }
    verify_material(storage.as_ref(), &master)?;
    let trust = crate::repo::trust::Trust::load(storage.as_ref(), &master)?;
    let rebuild = trust.record().is_none();
    if !rebuild {
        trust.authenticate_config(&config_id)?;
    }
    ensure_password_unused(storage.as_ref(), &trust, password)?;
    let bytes = make_key_file(&master, master.clone(), password, kdf, owner)?;
    let id = ObjectId::of(&bytes);
    storage.write(Kind::Key, &id.to_hex(), &bytes)?;
    let entry = trusted_key(&KeyFile::from_bytes(&bytes)?)?;
    let seq = if rebuild {
        let seen = marks.map_or(0, |m| m.load().trust_seq);
        let mut rec = TrustRecord::new(seen + 1, config_id);
        rec.trust(entry);
        crate::repo::trust::write_record(storage.as_ref(), &master.admin()?, &rec)?;
        rec.seq
    } else {
        crate::repo::trust::update(storage.as_ref(), &master, |r| r.trust(entry))?.seq
    };
    if let Some(m) = marks {
        m.check_trust_seq(seq)?;
    }
    // The new key signed nothing yet: the trust loaded before it judges the signers alike.
    let unknown = unknown_signers(storage.as_ref(), &master, &trust)?;
    Ok(Imported {
        id,
        unknown,
        trust_rebuilt: rebuild,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown(hexes: &[&str]) -> Vec<UnknownSigner> {
        hexes
            .iter()
            .map(|h| {
                let mut signer = [0u8; 32];
                hex::decode_to_slice(h, &mut signer).unwrap();
                UnknownSigner {
                    signer,
                    snapshots: Vec::new(),
                    index_objects: 0,
                    objects: Vec::new(),
                }
            })
            .collect()
    }

    fn specs(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_signer_is_named_by_a_unique_prefix_of_eight_digits_or_more() {
        let a = format!("1234abcd{}", "0".repeat(56));
        let b = format!("1234abce{}", "1".repeat(56));
        let c = format!("1234abcd{}", "f".repeat(56)); // shares a's first 8 digits
        let u = unknown(&[&a, &b, &c]);
        let pick = |s: &[&str]| {
            choose_signers(&u, &specs(s))
                .map(|v| v.iter().map(|u| hex::encode(u.signer)).collect::<Vec<_>>())
                .map_err(|e| e.to_string())
        };
        assert_eq!(pick(&["1234abce"]).unwrap(), vec![b.clone()]);
        assert_eq!(pick(&["1234ABCE1"]).unwrap(), vec![b.clone()]);
        assert_eq!(pick(&[&a]).unwrap(), vec![a.clone()]);
        assert_eq!(pick(&["1234abcd0", &c]).unwrap(), [a.clone(), c.clone()]);
        assert_eq!(
            pick(&["all", "1234abce"]).unwrap(),
            [a.clone(), c.clone(), b.clone()]
        );
        assert_eq!(
            pick(&["1234abcd"]).unwrap_err(),
            format!(
                "signer prefix 1234abcd is ambiguous: it matches 2 unknown signers ({a}, {c}); \
                 give more digits or the full key"
            )
        );
        for short in ["1234abc", "1234", "", "1234abcg", &format!("{a}0")] {
            assert_eq!(
                pick(&[short]).unwrap_err(),
                format!(
                    "{short:?} is not a signer: give at least 8 hex digits of one (or all 64), \
                     or \"all\""
                )
            );
        }
        assert_eq!(
            pick(&["99999999"]).unwrap_err(),
            "no unknown signer 99999999"
        );
        assert_eq!(pick(&[]).unwrap(), Vec::<String>::new());
    }
}
