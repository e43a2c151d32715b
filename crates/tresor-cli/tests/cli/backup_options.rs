//! Backup options: excludes, markers, tags, host, time, dry run.

use tresor_testkit::prelude::*;

fn listing(env: &Env) -> Vec<String> {
    let o = env.ok(&["ls", "--json", "latest"]);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["path"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn excludes_markers_and_snapshot_fields() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    for d in ["keep", "tmpdir", "cache", "marked", "node_modules/x"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    std::fs::write(src.join("keep/a.txt"), b"a").unwrap();
    std::fs::write(src.join("keep/b.tmp"), b"b").unwrap();
    std::fs::write(src.join("tmpdir/c"), b"c").unwrap();
    std::fs::write(
        src.join("cache/CACHEDIR.TAG"),
        b"Signature: 8a477f597d28d172789f06886806bc55\n# cache",
    )
    .unwrap();
    std::fs::write(src.join("cache/d"), b"d").unwrap();
    std::fs::write(src.join("marked/.nobackup"), b"").unwrap();
    std::fs::write(src.join("marked/e"), b"e").unwrap();
    std::fs::write(src.join("node_modules/x/f"), b"f").unwrap();
    let exclude_file = env.path("excludes");
    std::fs::write(&exclude_file, "# comment\n\nnode_modules\n").unwrap();
    // Dry run writes nothing.
    let s = env.backup_json(&[&src], &["--dry-run"], 0);
    assert!(s["snapshot_id"].is_null());
    assert!(
        std::fs::read_dir(env.repo.join("snapshots"))
            .unwrap()
            .next()
            .is_none()
    );
    let s = env.backup_json(
        &[&src],
        &[
            "--exclude",
            "*.tmp",
            "--exclude",
            &format!("{}/tmpdir", src.display()),
            "--exclude-file",
            exclude_file.to_str().unwrap(),
            "--exclude-caches",
            "--exclude-if-present",
            ".nobackup",
            "--tag",
            "nightly",
            "--tag",
            "db",
            "--host",
            "custom-host",
            "--time",
            "2024-02-29 23:59:58",
        ],
        0,
    );
    assert!(s["snapshot_id"].is_string());
    let paths = listing(&env);
    let base = src.display().to_string();
    assert!(paths.contains(&format!("{base}/keep/a.txt")), "{paths:?}");
    // --exclude-caches keeps the directory and its CACHEDIR.TAG, as restic does.
    assert!(
        paths.contains(&format!("{base}/cache/CACHEDIR.TAG")),
        "{paths:?}"
    );
    for gone in ["keep/b.tmp", "tmpdir", "cache/d", "marked", "node_modules"] {
        assert!(
            !paths
                .iter()
                .any(|p| p.starts_with(&format!("{base}/{gone}"))),
            "{gone} excluded: {paths:?}"
        );
    }
    let o = env.ok(&["snapshots", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let snap = &v[0];
    assert_eq!(snap["host"], "custom-host");
    assert_eq!(snap["tags"], serde_json::json!(["nightly", "db"]));
    assert!(
        snap["time"]
            .as_str()
            .unwrap()
            .starts_with("2024-02-29T23:59:58"),
        "{snap}"
    );
    assert_eq!(snap["paths"], serde_json::json!([base]));
    // Filters: by host and tag.
    let o = env.ok(&["snapshots", "--json", "--host", "other"]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let o = env.ok(&["snapshots", "--json", "--tag", "db"]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A bad pattern is a clear error.
    let o = env.run_code(&["backup", "--exclude", "[", src.to_str().unwrap()], 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("pattern"));
}
