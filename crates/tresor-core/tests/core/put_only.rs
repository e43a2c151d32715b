//! Put-only keys: write but never read; a forging put-only host cannot poison other hosts;
//! a removed (revoked) key's later writes are ignored.

use tresor_testkit::repo::*;

use std::path::Path;
use tresor_core::repo::packer::Packer;
use tresor_core::repo::trust::Standing;
use tresor_core::restorer::{self, RestoreOptions};
use tresor_core::{CoreError, NoProgress, Repository, check, keys};
use tresor_format::blob::BlobType;
use tresor_format::index::IndexFile;
use tresor_format::keyfile::{KeyFile, KeyKind};
use tresor_format::snapshot::Snapshot;
use tresor_format::{FormatError, pack};
use tresor_storage::Kind;

fn restore(
    repo: &Repository,
    snapshot: &tresor_format::ObjectId,
    target: &Path,
) -> restorer::RestoreResult {
    let snap = repo.load_snapshot(snapshot).unwrap();
    let index = repo.load_index().unwrap();
    let opts = RestoreOptions {
        verify: true,
        ..RestoreOptions::new(target.to_path_buf())
    };
    restorer::restore(repo, &index, &snap, &opts, &NoProgress).unwrap()
}

fn source(dir: &Path, name: &str, content: &[u8]) -> std::path::PathBuf {
    let src = dir.join(name);
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("data.bin"), content).unwrap();
    std::fs::write(src.join("note.txt"), format!("host {name}")).unwrap();
    src
}

#[test]
fn put_only_key_writes_incrementally_and_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, admin) = setup(dir.path());
    keys::add(&admin, "host", KeyKind::PutOnly, KDF, &owner("vps")).unwrap();
    let host = Repository::open(storage.clone(), "host").unwrap();
    assert_eq!(host.key_kind(), KeyKind::PutOnly);
    let src = source(dir.path(), "vps", &data(1, 3 << 20));
    let cache = dir.path().join("cache");

    let first = backup(&host, &src, "vps", Some(&cache));
    assert!(first.summary.bytes_read > 3 << 20);
    // With the local cache: nothing is read again.
    let second = backup(&host, &src, "vps", Some(&cache));
    assert_eq!(second.summary.bytes_read, 0, "{:?}", second.summary);
    assert_eq!(second.summary.files_unmodified, 2);
    assert_eq!(
        second.parent, first.snapshot_id,
        "the cached snapshot is the parent"
    );
    // Without the cache: everything is read again, but no data is uploaded again.
    let third = backup(&host, &src, "vps", None);
    assert_eq!(third.summary.bytes_read, first.summary.bytes_read);
    assert_eq!(third.summary.data_blobs, 0, "{:?}", third.summary);
    assert_eq!(third.parent, None);
    // A forced backup (no parent) still refreshes the cache: the next one builds on it.
    let forced = tresor_core::archiver::backup(
        &host,
        tresor_core::archiver::BackupOptions {
            parent: tresor_core::archiver::ParentChoice::None,
            cache_dir: Some(cache.clone()),
            ..backup_options(&src, "vps")
        },
        &tresor_core::NoProgress,
    )
    .unwrap();
    let after_forced = backup(&host, &src, "vps", Some(&cache));
    assert_eq!(after_forced.parent, forced.snapshot_id);
    assert_eq!(after_forced.summary.bytes_read, 0);
    // A new password keeps the cache (it is kept per signing key, not per key file).
    keys::change_password(&host, "host2", KDF).unwrap();
    let host = Repository::open(storage.clone(), "host2").unwrap();
    let again = backup(&host, &src, "vps", Some(&cache));
    assert_eq!(again.parent, after_forced.snapshot_id);
    assert_eq!(again.summary.bytes_read, 0);

    // Reading is refused with the put-only error.
    assert!(matches!(host.load_snapshots(), Err(CoreError::PutOnly(_))));
    assert!(matches!(host.load_index(), Err(CoreError::PutOnly(_))));
    assert!(matches!(
        check::check(&host, check::ReadData::All),
        Err(CoreError::PutOnly(_))
    ));

    // The full key restores the put-only host's snapshot byte for byte.
    let admin = Repository::open(storage.clone(), "admin").unwrap();
    let t = dir.path().join("restore");
    let r = restore(&admin, &third.snapshot_id.unwrap(), &t);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let restored = t.join(src.strip_prefix("/").unwrap());
    assert_eq!(
        std::fs::read(restored.join("data.bin")).unwrap(),
        data(1, 3 << 20)
    );
    assert_eq!(
        std::fs::read(restored.join("note.txt")).unwrap(),
        b"host vps"
    );
    // All six snapshots are accepted by the admin; check is clean.
    let admin = Repository::open(storage, "admin").unwrap();
    assert_eq!(admin.load_snapshots().unwrap().0.len(), 6);
    let report = check::check(&admin, check::ReadData::All).unwrap();
    assert!(
        report.errors.is_empty() && report.warnings.is_empty(),
        "{report:?}"
    );
}

