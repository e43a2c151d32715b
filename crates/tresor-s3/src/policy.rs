//! AWS IAM policies for a tresor repository in S3 (`tresor s3-policy`).
//!
//! [`policy`] builds the JSON document for one repository (a bucket and a key prefix) from the
//! permission table `tresor serve` enforces too ([`tresor_storage::access::PERMISSIONS`]):
//!
//! * [`Role::AppendOnly`], for backup hosts with a put-only key — the `append` role: list and
//!   read only `config/`, `keys/`, `revocations/`, `trust/` and `index/`; create objects only in
//!   `data/`, `index/`, `snapshots/`, `markers/` (backup start markers) and `probe/` (the
//!   conditional-write probe), and only with `If-None-Match` (condition key `s3:if-none-match`),
//!   so nothing can be overwritten; never delete anything, nor change the bucket's policy,
//!   versioning, lifecycle or Object Lock settings. Listing the prefix itself is allowed only
//!   with the delimiter `/` (the folder names), and listing under `data/`, `snapshots/`,
//!   `markers/` and `probe/` only with a prefix that is one whole object key (how a retried
//!   upload checks that its own object is there), so the names of other hosts' packs,
//!   snapshots and markers stay hidden. With [`PolicyOptions::full_key`] the host also lists
//!   and reads everything (the `read` role), as a backup with a full key reads the parent
//!   snapshot's trees and the whole index.
//! * [`Role::Admin`], for the machine that runs `init`, `key add`, `prune`: list, read, create
//!   (still only with `If-None-Match`) and delete under the prefix.
//!
//! Every grant requires TLS (`aws:SecureTransport`), and, when [`PolicyOptions::sse`] is set,
//! writes must ask for that server-side encryption (`s3:x-amz-server-side-encryption`, and the
//! KMS key id when one is given; the KMS key's `GenerateDataKey` and `Decrypt` are granted too).
//!
//! **Object Lock.** Without [`PolicyOptions::object_lock`], writes that carry any Object Lock
//! header are denied, and so are `s3:PutObjectRetention` and `s3:PutObjectLegalHold`. With it,
//! every write must carry exactly the repository's lock: mode equal to its mode
//! (`s3:object-lock-mode`), a retain-until date (`s3:object-lock-retain-until-date`) at most
//! its days plus [`RETENTION_SLACK_DAYS`] ahead (`s3:object-lock-remaining-retention-days`), no
//! legal hold (`s3:object-lock-legal-hold`). `s3:PutObjectRetention` is granted with `PutObject`
//! under the same conditions (S3 checks it for a `PUT` with retention headers) but denied for
//! requests without `If-None-Match`, i.e. the separate `PutObjectRetention` call on existing
//! objects; `s3:PutObjectLegalHold` and `s3:BypassGovernanceRetention` are always denied to
//! backup hosts. So a host cannot upload junk that stays locked longer than the repository's
//! own objects, nor lock or extend other objects.
//!
//! Multipart uploads are not allowed: tresor writes every object with one `PutObject`, and
//! `UploadPart` cannot carry `If-None-Match` or the encryption header.
//!
//! Two forms:
//! * an **identity policy** (default), to attach to the IAM user or role of the backup host.
//!   Its grants carry the conditions, so it must be the only policy giving that identity S3
//!   access to the bucket; deletes and settings changes are also denied explicitly. It is
//!   longer than the 2,048 characters of an IAM *user inline* policy: attach it as a managed
//!   policy (6,144) or a role's inline policy (10,240);
//! * a **bucket policy** ([`PolicyOptions::principal`]): the same grants for that principal,
//!   plus explicit denies of requests without TLS, without `If-None-Match` and (when asked)
//!   without the encryption, which hold even when other policies grant more.

use crate::{LockMode, Sse};
use serde_json::{Value, json};
use tresor_storage::Kind;
use tresor_storage::access::{self, Op};
use tresor_storage::layout;

