//! Who may write what readers and writers accept (format §4.2, §4.3, §13).
//!
//! Every index object and snapshot is signed by the key that wrote it. Which keys count is said
//! by the newest *trust record* (`trust/`, signed by the admin key, numbered by `seq`): a key is
//! trusted when the record lists it, no revocation names it, and its certified key file is
//! present. A key a revocation names is revoked — whether the record says so or only an
//! admin-signed revocation object does — and only the objects its revocations accepted stay
//! valid. A key file the record does not list is not trusted, whatever its certificate says, and
//! a revoked key stays revoked when its revocation object is deleted and its key file put back.
//! Writers deduplicate only against their own index objects and those of full keys, so a
//! put-only host that uploads a blob under a false id cannot break other hosts' backups.

use crate::error::{CoreError, Result};
use crate::repo::keyfiles::{ReadKeyFile, key_file_of};
use crate::repo::limits::{self, read_bounded};
use std::collections::{HashMap, HashSet};
use tresor_format::ObjectId;
use tresor_format::crypto::MasterKey;
use tresor_format::keyfile::KeyKind;
use tresor_format::revocation::Revocation;
use tresor_format::sign::Signer;
use tresor_format::trust::TrustRecord;
use tresor_storage::{Kind, Storage};

/// A key as seen in its key file's plaintext header (kind, host and creation time as the trust
/// record lists them when it does).
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// Key file object id.
    pub id: ObjectId,
    /// Full or put-only.
    pub kind: KeyKind,
    /// Host the key is certified for.
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
    /// A trusted full key.
    Full,
    /// A trusted put-only key.
    PutOnly,
    /// A revoked key, and the object is not among those its revocation accepted.
    Revoked,
    /// No trusted key and no revocation names this signer.
    Unknown,
}

/// Where a certified key file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The trust record lists it and nothing revokes it.
    Trusted,
    /// A revocation (or the trust record) names it: it opens nothing, what it signs later is
    /// ignored.
    Revoked,
    /// Certified, but the trust record does not list it (its addition did not finish, or the
    /// storage put it there): not trusted.
    NotListed,
}

/// A revoked signer: the objects its revocations accepted, its kind and host when known.
#[derive(Debug, Clone, Default)]
struct RevokedInfo {
    accepted: HashSet<ObjectId>,
    kind: Option<KeyKind>,
    host: Option<String>,
}

/// The authentic revocation objects found, by revoked key: accepted objects, kind, and the
/// revocation object ids.
type Revocations = HashMap<[u8; 32], (HashSet<ObjectId>, Option<KeyKind>, HashSet<ObjectId>)>;

/// The trusted and revoked keys of a repository, from its newest trust record.
#[derive(Debug, Default, Clone)]
pub struct Trust {
    keys: HashMap<[u8; 32], KeyInfo>,
    files: HashMap<[u8; 32], KeyInfo>,
    revoked: HashMap<[u8; 32], RevokedInfo>,
    record: Option<TrustRecord>,
    /// The newest records disagree on the config: no config is authentic.
    config_conflict: bool,
    /// Trust records, key files and revocations that were ignored, and disagreements, one line
    /// each (`check` reports them).
    pub problems: Vec<String>,
}

impl Trust {
    /// Read the trust records, key file headers and revocations; verify every signature and
    /// certificate against the admin public key in `master`; take the newest record.
    ///
    /// # Errors
    /// Storage errors on listing, and on reading a trust record (a record that could not be
    /// read may be the newest one).
    pub fn load(storage: &dyn Storage, master: &MasterKey) -> Result<Self> {
        Self::load_from(storage, master, None)
    }

    /// [`Trust::load`] with the key files already read
    /// ([`crate::repo::keyfiles::read_key_files`]: opening a repository reads them to find
    /// its key).
    ///
    /// # Errors
    /// As [`Trust::load`].
    pub fn load_with_key_files(
        storage: &dyn Storage,
        master: &MasterKey,
        keys: &[ReadKeyFile],
    ) -> Result<Self> {
        Self::load_from(storage, master, Some(keys))
    }