#[test]
fn put_only_key_file_opens_no_object() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, admin) = setup(dir.path());
    let src = source(dir.path(), "a", &data(2, 1 << 20));
    backup(&admin, &src, "a", None);
    let id = keys::add(&admin, "host", KeyKind::PutOnly, KDF, &owner("vps")).unwrap();
    let kf = KeyFile::from_bytes(&storage.read(Kind::Key, &id.to_hex()).unwrap()).unwrap();
    let payload = kf.open("host").unwrap();
    assert!(payload.master.secret_key.is_none() && payload.master.admin_secret.is_none());
    // Every 32-byte value the key file holds, tried as the secret key, opens nothing.
    let mut candidates = vec![
        payload.master.public_key,
        payload.master.id_key,
        payload.master.admin_public,
        payload.signing_secret,
        tresor_format::index::dedup_key(&payload.signer()).0,
    ];
    candidates.push(*blake3::hash(&payload.master.id_key).as_bytes());
    let mut tried = 0;
    for c in candidates {
        let mut k = payload.master.clone();
        k.secret_key = Some(c);
        for (name, _) in storage.list(Kind::Snapshot).unwrap() {
            let b = storage.read(Kind::Snapshot, &name).unwrap();
            assert!(matches!(
                Snapshot::open(&k, &b),
                Err(FormatError::Authentication { .. })
            ));
            tried += 1;
        }
        for (name, _) in storage.list(Kind::Index).unwrap() {
            let b = storage.read(Kind::Index, &name).unwrap();
            assert!(IndexFile::open(&k, &b).is_err());
            tried += 1;
        }
        for (name, _) in storage.list(Kind::Pack).unwrap() {
            let b = storage.read(Kind::Pack, &name).unwrap();
            assert!(pack::read_header(&k, &b).is_err());
            tried += 1;
        }
    }
    assert!(tried >= 6 * 4);
    // And without a secret key, opening says so.
    let b = storage
        .read(Kind::Snapshot, &storage.list(Kind::Snapshot).unwrap()[0].0)
        .unwrap();
    assert!(matches!(
        Snapshot::open(&payload.master, &b),
        Err(FormatError::PutOnlyKey)
    ));
}

