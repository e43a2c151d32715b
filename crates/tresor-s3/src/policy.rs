//! AWS IAM policies for a tresor repository in S3 (`tresor s3-policy`).
//!
//! [`policy`] builds the JSON document for one repository (a bucket and a key prefix):
//!
//! * [`Role::AppendOnly`], for backup hosts: list the repository; read only what a backup with a
//!   put-only key reads (`config/`, `keys/`, `revocations/`, `index/`; with
//!   [`PolicyOptions::full_key`] also `snapshots/`, `data/` and `prune/`, which a backup with a
//!   full key reads for the parent snapshot's trees and the whole index); create objects only in `data/`, `index/`,
//!   `snapshots/`, `markers/` (backup start markers) and `probe/` (the conditional-write probe),
//!   and only with `If-None-Match`
//!   (condition key `s3:if-none-match`), so nothing can be overwritten; never delete anything in
//!   the bucket, nor change its policy, versioning, lifecycle or Object Lock settings.
//! * [`Role::Admin`], for the machine that runs `init`, `key add`, `prune`: read, create (still
//!   only with `If-None-Match`) and delete under the prefix.
//!
//! Every grant requires TLS (`aws:SecureTransport`), and, when [`PolicyOptions::sse`] is set,
//! writes must ask for that server-side encryption (`s3:x-amz-server-side-encryption`, and the
//! KMS key id when one is given; the KMS key's `GenerateDataKey` and `Decrypt` are granted too).
//! Writes with per-object Object Lock ([`PolicyOptions::object_lock`]) need
//! `s3:PutObjectRetention`, which is then allowed (it can extend retention, never shorten it:
//! `s3:BypassGovernanceRetention` stays denied for backup hosts).
//!
//! Multipart uploads are not allowed: tresor writes every object with one `PutObject`, and
//! `UploadPart` cannot carry `If-None-Match` or the encryption header.
//!
//! Two forms:
//! * an **identity policy** (default), to attach to the IAM user or role of the backup host.
//!   Its grants carry the conditions, so it must be the only policy giving that identity S3
//!   access to the bucket; deletes and settings changes are also denied explicitly;
//! * a **bucket policy** ([`PolicyOptions::principal`]): the same grants for that principal,
//!   plus explicit denies of requests without TLS, without `If-None-Match` and (when asked)
//!   without the encryption, which hold even when other policies grant more.

use crate::Sse;
use serde_json::{Value, json};

/// Which kind of credentials the policy is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A backup host: create new objects, read what backup needs, never delete.
    AppendOnly,
    /// Repository maintenance (`init`, keys, `prune`): read, create and delete under the prefix.
    Admin,
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
    /// Append-only only: the backup host uses a full key, which reads the parent snapshot and its
    /// trees (`snapshots/`, `data/`) and the whole index including prune records (`prune/`).
    /// Put-only keys need none of them.
    pub full_key: bool,
    /// Require this server-side encryption on every write.
    pub sse: Option<Sse>,
    /// The repository writes objects with per-object Object Lock retention.
    pub object_lock: bool,
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
            object_lock: false,
            principal: None,
        }
    }
}