/// Which kind of credentials the policy is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A backup host: create new objects, read what backup needs, never delete.
    AppendOnly,
    /// Repository maintenance (`init`, keys, `prune`): read, create and delete under the prefix.
    Admin,
}

/// Days a retain-until date may lie beyond the repository's retention: tresor asks for its days
/// plus one second, which S3 may count as one more day, and the writer's clock may run ahead.
pub const RETENTION_SLACK_DAYS: u32 = 1;

/// The repository's Object Lock retention, which every write must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectLockPolicy {
    /// The repository's mode.
    pub mode: LockMode,
    /// The repository's retention in days (`object_lock.days` of its config).
    pub days: u32,
}

/// What [`policy`] builds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PolicyOptions {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix of the repository, without leading or trailing `/`; empty for the bucket root.
    pub prefix: String,
    /// Append-only or admin.
    pub role: Role,
    /// Append-only only: the backup host uses a full key, which lists and reads everything
    /// (the parent snapshot and its trees in `snapshots/` and `data/`, prune records in
    /// `prune/`). Put-only keys need none of them.
    pub full_key: bool,
    /// Require this server-side encryption on every write.
    pub sse: Option<Sse>,
    /// The repository writes objects with this per-object Object Lock retention.
    pub object_lock: Option<ObjectLockPolicy>,
    /// Make a bucket policy for this principal (an IAM user or role ARN) instead of an identity
    /// policy.
    pub principal: Option<String>,
}

impl PolicyOptions {
    /// Options for `bucket`, `prefix` (slashes at either end are removed) and `role`; everything
    /// else off.
    pub fn new(bucket: &str, prefix: &str, role: Role) -> PolicyOptions {
        PolicyOptions {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            role,
            full_key: false,
            sse: None,
            object_lock: None,
            principal: None,
        }
    }

    /// The key of `rest` under the prefix (`PREFIX/rest`, or `rest` at the bucket root).
    fn key(&self, rest: &str) -> String {
        if self.prefix.is_empty() {
            rest.to_string()
        } else {
            format!("{}/{rest}", self.prefix)
        }
    }

    /// The row of the permission table this policy follows for `op`, as folders (`data/` …);
    /// `None`: everything under the prefix.
    fn folders(&self, op: Op) -> Option<Vec<&'static str>> {
        let role = match (self.role, self.full_key, op) {
            (Role::Admin, _, _) => return None,
            (Role::AppendOnly, true, Op::List | Op::Read) => access::Role::Read,
            (Role::AppendOnly, _, _) => access::Role::Append,
        };
        let kinds = access::kinds(role, op);
        if kinds.len() == Kind::ALL.len() {
            return None;
        }
        Some(kinds.into_iter().map(Kind::dir).collect())
    }
}

/// Object ARNs for the given folders under the prefix (`arn:aws:s3:::BUCKET/PREFIX/DIR/*`), or
/// every object under the prefix for `None`.
fn object_arns(o: &PolicyOptions, dirs: Option<&[&str]>) -> Vec<String> {
    match dirs {
        None => vec![format!("arn:aws:s3:::{}/{}", o.bucket, o.key("*"))],
        Some(dirs) => dirs
            .iter()
            .map(|d| format!("arn:aws:s3:::{}/{}", o.bucket, o.key(&format!("{d}/*"))))
            .collect(),
    }
}

/// The KMS key ARN for a key id, alias or ARN.
fn kms_arn(key: &str) -> String {
    if key.starts_with("arn:") {
        key.to_string()
    } else if let Some(alias) = key.strip_prefix("alias/") {
        format!("arn:aws:kms:*:*:alias/{alias}")
    } else {
        format!("arn:aws:kms:*:*:key/{key}")
    }
}

fn tls() -> Value {
    json!({"aws:SecureTransport": "true"})
}

