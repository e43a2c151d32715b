//! Key commands and put-only refusals through the CLI.

use tresor_testkit::prelude::*;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn put_only_key_backs_up_but_every_read_is_refused() {
    let env = Env::new();
    env.init();
    let pw = env.password_file("host-pw", "host password\n");
    let o = env.ok(&[
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
        "--json",
    ]);
    let added: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"put-only data").unwrap();
    let host = |args: &[&str]| {
        env.cmd()
            .env_remove("TRESOR_PASSWORD")
            .env("TRESOR_PASSWORD_FILE", &pw)
            .env("TRESOR_CACHE_DIR", env.path("cache"))
            .args(args)
            .output()
            .unwrap()
    };
    let o = host(&["backup", "--json", src.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = host(&["backup", "--json", src.to_str().unwrap()]);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        s["bytes_read"], 0,
        "second put-only backup uses the local cache: {s}"
    );
    let t = env.path("t");
    for args in [
        vec!["restore", "latest", "--target", t.to_str().unwrap()],
        vec!["ls", "latest"],
        vec!["cat", "snapshot", "latest"],
        vec!["check", "--read-data"],
        vec!["check"],
        vec!["key", "add", "--new-password-file", pw.to_str().unwrap()],
        vec!["key", "export", "--paper"],
    ] {
        let o = host(&args);
        assert_eq!(o.status.code(), Some(13), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("can write but not read"),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(!t.exists());
    }
    // `snapshots` shows ids and writers only.
    let o = host(&["snapshots", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert!(v[0]["own"].as_bool().unwrap());
    assert!(v[0].get("paths").is_none() && v[0].get("time").is_none());
    assert_eq!(v[0]["ignored"], false);
    let o = host(&["snapshots", "--host", "vps"]);
    assert_eq!(o.status.code(), Some(13), "{}", stderr(&o));
    // The full key lists both keys and restores the host's snapshot.
    let o = env.ok(&["key", "list", "--json"]);
    let keys: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 2);
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .any(|k| k["kind"] == "put-only" && k["host"] == "vps" && k["id"] == added["id"])
    );
    env.ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(t.join(src.strip_prefix("/").unwrap()).join("f")).unwrap(),
        b"put-only data"
    );
}

#[test]
#[allow(
    clippy::cognitive_complexity,
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn key_passwd_remove_and_paper_round_trip() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), b"before the keys were lost").unwrap();
    env.ok(&["backup", src.to_str().unwrap()]);
    let pw = env.password_file("new-pw", "second password\n");
    let kdf = ["--kdf-memory-kib", "8192", "--kdf-iterations", "1"];
    let mut args = vec!["key", "passwd", "--new-password-file", pw.to_str().unwrap()];
    args.extend(kdf);
    env.ok(&args);
    assert_eq!(
        env.run(&["snapshots"]).status.code(),
        Some(12),
        "old password no longer works"
    );
    let new = |args: &[&str]| {
        env.cmd()
            .env("TRESOR_PASSWORD", "second password")
            .args(args)
            .output()
            .unwrap()
    };
    assert_eq!(new(&["snapshots"]).status.code(), Some(0));
    // The last full key cannot be removed.
    let o = new(&["key", "list", "--json"]);
    let keys: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = keys[0]["id"].as_str().unwrap().to_string();
    let o = new(&["key", "remove", &id[..8]]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("key in use") || stderr(&o).contains("last full key"),
        "{}",
        stderr(&o)
    );
    // Paper export and import after losing every key file.
    let o = new(&["key", "export", "--paper"]);
    let paper = String::from_utf8(o.stdout).unwrap();
    assert!(paper.starts_with("tresor paper key v2 "));
    // The header and 160 bytes of key material in lines of 16.
    assert_eq!(paper.lines().count(), 11, "{paper}");
    for e in std::fs::read_dir(env.repo.join("keys")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    let paper_file = env.path("paper.txt");
    std::fs::write(&paper_file, &paper).unwrap();
    let mut args = vec![
        "key",
        "import",
        "--file",
        paper_file.to_str().unwrap(),
        "--new-password-file",
        pw.to_str().unwrap(),
    ];
    args.extend(kdf);
    let o = env
        .cmd()
        .env_remove("TRESOR_PASSWORD")
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The lost key's snapshot is listed, not accepted: the admin judges, then accepts it.
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        out.contains("1 snapshot(s)") && out.contains("key signers --accept"),
        "{out}"
    );
    let o = new(&["snapshots", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 0);
    assert_eq!(o.status.code(), Some(0), "ignored on purpose is not damage");
    assert!(stderr(&o).contains("does not know"), "{}", stderr(&o));
    // check does not mistake the ignored signer's packs for leftovers prune would delete.
    let o = new(&["check"]);
    let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(
        all.contains("listed only by ignored index objects"),
        "{all}"
    );
    assert!(!all.contains("interrupted backup"), "{all}");
    let o = new(&["key", "signers", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let signer = v["unknown"][0]["signer"].as_str().unwrap().to_string();
    assert_eq!(
        v["unknown"][0]["snapshots"][0]["paths"][0],
        src.to_str().unwrap()
    );
    // Without a terminal to confirm on, accepting needs --yes; the listing says what it would
    // accept, and nothing is written.
    let trust_records = || std::fs::read_dir(env.repo.join("trust")).unwrap().count();
    let before = trust_records();
    let o = new(&["key", "signers", "--accept", &signer[..12]]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("add --yes to accept the 1 signer(s) listed above"),
        "{}",
        stderr(&o)
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        out.contains(&format!("signer {signer}: 2 object(s)")),
        "{out}"
    );
    assert!(
        out.contains(&format!("paths \"{}\"", src.display())),
        "{out}"
    );
    assert_eq!(trust_records(), before);
    let o = new(&["key", "signers", "--accept", &signer[..12], "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(trust_records(), before + 1);
    let t = env.path("t");
    assert_eq!(
        new(&["restore", "latest", "--target", t.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        std::fs::read(t.join(src.strip_prefix("/").unwrap()).join("f")).unwrap(),
        b"before the keys were lost"
    );
    assert_eq!(new(&["check"]).status.code(), Some(0));
}

#[test]
fn new_passwords_come_only_from_new_password_sources() {
    use std::process::Stdio;
    let env = Env::new();
    env.init();
    // TRESOR_PASSWORD is the current password, never the new one.
    let o = env
        .cmd()
        .args(["key", "add", "--put-only"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--new-password-file"), "{}", stderr(&o));
    let o = env
        .cmd()
        .args(["key", "passwd"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    // A new password that opens an existing key is refused.
    let same = env.password_file("same", &format!("{PASSWORD}\n"));
    let o = env.run(&[
        "key",
        "add",
        "--put-only",
        "--new-password-file",
        same.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already opens key"), "{}", stderr(&o));
    // Empty: refused unless insisted on.
    let empty = env.password_file("empty", "\n");
    let kdf = ["--kdf-memory-kib", "8192", "--kdf-iterations", "1"];
    let mut args = vec!["key", "add", "--new-password-file", empty.to_str().unwrap()];
    args.extend(kdf);
    let o = env.run(&args);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("empty passwords are refused"),
        "{}",
        stderr(&o)
    );
    args.push("--allow-empty-password");
    env.ok(&args);
    let o = env
        .cmd()
        .env("TRESOR_PASSWORD", "")
        .args(["key", "list", "--json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let keys: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 2);
}