/// Object ARNs for the given folders under the prefix (`arn:aws:s3:::BUCKET/PREFIX/DIR/*`).
fn object_arns(o: &PolicyOptions, dirs: &[&str]) -> Vec<String> {
    dirs.iter()
        .map(|d| {
            if o.prefix.is_empty() {
                format!("arn:aws:s3:::{}/{d}*", o.bucket)
            } else {
                format!("arn:aws:s3:::{}/{}/{d}*", o.bucket, o.prefix)
            }
        })
        .collect()
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

/// The policy document as JSON.
///
/// # Panics
/// Never; the result is always a complete policy.
pub fn policy(o: &PolicyOptions) -> Value {
    let bucket_arn = format!("arn:aws:s3:::{}", o.bucket);
    let tls = json!({"aws:SecureTransport": "true"});
    let mut statements: Vec<Value> = Vec::new();

    // Listing: the repository's prefix only.
    let mut list_cond = json!({"Bool": tls});
    if !o.prefix.is_empty() {
        list_cond["StringLike"] = json!({"s3:prefix": [format!("{}/*", o.prefix)]});
    }
    statements.push(json!({
        "Sid": "ListRepository",
        "Effect": "Allow",
        "Action": ["s3:ListBucket"],
        "Resource": [bucket_arn],
        "Condition": list_cond,
    }));

    // Reading.
    let read_dirs: &[&str] = match (o.role, o.full_key) {
        (Role::Admin, _) => &[""],
        (Role::AppendOnly, false) => &["config/", "keys/", "revocations/", "index/"],
        (Role::AppendOnly, true) => &[
            "config/",
            "keys/",
            "revocations/",
            "index/",
            "snapshots/",
            "data/",
            "prune/",
        ],
    };
    statements.push(json!({
        "Sid": "ReadRepository",
        "Effect": "Allow",
        "Action": ["s3:GetObject"],
        "Resource": object_arns(o, read_dirs),
        "Condition": {"Bool": tls},
    }));

    // Creating: only with If-None-Match, only over TLS, with the encryption asked for.
    let write_dirs: &[&str] = match o.role {
        Role::Admin => &[""],
        Role::AppendOnly => &["data/", "index/", "snapshots/", "markers/", "probe/"],
    };
    let write_arns = object_arns(o, write_dirs);
    let mut put_cond = json!({
        "Bool": tls,
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
    if o.object_lock {
        put_actions.push("s3:PutObjectRetention");
    }
    statements.push(json!({
        "Sid": "CreateNewObjectsOnly",
        "Effect": "Allow",
        "Action": put_actions,
        "Resource": write_arns,
        "Condition": put_cond,
    }));

    match o.role {
        Role::Admin => {
            let mut actions = vec!["s3:DeleteObject"];
            if o.object_lock {
                actions.push("s3:GetObjectRetention");
            }
            statements.push(json!({
                "Sid": "MaintainRepository",
                "Effect": "Allow",
                "Action": actions,
                "Resource": object_arns(o, &[""]),
                "Condition": {"Bool": tls},
            }));
            if o.object_lock {
                statements.push(json!({
                    "Sid": "ReadLockConfiguration",
                    "Effect": "Allow",
                    "Action": ["s3:GetBucketObjectLockConfiguration", "s3:GetBucketVersioning"],
                    "Resource": [bucket_arn],
                    "Condition": {"Bool": tls},
                }));
            }
        }
        Role::AppendOnly => {
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
            if !o.object_lock {
                denied.push("s3:PutObjectRetention");
            }
            statements.push(json!({
                "Sid": "NeverDeleteOrReconfigure",
                "Effect": "Deny",
                "Action": denied,
                "Resource": [bucket_arn, format!("{bucket_arn}/*")],
            }));
        }
    }

    if let Some(key) = o.sse.as_ref().and_then(Sse::kms_key_id) {
        statements.push(json!({
            "Sid": "UseTheKmsKey",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": [kms_arn(key)],
        }));
    }

    if let Some(principal) = &o.principal {
        let all_objects = object_arns(o, &[""]);
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
                "arn:aws:s3:::b/backups/host1/revocations/*",
                "arn:aws:s3:::b/backups/host1/index/*"
            ])
        );
        let put = statement(&p, "CreateNewObjectsOnly");
        assert_eq!(put["Action"], json!(["s3:PutObject"]));
        assert_eq!(put["Condition"]["Null"]["s3:if-none-match"], "false");
        assert_eq!(put["Condition"]["Bool"]["aws:SecureTransport"], "true");
        let list = statement(&p, "ListRepository");
        assert_eq!(
            list["Condition"]["StringLike"]["s3:prefix"],
            json!(["backups/host1/*"])
        );
        let deny = statement(&p, "NeverDeleteOrReconfigure");
        assert_eq!(deny["Effect"], "Deny");
        let denied = deny["Action"].as_array().unwrap();
        for a in [
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
            "s3:PutObjectRetention",
            "s3:BypassGovernanceRetention",
        ] {
            assert!(denied.contains(&json!(a)), "{a} denied");
        }
        // Nothing allows a delete.
        for s in p["Statement"].as_array().unwrap() {
            if s["Effect"] == "Allow" {
                assert!(!s["Action"].to_string().contains("Delete"), "{s}");
            }
        }
    }

    #[test]
    fn full_key_may_read_snapshots_and_packs() {
        let mut o = PolicyOptions::new("b", "", Role::AppendOnly);
        o.full_key = true;
        let p = policy(&o);
        let read = statement(&p, "ReadRepository")["Resource"].to_string();
        assert!(read.contains("arn:aws:s3:::b/snapshots/*"), "{read}");
        assert!(read.contains("arn:aws:s3:::b/data/*"), "{read}");
        assert!(read.contains("arn:aws:s3:::b/prune/*"), "{read}");
        assert!(statement(&p, "ListRepository")["Condition"]["StringLike"].is_null());
    }

    #[test]
    fn sse_and_lock_and_bucket_form() {
        let mut o = PolicyOptions::new("b", "r", Role::AppendOnly);
        o.sse = Some(Sse::Kms(Some("1234abcd".into())));
        o.object_lock = true;
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
        assert!(put["Action"].to_string().contains("s3:PutObjectRetention"));
        assert!(
            !statement(&p, "NeverDeleteOrReconfigure")["Action"]
                .to_string()
                .contains("s3:PutObjectRetention\"")
        );
        statement(&p, "UseTheKmsKey");

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
    }
}
