//! The cold tier (issue 18): data packs may lie in a class that cannot be read without a thaw
//! (S3 `GLACIER`, `DEEP_ARCHIVE`), so everything but restore, dump, `check --read-data` and copy
//! must work without reading one, and those four thaw first (on moto, below; more in
//! `cold_thaw.rs`). Here every data pack of a local repository is overwritten
//! with garbage of the same size (any read of one fails to decrypt) and backup (first and
//! incremental), ls, find, diff, snapshots, forget and stats must still succeed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tresor_core::Repository;
use tresor_format::blob::BlobType;
use tresor_testkit::prelude::*;

#[path = "cold_cost.rs"]
mod cost;
#[path = "cold_mount.rs"]
mod mount;
#[path = "cold_serve.rs"]
mod serve;
#[path = "cold_thaw.rs"]
mod thaw;

/// The local paths of the packs holding data blobs and of those holding tree blobs, from the
/// index.
fn packs_by_type(repo_dir: &Path) -> (BTreeSet<PathBuf>, BTreeSet<PathBuf>) {
    let storage = Arc::new(tresor_storage::local::LocalStorage::new(
        repo_dir.to_path_buf(),
    ));
    let repo = Repository::open(storage, PASSWORD).unwrap();
    let index = repo.load_index().unwrap();
    let (mut data, mut trees) = (BTreeSet::new(), BTreeSet::new());
    for (_, loc) in index.blobs() {
        let id = index.pack(loc.pack).id.to_hex();
        let path = repo_dir.join("data").join(&id[..2]).join(&id);
        match loc.blob_type {
            BlobType::Data => data.insert(path),
            BlobType::Tree => trees.insert(path),
        };
    }
    (data, trees)
}

/// Overwrite every data pack with 0xAA bytes of the same length: a stand-in for a cold object
/// (listed, sized, unreadable). Returns how many were spoiled.
fn freeze_data_packs(repo_dir: &Path) -> usize {
    let (data, trees) = packs_by_type(repo_dir);
    assert!(data.is_disjoint(&trees), "a pack holds both kinds");
    for p in &data {
        let len = std::fs::metadata(p).unwrap().len() as usize;
        std::fs::write(p, vec![0xAA; len]).unwrap();
    }
    data.len()
}

#[test]
fn metadata_commands_never_read_data_packs() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("docs")).unwrap();
    std::fs::write(src.join("a.txt"), b"alpha").unwrap();
    std::fs::write(
        src.join("docs/b.txt"),
        tresor_testkit::repo::data(1, 300_000),
    )
    .unwrap();
    env.backup_json(&[&src], &[], 0);
    assert!(freeze_data_packs(&env.repo) >= 1);
    // The spoiled packs are unreadable: a restore fails.
    let target = env.path("out");
    let t = target.display().to_string();
    let o = env.run(&["restore", "latest", "--target", &t]);
    assert_ne!(o.status.code(), Some(0), "restore read a spoiled pack");

    // Incremental backup: an unchanged file, a changed one, a new one.
    std::fs::write(
        src.join("docs/b.txt"),
        tresor_testkit::repo::data(2, 200_000),
    )
    .unwrap();
    std::fs::write(src.join("c.txt"), b"gamma").unwrap();
    let v = env.backup_json(&[&src], &[], 0);
    assert_eq!(v["files_new"], 1, "{v}");
    assert_eq!(v["files_changed"], 1, "{v}");
    assert_eq!(v["files_unmodified"], 1, "{v}");
    assert!(freeze_data_packs(&env.repo) >= 2);
    // A second backup of the same tree with --force (rereads every file, dedups by index).
    env.backup_json(&[&src], &["--force"], 0);

    let ids = env.snapshot_ids();
    assert_eq!(ids.len(), 3);
    let ls = env.ok(&["ls", &ids[1]]);
    let ls = String::from_utf8_lossy(&ls.stdout);
    assert!(ls.contains("c.txt") && ls.contains("b.txt"), "{ls}");
    let found = env.ok(&["find", "*.txt"]);
    assert!(String::from_utf8_lossy(&found.stdout).contains("c.txt"));
    let diff = env.ok(&["diff", &ids[0], &ids[1]]);
    let diff = String::from_utf8_lossy(&diff.stdout);
    assert!(diff.contains("c.txt") && diff.contains("b.txt"), "{diff}");
    env.ok(&["snapshots"]);
    for mode in [
        "restore-size",
        "files-by-contents",
        "raw-data",
        "blobs-per-file",
    ] {
        env.ok(&["stats", "--mode", mode]);
    }
    env.ok(&["forget", "--keep-last", "2"]);
    assert_eq!(env.snapshot_ids().len(), 2);
}

