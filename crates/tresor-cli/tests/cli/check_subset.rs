//! `check --read-data-subset` (issue 13, walk-through): a percentage chooses packs at random on
//! every run, rounds up to at least one pack, and the output says which share was read; a part
//! `N/M` is the same packs on every run and reads one pack when it holds none.

use tresor_testkit::prelude::*;

fn check_json(env: &Env, subset: &str) -> (Option<i32>, serde_json::Value) {
    let o = env.run(&["check", "--json", "--read-data-subset", subset]);
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    (o.status.code(), v)
}

#[test]
fn subsets_read_a_random_share_of_at_least_one_pack_and_say_so() {
    let env = Env::new();
    env.ok(&[
        "init",
        "--kdf-memory-kib",
        "8192",
        "--kdf-iterations",
        "1",
        "--pack-size-mib",
        "1",
    ]);
    let src = env.path("src");
    std::fs::create_dir(&src).unwrap();
    for i in 0..6u64 {
        std::fs::write(src.join(format!("f{i}")), pseudo_random(i, 1 << 20)).unwrap();
    }
    env.backup_json(&[&src], &[], 0);
    let (code, v) = check_json(&env, "1%");
    assert_eq!(code, Some(0), "{v}");
    let packs = v["packs"].as_u64().unwrap();
    assert!(packs >= 6, "{v}");
    assert_eq!(v["packs_read"], 1, "{v}");
    assert_eq!(v["packs_selected"], 1, "{v}");
    assert_eq!(v["selection"], "1% at random", "{v}");
    let o = env.ok(&["check", "--read-data-subset", "1%"]);
    let text = String::from_utf8_lossy(&o.stdout);
    let pct = 100.0 / packs as f64;
    assert!(
        text.contains(&format!(
            "read 1 of {packs} packs ({pct:.1}%): 1% at random"
        )),
        "{text}"
    );
    let (_, all) = check_json(&env, "1/1");
    assert_eq!(all["packs_read"], packs, "{all}");
    assert_eq!(all["selection"], "part 1/1 by pack id", "{all}");

    // Damage one data pack: a third of the packs, chosen anew on every run, sometimes reads it and
    // sometimes not (both with probability about one half per run).
    let mut pack_files = Vec::new();
    for shard in std::fs::read_dir(env.repo.join("data")).unwrap().flatten() {
        pack_files.extend(
            std::fs::read_dir(shard.path())
                .unwrap()
                .flatten()
                .map(|e| e.path()),
        );
    }
    // A data pack (the largest): a damaged tree pack would fail the structure check anyway.
    pack_files.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    let victim = pack_files.last().unwrap();
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[100] ^= 1;
    std::fs::write(victim, &bytes).unwrap();
    let third = format!("{}%", 100.0 * 3.0 / packs as f64 - 0.5);
    let (mut hit, mut missed) = (0, 0);
    for _ in 0..20 {
        let (code, v) = check_json(&env, &third);
        assert_eq!(v["packs_read"], 3, "{v}");
        match code {
            Some(5) => hit += 1,
            Some(0) => missed += 1,
            c => panic!("exit {c:?}: {v}"),
        }
    }
    assert!(hit > 0 && missed > 0, "hit {hit}, missed {missed}");
}