#[test]
fn a_forged_blob_does_not_poison_other_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, admin) = setup(dir.path());
    keys::add(&admin, "evil", KeyKind::PutOnly, KDF, &owner("evil")).unwrap();
    keys::add(&admin, "good", KeyKind::PutOnly, KDF, &owner("good")).unwrap();
    let evil = Repository::open(storage.clone(), "evil").unwrap();
    let good = Repository::open(storage.clone(), "good").unwrap();
    // Noise, not `data`: `data` repeats every 128 KiB, so with some chunker keys two chunks
    // are the same blob, counted twice below and uploaded once (the test failed 1 run in 30).
    let content = noise(3, 2 << 20);
    // The evil host stores garbage under the ids of the chunks of `content`.
    let chunker =
        tresor_format::chunker::Chunker::new(&evil.config().chunker, &evil.key().chunker_key);
    let cfg = evil.config();
    let packer = Packer::new(
        evil.storage().clone(),
        evil.key().clone(),
        evil.signer_copy(),
        cfg.pack_size,
        cfg.compression_level,
        1,
        false,
    );
    let mut rest = &content[..];
    let mut forged = 0;
    while !rest.is_empty() {
        let n = chunker.next_cut(rest);
        packer
            .add(
                BlobType::Data,
                evil.key().blob_id(&rest[..n]),
                vec![0xEE; n],
            )
            .unwrap();
        rest = &rest[n..];
        forged += 1;
    }
    packer.finish().unwrap();
    assert!(forged >= 1);
    // The good host backs up the same data: it does not trust the evil host's index.
    let src = source(dir.path(), "good", &content);
    let b = backup(&good, &src, "good", None);
    assert_eq!(
        b.summary.data_blobs as usize,
        forged + 1,
        "good host uploads its own copies"
    );
    // The admin restores the good host's snapshot byte for byte...
    let admin = Repository::open(storage.clone(), "admin").unwrap();
    let t = dir.path().join("restore");
    let r = restore(&admin, &b.snapshot_id.unwrap(), &t);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(
        std::fs::read(t.join(src.strip_prefix("/").unwrap()).join("data.bin")).unwrap(),
        content
    );
    // ...and check --read-data names each forged copy and who wrote it, without calling the
    // good host's snapshot damaged: its own copies are intact.
    let report = check::check(&admin, check::ReadData::All).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let forged_copies: Vec<_> = report
        .warnings
        .iter()
        .filter(|w| w.contains("does not match its id"))
        .collect();
    assert_eq!(forged_copies.len(), forged, "{:?}", report.warnings);
    assert!(
        forged_copies.iter().all(|w| w.contains("put-only key")
            && w.contains("host evil")
            && w.contains("intact copy")),
        "{forged_copies:?}"
    );
    assert!(!report.warnings.iter().any(|w| w.contains("affects")));
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn a_removed_key_is_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, admin) = setup(dir.path());
    let id = keys::add(&admin, "host", KeyKind::PutOnly, KDF, &owner("vps")).unwrap();
    let host = Repository::open(storage.clone(), "host").unwrap();
    let src = source(dir.path(), "vps", &data(4, 1 << 20));
    let before = backup(&host, &src, "vps", None);
    // The admin removes the key; the host (compromised, say) keeps writing.
    let admin = Repository::open(storage.clone(), "admin").unwrap();
    let key_file = storage.read(Kind::Key, &id.to_hex()).unwrap();
    keys::remove(&admin, &id.to_hex()[..8], "2026-11-30T01:00:00Z").unwrap();
    assert!(matches!(
        Repository::open(storage.clone(), "host"),
        Err(CoreError::WrongPassword)
    ));
    std::fs::write(src.join("after.txt"), b"written after the revocation").unwrap();
    let after = backup(&host, &src, "vps", None);
    let admin = Repository::open(storage.clone(), "admin").unwrap();
    let (list, skipped) = admin.load_snapshots().unwrap();
    assert_eq!(
        list.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        vec![before.snapshot_id.unwrap()]
    );
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].id, after.snapshot_id.unwrap());
    let report = check::check(&admin, check::ReadData::All).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(
        report.warnings.iter().any(|w| w.contains("revoked")),
        "{:?}",
        report.warnings
    );
    // The snapshot from before the revocation still restores.
    let r = restore(&admin, &before.snapshot_id.unwrap(), &dir.path().join("t"));
    assert!(r.problems.is_empty());
    // Refusals: the key in use, the last full key.
    assert!(keys::remove(&admin, &admin.key_id().to_hex(), "x").is_err());

    // The removed key's file put back: it does not open, and the admin sees it as revoked.
    storage.write(Kind::Key, &id.to_hex(), &key_file).unwrap();
    match Repository::open(storage.clone(), "host") {
        Err(CoreError::KeyRevoked(k)) => assert_eq!(k, id.short()),
        other => panic!("a revoked key opened: {other:?}"),
    }
    let admin = Repository::open(storage.clone(), "admin").unwrap();
    let listed = keys::list(&admin);
    assert!(
        listed
            .iter()
            .any(|k| k.info.id == id && k.standing == Standing::Revoked)
    );
    assert!(
        listed
            .iter()
            .any(|k| k.current && k.standing == Standing::Trusted)
    );
    // Its password may be given to a new key: the revoked file is passed over when opening.
    let new_id = keys::add(&admin, "host", KeyKind::PutOnly, KDF, &owner("vps2")).unwrap();
    assert_eq!(
        Repository::open(storage.clone(), "host").unwrap().key_id(),
        new_id
    );

    // The host re-signs its post-revocation snapshot with a made-up key: unknown, ignored —
    // and a paper-key import does not launder it.
    let bytes = storage
        .read(Kind::Snapshot, &after.snapshot_id.unwrap().to_hex())
        .unwrap();
    let (_, snap) = Snapshot::open(admin.key(), &bytes).unwrap();
    let forger = tresor_format::sign::Signer::generate().unwrap();
    let forged = snap.seal(&host.key().put_only(), &forger).unwrap();
    let forged_id = tresor_format::ObjectId::of(&forged);
    storage
        .write(Kind::Snapshot, &forged_id.to_hex(), &forged)
        .unwrap();
    let visible = |repo: &Repository| -> Vec<tresor_format::ObjectId> {
        repo.load_snapshots()
            .unwrap()
            .0
            .iter()
            .map(|(i, _)| *i)
            .collect()
    };
    assert_eq!(visible(&admin), vec![before.snapshot_id.unwrap()]);
    let paper = keys::export_paper(&admin).unwrap();
    let imported =
        keys::import_paper(storage.clone(), &paper, "recovered", KDF, &owner("x"), None).unwrap();
    assert_eq!(imported.unknown.len(), 1, "{:?}", imported.unknown);
    assert_eq!(imported.unknown[0].signer, forger.public());
    assert_eq!(imported.unknown[0].snapshots[0].0, forged_id);
    let recovered = Repository::open(storage.clone(), "recovered").unwrap();
    assert_eq!(visible(&recovered), vec![before.snapshot_id.unwrap()]);
    // Only when the admin accepts that signer does its snapshot count.
    let unknown =
        keys::unknown_signers(storage.as_ref(), recovered.key(), recovered.trust()).unwrap();
    let chosen = keys::choose_signers(&unknown, &[hex::encode(&forger.public()[..4])]).unwrap();
    let accepted = keys::accept_signers(&recovered, &chosen, "2026-11-30T02:00:00Z").unwrap();
    assert_eq!(accepted, vec![forger.public()]);
    // An empty, short or non-hex prefix names nobody (it must not mean "everyone").
    for bad in ["", "xyz!", "ab", "abcdef0"] {
        let err = keys::choose_signers(&unknown, &[bad.into()]).unwrap_err();
        assert!(err.to_string().contains("is not a signer"), "{err}");
    }
    let recovered = Repository::open(storage.clone(), "recovered").unwrap();
    assert_eq!(visible(&recovered).len(), 2);
}