/// Runs boto3 as moto's administrator: `create BUCKET`, `classes BUCKET PREFIX` (one line
/// `KEY CLASS` per object, from HEAD), `sizes BUCKET PREFIX` (`KEY SIZE CLASS`, size from the
/// listing, class from HEAD), `reclass BUCKET KEY CLASS` (the object written again in `CLASS`),
/// `get BUCKET KEY` (`ok` or the error code).
const BOTO: &str = r#"
import sys, boto3, botocore
endpoint, key, secret, cmd = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key,
                  aws_secret_access_key=secret, region_name="us-east-1")
if cmd == "create":
    s3.create_bucket(Bucket=sys.argv[5])
elif cmd == "classes":
    bucket, prefix = sys.argv[5:7]
    for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/")["Contents"]:
        h = s3.head_object(Bucket=bucket, Key=o["Key"])
        print(o["Key"][len(prefix) + 1:], h.get("StorageClass", "STANDARD"))
elif cmd == "sizes":
    bucket, prefix = sys.argv[5:7]
    for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/")["Contents"]:
        h = s3.head_object(Bucket=bucket, Key=o["Key"])
        print(o["Key"][len(prefix) + 1:], o["Size"], h.get("StorageClass", "STANDARD"))
elif cmd == "reclass":
    bucket, key, cls = sys.argv[5:8]
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=key, Body=body, StorageClass=cls)
elif cmd == "get":
    try:
        s3.get_object(Bucket=sys.argv[5], Key=sys.argv[6])
        print("ok")
    except botocore.exceptions.ClientError as e:
        print(e.response["Error"]["Code"])
"#;

