//! `tresor protect` and lock extension after a backup, on a SeaweedFS bucket with Object Lock
//! (`TRESOR_TEST_S3_URL`; failing in CI without a server). Every retention is read back from
//! the bucket (`HEAD`), not from tresor's report.

use std::time::{Duration, SystemTime};
use tresor_s3::{S3Options, S3Storage};
use tresor_storage::{Kind, Storage};
use tresor_testkit::prelude::*;
use tresor_testkit::require::{random_hex, s3_url};

const DAY: Duration = Duration::from_secs(86_400);

/// A fresh bucket with Object Lock enabled; its URL (`s3:http://host:port/bucket/repo`) and a
/// raw storage on it (no lock of its own).
fn lock_bucket() -> Option<(String, S3Storage)> {
    let url = s3_url()?;
    let (scheme, rest) = url.split_once("://").unwrap();
    let endpoint = format!("{scheme}://{}", rest.split('/').next().unwrap());
    let url = format!("{endpoint}/tresor-protect-{}/repo", random_hex(6));
    let s = S3Storage::open(&url, &S3Options::default()).unwrap();
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
    Some((url, s))
}

/// Retain-until dates of every object of `kinds`, by (kind, name).
fn retentions(s: &S3Storage, kinds: &[Kind]) -> Vec<(Kind, String, Option<SystemTime>)> {
    let mut out = Vec::new();
    for &k in kinds {
        for (name, _) in s.list(k).unwrap() {
            let until = s.head(k, &name).unwrap().locked_until();
            out.push((k, name, until));
        }
    }
    out
}

fn near(a: SystemTime, b: SystemTime) -> bool {
    let d = a
        .duration_since(b)
        .or_else(|_| b.duration_since(a))
        .unwrap();
    d < Duration::from_secs(600)
}

fn json_line(o: &std::process::Output, kind: &str) -> serde_json::Value {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message_type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {}", String::from_utf8_lossy(&o.stdout)))
}

/// Shorten a governance retention as the bucket owner may (bypass): stands for an object
/// uploaded long ago whose lock runs out soon.
fn age(s: &S3Storage, kind: Kind, name: &str, until: SystemTime) {
    let body = format!(
        "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>GOVERNANCE</Mode>\
         <RetainUntilDate>{}</RetainUntilDate></Retention>",
        tresor_s3::s3_date(until).unwrap()
    );
    let r = s
        .bucket_request(
            "PUT",
            &s.key(kind, name),
            "retention",
            &[("x-amz-bypass-governance-retention", "true")],
            body.as_bytes(),
        )
        .unwrap();
    assert!(r.is_success(), "{} {}", r.status, r.text());
}