#[test]
fn every_key_needs_its_own_password() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, admin) = setup(dir.path());
    for kind in [KeyKind::PutOnly, KeyKind::Full] {
        let err = keys::add(&admin, "admin", kind, KDF, &owner("vps")).unwrap_err();
        assert!(err.to_string().contains("already opens key"), "{err}");
    }
    keys::add(&admin, "host", KeyKind::PutOnly, KDF, &owner("vps")).unwrap();
    let err = keys::change_password(&admin, "host", KDF).unwrap_err();
    assert!(err.to_string().contains("already opens key"), "{err}");
    let err = keys::add(&admin, "host", KeyKind::Full, KDF, &owner("x")).unwrap_err();
    assert!(err.to_string().contains("already opens key"), "{err}");
    // Nothing was written by the refusals: the admin still opens as the full key.
    assert_eq!(storage.list(Kind::Key).unwrap().len(), 2);
    let again = Repository::open(storage.clone(), "admin").unwrap();
    assert_eq!(again.key_kind(), KeyKind::Full);
}

#[test]
fn a_paper_key_of_another_repository_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, admin) = setup(dir.path());
    backup(&admin, &source(dir.path(), "a", &data(1, 1000)), "a", None);
    let other_dir = tempfile::tempdir().unwrap();
    let (_, other) = setup(other_dir.path());
    let paper = keys::export_paper(&other).unwrap();
    // Relabelled as this repository's: the material still does not fit.
    let relabelled = paper.replacen(&other.config().id, &admin.config().id, 1);
    let err =
        keys::import_paper(storage.clone(), &relabelled, "x", KDF, &owner("x"), None).unwrap_err();
    assert!(
        err.to_string()
            .contains("does not belong to this repository"),
        "{err}"
    );
    // Even with every key file gone, it must decrypt the repository's objects.
    for (name, _) in storage.list(Kind::Key).unwrap() {
        storage.delete(Kind::Key, &name).unwrap();
    }
    let err =
        keys::import_paper(storage.clone(), &relabelled, "x", KDF, &owner("x"), None).unwrap_err();
    assert!(err.to_string().contains("decrypts none"), "{err}");
    assert!(
        storage.list(Kind::Key).unwrap().is_empty(),
        "nothing written"
    );
}

