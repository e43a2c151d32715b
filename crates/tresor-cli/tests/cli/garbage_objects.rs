//! Garbage uploaded next to honest data (a 6-byte index object, a garbage snapshot) stops no
//! command: `snapshots`, `restore` and `ls` go on (exit 0), `check` names each object with its
//! reason (exit 5), and `prune` lists and deletes them, after which `check` is clean.

use tresor_testkit::prelude::*;

fn put(env: &Env, dir: &str, bytes: &[u8]) -> String {
    let name = blake3::hash(bytes).to_hex().to_string();
    std::fs::write(env.repo.join(dir).join(&name), bytes).unwrap();
    name
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn garbage_objects_are_named_by_check_and_deleted_by_prune() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let content = pseudo_random(3, 700 << 10);
    std::fs::write(src.join("a.bin"), &content).unwrap();
    env.backup_json(&[&src], &[], 0);
    let index = put(&env, "index", b"\x00hello");
    let snapshot = put(&env, "snapshots", &pseudo_random(4, 500));

    let o = env.ok(&["snapshots"]);
    let e = stderr(&o);
    assert!(
        e.contains(&format!("warning: snapshot {snapshot}")) && e.contains("garbage"),
        "{e}"
    );
    let t = env.path("t");
    env.ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    let back = t.join(src.strip_prefix("/").unwrap()).join("a.bin");
    assert!(std::fs::read(back).unwrap() == content);
    let o = env.ok(&["ls", "latest"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("/a.bin"));

    let o = env.run_code(&["check", "--json"], 5);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let errors: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    for (kind, id) in [("index", &index), ("snapshot", &snapshot)] {
        let line = errors.iter().find(|e| e.contains(id.as_str())).unwrap();
        assert!(line.starts_with(&format!("{kind} {id}: ")), "{line}");
        assert!(
            line.ends_with("an admin's `tresor prune` deletes it)"),
            "{line}"
        );
    }

    let o = env.ok(&["prune", "--dry-run", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut planned: Vec<(String, String)> = v["plan"]["garbage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let s = |k: &str| g[k].as_str().unwrap().to_string();
            assert!(!s("reason").is_empty());
            (s("kind"), s("id"))
        })
        .collect();
    planned.sort();
    assert_eq!(
        planned,
        [
            ("index".to_string(), index.clone()),
            ("snapshot".to_string(), snapshot.clone())
        ]
    );
    assert!(env.repo.join("index").join(&index).exists(), "dry run");

    let o = env.ok(&["prune"]);
    let out = String::from_utf8_lossy(&o.stdout);
    for (kind, id) in [("index", &index), ("snapshot", &snapshot)] {
        let line = format!("garbage (no key wrote it; deleted by this run): {kind} {id}: ");
        assert!(out.contains(&line), "{out}");
    }
    assert!(out.contains("deleted 2 garbage objects"), "{out}");
    assert!(!env.repo.join("index").join(&index).exists());
    assert!(!env.repo.join("snapshots").join(&snapshot).exists());
    let o = env.ok(&["check"]);
    assert!(!stderr(&o).contains("error"), "{}", stderr(&o));
}
