//! Repair ends in a clean, restorable repository (docs/cli.md "Repairing"): after a pack is
//! damaged or lost, `repair index` exits 0 and says what was lost, the next backup of the same
//! files uploads the lost blobs again and heals every snapshot that used them, and afterwards
//! `check --read-data` finds nothing and every snapshot restores byte for byte.

use std::path::{Path, PathBuf};
use tresor_testkit::prelude::*;

fn init_small(env: &Env) {
    let a = ["--kdf-memory-kib", "8192", "--kdf-iterations", "1"];
    env.ok(&[&["init", "--pack-size-mib", "1"][..], &a[..]].concat());
}

/// Ten files of 300 KiB (one blob each, about three to a 1 MiB pack) and a small one.
fn write_source(src: &Path) {
    std::fs::create_dir_all(src.join("sub")).unwrap();
    for i in 0..10u64 {
        let p = src.join(format!("sub/f{i}"));
        std::fs::write(p, pseudo_random(7000 + i, 300 << 10)).unwrap();
    }
    std::fs::write(src.join("small"), "small file").unwrap();
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(files(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out.sort();
    out
}

/// The largest pack: a data pack holding several file blobs.
fn largest_pack(env: &Env) -> PathBuf {
    let mut packs = files(&env.repo.join("data"));
    packs.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    packs.pop().unwrap()
}

/// A repository with 1 MiB packs holding one backup of [`write_source`]: (env, source, its id).
fn backed_up() -> (Env, PathBuf, String) {
    let env = Env::new();
    init_small(&env);
    let src = env.path("src");
    write_source(&src);
    let first = env.backup_json(&[&src], &[], 0);
    let s1 = first["snapshot_id"].as_str().unwrap().to_string();
    (env, src, s1)
}

/// Flip `bits` in the byte at `at(length)` of the largest pack; returns the pack's name.
fn flip_in_largest_pack(env: &Env, at: impl Fn(usize) -> usize, bits: u8) -> String {
    let pack = largest_pack(env);
    let mut bytes = std::fs::read(&pack).unwrap();
    let i = at(bytes.len());
    bytes[i] ^= bits;
    std::fs::write(&pack, &bytes).unwrap();
    pack.file_name().unwrap().to_str().unwrap().to_string()
}

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap()
}

fn restores_exactly(env: &Env, id: &str, src: &Path) {
    let target = env.path(&format!("restore-{id}"));
    let t = target.to_str().unwrap();
    env.ok(&["restore", id, "--target", t, "--verify"]);
    let restored = target.join(src.strip_prefix("/").unwrap());
    assert_same(&scan(src, false), &scan(&restored, false));
}

#[test]
fn a_flipped_bit_is_salvaged_and_the_next_backup_heals_every_snapshot() {
    let (env, src, s1) = backed_up();
    let pack_name = flip_in_largest_pack(&env, |len| len / 2, 0x40);

    // check finds it and says what to do.
    let o = env.run_code(&["check", "--read-data"], 5);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("`tresor repair index --read-data`"), "{out}");

    // A dry run reports the salvage and changes nothing.
    let packs = files(&env.repo.join("data")).len() as u64;
    let contents = || -> Vec<_> {
        let all = files(&env.repo).into_iter();
        all.map(|p| (std::fs::read(&p).unwrap(), p)).collect()
    };
    let before = contents();
    let dry = json(&env.ok(&["repair", "index", "--read-data", "--dry-run", "--json"]));
    assert_eq!(
        dry["report"]["packs_salvaged"],
        serde_json::json!([pack_name]),
        "{dry}"
    );
    assert!(before == contents(), "a dry run wrote or deleted something");

    // The repair: exit 0, one blob lost, the others of the damaged pack copied.
    let o = env.ok(&["repair", "index", "--read-data", "--json"]);
    let r = &json(&o)["report"];
    assert_eq!(r["packs_salvaged"], serde_json::json!([pack_name]), "{r}");
    let dropped = r["blobs_dropped"].as_array().unwrap();
    assert_eq!(dropped.len(), 1, "{r}");
    assert!(dropped[0].as_str().unwrap().contains(&pack_name), "{r}");
    let salvaged = r["blobs_salvaged"].as_u64().unwrap();
    assert!(salvaged >= 1, "the other blobs of the pack are copied: {r}");
    assert_eq!(
        r["packs_verified"].as_u64(),
        Some(packs),
        "every pack read: {r}"
    );
    // The lost blob is missing now, and check says so without reading data.
    let o = env.run_code(&["check"], 5);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("missing from the index"), "{err}");
    assert!(
        err.contains(&format!("pack {pack_name} is not in any index")),
        "{err}"
    );

    // The next backup uploads exactly the lost blob, and every snapshot is whole again.
    let second = env.backup_json(&[&src], &[], 0);
    assert_eq!(second["data_blobs"], 1, "{second}");
    let o = env.ok(&["check", "--read-data"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("no errors were found"));
    restores_exactly(&env, &s1, &src);
    restores_exactly(&env, "latest", &src);

    // prune takes the damaged pack in hand (deleted in two phases, format §16); the repository
    // stays clean meanwhile.
    let o = json(&env.ok(&["prune", "--json"]));
    assert!(o.to_string().contains(&pack_name), "{o}");
    env.ok(&["prune"]);
    let o = env.ok(&["check", "--read-data"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("no errors were found"));
    restores_exactly(&env, &s1, &src);
}

#[test]
fn a_lost_pack_is_reported_exit_0_and_the_next_backup_heals_the_old_snapshot() {
    let (env, src, s1) = backed_up();
    std::fs::remove_file(largest_pack(&env)).unwrap();
    env.run_code(&["check"], 5);

    let o = env.ok(&["repair", "index"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("data was lost"), "{out}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing from storage"));
    let c = json(&env.run_code(&["check", "--json"], 5));
    let lost = c["errors"].as_array().unwrap().iter();
    let lost = lost.filter(|e| e.as_str().unwrap().contains("missing from the index"));
    let lost = lost.count() as u64;

    let second = env.backup_json(&[&src], &[], 0);
    assert!(lost > 0);
    assert_eq!(
        second["data_blobs"].as_u64(),
        Some(lost),
        "the lost blobs only: {second}"
    );
    env.ok(&["check", "--read-data"]);
    restores_exactly(&env, &s1, &src);
    // Nothing is left to repair.
    let r = json(&env.ok(&["repair", "snapshots", "--dry-run", "--json"]));
    assert_eq!(r["report"]["repaired"], serde_json::json!([]), "{r}");
}

#[test]
fn a_pack_whose_header_is_damaged_is_salvaged_from_the_index_listing() {
    let (env, src, s1) = backed_up();
    // In the sealed header, before the trailer.
    let pack_name = flip_in_largest_pack(&env, |len| len - 40, 0x01);

    let o = env.ok(&["repair", "index", "--read-data", "--json"]);
    let r = &json(&o)["report"];
    assert_eq!(r["packs_salvaged"], serde_json::json!([pack_name]), "{r}");
    assert_eq!(r["blobs_dropped"], serde_json::json!([]), "{r}");
    assert!(r["blobs_salvaged"].as_u64().unwrap() >= 2, "{r}");
    // Every blob was salvaged: nothing to upload again, nothing to repair.
    let second = env.backup_json(&[&src], &[], 0);
    assert_eq!(second["data_blobs"], 0, "{second}");
    env.ok(&["check", "--read-data"]);
    restores_exactly(&env, &s1, &src);
}
