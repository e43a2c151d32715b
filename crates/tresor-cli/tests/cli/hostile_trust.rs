//! The hostile-writer suite of trust (issue 11, items 3, 6 and 7): what the storage operator
//! (or anyone holding the storage credentials) can do to the trust record, the config,
//! revocations, key files and snapshots, and what a forger with ground signing keys can do to
//! `key signers --accept`.
//!
//! Attacks are made as the storage would make them: files deleted, put back, replaced or added
//! in the repository directory, with objects signed or sealed through the library where the
//! attacker holds the key material it needs (a host's own put-only key, a made-up signing key).
//! Each test asserts that the attack is refused or reported by name, and that the honest
//! snapshot still restores byte for byte. Every client has its own cache directory
//! (`TRESOR_CACHE_DIR`), which holds its high-water marks.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use tresor_core::Repository;
use tresor_format::ObjectId;
use tresor_format::sign::Signer;
use tresor_format::snapshot::Snapshot;
use tresor_format::trust::{RevokedKey, TrustRecord};
use tresor_storage::local::LocalStorage;
use tresor_storage::{Kind, Storage};
use tresor_testkit::prelude::*;

const HOST_PW: &str = "password of the backup host";
const KDF: [&str; 4] = ["--kdf-memory-kib", "8192", "--kdf-iterations", "1"];

