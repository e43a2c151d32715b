//! The append-only policy of `tresor s3-policy`, for real against moto with IAM enforced
//! (`scripts/s3-server.sh moto-start`: `TRESOR_TEST_MOTO_ENDPOINT`, an administrator's
//! `TRESOR_TEST_MOTO_ADMIN_KEY` / `_SECRET`, and `TRESOR_TEST_S3_PYTHON` with boto3 for the IAM
//! calls).
//!
//! An administrator creates the bucket and a backup user whose only policy is the printed one,
//! and runs `init` and `key add --put-only`. With the backup user's credentials, backups
//! succeed; through the tresor S3 storage API, deletes are refused (PermissionDenied), overwrites
//! with other bytes are refused (AlreadyExists) and leave the original, rewriting the same bytes
//! succeeds although the user may not read packs, writes outside data/, index/, snapshots/ are
//! refused, and so is listing data/, snapshots/, markers/ and prune/ (what the server's `append`
//! role may not list either). The administrator's `check --read-data` is clean afterwards.
//! With Object Lock, the backup user's own locked backups succeed, and writes with another mode,
//! a longer retention, no retention or a legal hold are refused, as are retention changes and
//! legal holds on existing objects and deletes that bypass governance mode.
//!
//! moto itself evaluates policy actions and resources but ignores conditions; the moto that
//! `scripts/s3-server.sh moto-start` runs has them evaluated by `scripts/moto_iam_conditions.py`
//! (tresor's reading of AWS's rules, see there), which this test checks is in place. With it,
//! every refusal above is a refusal by the policy, and tresor's own requests (listings, retried
//! uploads, locked writes) are shown to fit the conditions. Not tested here: `aws:SecureTransport`
//! (moto serves plain HTTP; the wrapper treats every request as TLS), and whether AWS itself
//! evaluates the conditions as the wrapper does.

use std::process::Command;
use tresor_testkit::prelude::*;
use tresor_testkit::require::Moto;

/// moto, or `None` (skipped on a developer machine, failing in CI: `tresor_testkit::require`).
fn moto() -> Option<Moto> {
    tresor_testkit::require::moto()
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

/// The bucket with Object Lock enabled (creating it only), as the administrator.
const SETUP_LOCKED_BUCKET: &str = r#"
import sys, boto3
endpoint, key, secret, bucket = sys.argv[1:5]
boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key, aws_secret_access_key=secret,
             region_name="us-east-1").create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
"#;

/// "KEY SIZE" of the first object under a prefix, as the administrator.
const FIRST_OBJECT: &str = r#"
import sys, boto3
endpoint, key, secret, bucket, prefix = sys.argv[1:6]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key,
                  aws_secret_access_key=secret, region_name="us-east-1")
o = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"][0]
print(o["Key"], o["Size"])
"#;

/// Requests a hostile backup host could make with the restricted credentials (argv: endpoint,
/// key, secret, bucket, repository prefix, an existing object key); prints one line
/// `NAME allowed` or `NAME CODE` per request. The lock requests assume the repository's lock
/// is GOVERNANCE for 2 days.
const ATTACKS: &str = r#"
import sys, datetime, boto3
endpoint, key, secret, bucket, prefix, existing = sys.argv[1:7]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key,
                  aws_secret_access_key=secret, region_name="us-east-1")
now = datetime.datetime.now(datetime.timezone.utc)
day = datetime.timedelta(days=1)
n = [0]
def new_key():
    n[0] += 1
    return f"{prefix}/data/00/{n[0]:064x}"
def put(**kw):
    return s3.put_object(Bucket=bucket, Key=new_key(), Body=b"junk", **kw)
