//! `tresor cost` and request counting (issue 18, "Cost view"): a backup's `requests` against
//! the objects it added to the directory, `cost`'s bytes per kind against the directory's
//! files, its monthly estimate against the price table, a price file's override, hostile price
//! files, and the request log kept on the machine, not in the repository.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use tresor_testkit::prelude::*;

/// Every file of the repository directory: relative path → size.
fn files(repo: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![repo.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                let rel = e.path().strip_prefix(repo).unwrap().display().to_string();
                out.insert(rel, m.len());
            }
        }
    }
    out
}

fn json(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

fn source(env: &Env) -> String {
    let src = env.path("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/a"), b"hello").unwrap();
    std::fs::write(
        src.join("b"),
        tresor_testkit::tree::pseudo_random(7, 300_000),
    )
    .unwrap();
    src.display().to_string()
}

/// PUTs are the new objects, bytes up their sizes; the run is in the cache's log, not in the
/// repository.
#[test]
fn backup_requests_are_the_objects_it_added() {
    let env = Env::new();
    env.init();
    let src = source(&env);
    let cache = env.path("cache");
    let c = cache.to_str().unwrap();
    let before = files(&env.repo);
    let v = json(&env.ok(&["backup", "--json", "--cache-dir", c, &src]));
    let after = files(&env.repo);
    let new: Vec<(&String, &u64)> = after
        .iter()
        .filter(|(k, _)| !before.contains_key(*k))
        .collect();
    let r = &v["requests"];
    assert_eq!(r["put"].as_u64().unwrap(), new.len() as u64, "{v}\n{new:?}");
    let up: u64 = new.iter().map(|(_, s)| **s).sum();
    assert_eq!(r["bytes_up"].as_u64().unwrap(), up, "{v}");
    assert_eq!(r["delete"].as_u64().unwrap(), 0);
    assert!(
        r["get"].as_u64().unwrap() > 0 && r["list"].as_u64().unwrap() > 0,
        "{v}"
    );
    // One line in this machine's log, none in the repository.
    let logs: Vec<_> = std::fs::read_dir(cache.join("requests")).unwrap().collect();
    assert_eq!(logs.len(), 1);
    assert!(
        !after
            .keys()
            .any(|k| k.contains("requests") || k.ends_with(".jsonl"))
    );
    // The summary's cost line: bytes added at STANDARD's $0.023 per GB-month.
    let added = v["data_added"].as_u64().unwrap() as f64;
    let want = added / (1u64 << 30) as f64 * 0.023;
    let got = v["added_monthly_cost"].as_f64().unwrap();
    assert!((got - want).abs() < 1e-12, "{got} {want}");
}