    fn load_from(
        storage: &dyn Storage,
        master: &MasterKey,
        keys: Option<&[ReadKeyFile]>,
    ) -> Result<Self> {
        let admin = &master.admin_public;
        let mut problems = Vec::new();
        let records = load_records(storage, admin, &mut problems)?;
        let (record, config_conflict) = newest(records, &mut problems);
        let files = match keys {
            Some(keys) => certified_key_files(keys, admin, &mut problems)?,
            None => load_key_files(storage, admin, &mut problems)?,
        };
        let revocations = load_revocations(storage, admin, &mut problems)?;
        let mut t = build(record, files, revocations, &mut problems);
        t.config_conflict = config_conflict;
        t.problems = problems;
        Ok(t)
    }

    /// The verdict on an object `id` signed by `signer`.
    pub fn verdict(&self, signer: &[u8; 32], id: &ObjectId) -> Verdict {
        if let Some(r) = self.revoked.get(signer) {
            if !r.accepted.contains(id) {
                return Verdict::Revoked;
            }
            return match r.kind {
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

    /// The trusted keys (listed by the trust record, key file present, not revoked).
    pub fn keys(&self) -> impl Iterator<Item = &KeyInfo> {
        self.keys.values()
    }

    /// The trusted key with this signing public key.
    pub fn key(&self, signing_public: &[u8; 32]) -> Option<&KeyInfo> {
        self.keys.get(signing_public)
    }

    /// Every certified key file present, with its standing.
    pub fn key_files(&self) -> impl Iterator<Item = (&KeyInfo, Standing)> {
        self.files.values().map(|k| {
            let s = if self.is_revoked(&k.signing_public) {
                Standing::Revoked
            } else if self.keys.contains_key(&k.signing_public) {
                Standing::Trusted
            } else {
                Standing::NotListed
            };
            (k, s)
        })
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

    /// The host a signer is certified for: a trusted key's, or a revoked key's when its
    /// revocation recorded one (`None` for unknown signers and signers accepted without a key
    /// file).
    pub fn certified_host(&self, signer: &[u8; 32]) -> Option<&str> {
        match self.keys.get(signer) {
            Some(k) => Some(&k.host),
            None => self.revoked.get(signer).and_then(|r| r.host.as_deref()),
        }
    }

    /// The newest trust record (merged, when several share its `seq`), if there is one.
    pub fn record(&self) -> Option<&TrustRecord> {
        self.record.as_ref()
    }

    /// The highest `seq` of the valid trust records (0 when there is none).
    pub fn seq(&self) -> u64 {
        self.record.as_ref().map_or(0, |r| r.seq)
    }

    /// Fail unless the newest trust record names `config` as the repository's config: the config
    /// is authentic only then (format §4.3, §5).
    ///
    /// # Errors
    /// [`CoreError::Damaged`]: no trust record, records that disagree on the config, or another
    /// config.
    pub fn authenticate_config(&self, config: &ObjectId) -> Result<()> {
        let Some(r) = &self.record else {
            return Err(CoreError::Damaged(
                "no trust record: not a format 2 repository (or its trust records were deleted)"
                    .into(),
            ));
        };
        if self.config_conflict {
            return Err(CoreError::Damaged(format!(
                "the trust records of seq {} name different configs: refusing both",
                r.seq
            )));
        }
        if r.config != *config {
            return Err(CoreError::Damaged(format!(
                "the config was changed without the admin key: config {} is not the config {} \
                 trust record {} names",
                config.short(),
                r.config.short(),
                r.seq
            )));
        }
        Ok(())
    }
}

/// Every trust record that verifies under `admin`, with its id. The others are described in
/// `problems` (ignored).
fn load_records(
    storage: &dyn Storage,
    admin: &[u8; 32],
    problems: &mut Vec<String>,
) -> Result<Vec<(ObjectId, TrustRecord)>> {
    let mut out = Vec::new();
    for (name, size) in storage.list(Kind::Trust)? {
        let bytes = match read_bounded(storage, Kind::Trust, &name, Some(size), limits::TRUST) {
            Ok(b) => b,
            Err(CoreError::Storage(e)) => return Err(e.into()),
            Err(e) => {
                problems.push(format!("trust record {name}: {e}: ignored"));
                continue;
            }
        };
        if tresor_storage::name_of(&bytes) != name {
            problems.push(format!(
                "trust record {name}: content does not match its name: ignored"
            ));
            continue;
        }
        match TrustRecord::open(admin, &bytes) {
            Ok(r) => out.push((name.parse::<ObjectId>()?, r)),
            Err(e) => problems.push(format!("trust record {name}: {e}: ignored")),
        }
    }
    out.sort_by_key(|a| a.0);
    Ok(out)
}

/// The record with the highest `seq`; several different ones of that `seq` are merged
/// conservatively (reported). The flag is set when they name different configs.
fn newest(
    records: Vec<(ObjectId, TrustRecord)>,
    problems: &mut Vec<String>,
) -> (Option<TrustRecord>, bool) {
    let Some(top) = records.iter().map(|(_, r)| r.seq).max() else {
        return (None, false);
    };
    // Distinct contents of that seq (records sorted by id).
    let mut same: Vec<(ObjectId, TrustRecord)> = Vec::new();
    for (id, r) in records.into_iter().filter(|(_, r)| r.seq == top) {
        if !same.iter().any(|(_, s)| *s == r) {
            same.push((id, r));
        }
    }
    let (first_id, mut merged) = same.remove(0);
    let mut conflict = false;
    for (id, r) in &same {
        conflict |= r.config != merged.config;
        problems.push(format!(
            "trust records {} and {} both have seq {top} and differ: merged conservatively \
             (keys both list, revocations of either)",
            first_id.short(),
            id.short()
        ));
        merged = merged.merge_conservatively(r);
    }
    (Some(merged), conflict)
}

/// The certified key files, by signing public key. Others are described in `problems` (a key
/// file that cannot be read too).
fn load_key_files(
    storage: &dyn Storage,
    admin: &[u8; 32],
    problems: &mut Vec<String>,
) -> Result<HashMap<[u8; 32], KeyInfo>> {
    let mut read = Vec::new();
    for (name, size) in storage.list(Kind::Key)? {
        let parsed = read_bounded(storage, Kind::Key, &name, Some(size), limits::KEY)
            .map_err(|e| e.to_string())
            .and_then(|b| key_file_of(&name, &b));
        read.push((name, parsed));
    }
    certified_key_files(&read, admin, problems)
}

/// The certified ones of the key files `read`, by signing public key. Others are described in
/// `problems`.
fn certified_key_files(
    read: &[ReadKeyFile],
    admin: &[u8; 32],
    problems: &mut Vec<String>,
) -> Result<HashMap<[u8; 32], KeyInfo>> {
    let mut files = HashMap::new();
    for (name, parsed) in read {
        match parsed {
            Ok(kf) if kf.certified_by(admin) => {
                let info = KeyInfo {
                    id: name.parse()?,
                    kind: kf.kind,
                    host: kf.host.clone(),
                    username: kf.username.clone(),
                    created: kf.created.clone(),
                    signing_public: kf.signing_public()?,
                };
                files.insert(info.signing_public, info);
            }
            Ok(_) => problems.push(format!(
                "key {name}: certificate is not valid for this repository"
            )),
            Err(e) => problems.push(format!("key {name}: {e}")),
        }
    }
    Ok(files)
}

/// The revocations that verify under `admin`, by revoked key. Others go to `problems`.
fn load_revocations(
    storage: &dyn Storage,
    admin: &[u8; 32],
    problems: &mut Vec<String>,
) -> Result<Revocations> {
    let mut out = Revocations::new();
    for (name, size) in storage.list(Kind::Revocation)? {
        let limit = limits::REVOCATION;
        let r = read_bounded(storage, Kind::Revocation, &name, Some(size), limit)
            .map_err(|e| e.to_string())
            .and_then(|b| Revocation::open(admin, &b).map_err(|e| e.to_string()))
            .and_then(|r| r.revoked_key().map(|k| (k, r)).map_err(|e| e.to_string()));
        match r {
            Ok((k, r)) => {
                let e = out.entry(k).or_default();
                e.0.extend(r.accepted);
                e.1 = e.1.or(r.kind);
                e.2.insert(name.parse()?);
            }
            Err(e) => problems.push(format!("revocation {name}: {e}")),
        }
    }
    Ok(out)
}

/// Judge the keys (format §4.3): trusted when the record lists them, nothing revokes them and
/// their key file is present; revoked when the record or any revocation says so.
fn build(
    record: Option<TrustRecord>,
    files: HashMap<[u8; 32], KeyInfo>,
    revocations: Revocations,
    problems: &mut Vec<String>,
) -> Trust {
    let empty = TrustRecord::new(1, ObjectId::default());
    let rec = record.as_ref().unwrap_or(&empty);
    let revoked = revoked_keys(rec, &files, revocations, problems);
    let mut keys = HashMap::new();
    for k in rec
        .keys
        .iter()
        .filter(|k| !revoked.contains_key(&k.signing_public))
    {
        match files.get(&k.signing_public) {
            Some(f) => {
                let info = KeyInfo {
                    kind: k.kind,
                    host: k.host.clone(),
                    created: k.created.clone(),
                    ..f.clone()
                };
                keys.insert(k.signing_public, info);
            }
            None => problems.push(format!(
                "key {} ({}, host {}) is in the trust record but its key file is missing: not \
                 trusted",
                hex::encode(&k.signing_public[..4]),
                kind_name(k.kind),
                tresor_format::tree::escape_name(k.host.as_bytes())
            )),
        }
    }
    for f in files.values() {
        if !keys.contains_key(&f.signing_public) && !revoked.contains_key(&f.signing_public) {
            problems.push(format!(
                "key {} is certified but not in the trust record: not trusted",
                f.id
            ));
        }
    }
    Trust {
        keys,
        files,
        revoked,
        record,
        ..Trust::default()
    }
}

/// The revoked keys: those the record lists (accepting what their revocation objects list; a
/// missing one is reported) and those an authentic revocation object names.
fn revoked_keys(
    rec: &TrustRecord,
    files: &HashMap<[u8; 32], KeyInfo>,
    mut revocations: Revocations,
    problems: &mut Vec<String>,
) -> HashMap<[u8; 32], RevokedInfo> {
    let mut out = HashMap::new();
    for r in &rec.revoked {
        let (accepted, kind, ids) = revocations.remove(&r.signing_public).unwrap_or_default();
        if !ids.contains(&r.revocation) {
            problems.push(format!(
                "key {} is revoked by revocation {}, which is missing: its objects accepted \
                 only as other revocations list them",
                hex::encode(&r.signing_public[..4]),
                r.revocation.short()
            ));
        }
        let (kind, host) = (r.kind.or(kind), r.host.clone());
        out.insert(
            r.signing_public,
            RevokedInfo {
                accepted,
                kind,
                host,
            },
        );
    }
    // Revocations the record does not name (its write was interrupted) revoke all the same.
    for (k, (accepted, kind, _)) in revocations {
        let host = files.get(&k).map(|f| f.host.clone());
        out.insert(
            k,
            RevokedInfo {
                accepted,
                kind,
                host,
            },
        );
    }
    out
}

fn kind_name(k: KeyKind) -> &'static str {
    match k {
        KeyKind::Full => "full",
        KeyKind::PutOnly => "put-only",
    }
}

/// Write a trust record signed by `admin`; returns its id.
///
/// # Errors
/// Storage errors.
pub fn write_record(
    storage: &dyn Storage,
    admin: &Signer,
    record: &TrustRecord,
) -> Result<ObjectId> {
    let bytes = record.to_object(admin);
    let id = ObjectId::of(&bytes);
    storage.write(Kind::Trust, &id.to_hex(), &bytes)?;
    Ok(id)
}

/// Change trust: read the trust records again (another admin may have written one since this
/// process opened the repository), apply `change` to the newest, and write it as the next `seq`.
/// Returns the record written.
///
/// # Errors
/// [`CoreError::PutOnly`] without the admin key; [`CoreError::Damaged`] when there is no trust
/// record; storage errors.
pub fn update(
    storage: &dyn Storage,
    master: &MasterKey,
    change: impl FnOnce(&mut TrustRecord),
) -> Result<TrustRecord> {
    let admin = master
        .admin()
        .map_err(|_| CoreError::PutOnly("changing trust"))?;
    let now = Trust::load(storage, master)?;
    let Some(mut next) = now.record.clone() else {
        return Err(CoreError::Damaged(
            "no trust record: not a format 2 repository (or its trust records were deleted)".into(),
        ));
    };
    next.seq += 1;
    next.version = tresor_format::FORMAT_VERSION;
    change(&mut next);
    write_record(storage, &admin, &next)?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tresor_format::trust::{RevokedKey, TrustedKey};

    fn info(b: u8, kind: KeyKind) -> KeyInfo {
        KeyInfo {
            id: ObjectId([b + 100; 32]),
            kind,
            host: format!("file-host-{b}"),
            username: "u".into(),
            created: "c".into(),
            signing_public: [b; 32],
        }
    }

    fn listed(b: u8, kind: KeyKind) -> TrustedKey {
        TrustedKey {
            signing_public: [b; 32],
            kind,
            host: format!("host-{b}"),
            created: "2026-01-01T00:00:00Z".into(),
        }
    }

    fn rec(seq: u64, config: u8) -> TrustRecord {
        TrustRecord::new(seq, ObjectId([config; 32]))
    }

    #[test]
    fn only_listed_keys_with_a_key_file_are_trusted() {
        let mut r = rec(2, 9);
        r.trust(listed(1, KeyKind::Full));
        r.trust(listed(2, KeyKind::PutOnly));
        r.trust(listed(3, KeyKind::PutOnly)); // key file missing
        let files: HashMap<_, _> = [1, 2, 4]
            .into_iter()
            .map(|b| ([b; 32], info(b, KeyKind::Full)))
            .collect();
        let mut problems = Vec::new();
        let t = build(Some(r), files, Revocations::new(), &mut problems);
        let id = ObjectId([0; 32]);
        assert_eq!(t.verdict(&[1; 32], &id), Verdict::Full);
        // The record's kind and host count, not the key file's.
        assert_eq!(t.verdict(&[2; 32], &id), Verdict::PutOnly);
        assert_eq!(t.certified_host(&[2; 32]), Some("host-2"));
        assert_eq!(t.verdict(&[3; 32], &id), Verdict::Unknown);
        assert_eq!(t.verdict(&[4; 32], &id), Verdict::Unknown);
        assert_eq!(t.certified_host(&[4; 32]), None);
        assert_eq!(
            problems,
            [
                "key 03030303 (put-only, host \"host-3\") is in the trust record but its key file \
                 is missing: not trusted"
                    .to_string(),
                format!(
                    "key {} is certified but not in the trust record: not trusted",
                    ObjectId([104; 32])
                ),
            ]
        );
        let standing: HashMap<[u8; 32], Standing> =
            t.key_files().map(|(k, s)| (k.signing_public, s)).collect();
        assert_eq!(standing[&[1; 32]], Standing::Trusted);
        assert_eq!(standing[&[4; 32]], Standing::NotListed);
    }

    #[test]
    fn revoked_keys_stay_revoked_without_their_revocation_object() {
        let mut r = rec(3, 9);
        r.trust(listed(1, KeyKind::Full));
        r.revoke(RevokedKey {
            signing_public: [2; 32],
            kind: Some(KeyKind::PutOnly),
            host: Some("vps".into()),
            revocation: ObjectId([0xaa; 32]),
        });
        // The key file of the revoked key is back; its revocation object is gone.
        let files: HashMap<_, _> = [1, 2]
            .into_iter()
            .map(|b| ([b; 32], info(b, KeyKind::PutOnly)))
            .collect();
        let mut problems = Vec::new();
        let t = build(
            Some(r.clone()),
            files.clone(),
            Revocations::new(),
            &mut problems,
        );
        assert_eq!(t.verdict(&[2; 32], &ObjectId([5; 32])), Verdict::Revoked);
        assert!(t.is_revoked(&[2; 32]));
        assert_eq!(t.certified_host(&[2; 32]), Some("vps"));
        assert_eq!(
            problems,
            [
                "key 02020202 is revoked by revocation aaaaaaaa, which is missing: its objects \
              accepted only as other revocations list them"
            ]
        );
        // With the revocation object, its accepted objects keep the record's kind.
        let mut revs = Revocations::new();
        let accepted: HashSet<ObjectId> = [ObjectId([5; 32])].into();
        revs.insert([2; 32], (accepted, None, [ObjectId([0xaa; 32])].into()));
        let mut problems = Vec::new();
        let t = build(Some(r), files, revs, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(t.verdict(&[2; 32], &ObjectId([5; 32])), Verdict::PutOnly);
        assert_eq!(t.verdict(&[2; 32], &ObjectId([6; 32])), Verdict::Revoked);
    }

    #[test]
    fn a_revocation_the_record_does_not_name_still_revokes() {
        let mut r = rec(3, 9);
        r.trust(listed(1, KeyKind::Full));
        let files: HashMap<_, _> = [([1; 32], info(1, KeyKind::Full))].into();
        let mut revs = Revocations::new();
        revs.insert(
            [1; 32],
            (HashSet::new(), Some(KeyKind::Full), HashSet::new()),
        );
        let mut problems = Vec::new();
        let t = build(Some(r), files, revs, &mut problems);
        assert_eq!(t.verdict(&[1; 32], &ObjectId([5; 32])), Verdict::Revoked);
        assert_eq!(t.certified_host(&[1; 32]), Some("file-host-1"));
        assert_eq!(t.keys().count(), 0);
    }

    #[test]
    fn the_newest_record_wins_and_equal_seqs_merge_conservatively() {
        let mut old = rec(1, 9);
        old.trust(listed(1, KeyKind::Full));
        old.trust(listed(2, KeyKind::Full));
        let mut a = rec(2, 9);
        a.trust(listed(1, KeyKind::Full));
        a.trust(listed(3, KeyKind::PutOnly));
        let mut b = a.clone();
        b.revoke(RevokedKey {
            signing_public: [3; 32],
            kind: Some(KeyKind::PutOnly),
            host: None,
            revocation: ObjectId([7; 32]),
        });
        b.trust(listed(4, KeyKind::Full));
        let mut problems = Vec::new();
        let records = vec![
            (ObjectId([0x10; 32]), old.clone()),
            (ObjectId([0x20; 32]), a.clone()),
            (ObjectId([0x30; 32]), b),
            (ObjectId([0x40; 32]), a.clone()),
        ];
        let (m, conflict) = newest(records, &mut problems);
        let m = m.unwrap();
        assert!(!conflict);
        assert_eq!(m.seq, 2);
        let keys: Vec<[u8; 32]> = m.keys.iter().map(|k| k.signing_public).collect();
        assert_eq!(keys, [[1; 32]]);
        assert!(m.is_revoked(&[3; 32]));
        assert_eq!(
            problems,
            [
                "trust records 20202020 and 30303030 both have seq 2 and differ: merged \
              conservatively (keys both list, revocations of either)"
            ]
        );
        let mut other_config = a.clone();
        other_config.config = ObjectId([8; 32]);
        let records = vec![(ObjectId([1; 32]), a), (ObjectId([2; 32]), other_config)];
        let (_, conflict) = newest(records, &mut Vec::new());
        assert!(conflict);
        assert_eq!(newest(Vec::new(), &mut Vec::new()).0, None);
    }

    #[test]
    fn the_config_must_be_the_one_the_record_names() {
        let t = Trust {
            record: Some(rec(4, 9)),
            ..Trust::default()
        };
        t.authenticate_config(&ObjectId([9; 32])).unwrap();
        assert_eq!(
            t.authenticate_config(&ObjectId([8; 32]))
                .unwrap_err()
                .to_string(),
            "repository damaged: the config was changed without the admin key: config 08080808 \
             is not the config 09090909 trust record 4 names"
        );
        assert_eq!(
            Trust::default()
                .authenticate_config(&ObjectId([9; 32]))
                .unwrap_err()
                .to_string(),
            "repository damaged: no trust record: not a format 2 repository (or its trust \
             records were deleted)"
        );
    }
}
