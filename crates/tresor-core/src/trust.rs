//! Who may write what readers and writers accept (format §13).
//!
//! Every index object and snapshot is signed by the key that wrote it. A key is *known* when a
//! key file with a valid admin certificate carries its signing public key, or when a revocation
//! (signed by the admin) names it. Readers accept objects of known keys, except objects of a
//! revoked key that the revocation does not list. Writers deduplicate only against their own
//! index objects and those of full keys, so a put-only host that uploads a blob under a false id
//! cannot break other hosts' backups.

use crate::limits::{self, read_bounded};
use std::collections::{HashMap, HashSet};
use tresor_format::ObjectId;
use tresor_format::crypto::MasterKey;
use tresor_format::keyfile::{KeyFile, KeyKind};
use tresor_format::revocation::Revocation;
use tresor_storage::{Kind, Storage};

/// A key as seen in its key file's plaintext header.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// Key file object id.
    pub id: ObjectId,
    /// Full or put-only.
    pub kind: KeyKind,
    /// Host recorded in the key file.
    pub host: String,
    /// User recorded in the key file.
    pub username: String,
    /// Creation time, RFC 3339.
    pub created: String,
    /// Signing public key.
    pub signing_public: [u8; 32],
}

/// What a reader or writer makes of an object's signer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A certified full key.
    Full,
    /// A certified put-only key.
    PutOnly,
    /// A revoked key, and the object is not among those its revocation accepted.
    Revoked,
    /// No certified key file and no revocation names this signer.
    Unknown,
}

/// What the revocations of one key say.
#[derive(Debug, Default, Clone)]
struct Revoked {
    /// Objects that stay valid.
    accepted: HashSet<ObjectId>,
    /// The key's kind, when a revocation tells it.
    kind: Option<KeyKind>,
    /// The host the key was certified for, when a revocation tells it.
    host: Option<String>,
}

/// The certified keys and revocations of a repository.
#[derive(Debug, Default, Clone)]
pub struct Trust {
    keys: HashMap<[u8; 32], KeyInfo>,
    revoked: HashMap<[u8; 32], Revoked>,
    /// Key files that could not be read or whose certificate is invalid (id: reason).
    pub problems: Vec<String>,
}

impl Trust {
    /// Read key file headers and revocations; verify certificates and signatures against the
    /// admin public key in `master`.
    ///
    /// # Errors
    /// Storage errors on listing.
    pub fn load(storage: &dyn Storage, master: &MasterKey) -> tresor_storage::Result<Self> {
        let mut t = Trust::default();
        for (name, size) in storage.list(Kind::Key)? {
            let parsed = read_bounded(storage, Kind::Key, &name, Some(size), limits::KEY)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    if tresor_storage::name_of(&b) != name {
                        return Err("content does not match its name".to_string());
                    }
                    KeyFile::from_bytes(&b).map_err(|e| e.to_string())
                });
            match parsed {
                Ok(kf) if kf.certified_by(&master.admin_public) => {
                    let info = KeyInfo {
                        id: name.parse().expect("listed names are ids"),
                        kind: kf.kind,
                        host: kf.host.clone(),
                        username: kf.username.clone(),
                        created: kf.created.clone(),
                        signing_public: kf.signing_public().expect("certified keys parse"),
                    };
                    t.keys.insert(info.signing_public, info);
                }
                Ok(_) => t.problems.push(format!(
                    "key {name}: certificate is not valid for this repository"
                )),
                Err(e) => t.problems.push(format!("key {name}: {e}")),
            }
        }
        for (name, size) in storage.list(Kind::Revocation)? {
            let limit = limits::REVOCATION;
            let r = read_bounded(storage, Kind::Revocation, &name, Some(size), limit)
                .map_err(|e| e.to_string())
                .and_then(|b| Revocation::open(&master.admin_public, &b).map_err(|e| e.to_string()))
                .and_then(|r| r.revoked_key().map(|k| (k, r)).map_err(|e| e.to_string()));
            match r {
                Ok((k, r)) => {
                    let e = t.revoked.entry(k).or_default();
                    e.accepted.extend(r.accepted);
                    e.kind = e.kind.or(r.kind);
                    e.host = e.host.take().or(r.host);
                }
                Err(e) => t.problems.push(format!("revocation {name}: {e}")),
            }
        }
        Ok(t)
    }

    /// The verdict on an object `id` signed by `signer`.
    pub fn verdict(&self, signer: &[u8; 32], id: &ObjectId) -> Verdict {
        if let Some(r) = self.revoked.get(signer) {
            if !r.accepted.contains(id) {
                return Verdict::Revoked;
            }
            return match self.keys.get(signer).map(|k| k.kind).or(r.kind) {
                Some(KeyKind::Full) => Verdict::Full,
                _ => Verdict::PutOnly,
            };
        }
        match self.keys.get(signer).map(|k| k.kind) {
            Some(KeyKind::Full) => Verdict::Full,
            Some(KeyKind::PutOnly) => Verdict::PutOnly,
            None => Verdict::Unknown,
        }
    }

    /// Whether readers accept the object.
    pub fn accepts(&self, signer: &[u8; 32], id: &ObjectId) -> bool {
        matches!(self.verdict(signer, id), Verdict::Full | Verdict::PutOnly)
    }

    /// The certified keys (key files present).
    pub fn keys(&self) -> impl Iterator<Item = &KeyInfo> {
        self.keys.values()
    }

    /// The key with this signing public key, if certified.
    pub fn key(&self, signing_public: &[u8; 32]) -> Option<&KeyInfo> {
        self.keys.get(signing_public)
    }

    /// The host the key with this signing public key is certified for: its key file's, or for a
    /// removed key its revocation's. `None` when neither tells (an unknown signer, or a lost
    /// key's objects that an admin accepted by id).
    pub fn certified_host(&self, signing_public: &[u8; 32]) -> Option<&str> {
        match self.keys.get(signing_public) {
            Some(k) => Some(&k.host),
            None => self.revoked.get(signing_public)?.host.as_deref(),
        }
    }

    /// Whether object `id` signed by `signer`, which claims to be about host `host` (a snapshot
    /// or a backup start marker), speaks for that host (format §11): readers accept it, and
    /// its key is a full key (which may write for any host) or a put-only key certified for
    /// `host`. A put-only key whose host is not known (objects of a lost key that an admin
    /// accepted one by one) is taken at its word.
    pub fn speaks_for(&self, signer: &[u8; 32], id: &ObjectId, host: &str) -> bool {
        match self.verdict(signer, id) {
            Verdict::Full => true,
            Verdict::PutOnly => self.certified_host(signer).is_none_or(|h| h == host),
            Verdict::Revoked | Verdict::Unknown => false,
        }
    }

    /// Whether this signing key has been revoked.
    pub fn is_revoked(&self, signing_public: &[u8; 32]) -> bool {
        self.revoked.contains_key(signing_public)
    }
}
