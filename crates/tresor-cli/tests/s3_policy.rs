//! The append-only policy of `tresor s3-policy`, for real against moto with IAM enforced
//! (`scripts/s3-server.sh moto-start`: `TRESOR_TEST_MOTO_ENDPOINT`, an administrator's
//! `TRESOR_TEST_MOTO_ADMIN_KEY` / `_SECRET`, and `TRESOR_TEST_S3_PYTHON` with boto3 for the IAM
//! calls).
//!
//! An administrator creates the bucket and a backup user whose only policy is the printed one,
//! and runs `init` and `key add --put-only`. With the backup user's credentials, backups
//! succeed; through the tresor S3 storage API, deletes are refused (PermissionDenied), overwrites
//! with other bytes are refused (AlreadyExists) and leave the original, rewriting the same bytes
//! succeeds although the user may not read packs, and writes outside data/, index/, snapshots/
//! are refused. The administrator's `check --read-data` is clean afterwards.
//!
//! moto evaluates policy actions and resources but ignores conditions (only `StringEquals` on
//! `sts:ExternalId` is implemented), so `aws:SecureTransport`, `s3:if-none-match` and the
//! encryption conditions are not exercised here: plain-http requests and `PUT`s without
//! `If-None-Match` pass on moto where AWS refuses them. That every tresor write carries
//! `If-None-Match` is tested against SeaweedFS (tests/s3.rs of tresor-s3).

mod common;
use common::*;
use std::process::Command;

struct Moto {
    endpoint: String,
    admin_key: String,
    admin_secret: String,
    python: String,
}

fn moto() -> Option<Moto> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (
        get("TRESOR_TEST_MOTO_ENDPOINT"),
        get("TRESOR_TEST_MOTO_ADMIN_KEY"),
        get("TRESOR_TEST_MOTO_ADMIN_SECRET"),
        get("TRESOR_TEST_S3_PYTHON"),
    ) {
        (Some(endpoint), Some(admin_key), Some(admin_secret), Some(python)) => Some(Moto {
            endpoint,
            admin_key,
            admin_secret,
            python,
        }),
        _ => {
            let ci = std::env::var("CI")
                .map(|v| !v.is_empty() && v != "false" && v != "0")
                .unwrap_or(false);
            assert!(
                !ci,
                "CI must run the moto policy test: start it with \
                 `eval \"$(scripts/s3-server.sh moto-start)\"`"
            );
            eprintln!("TRESOR_TEST_MOTO_ENDPOINT not set: moto policy test skipped");
            None
        }
    }
}

fn hex8() -> String {
    let mut b = [0u8; 8];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Create the bucket, and a user whose only policy is `policy`; prints "KEY SECRET".
const SETUP: &str = r#"
import sys, boto3
endpoint, key, secret, bucket, user, policy = sys.argv[1:7]
kw = dict(endpoint_url=endpoint, aws_access_key_id=key, aws_secret_access_key=secret,
          region_name="us-east-1")
s3 = boto3.client("s3", **kw)
try:
    s3.create_bucket(Bucket=bucket)
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass
iam = boto3.client("iam", **kw)
iam.create_user(UserName=user)
iam.put_user_policy(UserName=user, PolicyName="tresor", PolicyDocument=policy)
k = iam.create_access_key(UserName=user)["AccessKey"]
print(k["AccessKeyId"], k["SecretAccessKey"])
"#;

/// Delete one object as the administrator.
const DELETE: &str = r#"
import sys, boto3
endpoint, key, secret, bucket, obj = sys.argv[1:6]
boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key, aws_secret_access_key=secret,
             region_name="us-east-1").delete_object(Bucket=bucket, Key=obj)
"#;