/// A repository with one honest snapshot of the admin's, and clients with their own caches.
struct Lab {
    env: Env,
    src: PathBuf,
    files: Vec<(&'static str, Vec<u8>)>,
    /// The admin's snapshot: it must restore byte for byte whatever happens.
    honest: String,
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

impl Lab {
    fn new() -> Self {
        let env = Env::new();
        env.init();
        Self::with(env)
    }

    /// The lab around an initialised repository.
    fn with(env: Env) -> Self {
        let src = env.path("src");
        std::fs::create_dir(&src).unwrap();
        let files = vec![
            ("small", b"the honest admin's file".to_vec()),
            ("large", pseudo_random(11, 700_000)),
        ];
        for (name, data) in &files {
            std::fs::write(src.join(name), data).unwrap();
        }
        let mut lab = Lab {
            env,
            src,
            files,
            honest: String::new(),
        };
        lab.honest = lab.backup("admin", "admin-host");
        lab
    }

    fn cache(&self, who: &str) -> PathBuf {
        self.env.path(&format!("cache-{who}"))
    }

    /// Run tresor as client `who` (`host` uses the put-only key's password).
    fn run(&self, who: &str, args: &[&str]) -> Output {
        let mut c = self.env.cmd();
        c.env("TRESOR_CACHE_DIR", self.cache(who));
        if who.starts_with("host") {
            c.env("TRESOR_PASSWORD", HOST_PW);
        }
        c.args(args).output().unwrap()
    }

    fn code(&self, who: &str, args: &[&str], code: i32) -> Output {
        let o = self.run(who, args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "{who}: tresor {args:?}\nstdout: {}\nstderr: {}",
            stdout(&o),
            stderr(&o)
        );
        o
    }

    /// A backup of the source by `who` as `host`; its snapshot id.
    fn backup(&self, who: &str, host: &str) -> String {
        let src = self.src.to_str().unwrap();
        let o = self.code(who, &["backup", "--json", "--host", host, src], 0);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["snapshot_id"].as_str().unwrap().to_string()
    }

    /// Give the backup host a put-only key for `host`.
    fn add_host_key(&self, host: &str, pw: &str) {
        let pw = self
            .env
            .password_file(&format!("{host}.pw"), &format!("{pw}\n"));
        let mut args = vec!["key", "add", "--put-only", "--host", host];
        args.extend(["--new-password-file", pw.to_str().unwrap()]);
        args.extend(KDF);
        self.code("admin", &args, 0);
    }

    /// The ids `snapshots --json` lists for `who`, sorted.
    fn listed(&self, who: &str) -> Vec<String> {
        let o = self.code(who, &["snapshots", "--json"], 0);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let mut ids: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }

    /// Snapshot `id` restores, as seen by a fresh client with the admin's key, byte for byte.
    fn assert_restores(&self, id: &str) {
        self.assert_restores_with(id, PASSWORD);
    }

    /// [`Lab::assert_restores`] with the key that `password` opens.
    fn assert_restores_with(&self, id: &str, password: &str) {
        let t = tempfile::tempdir_in(self.env.dir.path()).unwrap();
        let target = t.path().join("t");
        let o = self
            .env
            .cmd()
            .env("TRESOR_PASSWORD", password)
            .env("TRESOR_CACHE_DIR", t.path().join("cache"))
            .args(["restore", id, "--target", target.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "restore {id}: {}", stderr(&o));
        let dir = target.join(self.src.strip_prefix("/").unwrap());
        for (name, data) in &self.files {
            assert_eq!(&std::fs::read(dir.join(name)).unwrap(), data, "{name}");
        }
    }

    fn storage(&self) -> Arc<dyn Storage> {
        Arc::new(LocalStorage::new(self.env.repo.clone()))
    }

    /// The admin's repository handle (library, no cache).
    fn admin(&self) -> Repository {
        Repository::open(self.storage(), PASSWORD).unwrap()
    }

    fn dir(&self, kind: Kind) -> PathBuf {
        self.env.repo.join(kind.dir())
    }

    fn count(&self, kind: Kind) -> usize {
        std::fs::read_dir(self.dir(kind)).unwrap().count()
    }

    /// Store `bytes` as an object of `kind` under the hash of its bytes, as the storage can.
    fn put(&self, kind: Kind, bytes: &[u8]) -> String {
        let name = ObjectId::of(bytes).to_hex();
        std::fs::write(self.dir(kind).join(&name), bytes).unwrap();
        name
    }

    /// The trust record files with their `seq` (read from the envelope's JSON body).
    fn trust_files(&self) -> Vec<(PathBuf, u64)> {
        let mut v: Vec<(PathBuf, u64)> = std::fs::read_dir(self.dir(Kind::Trust))
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                let b = std::fs::read(&p).unwrap();
                let body: serde_json::Value = serde_json::from_slice(&b[36..b.len() - 64]).unwrap();
                (p, body["seq"].as_u64().unwrap())
            })
            .collect();
        v.sort_by_key(|(_, seq)| *seq);
        v
    }

    /// The honest snapshot, re-signed by `signer` with `hostname` (as a forger can: sealing
    /// needs only the public key every key holds).
    fn resigned(&self, signer: &Signer, hostname: &str) -> String {
        let admin = self.admin();
        let id: ObjectId = self.honest.parse().unwrap();
        let mut snap: Snapshot = admin.load_snapshot(&id).unwrap();
        snap.hostname = hostname.into();
        let bytes = snap.seal(&admin.key().put_only(), signer).unwrap();
        self.put(Kind::Snapshot, &bytes)
    }
}

fn config_file(repo: &Path) -> PathBuf {
    let dir = repo.join("config");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(v.len(), 1);
    v.remove(0)
}

/// Delete the revocation of a removed key and put its key file back: the key stays revoked
/// (the trust record says so), opens nothing, and what it signs is ignored.
#[test]
fn a_revoked_key_stays_revoked_when_its_revocation_is_deleted_and_its_key_file_put_back() {
    let lab = Lab::new();
    lab.add_host_key("vps", HOST_PW);
    let before = lab.backup("host", "vps");
    assert_eq!(lab.listed("admin").len(), 2);
    let keys: serde_json::Value =
        serde_json::from_slice(&lab.code("admin", &["key", "list", "--json"], 0).stdout).unwrap();
    let host_key = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["host"] == "vps")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let key_path = lab.dir(Kind::Key).join(&host_key);
    let key_file = std::fs::read(&key_path).unwrap();
    lab.code("admin", &["key", "remove", &host_key[..8]], 0);
    // Before the attack the host's earlier snapshot is still accepted (its revocation lists it).
    let mut both = vec![lab.honest.clone(), before.clone()];
    both.sort();
    assert_eq!(lab.listed("admin"), both);

