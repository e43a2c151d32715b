//! forget through the CLI: policies, ids, dry runs, refusals.

use tresor_testkit::prelude::*;

fn snapshot_times(env: &Env) -> Vec<String> {
    let o = env.ok(&["snapshots", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["time"].as_str().unwrap()[..19].to_string())
        .collect()
}

#[test]
fn forget_applies_a_policy_and_ids() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for (i, t) in [
        "2026-01-01 10:00:00",
        "2026-01-01 12:00:00",
        "2026-01-02 09:00:00",
        "2026-01-03 08:00:00",
        "2026-01-03 20:00:00",
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(src.join("f"), format!("version {i}")).unwrap();
        env.ok(&["backup", "--quiet", "--time", t, src.to_str().unwrap()]);
    }
    assert_eq!(snapshot_times(&env).len(), 5);
    // Dry run: JSON decisions with reasons, nothing removed.
    let o = env.ok(&["forget", "--keep-daily", "2", "--dry-run", "--json"]);
    let groups: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let decisions = groups[0]["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 5);
    assert_eq!(decisions.iter().filter(|d| d["keep"] == true).count(), 2);
    assert_eq!(decisions[0]["reasons"][0], "daily snapshot");
    assert_eq!(snapshot_times(&env).len(), 5);
    env.ok(&["forget", "--keep-daily", "2"]);
    let times = snapshot_times(&env);
    assert_eq!(times.len(), 2);
    assert!(
        times[0].starts_with("2026-01-02T09:00:00") && times[1].starts_with("2026-01-03T20:00:00"),
        "{times:?}"
    );
    // By id.
    let o = env.ok(&["snapshots", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = v[0]["short_id"].as_str().unwrap().to_string();
    env.ok(&["forget", &id]);
    assert_eq!(snapshot_times(&env).len(), 1);
    // No policy: refused; the restore of what is left still works.
    assert_eq!(env.run(&["forget"]).status.code(), Some(1));
    env.ok(&["check"]);
    let t = env.path("t");
    env.ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(t.join(src.strip_prefix("/").unwrap()).join("f")).unwrap(),
        b"version 4"
    );
}
