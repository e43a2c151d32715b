//! The main job against a real S3 server (SeaweedFS on loopback in CI; any endpoint through
//! TRESOR_TEST_S3_URL and the AWS_* variables).

use tresor_testkit::prelude::*;

/// A fresh prefix in the S3 test bucket (`tresor_testkit::require`: skipped without a server,
/// failing in CI).
fn s3_url() -> Option<String> {
    tresor_testkit::require::s3_url_under("cli")
}

fn hex_prefix() -> String {
    let mut b = [0u8; 8];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn backup_restore_check_on_s3() {
    let Some(url) = s3_url() else { return };
    let env = Env::new();
    let run = |args: &[&str]| {
        let o = env
            .cmd()
            .env("TRESOR_REPOSITORY", &url)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o
    };
    run(&[
        "init",
        "--kdf-memory-kib",
        "8192",
        "--kdf-iterations",
        "1",
        "--pack-size-mib",
        "4",
    ]);
    let src = make_tree(env.dir.path());
    let before = scan(&src, is_root());
    run(&["backup", "--quiet", src.to_str().unwrap()]);
    let o = run(&["backup", "--json", src.to_str().unwrap()]);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["bytes_read"], 0, "{s}");
    let t = env.path("t");
    run(&[
        "restore",
        "latest",
        "--target",
        t.to_str().unwrap(),
        "--verify",
    ]);
    assert_same(
        &before,
        &scan(&t.join(src.strip_prefix("/").unwrap()), is_root()),
    );
    run(&["check", "--read-data"]);
    // A second init at the same place is refused.
    let o = env
        .cmd()
        .env("TRESOR_REPOSITORY", &url)
        .args(["init"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
}

/// The names of the packs of the repository at `url` that hold tree blobs (from its index).
fn tree_packs(url: &str) -> std::collections::BTreeSet<String> {
    let s = tresor_s3::S3Storage::open(url, &tresor_s3::S3Options::default()).unwrap();
    let repo = tresor_core::Repository::open(std::sync::Arc::new(s), PASSWORD).unwrap();
    let index = repo.load_index().unwrap();
    let trees: std::collections::BTreeSet<String> = (index.blobs())
        .filter(|(_, loc)| matches!(loc.blob_type, tresor_format::blob::BlobType::Tree))
        .map(|(_, loc)| index.pack(loc.pack).id.to_hex())
        .collect();
    assert!(!trees.is_empty(), "a backup writes at least one tree pack");
    trees
}

/// `--s3-storage-class-*` and `--s3-sse` (here through their environment variables) reach every
/// write: data packs get the data class, tree packs and everything else the metadata class, all of it SSE-S3.
#[test]
fn storage_classes_and_sse_from_the_command_line() {
    use tresor_storage::{Kind, Storage};
    let Some(url) = s3_url() else { return };
    let env = Env::new();
    let run = |args: &[&str]| {
        let o = env
            .cmd()
            .env("TRESOR_REPOSITORY", &url)
            .env("TRESOR_S3_STORAGE_CLASS_DATA", "STANDARD_IA")
            .env("TRESOR_S3_SSE", "AES256")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run(&["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"]);
    let src = make_tree(env.dir.path());
    run(&[
        "--s3-storage-class-metadata",
        "REDUCED_REDUNDANCY",
        "backup",
        "--quiet",
        src.to_str().unwrap(),
    ]);
    let s = tresor_s3::S3Storage::open(&url, &tresor_s3::S3Options::default()).unwrap();
    let tree_packs = tree_packs(&url);
    let mut seen = 0;
    for kind in [Kind::Pack, Kind::Index, Kind::Snapshot] {
        let objects = s.list(kind).unwrap();
        assert!(!objects.is_empty(), "{kind}");
        for (name, _) in objects {
            let head = s.head(kind, &name).unwrap();
            // Data packs get the data class; tree packs, like all metadata, the metadata
            // class (docs/format.md §8.1: what backup, ls and find read stays hot).
            let want = if kind == Kind::Pack && !tree_packs.contains(&name) {
                "STANDARD_IA"
            } else {
                "REDUCED_REDUNDANCY"
            };
            assert_eq!(head.storage_class.as_deref(), Some(want), "{kind} {head:?}");
            assert_eq!(head.server_side_encryption.as_deref(), Some("AES256"));
            seen += 1;
        }
    }
    assert!(seen >= 3);
    // The config and key, written by init without a metadata class: the bucket default.
    for kind in [Kind::Config, Kind::Key] {
        for (name, _) in s.list(kind).unwrap() {
            let head = s.head(kind, &name).unwrap();
            assert!(
                matches!(head.storage_class.as_deref(), None | Some("STANDARD")),
                "{kind} {head:?}"
            );
            assert_eq!(head.server_side_encryption.as_deref(), Some("AES256"));
        }
    }
    // A bad class is refused before anything is written.
    let o = env
        .cmd()
        .env("TRESOR_REPOSITORY", &url)
        .args(["--s3-storage-class-metadata", "GLACIER", "snapshots"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("GLACIER_IR"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    run(&["check", "--read-data"]);
}

/// `init --s3-object-lock-days` on a bucket with Object Lock: recorded in the config, and every
/// object written afterwards (by init and by later backups, without any flag) carries the
/// retention. On a bucket without Object Lock, init refuses.
#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn object_lock_from_init_reaches_every_object() {
    use tresor_storage::{Kind, Storage};
    let Some(url) = s3_url() else { return };
    let (scheme, rest) = url.split_once("://").unwrap();
    let endpoint = format!("{scheme}://{}", rest.split('/').next().unwrap());
    let lock_url = format!("{endpoint}/tresor-cli-lock-{}/repo", hex_prefix());
    let s = tresor_s3::S3Storage::open(&lock_url, &tresor_s3::S3Options::default()).unwrap();
    let r = s
        .bucket_request(
            "PUT",
            "",
            "",
            &[("x-amz-bucket-object-lock-enabled", "true")],
            b"",
        )
        .unwrap();
    assert!(r.is_success(), "{}", r.text());
    let env = Env::new();
    let run = |url: &str, args: &[&str]| {
        env.cmd()
            .env("TRESOR_REPOSITORY", url)
            .args(args)
            .output()
            .unwrap()
    };
    let kdf = ["--kdf-memory-kib", "8192", "--kdf-iterations", "1"];

    // Refused where the bucket cannot lock, and without a days count.
    let mut args = vec!["init", "--s3-object-lock-days", "1"];
    args.extend(kdf);
    let o = run(&url, &args);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("does not have Object Lock enabled"), "{err}");
    let o = run(&lock_url, &["init", "--s3-object-lock-mode", "compliance"]);
    assert_eq!(o.status.code(), Some(2), "the mode needs the days");

    let mut args = vec![
        "init",
        "--s3-object-lock-days",
        "2",
        "--s3-object-lock-mode",
        "compliance",
    ];
    args.extend(kdf);
    let o = run(&lock_url, &args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("locked (compliance mode) for 2 days"));
    let src = make_tree(env.dir.path());
    let o = run(&lock_url, &["backup", "--quiet", src.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let (name, _) = s.list(Kind::Config).unwrap().remove(0);
    let config = String::from_utf8(s.read(Kind::Config, &name).unwrap()).unwrap();
    assert!(config.contains("\"object_lock\""), "{config}");
    let want = std::time::SystemTime::now() + std::time::Duration::from_secs(2 * 86_400);
    let mut n = 0;
    for kind in [
        Kind::Config,
        Kind::Key,
        Kind::Pack,
        Kind::Index,
        Kind::Snapshot,
    ] {
        for (name, _) in s.list(kind).unwrap() {
            let head = s.head(kind, &name).unwrap();
            assert_eq!(
                head.lock_mode.as_deref(),
                Some("COMPLIANCE"),
                "{kind} {head:?}"
            );
            let until = s.locked_until(kind, &name).unwrap().expect("locked");
            let off = until
                .duration_since(want)
                .or_else(|_| want.duration_since(until))
                .unwrap();
            assert!(off.as_secs() < 300, "{kind}: {head:?}");
            n += 1;
        }
    }
    assert!(n >= 5);
    let o = run(&lock_url, &["check", "--read-data"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // forget plans around a locked snapshot: not attempted, reported, still there.
    let o = run(&lock_url, &["snapshots", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = v[0]["id"].as_str().unwrap().to_string();
    let o = run(&lock_url, &["forget", &id]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("object lock until"), "{err}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("removed 0 snapshots"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(s.list(Kind::Snapshot).unwrap().len(), 1);
    // prune has nothing to free and attempts no delete the lock would refuse.
    let o = run(&lock_url, &["prune"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!err.contains("refused"), "{err}");
}