fn boto(m: &tresor_testkit::require::Moto, args: &[&str]) -> String {
    let o = std::process::Command::new(&m.python)
        .args(["-c", BOTO, &m.endpoint, &m.admin_key, &m.admin_secret])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// The keys (below the prefix `repo`) of the DEEP_ARCHIVE objects; every one is a pack, every
/// other object is STANDARD, and some pack (a tree pack) is STANDARD.
fn cold_packs(m: &tresor_testkit::require::Moto, bucket: &str) -> Vec<String> {
    let bucket = bucket.to_string();
    let classes = boto(m, &["classes", &bucket, "repo"]);
    let mut cold = Vec::new();
    for line in classes.lines() {
        let (key, class) = line.split_once(' ').unwrap();
        if class == "DEEP_ARCHIVE" {
            assert!(key.starts_with("data/"), "{line}");
            cold.push(key.to_string());
        } else {
            assert_eq!(class, "STANDARD", "{line}");
        }
    }
    assert!(!cold.is_empty(), "{classes}");
    assert!(
        classes
            .lines()
            .any(|l| l.starts_with("data/") && l.ends_with(" STANDARD")),
        "no hot tree pack: {classes}"
    );
    let got = boto(m, &["get", &bucket, &format!("repo/{}", cold[0])]);
    assert_eq!(got.trim(), "InvalidObjectState");
    cold
}

/// A repository on a fresh moto bucket whose data packs go to DEEP_ARCHIVE.
struct Cold {
    m: tresor_testkit::require::Moto,
    bucket: String,
    env: Env,
    url: String,
    cache: PathBuf,
}

impl Cold {
    /// `None` where moto is missing (the require module makes that a failure in CI).
    fn new() -> Option<Self> {
        let m = tresor_testkit::require::moto()?;
        let bucket = format!("cold-{}", tresor_testkit::require::random_hex(6));
        boto(&m, &["create", &bucket]);
        let env = Env::new();
        let host = m.endpoint.trim_start_matches("http://");
        let url = format!("s3:http://{host}/{bucket}/repo");
        let cache = env.path("cache");
        Some(Cold {
            m,
            bucket,
            env,
            url,
            cache,
        })
    }

    /// `tresor` on the bucket (S3 credentials, the cache), data packs to DEEP_ARCHIVE.
    fn cmd(&self) -> std::process::Command {
        let mut c = self.env.cmd();
        c.env("TRESOR_REPOSITORY", &self.url)
            .env("AWS_ACCESS_KEY_ID", &self.m.admin_key)
            .env("AWS_SECRET_ACCESS_KEY", &self.m.admin_secret)
            .env("AWS_REGION", "us-east-1")
            .env("TRESOR_S3_STORAGE_CLASS_DATA", "DEEP_ARCHIVE")
            .env("TRESOR_CACHE_DIR", &self.cache);
        c
    }

    /// Run tresor on the bucket with `args`, requiring exit `code`; stdout and stderr.
    fn run(&self, args: &[&str], code: i32) -> (String, String) {
        let o = self.cmd().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        (String::from_utf8_lossy(&o.stdout).to_string(), err)
    }

    /// `init` with cheap key derivation, then a backup of `dir`; the snapshot id.
    fn init_and_backup(&self, dir: &Path) -> String {
        self.run(
            &["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"],
            0,
        );
        self.backup(dir)
    }

    /// A backup of `dir`; the snapshot id.
    fn backup(&self, dir: &Path) -> String {
        let (out, _) = self.run(&["backup", "--json", dir.to_str().unwrap()], 0);
        let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
        v["snapshot_id"].as_str().unwrap().to_string()
    }

    /// The lines of the thaw request record (`PACK-ID TIER UNIX-SECONDS`).
    fn recorded(&self) -> Vec<String> {
        let mut files = std::fs::read_dir(self.cache.join("thaw")).unwrap();
        let f = files.next().unwrap().unwrap();
        assert!(files.next().is_none());
        let text = std::fs::read_to_string(f.path()).unwrap();
        text.lines().map(str::to_string).collect()
    }
}

/// A full round trip through thawing against moto, whose archived objects fail `GetObject` with
/// `InvalidObjectState` until `RestoreObject` (moto finishes a restore at once: the next `HEAD`
/// shows `ongoing-request="false"`). Data packs go to DEEP_ARCHIVE, everything else stays
/// STANDARD; a restore with `--thaw-wait 0s` sends the thaw requests and exits 9; the rerun sends
/// none again and restores every file byte for byte.
#[test]
fn restore_through_thawing_on_moto() {
    let Some(c) = Cold::new() else {
        return;
    };
    let (m, bucket, env, cache) = (&c.m, &c.bucket, &c.env, &c.cache);
    let run = |args: &[&str], code: i32| c.run(args, code).1;
    run(
        &["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"],
        0,
    );
    let src = env.path("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("a"), b"alpha").unwrap();
    std::fs::write(src.join("d/big"), tresor_testkit::repo::data(3, 500_000)).unwrap();
    run(&["backup", &src.display().to_string()], 0);

    // Data packs are cold, every other object hot; a cold pack cannot be read.
    let cold = cold_packs(m, bucket);
    // ls needs no thaw.
    run(&["ls", "latest"], 0);

    let target = env.path("out");
    let t = target.display().to_string();
    let err = run(
        &[
            "restore",
            "latest",
            "--target",
            &t,
            "--thaw-wait",
            "0s",
            "--thaw-tier",
            "bulk",
        ],
        9,
    );
    assert!(
        err.contains(&format!("thaw requests sent now {}, earlier 0", cold.len())),
        "{err}"
    );
    assert!(err.contains("cold data still thawing"), "{err}");
    assert!(!target.join("a").exists());
    let err = run(
        &["restore", "latest", "--target", &t, "--thaw-wait", "1m"],
        0,
    );
    assert!(err.contains("thaw requests sent now 0"), "{err}");
    let recorded = std::fs::read_dir(cache.join("thaw"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let lines = std::fs::read_to_string(recorded.path()).unwrap();
    assert_eq!(lines.lines().count(), cold.len(), "{lines}");
    assert!(
        lines.lines().all(|l| l.split(' ').nth(1) == Some("bulk")),
        "{lines}"
    );
    let inner = target.join(src.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(inner.join("a")).unwrap(), b"alpha");
    assert_eq!(
        std::fs::read(inner.join("d/big")).unwrap(),
        tresor_testkit::repo::data(3, 500_000)
    );
}

/// The pack ids of cold object keys (`data/xx/ID`).
fn ids_of(keys: &[String]) -> BTreeSet<String> {
    keys.iter()
        .map(|k| k.rsplit('/').next().unwrap().to_string())
        .collect()
}

/// The `id`s of a prune plan's list `name`.
fn plan_ids(v: &serde_json::Value, name: &str) -> BTreeSet<String> {
    (v["plan"][name].as_array().unwrap().iter())
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

/// Prune on a cold tier against moto (format §16.2): a wholly unused cold pack within its
/// class's 180 days is kept (named with the end of its minimum storage duration), a partly
/// used one is never repacked (a repack would read it: moto refuses with
/// `InvalidObjectState`), and `--cold-early-delete` condemns the wholly unused one; every cold
/// object is still there after both runs, and the kept snapshot still restores through thawing.
#[test]
#[allow(clippy::too_many_lines, reason = "one scenario on one bucket")]
fn prune_leaves_cold_packs_alone_on_moto() {
    let Some(c) = Cold::new() else {
        return;
    };
    let init = ["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"];
    c.run(&init, 0);
    let (gone, kept) = (c.env.path("gone"), c.env.path("kept"));
    std::fs::create_dir_all(&gone).unwrap();
    std::fs::create_dir_all(&kept).unwrap();
    std::fs::write(gone.join("g"), tresor_testkit::repo::data(5, 300_000)).unwrap();
    let backup = |dir: &Path| {
        let (out, _) = c.run(&["backup", "--json", dir.to_str().unwrap()], 0);
        let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
        v["snapshot_id"].as_str().unwrap().to_string()
    };
    let first = backup(&gone);
    let unused = ids_of(&cold_packs(&c.m, &c.bucket));
    // Two files in one pack; the later snapshot keeps only one of them.
    std::fs::write(kept.join("k1"), tresor_testkit::repo::data(6, 300_000)).unwrap();
    std::fs::write(kept.join("k2"), tresor_testkit::repo::data(7, 300_000)).unwrap();
    let second = backup(&kept);
    let mut partly = ids_of(&cold_packs(&c.m, &c.bucket));
    partly.retain(|p| !unused.contains(p));
    std::fs::remove_file(kept.join("k2")).unwrap();
    backup(&kept);
    assert_eq!(
        (unused.len(), partly.len()),
        (1, 1),
        "{unused:?} {partly:?}"
    );
    c.run(&["forget", &first, &second], 0);
    let before = cold_packs(&c.m, &c.bucket);

    let (out, _) = c.run(&["prune", "--json"], 0);
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    super::json_contract::check("prune", &v);
    let kept_cold = plan_ids(&v, "cold_kept");
    let want: BTreeSet<String> = unused.union(&partly).cloned().collect();
    assert_eq!(kept_cold, want, "{v}");
    assert!(plan_ids(&v, "cold_early").is_empty(), "{v}");
    for p in v["plan"]["cold_kept"].as_array().unwrap() {
        assert_eq!(p["class"], "DEEP_ARCHIVE", "{p}");
        let until: jiff::Timestamp = p["minimum_storage_until"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let days = until.duration_since(jiff::Timestamp::now()).as_secs_f64() / 86_400.0;
        assert!((179.0..=180.01).contains(&days), "{days} days: {p}");
    }
    let whens: Vec<&str> = (v["stats"]["freed_later"].as_array().unwrap().iter())
        .map(|f| f["when"].as_str().unwrap())
        .collect();
    assert!(
        whens.contains(&"cold_minimum") && whens.contains(&"cold"),
        "{v}"
    );
    assert_eq!(cold_packs(&c.m, &c.bucket), before);

    let (out, _) = c.run(&["prune", "--cold-early-delete", "--json"], 0);
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    super::json_contract::check("prune", &v);
    assert_eq!(plan_ids(&v, "cold_early"), unused, "{v}");
    assert_eq!(plan_ids(&v, "cold_kept"), partly, "{v}");
    // Condemned, not yet deleted (two phases): every cold object is still there.
    assert_eq!(cold_packs(&c.m, &c.bucket), before);

    // The kept snapshot restores through thawing, byte for byte.
    let t = c.env.path("out");
    let args = [
        "restore",
        "latest",
        "--target",
        t.to_str().unwrap(),
        "--thaw-wait",
        "1m",
    ];
    c.run(&args, 0);
    let inner = t.join(kept.strip_prefix("/").unwrap());
    assert_eq!(
        std::fs::read(inner.join("k1")).unwrap(),
        tresor_testkit::repo::data(6, 300_000)
    );
    assert!(!inner.join("k2").exists());
}