    // The storage deletes the revocation and puts the key file back.
    for e in std::fs::read_dir(lab.dir(Kind::Revocation)).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    std::fs::write(&key_path, &key_file).unwrap();
    let o = lab.code("host", &["backup", lab.src.to_str().unwrap()], 12);
    assert!(
        stderr(&o).contains("was removed from this repository (revoked)"),
        "{}",
        stderr(&o)
    );
    // The host signs a snapshot itself with the key it kept: ignored.
    let payload = tresor_format::keyfile::KeyFile::from_bytes(&key_file)
        .unwrap()
        .open(HOST_PW)
        .unwrap();
    let forged = lab.resigned(&payload.signer(), "vps");
    for who in ["admin", "fresh"] {
        // Without the revocation nothing of the revoked key is accepted, its old snapshot
        // neither; the admin's snapshot is untouched.
        assert_eq!(lab.listed(who), vec![lab.honest.clone()], "{who}");
        let o = lab.code(who, &["check"], 5);
        let e = stderr(&o);
        assert!(
            e.contains(
                "which is missing: its objects accepted only as other revocations list them"
            ),
            "{e}"
        );
        assert!(
            e.contains(&format!("snapshot {forged} was written by a revoked key")),
            "{e}"
        );
    }
    let keys = lab.code("admin", &["key", "list"], 0);
    assert!(stdout(&keys).contains("revoked"), "{}", stdout(&keys));
    lab.assert_restores(&lab.honest);
}

/// Deleting the newest trust record (a key addition) is a rollback: clients that saw it refuse
/// to open, naming both numbers — a put-only host as well as the admin. A fresh client cannot
/// know (format §13).
#[test]
fn a_client_that_saw_the_newest_trust_record_refuses_an_older_one() {
    let lab = Lab::new();
    lab.add_host_key("vps", HOST_PW);
    lab.backup("host", "vps");
    lab.add_host_key("vps2", "another host's password");
    lab.backup("host", "vps");
    lab.code("admin", &["snapshots"], 0);
    let records = lab.trust_files();
    assert_eq!(
        records.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let (newest, _) = &records[2];
    let saved = std::fs::read(newest).unwrap();
    std::fs::remove_file(newest).unwrap();

    let o = lab.code("admin", &["snapshots"], 5);
    assert!(
        stderr(&o).contains("trust record went back from 3 to 2: the storage rolled back"),
        "{}",
        stderr(&o)
    );
    let o = lab.code("host", &["backup", lab.src.to_str().unwrap()], 5);
    assert!(
        stderr(&o).contains("trust record went back from 3 to 2"),
        "{}",
        stderr(&o)
    );
    // A client that never saw seq 3 accepts what it finds.
    lab.code("fresh", &["snapshots"], 0);
    // The storage puts it back: everything works again.
    std::fs::write(newest, saved).unwrap();
    lab.code("admin", &["check"], 0);
    lab.backup("host", "vps");
    lab.assert_restores(&lab.honest);
}

/// Each field of the config weakened by the storage (pack size, compression, chunk sizes, Object
/// Lock, and the id): refused by full and put-only keys alike, nothing written.
#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn a_config_weakened_field_by_field_is_refused() {
    let env = Env::new();
    let mut config = tresor_format::config::Config::new().unwrap();
    config.object_lock = Some(tresor_format::config::ObjectLockConfig {
        mode: tresor_format::config::ObjectLockMode::Compliance,
        days: 30,
    });
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(env.repo.clone()));
    let owner = tresor_core::repo::KeyOwner {
        host: "admin-host".into(),
        username: "root".into(),
        created: "2026-12-01T00:00:00Z".into(),
    };
    let kdf = tresor_format::keyfile::KdfParams {
        m_kib: 8192,
        t: 1,
        p: 1,
    };
    Repository::init(storage, PASSWORD, kdf, &owner, config).unwrap();
    let lab = Lab::with(env);
    lab.add_host_key("vps", HOST_PW);
    lab.backup("host", "vps");
    let path = config_file(&lab.env.repo);
    let original = std::fs::read(&path).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&original).unwrap();
    let weakened: Vec<(&str, serde_json::Value)> = {
        let with = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = json.clone();
            f(&mut v);
            v
        };
        vec![
            ("1-byte packs", with(&|v| v["pack_size"] = 1.into())),
            (
                "compression 0",
                with(&|v| v["compression_level"] = 0.into()),
            ),
            (
                "tiny chunks",
                with(&|v| {
                    v["chunker"]["min_size"] = 64.into();
                    v["chunker"]["avg_size"] = 256.into();
                    v["chunker"]["max_size"] = 1024.into();
                }),
            ),
            (
                "object lock removed",
                with(&|v| {
                    v.as_object_mut().unwrap().remove("object_lock");
                }),
            ),
            (
                "governance",
                with(&|v| v["object_lock"]["mode"] = "governance".into()),
            ),
            ("1 day", with(&|v| v["object_lock"]["days"] = 1.into())),
        ]
    };
    for (what, v) in weakened {
        std::fs::remove_file(&path).unwrap();
        let bytes = serde_json::to_vec_pretty(&v).unwrap();
        let name = lab.put(Kind::Config, &bytes);
        let packs = lab.count(Kind::Pack);
        for (who, args) in [
            ("admin", vec!["snapshots"]),
            ("host", vec!["backup", lab.src.to_str().unwrap()]),
            ("fresh", vec!["check"]),
        ] {
            let o = lab.code(who, &args, 5);
            assert!(
                stderr(&o).contains(&format!(
                    "the config was changed without the admin key: config {}",
                    &name[..8]
                )),
                "{what}, {who}: {}",
                stderr(&o)
            );
        }
        assert_eq!(lab.count(Kind::Pack), packs, "{what}: nothing written");
        std::fs::remove_file(lab.dir(Kind::Config).join(&name)).unwrap();
        std::fs::write(&path, &original).unwrap();
    }
    lab.code("admin", &["check"], 0);
    lab.assert_restores(&lab.honest);
}