fn python(m: &Moto, script: &str, args: &[&str]) -> String {
    let o = Command::new(&m.python)
        .arg("-c")
        .arg(script)
        .arg(&m.endpoint)
        .arg(&m.admin_key)
        .arg(&m.admin_secret)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "python: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// A policy from `tresor s3-policy` installed for a new user; returns its (key, secret).
fn user_with_policy(
    env: &Env,
    m: &Moto,
    bucket: &str,
    user: &str,
    args: &[&str],
) -> (String, String) {
    let mut a = vec!["s3-policy", "--bucket", bucket, "--prefix", "repo"];
    a.extend(args);
    let o = env
        .cmd()
        .env_remove("TRESOR_REPOSITORY")
        .args(&a)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let policy = String::from_utf8(o.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(&policy).unwrap();
    assert_eq!(v["Version"], "2012-10-17");
    let out = python(m, SETUP, &[bucket, user, &policy]);
    let (k, s) = out.split_once(' ').expect("KEY SECRET");
    (k.to_string(), s.to_string())
}

fn with_creds(mut c: Command, url: &str, key: &str, secret: &str) -> Command {
    c.env("TRESOR_REPOSITORY", url)
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE");
    c
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn append_only_policy_against_moto_with_iam() {
    let Some(m) = moto() else { return };
    let env = Env::new();
    let bucket = format!("tresor-policy-{}", hex8());
    let url = format!("s3:{}/{bucket}/repo", m.endpoint);
    let (key, secret) = user_with_policy(
        &env,
        &m,
        &bucket,
        &format!("backup-{}", hex8()),
        &["--append-only"],
    );
    let admin = |args: &[&str]| {
        let o = with_creds(env.cmd(), &url, &m.admin_key, &m.admin_secret)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "admin {args:?}: {}", stderr(&o));
        o
    };
    admin(&[
        "init",
        "--kdf-memory-kib",
        "8192",
        "--kdf-iterations",
        "1",
        "--pack-size-mib",
        "4",
    ]);
    let pw = env.password_file("host-pw", "host password\n");
    admin(&[
        "key",
        "add",
        "--put-only",
        "--host",
        "vps",
        "--new-password-file",
        pw.to_str().unwrap(),
        "--kdf-memory-kib",
        "8192",
        "--kdf-iterations",
        "1",
    ]);

    // Backups with the restricted credentials and the put-only key.
    let src = make_tree(env.dir.path());
    let before = scan(&src, is_root());
    let host = |args: &[&str]| {
        with_creds(env.cmd(), &url, &key, &secret)
            .env_remove("TRESOR_PASSWORD")
            .env("TRESOR_PASSWORD_FILE", &pw)
            .env("TRESOR_CACHE_DIR", env.path("cache"))
            .args(args)
            .output()
            .unwrap()
    };
    let o = host(&["backup", "--json", src.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "restricted backup: {}",
        stderr(&o)
    );
    std::fs::write(src.join("added-later"), b"second backup").unwrap();
    let o = host(&["backup", "--json", src.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "second restricted backup: {}",
        stderr(&o)
    );
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["files_new"], 1, "{s}");
    // The restricted user cannot act as an administrator, even with the full key's password.
    let o = with_creds(env.cmd(), &url, &key, &secret)
        .args(["check", "--read-data"])
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0), "check needs to read packs");

    // The storage API with the restricted credentials, in a child process (credentials come
    // from the environment only).
    let o = with_creds(
        Command::new(std::env::current_exe().unwrap()),
        &url,
        &key,
        &secret,
    )
    .env("TRESOR_TEST_POLICY_CHILD", "1")
    .args([
        "--exact",
        "restricted_storage_api",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .output()
    .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("restricted storage API: all refusals seen"),
        "child: {out}\n{}",
        stderr(&o)
    );
    let extra = out
        .lines()
        .find_map(|l| l.split("extra object: ").nth(1))
        .expect("the child names the object it wrote")
        .trim()
        .to_string();
    python(&m, DELETE, &[&bucket, &extra]);

    // The administrator finds everything intact.
    admin(&["check", "--read-data"]);
    let t = env.path("t");
    admin(&["restore", "latest", "--target", t.to_str().unwrap()]);
    let mut after = scan(&t.join(src.strip_prefix("/").unwrap()), is_root());
    after.remove(&b"added-later"[..]);
    assert_same(&before, &after);

    // A host with a full key needs --full-key: it reads the parent snapshot and its trees.
    let (fkey, fsecret) = user_with_policy(
        &env,
        &m,
        &bucket,
        &format!("full-{}", hex8()),
        &["--append-only", "--full-key"],
    );
    let o = with_creds(env.cmd(), &url, &fkey, &fsecret)
        .args(["backup", "--json", src.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "full-key backup: {}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(s["parent"].is_string(), "the parent snapshot was read: {s}");
    // With the put-only policy a full key cannot read snapshots: the backup still completes, but
    // without a parent, reading every file again.
    let o = with_creds(env.cmd(), &url, &key, &secret)
        .args(["backup", "--json", src.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(s["parent"].is_null(), "{s}");
    assert_ne!(s["bytes_read"], 0, "{s}");
}

/// Run by `append_only_policy_against_moto_with_iam` in a child process with the restricted
/// credentials; does nothing otherwise.
#[test]
fn restricted_storage_api() {
    use tresor_storage::{ErrorKind, Kind, Storage, name_of};
    if std::env::var("TRESOR_TEST_POLICY_CHILD").is_err() {
        return;
    }
    let url = std::env::var("TRESOR_REPOSITORY").unwrap();
    let mut opts = tresor_s3::S3Options::default();
    opts.max_retries = 1;
    let s = tresor_s3::S3Storage::open(&url, &opts).unwrap();
    s.create().expect("listing is allowed");

    // Deleting: an index object (readable, so the existence check passes) and a pack.
    let (index, _) = s.list(Kind::Index).unwrap().into_iter().next().unwrap();
    let e = s.delete(Kind::Index, &index).unwrap_err();
    assert_eq!(e.kind, ErrorKind::PermissionDenied, "delete index: {e}");
    let (pack, pack_size) = s.list(Kind::Pack).unwrap().into_iter().next().unwrap();
    let e = s.delete(Kind::Pack, &pack).unwrap_err();
    assert_eq!(e.kind, ErrorKind::PermissionDenied, "delete pack: {e}");
    let (config, _) = s.list(Kind::Config).unwrap().into_iter().next().unwrap();
    let e = s.delete(Kind::Config, &config).unwrap_err();
    assert_eq!(e.kind, ErrorKind::PermissionDenied, "delete config: {e}");

    // Reading packs is not allowed; reading the index is.
    let e = s.read(Kind::Pack, &pack).unwrap_err();
    assert_eq!(e.kind, ErrorKind::PermissionDenied, "read pack: {e}");
    let original_index = s.read(Kind::Index, &index).unwrap();

    // Overwriting with other bytes: refused, the original stays.
    let e = s.write(Kind::Index, &index, b"other bytes").unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists, "overwrite index: {e}");
    assert_eq!(s.read(Kind::Index, &index).unwrap(), original_index);
    let e = s
        .write(Kind::Pack, &pack, &vec![7u8; pack_size as usize])
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists, "overwrite pack: {e}");
    assert_eq!(
        s.list(Kind::Pack)
            .unwrap()
            .iter()
            .find(|(n, _)| *n == pack)
            .unwrap()
            .1,
        pack_size
    );

    // A new pack, then the same bytes again (a retried upload): success although the
    // credentials cannot read packs (the listing's ETag is compared); other bytes: refused.
    let data = format!("extra {}", hex8()).into_bytes();
    let name = name_of(&data);
    s.write(Kind::Pack, &name, &data).unwrap();
    s.write(Kind::Pack, &name, &data)
        .expect("idempotent rewrite");
    let e = s.write(Kind::Pack, &name, b"not the same").unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists, "{e}");
    println!("extra object: {}", s.key(Kind::Pack, &name));

    // Folders a backup host never writes.
    for kind in [Kind::Key, Kind::Config, Kind::Revocation] {
        let e = s.write(kind, &name, &data).unwrap_err();
        assert_eq!(e.kind, ErrorKind::PermissionDenied, "write {kind}: {e}");
    }
    println!("restricted storage API: all refusals seen");
}
