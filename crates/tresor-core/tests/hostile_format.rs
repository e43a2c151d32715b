//! Hostile objects on the decoding side (issue 10): key files with costly Argon2id parameters,
//! trees that break the rules of format §10 written with a put-only key, and the prune record
//! decoder fed garbage.

mod common;
use common::*;

use std::time::{Duration, Instant};
use tresor_core::{Repository, check, keys};
use tresor_format::ObjectId;
use tresor_format::keyfile::{KdfParams, KeyFile, KeyKind};
use tresor_storage::{Kind, Storage};

/// Store `kf` as a key file; returns its name.
fn plant_key(storage: &dyn Storage, kf: &KeyFile) -> String {
    let bytes = serde_json::to_vec_pretty(kf).unwrap();
    let name = ObjectId::of(&bytes).to_hex();
    storage.write(Kind::Key, &name, &bytes).unwrap();
    name
}

#[test]
fn a_planted_key_file_cannot_delay_opening() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, admin) = setup(dir.path());
    let (honest_name, _) = storage.list(Kind::Key).unwrap().pop().unwrap();
    keys::add(&admin, "host", KeyKind::PutOnly, KDF, &owner("vps")).unwrap();
    let honest = KeyFile::from_bytes(&storage.read(Kind::Key, &honest_name).unwrap()).unwrap();
    // Out of bounds: malformed, never attempted (the old code ran Argon2 with 4 TiB).
    let mut huge = honest.clone();
    huge.params = KdfParams {
        m_kib: u32::MAX,
        t: u32::MAX,
        p: 1,
    };
    let huge_name = plant_key(storage.as_ref(), &huge);
    // Within bounds but as costly as allowed (2 GiB × 1 pass), named to sort before the
    // honest key file: the old code tried key files in name order.
    let mut costly = honest.clone();
    costly.params = KdfParams {
        m_kib: KdfParams::MAX_M_KIB,
        t: 1,
        p: 1,
    };
    assert_eq!(costly.params.cost(), KdfParams::MAX_COST);
    let costly_name = (0..)
        .find_map(|i| {
            costly.username = format!("planted{i}");
            let bytes = serde_json::to_vec_pretty(&costly).unwrap();
            (ObjectId::of(&bytes).to_hex() < honest_name)
                .then(|| plant_key(storage.as_ref(), &costly))
        })
        .unwrap();
    assert!(costly_name < honest_name);
    let started = Instant::now();
    let repo = Repository::open(storage.clone(), "admin").unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(repo.key_id().to_hex(), honest_name);
    // `check` names the malformed one (the key check and the trust loader both report it);
    // the costly one is a well-formed key file.
    let report = check::check(&repo, check::ReadData::None).unwrap();
    let msg = format!(
        "key {huge_name}: malformed key file: kdf parameters: memory 4294967295 KiB over 2097152 KiB"
    );
    assert!(!report.errors.is_empty());
    assert!(
        report.errors.iter().all(|e| *e == msg),
        "{:?}",
        report.errors
    );
    // Other keys open at once too.
    let started = Instant::now();
    let host = Repository::open(storage.clone(), "host").unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(host.key_kind(), KeyKind::PutOnly);
}

#[test]
fn names_that_cannot_enter_a_tree_are_refused_before_anything_is_written() {
    use tresor_core::archiver::{self, StdinSource};
    let dir = tempfile::tempdir().unwrap();
    let (storage, repo) = setup(dir.path());
    let stdin = |name: &str| {
        let mut o = backup_options(dir.path(), "h");
        o.paths.clear();
        o.stdin = Some(StdinSource {
            filename: name.into(),
            reader: Box::new(&b"data"[..]),
        });
        o
    };
    for (name, shown) in [
        ("../../../../tmp/x", r#""../../../../tmp/x""#),
        ("..", r#""..""#),
        ("", r#""""#),
        ("a/b", r#""a/b""#),
        ("nul\0", r#""nul\x00""#),
    ] {
        let e = archiver::backup(&repo, stdin(name), &tresor_core::NoProgress).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "stdin file name {shown}: not a valid file name (not empty, not . or .., no / or NUL)"
            )
        );
    }
    let path = |p: &str| {
        let mut o = backup_options(dir.path(), "h");
        o.paths = vec![p.into()];
        o
    };
    let rel = dir.path().join("x/../y").display().to_string();
    for p in ["relative/x", &rel, "/a/./b", "/a//b", "/a/b/", "./a"] {
        let e = archiver::backup(&repo, path(p), &tresor_core::NoProgress).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("backup path {p}: not absolute and normalised (no ., .., // or trailing /)")
        );
    }
    let e = archiver::backup(&repo, path("/"), &tresor_core::NoProgress).unwrap_err();
    assert_eq!(
        e.to_string(),
        "backing up / itself is not supported: name the directories below it"
    );
    for kind in [Kind::Marker, Kind::Pack, Kind::Index, Kind::Snapshot] {
        assert_eq!(storage.list(kind).unwrap(), vec![], "{kind:?}");
    }
}