/// Trust records that are garbage, signed by another key (claiming a higher seq), or stored
/// under a wrong name are ignored — they neither change trust nor raise the high-water mark —
/// and `check` names each.
#[test]
fn garbage_and_unsigned_trust_records_are_ignored_and_reported() {
    let lab = Lab::new();
    lab.add_host_key("vps", HOST_PW);
    let admin = lab.admin();
    let real = admin.trust().record().unwrap().clone();
    assert_eq!(real.seq, 2);
    let garbage = lab.put(Kind::Trust, b"not a trust record at all");
    // A record of seq 99 by a made-up key, trusting only that key, naming another config.
    let forger = Signer::generate().unwrap();
    let forged = TrustRecord::new(99, ObjectId([7; 32]));
    let forged = lab.put(Kind::Trust, &forged.to_object(&forger));
    // The real newest record, under a name that is not its hash.
    let misnamed = "ab".repeat(32);
    std::fs::write(
        lab.dir(Kind::Trust).join(&misnamed),
        real.to_object(&admin.key().admin().unwrap()),
    )
    .unwrap();

    assert_eq!(lab.listed("admin"), vec![lab.honest.clone()]);
    lab.backup("host", "vps");
    let o = lab.code("admin", &["check"], 5);
    let e = stderr(&o);
    for expected in [
        format!(
            "trust record {garbage}: malformed signed object: not a signed tresor object: ignored"
        ),
        format!(
            "trust record {forged}: authentication failed (trust record (not signed by the admin \
             key)): data is corrupt or was sealed to another key: ignored"
        ),
        format!("trust record {misnamed}: content does not match its name: ignored"),
    ] {
        assert!(e.contains(&expected), "{expected}\n{e}");
    }
    // The forged seq 99 was not taken as the high-water mark.
    let seen = lab.cache("admin").join(&admin.config().id).join("seen");
    let marks: serde_json::Value = serde_json::from_slice(&std::fs::read(seen).unwrap()).unwrap();
    assert_eq!(marks["trust_seq"], 2);
    std::fs::remove_file(lab.dir(Kind::Trust).join(&forged)).unwrap();
    lab.code("admin", &["snapshots"], 0);
    lab.assert_restores(&lab.honest);
}