#[test]
fn passwords_change_and_paper_keys_restore_access() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, admin) = setup(dir.path());
    let src = source(dir.path(), "a", &data(5, 1 << 20));
    let b = backup(&admin, &src, "a", None);
    // Password change: the old password stops working, the new one opens the same snapshots.
    keys::change_password(&admin, "new admin", KDF).unwrap();
    assert!(matches!(
        Repository::open(storage.clone(), "admin"),
        Err(CoreError::WrongPassword)
    ));
    let admin = Repository::open(storage.clone(), "new admin").unwrap();
    assert_eq!(admin.load_snapshots().unwrap().0.len(), 1);
    assert_eq!(storage.list(Kind::Key).unwrap().len(), 1);
    // NFC normalisation: "é" typed as e + combining accent opens a key made with the composed form.
    keys::add(&admin, "caf\u{e9}", KeyKind::Full, KDF, &owner("x")).unwrap();
    assert!(Repository::open(storage.clone(), "cafe\u{301}").is_ok());
    // Paper export, then every key file lost, then import.
    let paper = keys::export_paper(&admin).unwrap();
    let mut typo = paper.to_string();
    let pos = typo.find("\n02: ").unwrap() + 5;
    typo.replace_range(
        pos..pos + 1,
        if &typo[pos..pos + 1] == "0" { "1" } else { "0" },
    );
    for (name, _) in storage.list(Kind::Key).unwrap() {
        storage.delete(Kind::Key, &name).unwrap();
    }
    let err = keys::import_paper(storage.clone(), &typo, "recovered", KDF, &owner("x"), None)
        .unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
    let imported =
        keys::import_paper(storage.clone(), &paper, "recovered", KDF, &owner("x"), None).unwrap();
    // The lost keys' objects are listed for the admin to judge, not accepted blindly.
    let back = Repository::open(storage.clone(), "recovered").unwrap();
    assert!(back.load_snapshots().unwrap().0.is_empty());
    // Every part of the key material came back, the chunker key too (dedup needs it).
    let (old, new) = (admin.key(), back.key());
    assert_eq!(
        (old.secret_key, old.public_key, old.id_key),
        (new.secret_key, new.public_key, new.id_key)
    );
    assert_eq!(
        (old.chunker_key, old.admin_secret, old.admin_public),
        (new.chunker_key, new.admin_secret, new.admin_public)
    );
    assert_eq!(imported.unknown.len(), 1, "{:?}", imported.unknown);
    let listed = &imported.unknown[0].snapshots;
    assert_eq!(listed[0].0, b.snapshot_id.unwrap());
    assert_eq!(listed[0].1.as_ref().unwrap().hostname, "a");
    let unknown = keys::unknown_signers(storage.as_ref(), back.key(), back.trust()).unwrap();
    let chosen = keys::choose_signers(&unknown, &["all".into()]).unwrap();
    keys::accept_signers(&back, &chosen, "now").unwrap();
    let back = Repository::open(storage.clone(), "recovered").unwrap();
    let (list, skipped) = back.load_snapshots().unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    let r = restore(&back, &list[0].0, &dir.path().join("t"));
    assert!(r.problems.is_empty());
    assert_eq!(list[0].0, b.snapshot_id.unwrap());
}