attacks = {
    "list_data": lambda: s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/data/"),
    "list_snapshots": lambda: s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/snapshots/"),
    "list_markers": lambda: s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/markers/"),
    "list_everything": lambda: s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/"),
    "list_folders": lambda: s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/", Delimiter="/"),
    "list_index": lambda: s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/index/"),
    "put_without_if_none_match": lambda: s3.put_object(Bucket=bucket, Key=new_key(), Body=b"x"),
    "put_plain": lambda: put(IfNoneMatch="*"),
    "put_locked": lambda: put(IfNoneMatch="*", ObjectLockMode="GOVERNANCE",
                              ObjectLockRetainUntilDate=now + 2 * day),
    "put_compliance": lambda: put(IfNoneMatch="*", ObjectLockMode="COMPLIANCE",
                                  ObjectLockRetainUntilDate=now + day),
    "put_longer": lambda: put(IfNoneMatch="*", ObjectLockMode="GOVERNANCE",
                              ObjectLockRetainUntilDate=now + 10 * day),
    "put_legal_hold": lambda: put(IfNoneMatch="*", ObjectLockMode="GOVERNANCE",
                                  ObjectLockRetainUntilDate=now + day,
                                  ObjectLockLegalHoldStatus="ON"),
    "extend_existing": lambda: s3.put_object_retention(
        Bucket=bucket, Key=existing,
        Retention={"Mode": "GOVERNANCE", "RetainUntilDate": now + 2 * day}),
    "legal_hold_existing": lambda: s3.put_object_legal_hold(
        Bucket=bucket, Key=existing, LegalHold={"Status": "ON"}),
    "delete_bypassing_governance": lambda: s3.delete_object(
        Bucket=bucket, Key=existing, BypassGovernanceRetention=True),
}
for name, call in attacks.items():
    try:
        call()
        print(name, "allowed")
    except s3.exceptions.ClientError as e:
        print(name, e.response["Error"]["Code"])
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
    let url = format!("s3:{}/{bucket}/repo", m.endpoint);
    // The administrator's credentials and the repository, for `--object-lock` to read its config.
    let o = with_creds(env.cmd(), &url, &m.admin_key, &m.admin_secret)
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

/// Run [`ATTACKS`] with the restricted credentials: request name → `allowed` or the error code.
fn attacks(
    m: &Moto,
    key: &str,
    secret: &str,
    bucket: &str,
    existing: &str,
) -> std::collections::BTreeMap<String, String> {
    let o = Command::new(&m.python)
        .arg("-c")
        .arg(ATTACKS)
        .args([&m.endpoint, key, secret, bucket, "repo", existing])
        .output()
        .unwrap();
    assert!(o.status.success(), "python: {}", stderr(&o));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (a, b) = l.split_once(' ').unwrap();
            (a.to_string(), b.to_string())
        })
        .collect()
}