/// `s3:ListBucket` grants: everything under the prefix, or for a put-only host the folder names,
/// the folders it may list, and single objects (by their whole key) of the folders it writes.
fn list_statements(o: &PolicyOptions) -> Vec<Value> {
    let bucket_arn = format!("arn:aws:s3:::{}", o.bucket);
    let allow = |sid: &str, cond: Value| {
        json!({"Sid": sid, "Effect": "Allow", "Action": ["s3:ListBucket"],
               "Resource": [bucket_arn], "Condition": cond})
    };
    let Some(listed) = o.folders(Op::List) else {
        let mut cond = json!({"Bool": tls()});
        if !o.prefix.is_empty() {
            cond["StringLike"] = json!({"s3:prefix": [o.key("*")]});
        }
        return vec![allow("ListRepository", cond)];
    };
    // The prefix itself only with the delimiter: the folder names, no object names.
    let mut top_cond = json!({"Bool": tls(), "StringEquals": {"s3:delimiter": "/"}});
    if o.prefix.is_empty() {
        top_cond["StringEqualsIfExists"] = json!({"s3:prefix": ""});
    } else {
        top_cond["StringEquals"]["s3:prefix"] = json!(o.key(""));
    }
    let folders: Vec<String> = listed.iter().map(|d| o.key(&format!("{d}/*"))).collect();
    let name = "?".repeat(layout::NAME_LEN);
    let mut single: Vec<String> = Vec::new();
    for d in o.folders(Op::Write).unwrap_or_default() {
        if !listed.contains(&d) {
            let kind = Kind::from_dir(d).expect("a kind's folder");
            single.push(o.key(&layout::key_pattern(kind, &name)));
        }
    }
    single.push(o.key(&format!("probe/{}", "?".repeat(32))));
    vec![
        allow("ListRepositoryFolders", top_cond),
        allow(
            "ListWhatBackupReads",
            json!({"Bool": tls(), "StringLike": {"s3:prefix": folders}}),
        ),
        allow(
            "ListOneObjectOfWhatBackupWrites",
            json!({"Bool": tls(), "StringLike": {"s3:prefix": single}}),
        ),
    ]
}

/// `s3:PutObject` (and, with Object Lock, `s3:PutObjectRetention`): only with `If-None-Match`,
/// only over TLS, with the encryption asked for.
fn create_statement(o: &PolicyOptions) -> Value {
    let mut dirs = o.folders(Op::Write);
    if let Some(d) = &mut dirs {
        d.push("probe");
    }
    let mut put_cond = json!({
        "Bool": tls(),
        "Null": {"s3:if-none-match": "false"},
    });
    if let Some(sse) = &o.sse {
        put_cond["StringEquals"] = json!({"s3:x-amz-server-side-encryption": sse.algorithm()});
        if let Some(key) = sse.kms_key_id() {
            // tresor sends the key as given; accept it and its ARN form.
            let mut forms = vec![key.to_string()];
            if !key.starts_with("arn:") {
                forms.push(kms_arn(key));
            }
            put_cond["StringLike"] =
                json!({"s3:x-amz-server-side-encryption-aws-kms-key-id": forms});
        }
    }
    let mut put_actions = vec!["s3:PutObject"];
    if o.object_lock.is_some() {
        put_actions.push("s3:PutObjectRetention");
    }
    json!({
        "Sid": "CreateNewObjectsOnly",
        "Effect": "Allow",
        "Action": put_actions,
        "Resource": object_arns(o, dirs.as_deref()),
        "Condition": put_cond,
    })
}