/// Two records of the same seq (two admins at once, or a replay of another branch): keys are
/// trusted only when every record lists them alike, a revocation in any counts; reported.
#[test]
fn trust_records_with_the_same_seq_merge_conservatively() {
    let lab = Lab::new();
    lab.add_host_key("vps", HOST_PW);
    let host_snapshot = lab.backup("host", "vps");
    let admin = lab.admin();
    let admin_signer = admin.key().admin().unwrap();
    let base = admin.trust().record().unwrap().clone();
    assert_eq!(base.seq, 2);
    let host_key = base.keys.iter().find(|k| k.host == "vps").unwrap().clone();
    // Another seq 2 revokes the host; a third adds a key the others do not list.
    let mut revoking = base.clone();
    revoking.revoke(RevokedKey {
        signing_public: host_key.signing_public,
        kind: Some(host_key.kind),
        host: Some(host_key.host.clone()),
        revocation: ObjectId([0x5e; 32]),
    });
    tresor_core::repo::trust::write_record(lab.storage().as_ref(), &admin_signer, &revoking)
        .unwrap();
    let kf = tresor_core::repo::make_key_file(
        admin.key(),
        admin.key().put_only(),
        "third password",
        tresor_format::keyfile::KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        },
        &tresor_core::repo::KeyOwner {
            host: "vps3".into(),
            username: "u".into(),
            created: "2026-12-01T00:00:00Z".into(),
        },
    )
    .unwrap();
    let kf_id = lab.put(Kind::Key, &kf);
    let mut adding = base.clone();
    adding.trust(
        tresor_core::repo::trusted_key(&tresor_format::keyfile::KeyFile::from_bytes(&kf).unwrap())
            .unwrap(),
    );
    tresor_core::repo::trust::write_record(lab.storage().as_ref(), &admin_signer, &adding).unwrap();
    assert_eq!(lab.trust_files().iter().filter(|(_, s)| *s == 2).count(), 3);

    // The revocation counts: the host's key opens nothing, its snapshot is ignored.
    let o = lab.code("host", &["backup", lab.src.to_str().unwrap()], 12);
    assert!(stderr(&o).contains("revoked"), "{}", stderr(&o));
    assert_eq!(lab.listed("admin"), vec![lab.honest.clone()]);
    assert!(!lab.listed("admin").contains(&host_snapshot));
    // The key only one record lists is not trusted.
    let o = lab
        .env
        .cmd()
        .env("TRESOR_PASSWORD", "third password")
        .env("TRESOR_CACHE_DIR", lab.cache("third"))
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(12), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "key {} is not in the repository's trust record",
            &kf_id[..8]
        )),
        "{}",
        stderr(&o)
    );
    let o = lab.code("admin", &["check"], 5);
    assert!(
        stderr(&o).contains("both have seq 2 and differ: merged conservatively"),
        "{}",
        stderr(&o)
    );
    lab.assert_restores(&lab.honest);
    // The next change starts from the merged record: the admin is trusted, and so stays.
    lab.add_host_key("vps4", "fourth password");
    assert_eq!(lab.trust_files().last().unwrap().1, 3);
    lab.code("admin", &["snapshots"], 0);
}