/// Issue 11, item 5: dedup lists are sealed for their writer (format §9, §13). A put-only host
/// reads neither another host's nor a full key's lists and learns no blob id from them; it
/// still deduplicates against its own earlier backups; a full key deduplicates against its own
/// and other full keys' index objects as before, never against put-only keys'.
#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn dedup_lists_are_readable_by_their_writer_only() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, admin) = setup(dir.path());
    keys::add(&admin, "a", KeyKind::PutOnly, KDF, &owner("a")).unwrap();
    keys::add(&admin, "b", KeyKind::PutOnly, KDF, &owner("b")).unwrap();
    keys::add(&admin, "admin2", KeyKind::Full, KDF, &owner("admin2")).unwrap();
    let (a, b) = (
        Repository::open(storage.clone(), "a").unwrap(),
        Repository::open(storage.clone(), "b").unwrap(),
    );
    let src_a = source(dir.path(), "a", &data(21, 3 << 20));
    let first = backup(&a, &src_a, "a", None);
    assert!(first.summary.data_blobs >= 1);
    let src_admin = source(dir.path(), "admin", &data(22, 2 << 20));
    let by_admin = backup(&admin, &src_admin, "admin", None);
    assert!(by_admin.summary.data_blobs >= 1);

    // b opens no list but its own (it has none yet): every other object fails to authenticate.
    let mut others = 0;
    for (name, _) in storage.list(Kind::Index).unwrap() {
        let (signer, env) =
            IndexFile::envelope(&storage.read(Kind::Index, &name).unwrap()).unwrap();
        assert_ne!(signer, b.signer().public());
        assert!(matches!(
            IndexFile::dedup_list(b.signer(), &env),
            Err(FormatError::Authentication { .. })
        ));
        others += 1;
    }
    assert!(others >= 2, "a's and the admin's index objects");
    assert!(
        b.load_dedup_set().unwrap().is_empty(),
        "b learns no blob id"
    );
    // So b uploads content a and the admin stored already (no confirmation of their files).
    let src_b = source(dir.path(), "b", &data(21, 3 << 20));
    std::fs::write(src_b.join("admin.bin"), data(22, 2 << 20)).unwrap();
    let b_first = backup(&b, &src_b, "b", None);
    // (Every host's note.txt differs: a's and the admin's data blobs less their notes, plus
    // b's own note.)
    assert_eq!(
        b_first.summary.data_blobs,
        (first.summary.data_blobs - 1) + (by_admin.summary.data_blobs - 1) + 1,
        "{:?}",
        b_first.summary
    );

    // a deduplicates against its own earlier backup: reads every file (no cache), uploads no
    // blob; the blob ids it sees are exactly those of its own uploads.
    let admin = Repository::open(storage.clone(), "admin").unwrap();
    let index = admin.load_index().unwrap();
    let a_lister = tresor_core::repo::index::Lister::PutOnly(a.signer().public());
    let own: std::collections::BTreeSet<_> = index
        .all_locations()
        .filter(|(_, l)| index.pack(l.pack).lister == a_lister)
        .map(|(id, _)| *id)
        .collect();
    assert!(own.len() >= 2);
    let seen: std::collections::BTreeSet<_> = a.load_dedup_set().unwrap().into_iter().collect();
    assert_eq!(seen, own);
    let again = backup(&a, &src_a, "a", None);
    assert_eq!(again.summary.bytes_read, first.summary.bytes_read);
    // (Directory trees may change: reading updates access times.)
    assert_eq!(again.summary.data_blobs, 0, "{:?}", again.summary);
    assert!(again.summary.data_added < 16 << 10, "{:?}", again.summary);

    // Full keys deduplicate against their own and other full keys' objects, not put-only ones'.
    let admin2 = Repository::open(storage.clone(), "admin2").unwrap();
    let full_seen = admin2.load_dedup_set().unwrap();
    let full_listed: std::collections::BTreeSet<_> = index
        .all_locations()
        .filter(|(_, l)| index.pack(l.pack).lister == tresor_core::repo::index::Lister::Full)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(
        full_seen
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>(),
        full_listed
    );
    let r = backup(&admin2, &src_admin, "admin", None);
    assert_eq!(r.summary.data_blobs, 0, "{:?}", r.summary);
    let r = backup(&admin, &src_a, "admin", None);
    assert_eq!(
        r.summary.data_blobs, first.summary.data_blobs,
        "{:?}",
        r.summary
    );
    // Every snapshot restores byte for byte.
    for (id, src, content) in [
        (again.snapshot_id.unwrap(), &src_a, data(21, 3 << 20)),
        (b_first.snapshot_id.unwrap(), &src_b, data(21, 3 << 20)),
    ] {
        let t = dir.path().join(format!("t-{}", id.short()));
        let r = restore(&admin, &id, &t);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        let back = t.join(src.strip_prefix("/").unwrap());
        assert!(std::fs::read(back.join("data.bin")).unwrap() == content);
    }
}

