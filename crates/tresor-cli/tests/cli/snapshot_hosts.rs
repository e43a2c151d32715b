//! Issue 11, item 2 through the CLI: a put-only key backs up for the host it is certified for
//! (the default `--host`; another host is refused before anything is written), `snapshots`
//! shows who signed each snapshot, and a snapshot dated in the future is flagged, never
//! `latest`, and left alone by retention policies.

use tresor_testkit::prelude::*;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn put_only_hosts_listings_and_future_snapshots() {
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
    let put_only_key: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"vps data").unwrap();
    let host = |args: &[&str]| {
        env.cmd()
            .env_remove("TRESOR_PASSWORD")
            .env("TRESOR_PASSWORD_FILE", &pw)
            .arg("--no-cache")
            .args(args)
            .output()
            .unwrap()
    };
    // The default host of a put-only key is the one it is certified for.
    let o = host(&["backup", "--json", src.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Another host is refused before anything is written.
    let before = env.snapshot_ids();
    let markers = || std::fs::read_dir(env.repo.join("markers")).unwrap().count();
    let markers_before = markers();
    let o = host(&["backup", "--host", "victim", src.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("this put-only key is certified for host \"vps\""),
        "{}",
        stderr(&o)
    );
    assert_eq!(env.snapshot_ids(), before);
    assert_eq!(markers(), markers_before, "no start marker either");

    // The admin backs up now, and once dated 2099.
    env.backup_json(&[&src], &["--host", "admin"], 0);
    env.backup_json(
        &[&src],
        &["--host", "admin", "--time", "2099-01-01 00:00:00"],
        0,
    );
    let keys: serde_json::Value =
        serde_json::from_slice(&env.ok(&["key", "list", "--json"]).stdout).unwrap();
    let admin_key = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "full")
        .unwrap();
    let short = |v: &serde_json::Value| v["id"].as_str().unwrap()[..8].to_string();
    let o = env.ok(&["snapshots", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows: Vec<(String, String, String, bool)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["host"].as_str().unwrap().to_string(),
                s["signer"]["id"].as_str().unwrap().to_string(),
                s["signer"]["kind"].as_str().unwrap().to_string(),
                s["future"].as_bool().unwrap(),
            )
        })
        .collect();
    let (vps, admin) = (short(&put_only_key), short(admin_key));
    assert_eq!(
        rows,
        [
            ("vps".into(), vps.clone(), "put-only".into(), false),
            ("admin".into(), admin.clone(), "full".into(), false),
            ("admin".into(), admin.clone(), "full".into(), true),
        ]
    );
    assert_eq!(list[0]["signer"]["host"], "vps");
    assert_eq!(list[0]["signer"]["public"].as_str().unwrap().len(), 64);
    // The table: a Signer column, `!` after a future time, and the footnote.
    let table = stdout(&env.ok(&["snapshots"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].contains(" Signer "), "{table}");
    assert!(lines[1].contains(&format!("{vps} put-only")), "{table}");
    assert!(
        lines[3].contains("2099-01-01") && lines[3].contains(" !"),
        "{table}"
    );
    assert!(!lines[2].contains(" !"), "{table}");
    assert!(table.contains("! dated more than a day ahead"), "{table}");

    // `latest` is not the future snapshot; a policy neither keeps nor removes it.
    let now_id = list[1]["short_id"].as_str().unwrap();
    let future_id = list[2]["short_id"].as_str().unwrap();
    let o = env.ok(&["ls", "latest", "--host", "admin"]);
    assert!(
        stderr(&o).contains(&format!("snapshot {now_id} ")),
        "{}",
        stderr(&o)
    );
    let o = env.ok(&["forget", "--keep-last", "1", "--host", "admin", "--dry-run"]);
    assert!(
        stderr(&o).contains(&format!("note: snapshot {future_id} is dated")),
        "{}",
        stderr(&o)
    );
    let o = env.ok(&["forget", "--keep-last", "1", "--host", "admin", "--json"]);
    let groups: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<&str> = groups[0]["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [list[1]["id"].as_str().unwrap()], "{groups}");
    assert_eq!(env.snapshot_ids().len(), 3, "nothing was removed");
    let o = env.ok(&["check"]);
    assert!(
        stderr(&o).contains(&format!(
            "snapshot {} is dated",
            list[2]["id"].as_str().unwrap()
        )),
        "{}",
        stderr(&o)
    );
}