/// A snapshot the storage hides is reported by clients that saw it (`snapshots`: a warning and
/// exit 5; `check`: an error); put back, it is not.
#[test]
fn a_snapshot_hidden_by_the_storage_is_reported() {
    let lab = Lab::new();
    let newer = lab.backup("admin", "admin-host");
    let mut both = vec![lab.honest.clone(), newer.clone()];
    both.sort();
    assert_eq!(lab.listed("admin"), both);
    let path = lab.dir(Kind::Snapshot).join(&newer);
    let saved = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();

    let o = lab.code("admin", &["snapshots"], 5);
    let expected = format!("warning: snapshot {newer} (host \"admin-host\", time \"");
    assert!(stderr(&o).contains(&expected), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("was seen by this machine and is missing, and no forget record lists it: hidden by the storage?"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains(&lab.honest[..8]), "{}", stdout(&o));
    let o = lab.code("admin", &["check"], 5);
    assert!(
        stderr(&o).contains(&format!("error: snapshot {newer} (host")),
        "{}",
        stderr(&o)
    );
    // A client that never saw it cannot tell.
    lab.code("fresh", &["snapshots"], 0);
    lab.assert_restores(&lab.honest);
    std::fs::write(&path, saved).unwrap();
    lab.code("admin", &["snapshots"], 0);
    lab.code("admin", &["check"], 0);
    lab.assert_restores(&newer);
}

/// Snapshots deleted by `forget` (by id, by policy, with `--prune`) are not reported by any
/// client that saw them: the forget records list them, and prune and `repair index` keep them.
#[test]
fn snapshots_removed_by_forget_are_not_reported() {
    let lab = Lab::new();
    let second = lab.backup("admin", "admin-host");
    let third = lab.backup("admin", "other-host");
    let fourth = lab.backup("admin", "other-host");
    assert_eq!(lab.listed("admin").len(), 4);
    assert_eq!(lab.listed("other").len(), 4);
    lab.code("admin", &["forget", &second[..8]], 0);
    let o = lab.code("other", &["snapshots"], 0);
    assert!(!stderr(&o).contains("hidden"), "{}", stderr(&o));
    let o = lab.code(
        "admin",
        &["forget", "--keep-last", "1", "--host", "other-host"],
        0,
    );
    assert!(stdout(&o).contains("removed 1 snapshots"), "{}", stdout(&o));
    lab.code("admin", &["forget", &fourth, "--prune"], 0);
    lab.code("admin", &["repair", "index"], 0);
    for who in ["admin", "other"] {
        let o = lab.code(who, &["snapshots"], 0);
        assert!(!stderr(&o).contains("hidden"), "{who}: {}", stderr(&o));
        lab.code(who, &["check"], 0);
        assert_eq!(lab.listed(who), vec![lab.honest.clone()]);
    }
    let records = tresor_core::repo::records::load_records(&lab.admin()).unwrap();
    let mut forgotten: Vec<ObjectId> = records
        .forgotten
        .iter()
        .flat_map(|(_, ids)| ids.iter().copied())
        .collect();
    forgotten.sort();
    let mut expected: Vec<ObjectId> = [&second, &third, &fourth]
        .iter()
        .map(|id| id.parse().unwrap())
        .collect();
    expected.sort();
    assert_eq!(
        forgotten, expected,
        "one record per forget that deleted something"
    );
    assert_eq!(records.forgotten.len(), 3);
    lab.assert_restores(&lab.honest);
}

/// Two signing keys ground to share their first 8 hex digits: a prefix of 8 digits is
/// ambiguous and accepts nothing; the full key accepts exactly one. Host names the forger
/// chose are printed escaped.
#[test]
fn accept_refuses_a_prefix_two_ground_signers_share() {
    let lab = Lab::new();
    let (a, b) = ground_pair();
    let (ha, hb) = (hex::encode(a.public()), hex::encode(b.public()));
    assert_eq!(ha[..8], hb[..8]);
    assert_ne!(
        ha[..9],
        hb[..9],
        "exactly 8 shared digits keep the test honest"
    );
    let hostile = "evil\x1b[2J\nhost";
    let sa = lab.resigned(&a, hostile);
    let sb = lab.resigned(&b, "other");
    assert_eq!(lab.listed("admin"), vec![lab.honest.clone()]);
    let (records, revocations) = (lab.count(Kind::Trust), lab.count(Kind::Revocation));

    let o = lab.code(
        "admin",
        &["key", "signers", "--accept", &ha[..8], "--yes"],
        1,
    );
    let (lo, hi) = if ha < hb { (&ha, &hb) } else { (&hb, &ha) };
    assert!(
        stderr(&o).contains(&format!(
            "signer prefix {} is ambiguous: it matches 2 unknown signers ({lo}, {hi}); give more \
             digits or the full key",
            &ha[..8]
        )),
        "{}",
        stderr(&o)
    );
    let o = lab.code(
        "admin",
        &["key", "signers", "--accept", &ha[..7], "--yes"],
        1,
    );
    assert!(
        stderr(&o).contains("give at least 8 hex digits"),
        "{}",
        stderr(&o)
    );
    assert_eq!(lab.count(Kind::Trust), records, "nothing written");
    assert_eq!(lab.count(Kind::Revocation), revocations);
    assert_eq!(lab.listed("admin"), vec![lab.honest.clone()]);

    // The listing escapes what the forger chose.
    let o = lab.code("admin", &["key", "signers"], 0);
    let out = stdout(&o);
    assert!(out.contains(r#"host "evil\x1b[2J\nhost""#), "{out}");
    assert!(!out.contains('\x1b'), "{out}");
    assert!(out.contains(&format!("signer {ha}: 1 object(s)")), "{out}");

    let o = lab.code("admin", &["key", "signers", "--accept", &ha, "--yes"], 0);
    assert!(
        stdout(&o).contains(&format!("to accept:\nsigner {ha}: 1 object(s)")),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains(&format!("accepted signer {ha}")),
        "{}",
        stdout(&o)
    );
    assert!(!stdout(&o).contains('\x1b'));
    let mut expected = vec![lab.honest.clone(), sa.clone()];
    expected.sort();
    assert_eq!(lab.listed("admin"), expected);
    assert!(!lab.listed("admin").contains(&sb));
    assert_eq!(lab.count(Kind::Trust), records + 1);
    lab.assert_restores(&lab.honest);
    lab.assert_restores(&sa);
}

/// Two Ed25519 signers whose public keys share their first 32 bits (about 2^16 tries by the
/// birthday bound; bounded at 2^22).
fn ground_pair() -> (Signer, Signer) {
    let mut seen: std::collections::HashMap<[u8; 4], [u8; 32]> = Default::default();
    for i in 0u64..1 << 22 {
        let secret = *blake3::hash(&i.to_le_bytes()).as_bytes();
        let s = Signer::from_secret(&secret);
        let p = s.public();
        let key: [u8; 4] = p[..4].try_into().unwrap();
        if let Some(other) = seen.get(&key) {
            let o = Signer::from_secret(other);
            if p[4] >> 4 != o.public()[4] >> 4 {
                return (o, s);
            }
            continue;
        }
        seen.insert(key, secret);
    }
    panic!("no two signers share 8 hex digits in 2^22 tries");
}

/// Every trust record lost: nothing opens ("no trust record"); a paper-key import writes a new
/// record above the highest `seq` this machine saw, trusting the config as it is (shown for the
/// admin to check) and only the new key; the old keys' signers are then accepted by name.
#[test]
fn a_paper_key_import_rebuilds_a_lost_trust_record() {
    let lab = Lab::new();
    lab.add_host_key("vps", HOST_PW);
    lab.code("admin", &["snapshots"], 0);
    let paper = stdout(&lab.code("admin", &["key", "export", "--paper"], 0));
    let paper_file = lab.env.path("paper.txt");
    std::fs::write(&paper_file, paper).unwrap();
    for (path, _) in lab.trust_files() {
        std::fs::remove_file(path).unwrap();
    }
    let o = lab.code("admin", &["snapshots"], 5);
    assert!(
        stderr(&o).contains(
            "repository damaged: no trust record: not a format 2 repository (or its trust \
             records were deleted)"
        ),
        "{}",
        stderr(&o)
    );
    let pw = lab
        .env
        .password_file("recovered.pw", "recovered password\n");
    let mut args = vec!["key", "import", "--file", paper_file.to_str().unwrap()];
    args.extend(["--new-password-file", pw.to_str().unwrap()]);
    args.extend(KDF);
    let o = lab.code("admin", &args, 0);
    assert!(
        stderr(&o).contains(
            "warning: the repository had no trust record: a new one trusts the config as it is \
             now (chunks 262144/1048576/4194304 bytes, packs of 33554432 bytes, compression \
             level 3, object lock none) and only the imported key"
        ),
        "{}",
        stderr(&o)
    );
    // Above the seq 2 this machine saw.
    let records = lab.trust_files();
    assert_eq!(records.iter().map(|(_, s)| *s).collect::<Vec<_>>(), [3]);
    let recovered = |args: &[&str]| {
        lab.env
            .cmd()
            .env("TRESOR_PASSWORD", "recovered password")
            .env("TRESOR_CACHE_DIR", lab.cache("admin"))
            .args(args)
            .output()
            .unwrap()
    };
    let o = recovered(&["snapshots", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "[]");
    // The old keys are not trusted any more: the admin's and the host's.
    let o = lab.code("admin", &["snapshots"], 12);
    assert!(
        stderr(&o).contains("is not in the repository's trust record"),
        "{}",
        stderr(&o)
    );
    lab.code("host", &["backup", lab.src.to_str().unwrap()], 12);
    let o = recovered(&["key", "signers", "--accept", "all", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("accepted signer"), "{}", stdout(&o));
    let o = recovered(&["snapshots", "--json"]);
    assert!(stdout(&o).contains(&lab.honest), "{}", stdout(&o));
    lab.assert_restores_with(&lab.honest, "recovered password");
}