/// Deletion for the admin; explicit denies of deletion and reconfiguration for backup hosts.
fn role_statements(o: &PolicyOptions) -> Vec<Value> {
    let bucket_arn = format!("arn:aws:s3:::{}", o.bucket);
    if o.role == Role::Admin {
        let mut actions = vec!["s3:DeleteObject"];
        if o.object_lock.is_some() {
            actions.push("s3:GetObjectRetention");
        }
        let mut out = vec![json!({
            "Sid": "MaintainRepository",
            "Effect": "Allow",
            "Action": actions,
            "Resource": object_arns(o, None),
            "Condition": {"Bool": tls()},
        })];
        if o.object_lock.is_some() {
            out.push(json!({
                "Sid": "ReadLockConfiguration",
                "Effect": "Allow",
                "Action": ["s3:GetBucketObjectLockConfiguration", "s3:GetBucketVersioning"],
                "Resource": [bucket_arn],
                "Condition": {"Bool": tls()},
            }));
        }
        return out;
    }
    let mut denied = vec![
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
        "s3:DeleteObjectTagging",
        "s3:DeleteObjectVersionTagging",
        "s3:PutObjectAcl",
        "s3:PutObjectVersionAcl",
        "s3:PutObjectLegalHold",
        "s3:BypassGovernanceRetention",
        "s3:PutLifecycleConfiguration",
        "s3:PutBucketPolicy",
        "s3:DeleteBucketPolicy",
        "s3:PutBucketVersioning",
        "s3:PutBucketObjectLockConfiguration",
        "s3:PutReplicationConfiguration",
        "s3:DeleteBucket",
    ];
    if o.object_lock.is_none() {
        denied.push("s3:PutObjectRetention");
    }
    vec![json!({
        "Sid": "NeverDeleteOrReconfigure",
        "Effect": "Deny",
        "Action": denied,
        "Resource": [bucket_arn.clone(), format!("{bucket_arn}/*")],
    })]
}

/// Explicit denies that pin every write's Object Lock to the repository's (or to none).
fn lock_statements(o: &PolicyOptions) -> Vec<Value> {
    let all = object_arns(o, None);
    let deny = |sid: &str, actions: &[&str], cond: Value| json!({"Sid": sid, "Effect": "Deny", "Action": actions, "Resource": all, "Condition": cond});
    let Some(lock) = o.object_lock else {
        return vec![deny(
            "DenyObjectLockHeaders",
            &["s3:PutObject"],
            json!({"Null": {"s3:object-lock-mode": "false"}}),
        )];
    };
    let writes = ["s3:PutObject", "s3:PutObjectRetention"];
    vec![
        deny(
            "DenyOtherLockModes",
            &writes,
            json!({"StringNotEquals": {"s3:object-lock-mode": lock.mode.as_str()}}),
        ),
        deny(
            "DenyWritesWithoutRetainUntil",
            &writes,
            json!({"Null": {"s3:object-lock-retain-until-date": "true"}}),
        ),
        deny(
            "DenyLongerRetention",
            &writes,
            json!({"NumericGreaterThan": {
                "s3:object-lock-remaining-retention-days":
                    (u64::from(lock.days) + u64::from(RETENTION_SLACK_DAYS)).to_string()}}),
        ),
        deny(
            "DenyLegalHolds",
            &["s3:PutObject"],
            json!({"StringEquals": {"s3:object-lock-legal-hold": "ON"}}),
        ),
        deny(
            "DenyRetentionChangesOfExistingObjects",
            &["s3:PutObjectRetention"],
            json!({"Null": {"s3:if-none-match": "true"}}),
        ),
    ]
}

/// The policy document as JSON.
///
/// # Panics
/// Never; the result is always a complete policy.
pub fn policy(o: &PolicyOptions) -> Value {
    let bucket_arn = format!("arn:aws:s3:::{}", o.bucket);
    let mut statements = list_statements(o);
    statements.push(json!({
        "Sid": "ReadRepository",
        "Effect": "Allow",
        "Action": ["s3:GetObject"],
        "Resource": object_arns(o, o.folders(Op::Read).as_deref()),
        "Condition": {"Bool": tls()},
    }));
    statements.push(create_statement(o));
    statements.extend(role_statements(o));
    statements.extend(lock_statements(o));
    if let Some(key) = o.sse.as_ref().and_then(Sse::kms_key_id) {
        statements.push(json!({
            "Sid": "UseTheKmsKey",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": [kms_arn(key)],
        }));
    }
    if let Some(principal) = &o.principal {
        bucket_policy_denies(o, &bucket_arn, &mut statements);
        // S3 rejects KMS grants in bucket policies: they belong to the key policy.
        statements.retain(|s| s["Sid"] != "UseTheKmsKey");
        for s in &mut statements {
            s["Principal"] = json!({"AWS": principal});
        }
    }
    json!({
        "Version": "2012-10-17",
        "Statement": statements,
    })
}