/// The first object under `repo/PREFIX` and its size, listed by the administrator.
fn first_object(m: &Moto, bucket: &str, prefix: &str) -> (String, u64) {
    let out = python(m, FIRST_OBJECT, &[bucket, &format!("repo/{prefix}")]);
    let (k, n) = out.split_once(' ').unwrap();
    (k.to_string(), n.parse().unwrap())
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
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
    .env("TRESOR_TEST_POLICY_PACK", {
        let (key, size) = first_object(&m, &bucket, "data/");
        format!("{} {size}", key.rsplit('/').next().unwrap())
    })
    .args([
        "--exact",
        // Its path in the CLI's one test binary (tests/cli/main.rs).
        "s3_policy::restricted_storage_api",
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

    // Requests tresor never makes: refused by the policy's conditions and listing grants.
    let (existing, _) = first_object(&m, &bucket, "data/");
    let seen = attacks(&m, &key, &secret, &bucket, &existing);
    for (name, want) in [
        ("list_data", "AccessDenied"),
        ("list_snapshots", "AccessDenied"),
        ("list_markers", "AccessDenied"),
        ("list_everything", "AccessDenied"),
        ("list_folders", "allowed"),
        ("list_index", "allowed"),
        ("put_without_if_none_match", "AccessDenied"),
        ("put_plain", "allowed"),
        ("put_locked", "AccessDenied"),
        ("extend_existing", "AccessDenied"),
        ("legal_hold_existing", "AccessDenied"),
        ("delete_bypassing_governance", "AccessDenied"),
    ] {
        assert_eq!(seen[name], want, "{name}: {seen:?}");
    }

    // The administrator finds everything intact (and trusts this host's device nodes, setuid
    // bits and capabilities, which restore withholds from put-only snapshots by default).
    admin(&["check", "--read-data"]);
    let t = env.path("t");
    admin(&[
        "restore",
        "latest",
        "--trust-privileged",
        "--target",
        t.to_str().unwrap(),
    ]);
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
    // The put-only host's snapshots are never taken over as parents (their blob lists are
    // unread); the full key's second backup reads its first one.
    let full_backup = || {
        let o = with_creds(env.cmd(), &url, &fkey, &fsecret)
            .args(["backup", "--json", src.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "full-key backup: {}", stderr(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let s = full_backup();
    assert!(
        s["parent"].is_null(),
        "a put-only parent was taken over: {s}"
    );
    let first = s["snapshot_id"].clone();
    let s = full_backup();
    assert_eq!(s["parent"], first, "the parent snapshot was read: {s}");
    assert_eq!(s["files_unmodified"], 30, "{s}");
    // With the put-only policy a full key may not even list what it loads (prune records,
    // snapshots), as with the server's `append` role: the backup stops with the refusal.
    let o = with_creds(env.cmd(), &url, &key, &secret)
        .args(["backup", "--json", src.to_str().unwrap()])
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0));
    let e = stderr(&o);
    // (The first listing it makes is the snapshots', to choose the parent.)
    assert!(
        e.contains("PermissionDenied") && e.contains("repo/snapshots/"),
        "{e}"
    );
}

#[test]
fn object_lock_policy_against_moto_with_iam() {
    let Some(m) = moto() else { return };
    let env = Env::new();
    let bucket = format!("tresor-lock-policy-{}", hex8());
    let url = format!("s3:{}/{bucket}/repo", m.endpoint);
    python(&m, SETUP_LOCKED_BUCKET, &[&bucket]);
    let admin = |args: &[&str]| {
        let o = with_creds(env.cmd(), &url, &m.admin_key, &m.admin_secret)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "admin {args:?}: {}", stderr(&o));
        o
    };
    let kdf = ["--kdf-memory-kib", "8192", "--kdf-iterations", "1"];
    let mut init = vec!["init", "--s3-object-lock-days", "2", "--pack-size-mib", "4"];
    init.extend(kdf);
    admin(&init);
    let pw = env.password_file("host-pw", "host password\n");
    let mut add = vec!["key", "add", "--put-only", "--host", "vps"];
    add.extend(["--new-password-file", pw.to_str().unwrap()]);
    add.extend(kdf);
    admin(&add);
    // The policy takes mode and days from the repository's config (governance, 2 days).
    let (key, secret) = user_with_policy(
        &env,
        &m,
        &bucket,
        &format!("locked-{}", hex8()),
        &["--append-only", "--object-lock"],
    );

    // The host's own backups carry the repository's lock and pass every condition.
    let src = make_tree(env.dir.path());
    let o = with_creds(env.cmd(), &url, &key, &secret)
        .env_remove("TRESOR_PASSWORD")
        .env("TRESOR_PASSWORD_FILE", &pw)
        .env("TRESOR_CACHE_DIR", env.path("cache"))
        .args(["backup", "--json", src.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "locked backup: {}", stderr(&o));

    let (existing, _) = first_object(&m, &bucket, "data/");
    let seen = attacks(&m, &key, &secret, &bucket, &existing);
    for (name, want) in [
        ("put_locked", "allowed"),
        ("put_plain", "AccessDenied"),
        ("put_compliance", "AccessDenied"),
        ("put_longer", "AccessDenied"),
        ("put_legal_hold", "AccessDenied"),
        ("put_without_if_none_match", "AccessDenied"),
        ("extend_existing", "AccessDenied"),
        ("legal_hold_existing", "AccessDenied"),
        ("delete_bypassing_governance", "AccessDenied"),
        ("list_data", "AccessDenied"),
    ] {
        assert_eq!(seen[name], want, "{name}: {seen:?}");
    }
    admin(&["check", "--read-data"]);
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
    let (pack, pack_size) = {
        let v = std::env::var("TRESOR_TEST_POLICY_PACK").unwrap();
        let (n, size) = v.split_once(' ').unwrap();
        (n.to_string(), size.parse::<u64>().unwrap())
    };
    // Listing: only what the server's append role may list.
    for kind in [Kind::Pack, Kind::Snapshot, Kind::Marker, Kind::PruneRecord] {
        let e = s.list(kind).unwrap_err();
        assert_eq!(e.kind, ErrorKind::PermissionDenied, "list {kind}: {e}");
    }
    for kind in [
        Kind::Config,
        Kind::Key,
        Kind::Revocation,
        Kind::Index,
        Kind::Trust,
    ] {
        s.list(kind).unwrap();
    }
    // Trust records are read (a put-only key verifies them), never written.
    let (trust, _) = s.list(Kind::Trust).unwrap().into_iter().next().unwrap();
    s.read(Kind::Trust, &trust).unwrap();
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
    for kind in [Kind::Key, Kind::Config, Kind::Revocation, Kind::Trust] {
        let e = s.write(kind, &name, &data).unwrap_err();
        assert_eq!(e.kind, ErrorKind::PermissionDenied, "write {kind}: {e}");
    }
    println!("restricted storage API: all refusals seen");
}