/// protect extends exactly the snapshot's objects (snapshot, packs, index), never shortens,
/// refuses put-only keys and local repositories; a protected pack survives forget + prune by
/// the admin and a direct DELETE.
#[test]
fn protect_sets_exactly_the_needed_objects_and_never_shortens() {
    let Some((url, s)) = lock_bucket() else {
        return;
    };
    let mut env = Env::new();
    let src = make_tree(env.dir.path());
    env.repo = url.clone().into();
    env.init();
    env.ok(&["backup", "--quiet", src.to_str().unwrap()]);
    let before = retentions(&s, &[Kind::Pack, Kind::Index, Kind::Snapshot]);
    assert!(before.iter().all(|(_, _, u)| u.is_none()), "{before:?}");

    let o = env.ok(&["protect", "latest", "--for", "30d", "--json"]);
    let want = SystemTime::now() + 30 * DAY;
    let after = retentions(&s, &[Kind::Pack, Kind::Index, Kind::Snapshot]);
    assert!(after.len() >= 3, "{after:?}");
    for (k, n, u) in &after {
        assert!(near(u.expect("retained"), want), "{k} {n}: {u:?}");
    }
    let untouched = retentions(&s, &[Kind::Config, Kind::Key]);
    assert!(
        untouched.iter().all(|(_, _, u)| u.is_none()),
        "{untouched:?}"
    );
    let v = json_line(&o, "protect_summary");
    assert_eq!(v["objects"], after.len());
    assert_eq!(v["extended"], after.len());
    assert_eq!(v["already_covered"], 0);

    // --for 1d after --for 30d: nothing sent, still 30 days.
    let o = env.ok(&["protect", "latest", "--for", "1d", "--json"]);
    let v = json_line(&o, "protect_summary");
    assert_eq!(
        (v["extended"].as_u64(), v["already_covered"].as_u64()),
        (Some(0), Some(after.len() as u64))
    );
    assert_eq!(
        retentions(&s, &[Kind::Pack, Kind::Index, Kind::Snapshot]),
        after
    );

    // --list shows the snapshot and until when.
    let o = env.ok(&["protect", "--list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");

    // A put-only key cannot protect (it cannot read the trees).
    let pw = env.password_file("po", "put-only-pw\n");
    env.add_put_only_key("host1", &pw);
    let o = env
        .cmd()
        .env_remove("TRESOR_PASSWORD")
        .env("TRESOR_PASSWORD_FILE", &pw)
        .args(["protect", "latest", "--for", "60d"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(13),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // The admin forgets and prunes: the protected snapshot and its packs stay.
    env.ok(&["forget", "latest"]);
    env.ok(&["prune"]);
    let (pack, _) = s.list(Kind::Pack).unwrap().remove(0);
    assert_eq!(
        retentions(&s, &[Kind::Pack, Kind::Index, Kind::Snapshot]),
        after
    );
    // A direct DELETE of a protected pack (as anyone with delete rights) fails on the bucket.
    let key = s.key(Kind::Pack, &pack);
    let head = s.head(Kind::Pack, &pack).unwrap();
    let q = format!("versionId={}", head.version_id.clone().unwrap_or_default());
    let r = s.bucket_request("DELETE", &key, &q, &[], b"").unwrap();
    assert!(!r.is_success(), "{} {}", r.status, r.text());
    env.ok(&[
        "restore",
        "latest",
        "--target",
        env.path("out").to_str().unwrap(),
    ]);

    // A local repository cannot be protected.
    let local = Env::new();
    local.init();
    let o = local.run(&["protect", "latest", "--for", "1d"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("protect needs S3 Object Lock"));
}

/// In a repository with Object Lock days, each backup extends the locks of the old packs the
/// new snapshot reuses; objects far enough out are not touched; the cap leaves the rest.
#[test]
fn backup_extends_locks_of_reused_old_packs_within_the_cap() {
    let Some((url, s)) = lock_bucket() else {
        return;
    };
    let mut env = Env::new();
    let src = make_tree(env.dir.path());
    env.repo = url.into();
    env.ok(&[
        "init",
        "--kdf-memory-kib",
        "8192",
        "--kdf-iterations",
        "1",
        "--s3-object-lock-days",
        "4",
    ]);
    let o = env.ok(&["backup", "--json", src.to_str().unwrap()]);
    // Fresh objects are 4 days out, beyond now + 2 days: nothing to extend.
    let v = json_line(&o, "extend_locks");
    assert_eq!(v["extended"], 0, "{v}");
    // The first backup's packs and index "age": their locks run out in an hour.
    let soon = SystemTime::now() + Duration::from_secs(3600);
    let old = retentions(&s, &[Kind::Pack, Kind::Index]);
    for (k, n, _) in &old {
        age(&s, *k, n, soon);
    }
    std::fs::write(src.join("new-file"), b"new data for the second snapshot").unwrap();
    let o = env.ok(&["backup", "--json", src.to_str().unwrap()]);
    let v = json_line(&o, "extend_locks");
    assert_eq!(v["extended"], old.len(), "{v}");
    assert_eq!(v["left"], 0);
    let want = SystemTime::now() + 4 * DAY;
    for (k, n, _) in &old {
        let u = s.head(*k, n).unwrap().locked_until().unwrap();
        assert!(near(u, want), "{k} {n} moved forward: {u:?}");
    }

    // Age them again: with a cap of 1, one is extended, the rest left and said so.
    for (k, n, _) in &old {
        age(&s, *k, n, soon);
    }
    let o = env.ok(&["backup", "--extend-locks-max", "1", src.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("{} objects left for the next run", old.len() - 1)),
        "{err}"
    );
    let moved = old
        .iter()
        .filter(|(k, n, _)| !near(s.head(*k, n).unwrap().locked_until().unwrap(), soon))
        .count();
    assert_eq!(moved, 1);
}