/// Bytes per kind are the directory's file sizes; the estimate is bytes × price; an override
/// file changes it; the log's runs are listed.
#[test]
fn cost_of_a_known_repository() {
    let env = Env::new();
    env.init();
    let src = source(&env);
    let cache = env.path("cache");
    let c = cache.to_str().unwrap();
    env.ok(&["backup", "--cache-dir", c, &src]);
    let listing = files(&env.repo);
    let sum = |prefix: &str| -> u64 {
        listing
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, s)| s)
            .sum()
    };
    let v = json(&env.ok(&["cost", "--json", "--cache-dir", c]));
    let kind = |k: &str| -> u64 {
        v["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["kind"] == k)
            .map(|r| r["bytes"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(kind("data packs") + kind("tree packs"), sum("data/"), "{v}");
    assert!(kind("tree packs") > 0 && kind("data packs") > 0, "{v}");
    assert_eq!(kind("index"), sum("index/"));
    assert_eq!(kind("snapshots"), sum("snapshots/"));
    assert_eq!(kind("keys"), sum("keys/"));
    let total: u64 = listing.values().sum();
    let all: u64 = v["classes"][0]["bytes"].as_u64().unwrap();
    assert_eq!(all, total, "every file is one object of some kind");
    let gb = (1u64 << 30) as f64;
    let monthly = v["monthly_total"].as_f64().unwrap();
    assert!((monthly - total as f64 / gb * 0.023).abs() < 1e-12, "{v}");
    assert_eq!(v["runs"].as_array().unwrap().len(), 1);
    assert_eq!(v["runs"][0]["command"], "backup");
    assert_eq!(v["early_deletion_pending"], 0.0);
    // Standard thaw of STANDARD packs costs one GET per pack.
    let packs: u64 = listing.keys().filter(|k| k.starts_with("data/")).count() as u64;
    let restore = v["restore"][1]["cost"].as_f64().unwrap();
    assert!(
        (restore - packs as f64 / 1000.0 * 0.0004).abs() < 1e-15,
        "{v}"
    );

    let prices = env.path("prices.toml");
    std::fs::write(&prices, "[prices.STANDARD]\nstorage_gb_month = 1.5\n").unwrap();
    let p = prices.to_str().unwrap();
    let o = json(&env.ok(&["cost", "--json", "--cache-dir", c, "--prices", p]));
    let monthly = o["monthly_total"].as_f64().unwrap();
    assert!((monthly - total as f64 / gb * 1.5).abs() < 1e-9, "{o}");
    assert_eq!(o["prices"]["overrides"][0], p);
    assert_eq!(
        o["runs"].as_array().unwrap().len(),
        2,
        "the first cost run is logged"
    );
    // Objects younger than STANDARD_IA's 30 days: the rest of the 30 days is pending.
    let ia = json(&env.ok(&[
        "cost",
        "--json",
        "--class-data",
        "STANDARD_IA",
        "--class-metadata",
        "STANDARD_IA",
    ]));
    let pending = ia["early_deletion_pending"].as_f64().unwrap();
    let full = ia["monthly_total"].as_f64().unwrap();
    assert!(pending > 0.99 * full && pending <= full * 1.0001, "{ia}");
}

/// A hostile price file is one clear error; nothing is printed on standard output.
#[test]
fn hostile_price_files() {
    let env = Env::new();
    env.init();
    for (body, want) in [
        (
            "[prices.STANDARD]\nstorage_gb_month = -0.5\n",
            "storage_gb_month = -0.5",
        ),
        (
            "[prices.STANDARD]\nput_per_1000 = nan\n",
            "put_per_1000 = NaN",
        ),
        ("[prices.STANDARD]\nget_per_1000 = 1e308\n", "get_per_1000"),
        (
            "[prices.STANDARD]\nstorage_gb_month = \"free\"\n",
            "price file",
        ),
    ] {
        let f = env.path("bad.toml");
        std::fs::write(&f, body).unwrap();
        let o = env.run_code(&["cost", "--prices", f.to_str().unwrap()], 1);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want) && err.contains("bad.toml"), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(o.stdout.is_empty());
    }
    let o = env.run_code(&["cost", "--class-data", "NOPE"], 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no prices for storage class \"NOPE\""));
}

/// A storage operator's absurd files (huge sparse packs) neither panic nor overflow.
#[test]
fn absurd_sizes_saturate() {
    let env = Env::new();
    env.init();
    let src = source(&env);
    env.ok(&["backup", &src]);
    let shard = env.repo.join("data/ff");
    std::fs::create_dir_all(&shard).unwrap();
    for i in 0..3 {
        let f =
            std::fs::File::create(shard.join(format!("ff{}", format!("{i}").repeat(62)))).unwrap();
        let ok = [62u32, 50, 43, 40]
            .iter()
            .any(|b| f.set_len(1u64 << b).is_ok());
        assert!(ok, "no sparse file");
    }
    let v = json(&env.ok(&["cost", "--json", "--class-data", "STANDARD_IA"]));
    assert!(v["monthly_total"].as_f64().unwrap().is_finite(), "{v}");
}

/// `forget --prune --dry-run` says what the plan would save a month.
#[test]
fn a_dry_prune_says_what_it_saves() {
    let env = Env::new();
    env.init();
    let src = source(&env);
    env.ok(&["backup", &src]);
    std::fs::write(
        env.path("src/b"),
        tresor_testkit::tree::pseudo_random(8, 300_000),
    )
    .unwrap();
    env.ok(&["backup", &src]);
    let o = env.ok(&[
        "forget",
        "--keep-last",
        "1",
        "--prune",
        "--dry-run",
        "--json",
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    let plan: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    // The plan of a dry forget is made from the repository as it is: nothing freed yet.
    assert_eq!(plan["saves_per_month"].as_f64(), Some(0.0), "{plan}");
    env.ok(&["forget", "--keep-last", "1"]);
    let plan = json(&env.ok(&["prune", "--dry-run", "--json"]));
    let freed = plan["plan"]["bytes_freed"].as_u64().unwrap()
        + plan["plan"]["bytes_condemned"].as_u64().unwrap()
        - plan["plan"]["repack_bytes"].as_u64().unwrap();
    let want = freed as f64 / (1u64 << 30) as f64 * 0.023;
    let saves = plan["saves_per_month"].as_f64().unwrap();
    assert!(saves > 0.0 && (saves - want).abs() < 1e-15, "{plan}");
    let t = env.ok(&["prune", "--dry-run"]);
    assert!(String::from_utf8_lossy(&t.stdout).contains("Would save:"));
}

/// The packs (relative paths under `data/`) a backup added, with their sizes.
fn new_packs(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    (after.iter())
        .filter(|(k, _)| k.starts_with("data/") && !before.contains_key(*k))
        .map(|(k, s)| (k.clone(), *s))
        .collect()
}

/// `restore_latest`: the latest snapshot of each host. Host `a` backs up one tree, then another
/// (other paths, other data: nothing shared); host `b` a third. The latest of `a` and of `b`
/// need exactly the packs their own backups wrote (told apart by the directory's files before
/// and after each backup), not those of `a`'s first snapshot.
#[test]
fn restore_of_the_latest_snapshot_of_each_host() {
    let env = Env::new();
    env.init();
    let mut added = Vec::new();
    for (host, dir, seed) in [("a", "a-old", 11), ("a", "a-new", 12), ("b", "b-only", 13)] {
        let src = env.path(dir);
        std::fs::create_dir_all(&src).unwrap();
        let data = tresor_testkit::tree::pseudo_random(seed, 200_000 + seed as usize);
        std::fs::write(src.join(format!("{dir}-file")), data).unwrap();
        let before = files(&env.repo);
        env.ok(&["backup", "--host", host, src.to_str().unwrap()]);
        added.push(new_packs(&before, &files(&env.repo)));
    }
    let all_packs: u64 = (added.iter().flat_map(|m| m.values())).sum();
    let want_packs = added[1].len() + added[2].len();
    let want_bytes: u64 = added[1].values().chain(added[2].values()).sum();
    assert!(!added[0].is_empty() && want_bytes < all_packs);

    let v = json(&env.ok(&["cost", "--json"]));
    super::json_contract::check("cost", &v);
    let l = &v["restore_latest"];
    assert_eq!(l["snapshots"], 2, "{v}");
    assert_eq!(l["packs"].as_u64().unwrap(), want_packs as u64, "{v}");
    assert_eq!(l["bytes"].as_u64().unwrap(), want_bytes, "{v}");
    // STANDARD: no retrieval charge, one GET ($0.0004 per 1000) per pack, whatever the tier.
    let tiers = l["tiers"].as_array().unwrap();
    assert_eq!(tiers.len(), 3);
    for t in tiers {
        assert_eq!(t["bytes"].as_u64().unwrap(), want_bytes, "{t}");
        let cost = t["cost"].as_f64().unwrap();
        assert!(
            (cost - want_packs as f64 * 0.0004 / 1000.0).abs() < 1e-15,
            "{t}"
        );
    }
    // Full restore: every pack.
    assert_eq!(v["restore"][1]["bytes"].as_u64().unwrap(), all_packs, "{v}");
    let text = String::from_utf8_lossy(&env.ok(&["cost"]).stdout).into_owned();
    let line =
        format!("Restore of the latest snapshot of each host (2 snapshots, {want_packs} packs, ");
    assert!(text.contains(&line), "{text}");
    assert!(text.contains("bulk $0.0000"), "{text}");
    // No log: nothing spent, not "$-0.00" (an empty float sum is -0.0).
    let text = String::from_utf8_lossy(&env.ok(&["cost", "--no-cache"]).stdout).into_owned();
    assert!(
        text.contains("Requests of the last 0 runs (this machine's log): $0.00\n"),
        "{text}"
    );
}
