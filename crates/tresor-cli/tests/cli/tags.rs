//! Tags mean what restic means: `backup --tag a,b` records two tags, a filter `--tag a,b` means
//! "has both", repeated `--tag` options mean "either" (restic's TagLists); `--keep-tag` alike.

use tresor_testkit::prelude::*;

/// Five snapshots of one folder, tagged through the CLI: (short id, tags recorded).
fn tagged(env: &Env) -> Vec<String> {
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let options: [&[&str]; 5] = [
        &[],
        &["--tag", "a,b"],
        &["--tag", "a"],
        &["--tag", "b", "--tag", " c ,b"],
        &["--tag", "c"],
    ];
    for (i, opts) in options.iter().enumerate() {
        std::fs::write(src.join("f"), format!("version {i}")).unwrap();
        let time = format!("2026-01-0{} 10:00:00", i + 1);
        let mut args = vec!["backup", "--quiet", "--time", &time];
        args.extend_from_slice(opts);
        args.push(src.to_str().unwrap());
        env.ok(&args);
    }
    let o = env.ok(&["snapshots", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let recorded: Vec<serde_json::Value> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["tags"].clone())
        .collect();
    assert_eq!(
        recorded,
        vec![
            serde_json::json!([]),
            serde_json::json!(["a", "b"]),
            serde_json::json!(["a"]),
            serde_json::json!(["b", "c"]),
            serde_json::json!(["c"]),
        ]
    );
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["short_id"].as_str().unwrap().to_string())
        .collect()
}

/// Which of the five snapshots (by number) `snapshots` lists with `filter`.
fn listed(env: &Env, ids: &[String], filter: &[&str]) -> Vec<usize> {
    let mut args = vec!["snapshots", "--json"];
    args.extend_from_slice(filter);
    let o = env.ok(&args);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    numbers(ids, v.as_array().unwrap().iter().map(|s| &s["short_id"]))
}

fn numbers<'a>(ids: &[String], got: impl Iterator<Item = &'a serde_json::Value>) -> Vec<usize> {
    got.map(|id| {
        let id = id.as_str().unwrap();
        ids.iter().position(|i| id.starts_with(i.as_str())).unwrap()
    })
    .collect()
}

#[test]
fn tag_filters_are_restic_tag_lists() {
    let env = Env::new();
    let ids = tagged(&env);
    assert_eq!(listed(&env, &ids, &[]), [0, 1, 2, 3, 4]);
    assert_eq!(listed(&env, &ids, &["--tag", "a,b"]), [1]);
    assert_eq!(listed(&env, &ids, &["--tag", "b, c"]), [3]);
    assert_eq!(listed(&env, &ids, &["--tag", "a"]), [1, 2]);
    assert_eq!(listed(&env, &ids, &["--tag", "a", "--tag", "b"]), [1, 2, 3]);
    assert_eq!(
        listed(&env, &ids, &["--tag", "a,b", "--tag", "c"]),
        [1, 3, 4]
    );
    assert_eq!(listed(&env, &ids, &["--tag", ""]), [0]);
    assert_eq!(listed(&env, &ids, &["--tag", "", "--tag", "c"]), [0, 3, 4]);
    assert_eq!(listed(&env, &ids, &["--tag", "a,c"]), Vec::<usize>::new());
    // `latest` under a filter follows the same rule.
    let t = env.path("t");
    env.ok(&[
        "restore",
        "latest",
        "--tag",
        "a",
        "--tag",
        "b",
        "--target",
        t.to_str().unwrap(),
    ]);
    let src = env.path("src");
    let f = t.join(src.strip_prefix("/").unwrap()).join("f");
    assert_eq!(std::fs::read(f).unwrap(), b"version 3");
}

/// Which snapshots (by number) a `forget --dry-run --json` decides on, and which it keeps.
fn forget(env: &Env, ids: &[String], args: &[&str]) -> (Vec<usize>, Vec<usize>) {
    let mut all = vec!["forget", "--dry-run", "--json"];
    all.extend_from_slice(args);
    let o = env.ok(&all);
    let groups: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let decisions: Vec<&serde_json::Value> = groups
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["decisions"].as_array().unwrap())
        .collect();
    let mut judged = numbers(ids, decisions.iter().map(|d| &d["id"]));
    let mut kept = numbers(
        ids,
        decisions
            .iter()
            .filter(|d| d["keep"] == true)
            .map(|d| &d["id"]),
    );
    judged.sort();
    kept.sort();
    (judged, kept)
}

#[test]
fn forget_filters_and_keep_tag_are_restic_tag_lists() {
    let env = Env::new();
    let ids = tagged(&env);
    let last = ["--keep-last", "1"];
    assert_eq!(
        forget(&env, &ids, &[&last[..], &["--tag", "a,b"]].concat()),
        (vec![1], vec![1])
    );
    assert_eq!(
        forget(
            &env,
            &ids,
            &[&last[..], &["--tag", "a", "--tag", "b"]].concat()
        ),
        (vec![1, 2, 3], vec![3])
    );
    assert_eq!(
        forget(
            &env,
            &ids,
            &[&last[..], &["--tag", "a,b", "--tag", "c"]].concat()
        ),
        (vec![1, 3, 4], vec![4])
    );
    assert_eq!(
        forget(&env, &ids, &["--keep-tag", "a,b", "--keep-tag", "c"]),
        (vec![0, 1, 2, 3, 4], vec![1, 3, 4])
    );
    assert_eq!(
        forget(&env, &ids, &["--keep-tag", "b,a"]),
        (vec![0, 1, 2, 3, 4], vec![1])
    );
    assert_eq!(
        forget(&env, &ids, &["--keep-tag", ""]),
        (vec![0, 1, 2, 3, 4], vec![0])
    );
}

#[test]
fn backup_refuses_an_empty_tag_in_a_list() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let o = env.run(&["backup", "--tag", "a,,b", src.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr)
            .lines()
            .last()
            .unwrap_or(""),
        "tresor: --tag \"a,,b\": a tag must not be empty or contain a line break"
    );
    assert!(env.snapshot_ids().is_empty());
}