/// The explicit denies of the bucket-policy form.
fn bucket_policy_denies(o: &PolicyOptions, bucket_arn: &str, statements: &mut Vec<Value>) {
    let all_objects = object_arns(o, None);
    statements.push(json!({
        "Sid": "DenyWithoutTls",
        "Effect": "Deny",
        "Action": ["s3:*"],
        "Resource": [bucket_arn, format!("{bucket_arn}/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }));
    statements.push(json!({
        "Sid": "DenyWritesWithoutIfNoneMatch",
        "Effect": "Deny",
        "Action": ["s3:PutObject"],
        "Resource": all_objects,
        "Condition": {"Null": {"s3:if-none-match": "true"}},
    }));
    if let Some(sse) = &o.sse {
        statements.push(json!({
            "Sid": "DenyWritesWithoutEncryption",
            "Effect": "Deny",
            "Action": ["s3:PutObject"],
            "Resource": all_objects,
            "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": sse.algorithm()}},
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement<'a>(p: &'a Value, sid: &str) -> &'a Value {
        p["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("no statement {sid} in {p:#}"))
    }

    /// IAM `StringLike`: `*` any run of characters, `?` exactly one.
    fn like(pattern: &str, s: &str) -> bool {
        match (pattern.as_bytes().first(), s.as_bytes().first()) {
            (None, _) => s.is_empty(),
            (Some(b'*'), _) => (0..=s.len()).any(|i| like(&pattern[1..], &s[i..])),
            (Some(b'?'), Some(_)) => like(&pattern[1..], &s[1..]),
            (Some(p), Some(c)) if p == c => like(&pattern[1..], &s[1..]),
            _ => false,
        }
    }

    /// Whether some `StringLike s3:prefix` grant lets the holder list `prefix` (any delimiter).
    fn listable(p: &Value, prefix: &str) -> bool {
        p["Statement"].as_array().unwrap().iter().any(|s| {
            s["Action"] == json!(["s3:ListBucket"])
                && s["Condition"]["StringLike"]["s3:prefix"]
                    .as_array()
                    .is_some_and(|pats| pats.iter().any(|q| like(q.as_str().unwrap(), prefix)))
        })
    }

    #[test]
    fn append_only_reads_little_writes_conditionally_never_deletes() {
        let p = policy(&PolicyOptions::new(
            "b",
            "/backups/host1/",
            Role::AppendOnly,
        ));
        let read = statement(&p, "ReadRepository");
        assert_eq!(
            read["Resource"],
            json!([
                "arn:aws:s3:::b/backups/host1/config/*",
                "arn:aws:s3:::b/backups/host1/keys/*",
                "arn:aws:s3:::b/backups/host1/index/*",
                "arn:aws:s3:::b/backups/host1/revocations/*",
                "arn:aws:s3:::b/backups/host1/trust/*"
            ])
        );
        let put = statement(&p, "CreateNewObjectsOnly");
        assert_eq!(put["Action"], json!(["s3:PutObject"]));
        assert_eq!(
            put["Resource"],
            json!([
                "arn:aws:s3:::b/backups/host1/snapshots/*",
                "arn:aws:s3:::b/backups/host1/index/*",
                "arn:aws:s3:::b/backups/host1/data/*",
                "arn:aws:s3:::b/backups/host1/markers/*",
                "arn:aws:s3:::b/backups/host1/probe/*"
            ])
        );
        assert_eq!(put["Condition"]["Null"]["s3:if-none-match"], "false");
        assert_eq!(put["Condition"]["Bool"]["aws:SecureTransport"], "true");
        let top = statement(&p, "ListRepositoryFolders");
        assert_eq!(
            top["Condition"]["StringEquals"],
            json!({"s3:delimiter": "/", "s3:prefix": "backups/host1/"})
        );
        let deny = statement(&p, "NeverDeleteOrReconfigure");
        assert_eq!(deny["Effect"], "Deny");
        let denied = deny["Action"].as_array().unwrap();
        for a in [
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
            "s3:PutObjectRetention",
            "s3:PutObjectLegalHold",
            "s3:BypassGovernanceRetention",
        ] {
            assert!(denied.contains(&json!(a)), "{a} denied");
        }
        // Without Object Lock, writes with lock headers are refused.
        assert_eq!(
            statement(&p, "DenyObjectLockHeaders")["Condition"],
            json!({"Null": {"s3:object-lock-mode": "false"}})
        );
        // Nothing allows a delete.
        for s in p["Statement"].as_array().unwrap() {
            if s["Effect"] == "Allow" {
                assert!(!s["Action"].to_string().contains("Delete"), "{s}");
            }
        }
    }

    #[test]
    fn append_only_lists_what_the_append_role_may_list() {
        let p = policy(&PolicyOptions::new("b", "r", Role::AppendOnly));
        let pack = format!("r/data/3f/{}", "3f".repeat(32));
        let name = "0123456789abcdef".repeat(4);
        for ok in [
            "r/config/".to_string(),
            "r/keys/".into(),
            "r/index/".into(),
            "r/revocations/".into(),
            "r/trust/".into(),
            format!("r/index/{name}"),
            pack.clone(),
            format!("r/snapshots/{name}"),
            format!("r/markers/{name}"),
            format!("r/probe/{}", &name[..32]),
        ] {
            assert!(listable(&p, &ok), "{ok} may be listed");
        }
        for refused in [
            "",
            "r",
            "r/",
            "r/data/",
            "r/data/3f/",
            &pack[..pack.len() - 1],
            "r/snapshots/",
            &format!("r/snapshots/{}", &name[..63]),
            "r/markers/",
            "r/prune/",
            "r/probe/",
            "r/dat",
            "other/config/",
        ] {
            assert!(!listable(&p, refused), "{refused:?} may not be listed");
        }
        // The root-level listing needs the delimiter (folder names only).
        let root = policy(&PolicyOptions::new("b", "", Role::AppendOnly));
        let top = statement(&root, "ListRepositoryFolders");
        assert_eq!(
            top["Condition"]["StringEquals"],
            json!({"s3:delimiter": "/"})
        );
        assert_eq!(
            top["Condition"]["StringEqualsIfExists"],
            json!({"s3:prefix": ""})
        );
        assert!(listable(&root, "config/") && !listable(&root, "data/"));
    }

    #[test]
    fn full_key_may_list_and_read_everything() {
        let mut o = PolicyOptions::new("b", "", Role::AppendOnly);
        o.full_key = true;
        let p = policy(&o);
        assert_eq!(
            statement(&p, "ReadRepository")["Resource"],
            json!(["arn:aws:s3:::b/*"])
        );
        assert!(statement(&p, "ListRepository")["Condition"]["StringLike"].is_null());
        o.prefix = "r".into();
        let p = policy(&o);
        assert!(listable(&p, "r/data/") && listable(&p, "r/snapshots/"));
        assert!(!listable(&p, "other/"));
        // Still writes only where the append role writes.
        assert!(
            !statement(&p, "CreateNewObjectsOnly")["Resource"]
                .to_string()
                .contains("keys/")
        );
    }

    #[test]
    fn object_lock_pins_mode_and_retention() {
        let mut o = PolicyOptions::new("b", "r", Role::AppendOnly);
        o.object_lock = Some(ObjectLockPolicy {
            mode: LockMode::Compliance,
            days: 30,
        });
        let p = policy(&o);
        let put = statement(&p, "CreateNewObjectsOnly");
        assert_eq!(
            put["Action"],
            json!(["s3:PutObject", "s3:PutObjectRetention"])
        );
        let writes = json!(["s3:PutObject", "s3:PutObjectRetention"]);
        let lock = |sid: &str| {
            let s = statement(&p, sid);
            assert_eq!(s["Effect"], "Deny", "{sid}");
            assert_eq!(s["Resource"], json!(["arn:aws:s3:::b/r/*"]), "{sid}");
            (s["Action"].clone(), s["Condition"].clone())
        };
        assert_eq!(
            lock("DenyOtherLockModes"),
            (
                writes.clone(),
                json!({"StringNotEquals": {"s3:object-lock-mode": "COMPLIANCE"}})
            )
        );
        assert_eq!(
            lock("DenyLongerRetention"),
            (
                writes.clone(),
                json!({"NumericGreaterThan": {"s3:object-lock-remaining-retention-days": "31"}})
            )
        );
        assert_eq!(
            lock("DenyWritesWithoutRetainUntil"),
            (
                writes,
                json!({"Null": {"s3:object-lock-retain-until-date": "true"}})
            )
        );
        assert_eq!(
            lock("DenyLegalHolds"),
            (
                json!(["s3:PutObject"]),
                json!({"StringEquals": {"s3:object-lock-legal-hold": "ON"}})
            )
        );
        assert_eq!(
            lock("DenyRetentionChangesOfExistingObjects"),
            (
                json!(["s3:PutObjectRetention"]),
                json!({"Null": {"s3:if-none-match": "true"}})
            )
        );
        let never = statement(&p, "NeverDeleteOrReconfigure")["Action"].to_string();
        assert!(never.contains("\"s3:PutObjectLegalHold\""));
        assert!(never.contains("\"s3:BypassGovernanceRetention\""));
        assert!(!never.contains("\"s3:PutObjectRetention\""));
        assert!(p.to_string().find("DenyObjectLockHeaders").is_none());
    }

    #[test]
    fn sse_and_bucket_form() {
        let mut o = PolicyOptions::new("b", "r", Role::AppendOnly);
        o.sse = Some(Sse::Kms(Some("1234abcd".into())));
        o.object_lock = Some(ObjectLockPolicy {
            mode: LockMode::Governance,
            days: 7,
        });
        let p = policy(&o);
        let put = statement(&p, "CreateNewObjectsOnly");
        assert_eq!(
            put["Condition"]["StringEquals"]["s3:x-amz-server-side-encryption"],
            "aws:kms"
        );
        assert_eq!(
            put["Condition"]["StringLike"]["s3:x-amz-server-side-encryption-aws-kms-key-id"],
            json!(["1234abcd", "arn:aws:kms:*:*:key/1234abcd"])
        );
        statement(&p, "UseTheKmsKey");
        // An identity policy fits a managed policy (6,144 characters, whitespace not counted).
        assert!(p.to_string().len() <= 6144, "{}", p.to_string().len());

        o.principal = Some("arn:aws:iam::111122223333:user/backup".into());
        let p = policy(&o);
        for s in p["Statement"].as_array().unwrap() {
            assert_eq!(
                s["Principal"]["AWS"],
                "arn:aws:iam::111122223333:user/backup"
            );
        }
        assert_eq!(
            statement(&p, "DenyWritesWithoutIfNoneMatch")["Condition"]["Null"]["s3:if-none-match"],
            "true"
        );
        statement(&p, "DenyWithoutTls");
        statement(&p, "DenyWritesWithoutEncryption");
        statement(&p, "DenyOtherLockModes");
        assert!(p.to_string().find("UseTheKmsKey").is_none());
    }

    #[test]
    fn admin_may_delete_under_the_prefix_only() {
        let p = policy(&PolicyOptions::new("b", "r", Role::Admin));
        let m = statement(&p, "MaintainRepository");
        assert_eq!(m["Action"], json!(["s3:DeleteObject"]));
        assert_eq!(m["Resource"], json!(["arn:aws:s3:::b/r/*"]));
        assert_eq!(
            statement(&p, "CreateNewObjectsOnly")["Condition"]["Null"]["s3:if-none-match"],
            "false"
        );
        assert_eq!(
            statement(&p, "CreateNewObjectsOnly")["Resource"],
            json!(["arn:aws:s3:::b/r/*"])
        );
        assert!(listable(&p, "r/data/") && !listable(&p, "other/"));
    }
}