/// The cost of per-writer dedup lists after a prune (format §13): when prune re-lists a put-only
/// host's still-used data under its own full key (here by repacking a half-used pack), the
/// host's next backup uploads that data once more; the prune after that keeps the host's own
/// copies (read and verified first) and condemns the full key's, and from then on the host
/// uploads nothing again — no churn.
#[test]
fn a_put_only_host_uploads_data_prune_relisted_once_then_never_again() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, _) = setup(dir.path());
    let admin = Repository::open(storage.clone(), "admin").unwrap();
    keys::add(&admin, "a", KeyKind::PutOnly, KDF, &owner("a")).unwrap();
    let a = Repository::open(storage.clone(), "a").unwrap();
    let admin = Repository::open(storage.clone(), "admin").unwrap();
    let cache = dir.path().join("cache");
    let src = source(dir.path(), "a", &data(31, 3 << 20));
    std::fs::write(src.join("gone.bin"), data(32, 3 << 20)).unwrap();
    // One worker packs data.bin's and gone.bin's chunks into the same pack, in file order: the
    // pack that is half used once gone.bin is forgotten (with two workers the files may land in
    // packs of their own, and there is nothing to repack).
    let one_worker = tresor_core::archiver::BackupOptions {
        cache_dir: Some(cache.clone()),
        workers: 1,
        ..backup_options(&src, "a")
    };
    let s1 = tresor_core::archiver::backup(&a, one_worker, &NoProgress)
        .unwrap()
        .snapshot_id
        .unwrap();
    std::fs::remove_file(src.join("gone.bin")).unwrap();
    let s2 = backup(&a, &src, "a", Some(&cache));
    assert_eq!(s2.summary.data_blobs, 0);
    tresor_core::forget::remove(&admin, &[s1]).unwrap();
    let prune = || {
        let plan = tresor_core::prune::plan(&admin, &Default::default()).unwrap();
        plan.execute(&admin, &NoProgress).unwrap();
        plan
    };
    let plan = prune();
    assert_eq!(plan.repack.len(), 1, "{plan:?}");
    let restores = |id: &tresor_format::ObjectId, round: &str| {
        let t = dir.path().join(round);
        let r = restore(&admin, id, &t);
        assert!(r.problems.is_empty(), "{round}: {:?}", r.problems);
        let back = t.join(src.strip_prefix("/").unwrap());
        assert!(std::fs::read(back.join("data.bin")).unwrap() == data(31, 3 << 20));
        assert!(!back.join("gone.bin").exists());
    };
    restores(&s2.snapshot_id.unwrap(), "after repack");
    // data.bin's blobs are now listed by the admin's index object only: uploaded once more.
    let s3 = backup(&a, &src, "a", Some(&cache));
    assert_eq!(s3.summary.files_unmodified, 0, "{:?}", s3.summary);
    assert!(s3.summary.data_blobs >= 1, "{:?}", s3.summary);
    // The next prune keeps the host's own copies and condemns the repacked pack.
    let plan = prune();
    assert!(!plan.condemn_unused.is_empty(), "{plan:?}");
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    restores(&s3.snapshot_id.unwrap(), "after the host's copies won");
    // From now on nothing is uploaded again and prune leaves the host's packs alone.
    for round in 0..2 {
        let s = backup(&a, &src, "a", Some(&cache));
        assert_eq!(s.summary.data_blobs, 0, "round {round}: {:?}", s.summary);
        assert_eq!(
            s.summary.files_unmodified, 2,
            "round {round}: {:?}",
            s.summary
        );
        let plan = prune();
        assert!(
            plan.condemn_unused.is_empty() && plan.repack.is_empty(),
            "{plan:?}"
        );
        restores(&s.snapshot_id.unwrap(), &format!("round {round}"));
    }
}
