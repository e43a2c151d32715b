//! Unlocked key files (format §4.4): `key export --unlocked FILE` and `--key-file FILE` — no
//! password, the trust record still judges the key, the file is refused when others may read
//! it, when it belongs to another repository and when it is no unlocked key file.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};
use tresor_testkit::prelude::*;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `tresor` on the env's repository with no password source at all.
fn no_password(env: &Env) -> Command {
    let mut c = env.cmd();
    c.env_remove("TRESOR_PASSWORD")
        .env("TRESOR_CACHE_DIR", env.path("cache"));
    c
}

fn with_key(env: &Env, key: &std::path::Path, args: &[&str]) -> Output {
    no_password(env)
        .arg("--key-file")
        .arg(key)
        .args(args)
        .output()
        .unwrap()
}

/// Back up `src` with the unlocked `key` (which must succeed), then restore the latest snapshot
/// to `t`: the restore's output.
fn backup_and_restore(
    env: &Env,
    key: &std::path::Path,
    src: &std::path::Path,
    t: &std::path::Path,
) -> Output {
    let o = with_key(env, key, &["backup", src.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    with_key(
        env,
        key,
        &["restore", "latest", "--target", t.to_str().unwrap()],
    )
}

fn export(env: &Env, file: &std::path::Path) -> serde_json::Value {
    let o = env.ok(&[
        "key",
        "export",
        "--unlocked",
        file.to_str().unwrap(),
        "--json",
    ]);
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn a_full_key_file_backs_up_and_restores_without_a_password() {
    let env = Env::new();
    env.init();
    let key = env.path("full.key");
    let out = export(&env, &key);
    assert_eq!(out["message_type"], "unlocked key written");
    assert_eq!(out["put_only"], false);
    assert_eq!(out["file"], key.to_str().unwrap());
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&key).unwrap()).unwrap();
    assert_eq!(file["version"], 2);
    assert_eq!(file["type"], "tresor unlocked key");
    let cfg: serde_json::Value =
        serde_json::from_slice(&env.ok(&["cat", "config"]).stdout).unwrap();
    assert_eq!(file["repository"], cfg["id"]);
    // Never overwritten.
    let before = std::fs::read(&key).unwrap();
    let o = env.run(&["key", "export", "--unlocked", key.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot create"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&key).unwrap(), before);

    let src = env.path("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/a"), b"unlocked backup").unwrap();
    std::fs::write(src.join("b"), vec![7u8; 300_000]).unwrap();
    // Without a password source and without the key file: refused.
    let o = no_password(&env).args(["snapshots"]).output().unwrap();
    assert_ne!(o.status.code(), Some(0));
    let t = env.path("t");
    let o = backup_and_restore(&env, &key, &src, &t);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let base = t.join(src.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(base.join("d/a")).unwrap(), b"unlocked backup");
    assert_eq!(std::fs::read(base.join("b")).unwrap(), vec![7u8; 300_000]);

    // A password change writes a new key file with the same signing key: the file still works.
    let pw = env.password_file("new-pw", "another password\n");
    env.ok(&["key", "passwd", "--new-password-file", pw.to_str().unwrap()]);
    let o = with_key(&env, &key, &["snapshots", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
}

#[test]
fn a_put_only_key_file_writes_but_cannot_read_and_stops_when_removed() {
    let env = Env::new();
    env.init();
    let pw = env.password_file("host-pw", "host password\n");
    let mut args = put_only_key_args("vps", &pw);
    args.push("--json".into());
    let o = env.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let added: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let key = env.path("vps.key");
    let o = no_password(&env)
        .env("TRESOR_PASSWORD_FILE", &pw)
        .args([
            "key",
            "export",
            "--unlocked",
            key.to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["put_only"], true);
    assert_eq!(out["id"], added["id"]);
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"from the host").unwrap();
    let t = env.path("t");
    let o = backup_and_restore(&env, &key, &src, &t);
    assert_eq!(o.status.code(), Some(13), "{}", stderr(&o));
    assert!(!t.exists());
    // The storage plants a copy of the host's key file that claims to be a full key (without
    // a valid certificate), sorted before the real one: it is not taken, the key stays put-only.
    let keys = env.repo.join("keys");
    let id = added["id"].as_str().unwrap();
    let mut forged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(keys.join(id)).unwrap()).unwrap();
    forged["kind"] = "full".into();
    forged["params"]["m_kib"] = 8.into();
    let bytes = serde_json::to_vec_pretty(&forged).unwrap();
    let name = tresor_format::ObjectId::of(&bytes).to_hex();
    std::fs::write(keys.join(&name), &bytes).unwrap();
    let o = with_key(
        &env,
        &key,
        &["restore", "latest", "--target", t.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(13), "{}", stderr(&o));
    let o = with_key(&env, &key, &["backup", src.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    std::fs::remove_file(keys.join(&name)).unwrap();
    // The admin removes the key: the unlocked file no longer opens anything.
    env.ok(&["key", "remove", &id[..8]]);
    let o = with_key(&env, &key, &["backup", src.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(12), "{}", stderr(&o));
    assert!(stderr(&o).contains("was removed"), "{}", stderr(&o));
    assert_eq!(env.snapshot_ids().len(), 2);
}

#[test]
fn foreign_readable_and_garbage_files_are_refused_in_one_line() {
    let env = Env::new();
    env.init();
    let other = Env::new();
    other.init();
    let key = env.path("full.key");
    export(&env, &key);
    let secret = serde_json::from_slice::<serde_json::Value>(&std::fs::read(&key).unwrap())
        .unwrap()["payload"]["signing_secret"]
        .as_str()
        .unwrap()
        .to_string();
    let check = |o: &Output, want: &str| {
        let e = stderr(o);
        assert_eq!(o.status.code(), Some(1), "{e}");
        assert!(e.contains(want), "{e:?} lacks {want:?}");
        assert!(!e.contains(&secret), "the key leaked: {e}");
        assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    };
    // Another repository's file.
    check(&with_key(&other, &key, &["snapshots"]), "for repository");
    // Readable by others.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    check(
        &with_key(&env, &key, &["snapshots"]),
        "readable by group or others",
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Garbage, a password key file, a huge file.
    let bad = env.password_file("bad.key", "not a key\n");
    check(&with_key(&env, &bad, &["snapshots"]), "unlocked key file");
    let kf = std::fs::read_dir(env.repo.join("keys"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let stored = env.password_file("stored.key", &std::fs::read_to_string(kf.path()).unwrap());
    check(
        &with_key(&env, &stored, &["snapshots"]),
        "unlocked key file",
    );
    let huge = env.password_file("huge.key", &" ".repeat(1 << 20));
    check(&with_key(&env, &huge, &["snapshots"]), "more than 65536");
    let missing = env.path("missing.key");
    check(&with_key(&env, &missing, &["snapshots"]), "missing.key");
}
