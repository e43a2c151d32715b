//! `dump`, `check --read-data` and `copy` through thawing on moto (docs/cli.md "Cold tier"):
//! with `--thaw-wait 0s` each sends its thaw requests and exits 9 having read and written no
//! data; the rerun sends none again and does its work, byte for byte. A restore whose wait ends
//! with some packs still thawing restores the files it can read ("ready first").

use super::{Cold, cold_packs};
use tresor_testkit::prelude::*;

/// Exit code 9: cold data still thawing.
const THAWING: i32 = 9;

/// The last line of stdout as JSON.
fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out.lines().last().unwrap()).unwrap()
}

/// The packs (`data/…` keys) of the bucket, cold or not.
fn all_packs(c: &Cold) -> usize {
    let classes = super::boto(&c.m, &["classes", &c.bucket, "repo"]);
    classes.lines().filter(|l| l.starts_with("data/")).count()
}

/// How many objects of the bucket are DEEP_ARCHIVE (thawed or not).
fn cold_count(c: &Cold) -> usize {
    let classes = super::boto(&c.m, &["classes", &c.bucket, "repo"]);
    classes
        .lines()
        .filter(|l| l.ends_with(" DEEP_ARCHIVE"))
        .count()
}

/// A dump with `--thaw-wait 0s` writes nothing (to `--target` or standard output) and exits 9;
/// the rerun sends no second thaw request and writes the file byte for byte.
#[test]
fn dump_through_thawing_on_moto() {
    let Some(c) = Cold::new() else {
        return;
    };
    let (one, two) = (c.env.path("one"), c.env.path("two"));
    std::fs::create_dir_all(&one).unwrap();
    std::fs::create_dir_all(&two).unwrap();
    let big = tresor_testkit::repo::data(11, 400_000);
    std::fs::write(one.join("big"), &big).unwrap();
    let snap = c.init_and_backup(&one);
    let first = cold_packs(&c.m, &c.bucket);

    let out_dir = c.env.path("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let target = out_dir.join("big.copy");
    let spec = format!("{snap}:{}/big", one.display());
    let t = target.to_str().unwrap();
    let dump = ["dump", &spec, "--target", t, "--thaw-tier", "bulk"];
    let (_, err) = c.run(&[&dump[..], &["--thaw-wait", "0s"]].concat(), THAWING);
    let sent = format!("thaw requests sent now {}, earlier 0", first.len());
    assert!(err.contains(&sent), "{err}");
    assert!(err.contains("cold data still thawing"), "{err}");
    // Nothing written: no file, no temporary file beside it.
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0);

    // A second snapshot in new cold packs: a dump to standard output writes no byte either.
    let other = tresor_testkit::repo::data(12, 300_000);
    std::fs::write(two.join("other"), &other).unwrap();
    c.backup(&two);
    let new = cold_count(&c) - first.len();
    assert!(new >= 1);
    let spec2 = format!("latest:{}/other", two.display());
    let o = (c.cmd())
        .args(["dump", &spec2, "--thaw-wait", "0s"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(THAWING), "{err}");
    assert!(o.stdout.is_empty(), "{} bytes on stdout", o.stdout.len());
    assert!(
        err.contains(&format!("thaw requests sent now {new}, earlier 0")),
        "{err}"
    );

    // The reruns: no new request, the bytes as backed up.
    let (_, err) = c.run(&[&dump[..], &["--thaw-wait", "1m"]].concat(), 0);
    // moto finishes a thaw at once: the packs are thawed, none is asked for again.
    let again = format!("thawed {} packs", first.len());
    assert!(err.contains(&again), "{err}");
    assert!(err.contains("thaw requests sent now 0,"), "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), big);
    let o = (c.cmd())
        .args(["dump", &spec2, "--thaw-wait", "1m"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(o.stdout, other);
    assert!(String::from_utf8_lossy(&o.stderr).contains("thaw requests sent now 0"));
    assert_eq!(c.recorded().len(), first.len() + new);
}

/// `check --read-data` on a cold repository: without any thaw option (and no cold data class
/// given) a cold pack is "cold, not read", never damage (exit 1, no request sent); with
/// `--thaw-wait 0s` the chosen packs are asked for and none is read (exit 9); the rerun reads
/// every pack (exit 0).
#[test]
fn check_read_data_through_thawing_on_moto() {
    let Some(c) = Cold::new() else {
        return;
    };
    let src = c.env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), tresor_testkit::repo::data(21, 300_000)).unwrap();
    std::fs::write(src.join("b"), b"beta").unwrap();
    c.init_and_backup(&src);
    let cold = cold_packs(&c.m, &c.bucket).len();
    let packs = all_packs(&c);
    assert!(packs > cold, "{packs} packs, {cold} cold");

    // Plain: no thaw option, no cold class configured.
    let o = (c.cmd())
        .env_remove("TRESOR_S3_STORAGE_CLASS_DATA")
        .args(["check", "--read-data", "--json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let v = json(&String::from_utf8_lossy(&o.stdout));
    super::super::json_contract::check("check", &v);
    assert_eq!(v["errors"], serde_json::json!([]), "{v}");
    assert_eq!(v["packs_cold"], cold, "{v}");
    assert_eq!(v["packs_read"], packs - cold, "{v}");
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains("cold, not read: give --thaw-tier"), "{v}");
    assert!(!err.contains("damaged") && !err.contains("error:"), "{err}");
    assert!(
        !c.cache.join("thaw").exists(),
        "a plain check sent thaw requests"
    );

    let (out, err) = c.run(
        &["check", "--read-data", "--json", "--thaw-wait", "0s"],
        THAWING,
    );
    let v = json(&out);
    super::super::json_contract::check("check", &v);
    assert_eq!(v["packs_read"], 0, "{v}");
    assert_eq!(v["errors"], serde_json::json!([]), "{v}");
    assert_eq!(v["packs_selected"], packs, "{v}");
    assert!(
        err.contains(&format!("thaw requests sent now {cold}, earlier 0")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{cold} packs (")) && err.contains("still thawing: no pack was read"),
        "{err}"
    );

    let (out, err) = c.run(&["check", "--read-data", "--json", "--thaw-wait", "1m"], 0);
    let v = json(&out);
    super::super::json_contract::check("check", &v);
    assert_eq!(v["packs_read"], packs, "{v}");
    assert_eq!(v["packs_cold"], 0, "{v}");
    assert_eq!(v["errors"], serde_json::json!([]), "{v}");
    assert!(err.contains(&format!("thawed {cold} packs")), "{err}");
    assert!(err.contains("thaw requests sent now 0,"), "{err}");
    assert_eq!(c.recorded().len(), cold);
}

/// `copy --from-repo` a cold S3 repository into a local one: exit 9 with nothing copied, then
/// the copy, which restores byte for byte from the target.
#[test]
fn copy_from_a_cold_source_on_moto() {
    let Some(c) = Cold::new() else {
        return;
    };
    let src = c.env.path("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    let big = tresor_testkit::repo::data(31, 450_000);
    std::fs::write(src.join("d/big"), &big).unwrap();
    std::fs::write(src.join("small"), b"small file").unwrap();
    c.init_and_backup(&src);
    let cold = cold_packs(&c.m, &c.bucket).len();
    // The target: a local repository (the Env's own).
    c.env.init();
    let copy = |wait: &str, code: i32| {
        let o = (c.cmd())
            .env("TRESOR_REPOSITORY", &c.env.repo)
            .env("TRESOR_FROM_PASSWORD", PASSWORD)
            .args(["copy", "--from-repo", &c.url, "--thaw-wait", wait])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(code), "{err}");
        err
    };
    let err = copy("0s", THAWING);
    assert!(
        err.contains(&format!("thaw requests sent now {cold}, earlier 0")),
        "{err}"
    );
    assert!(c.env.snapshot_ids().is_empty());
    let err = copy("1m", 0);
    assert!(err.contains(&format!("thawed {cold} packs")), "{err}");
    assert!(err.contains("thaw requests sent now 0,"), "{err}");
    assert_eq!(c.recorded().len(), cold);
    assert_eq!(c.env.snapshot_ids().len(), 1);
    // A second copy has nothing to read: no thaw asked about at all.
    let err = copy("0s", 0);
    assert!(!err.contains("cold data"), "{err}");

    let t = c.env.path("restored");
    c.env
        .ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    let inner = t.join(src.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(inner.join("d/big")).unwrap(), big);
    assert_eq!(std::fs::read(inner.join("small")).unwrap(), b"small file");
}

/// `restore SNAPSHOT:PATH` thaws only the packs of what `PATH` names: a snapshot of two
/// directories whose files lie in different cold packs asks for the second's packs only, and
/// the rerun restores its file byte for byte.
#[test]
fn a_restore_of_a_path_thaws_only_its_packs_on_moto() {
    let Some(c) = Cold::new() else {
        return;
    };
    let root = c.env.path("root");
    let (one, two) = (root.join("one"), root.join("two"));
    std::fs::create_dir_all(&one).unwrap();
    std::fs::create_dir_all(&two).unwrap();
    std::fs::write(one.join("a"), tresor_testkit::repo::data(21, 300_000)).unwrap();
    c.init_and_backup(&one);
    let first = cold_count(&c);
    std::fs::write(two.join("b"), tresor_testkit::repo::data(22, 300_000)).unwrap();
    c.backup(&two);
    let second = cold_count(&c) - first;
    assert!(first >= 1 && second >= 1, "{first} {second}");
    // Both directories in one snapshot: no new data, every file in the packs above.
    c.backup(&root);
    assert_eq!(cold_count(&c), first + second);
    let target = c.env.path("out");
    let t = target.to_str().unwrap();
    let spec = format!("latest:{}", two.display());
    let restore = ["restore", &spec, "--target", t];
    let (_, err) = c.run(&[&restore[..], &["--thaw-wait", "0s"]].concat(), THAWING);
    let sent = format!("thaw requests sent now {second}, earlier 0");
    assert!(err.contains(&sent), "{err}");
    c.run(&[&restore[..], &["--thaw-wait", "1m"]].concat(), 0);
    assert_eq!(
        std::fs::read(target.join("b")).unwrap(),
        tresor_testkit::repo::data(22, 300_000)
    );
    assert!(!target.join("a").exists());
    assert_eq!(c.recorded().len(), second);
}

/// A drill on a cold repository thaws its sample's packs first (exit 9 while they thaw, no
/// record written), then restores and checks them, and its estimate adds the tier's typical
/// wait: DEEP_ARCHIVE standard within 12 hours, bulk within 48 hours.
#[test]
fn a_drill_thaws_its_sample_and_counts_the_wait_on_moto() {
    let Some(c) = Cold::new() else {
        return;
    };
    let src = c.env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), tresor_testkit::repo::data(31, 300_000)).unwrap();
    c.init_and_backup(&src);
    let cold = cold_count(&c);
    let drill = ["drill", "--json", "--share", "100%"];
    let (out, err) = c.run(&[&drill[..], &["--thaw-wait", "0s"]].concat(), THAWING);
    assert!(out.is_empty(), "{out}");
    let sent = format!("thaw requests sent now {cold}, earlier 0");
    assert!(err.contains(&sent), "{err}");
    let (out, err) = c.run(&[&drill[..], &["--thaw-wait", "1m"]].concat(), 0);
    let v = json(&out);
    super::super::json_contract::check("drill", &v);
    assert_eq!(v["result"], "passed", "{v}");
    assert_eq!(
        (v["files"].as_u64(), v["bytes"].as_u64()),
        (Some(1), Some(300_000))
    );
    assert_eq!(v["estimates"][0]["thaw_seconds"], 12.0 * 3600.0, "{v}");
    assert_eq!(v["hosts"][0]["thaw_seconds"], 12.0 * 3600.0, "{v}");
    assert!(err.contains("thaw requests sent now 0,"), "{err}");
    let (out, _) = c.run(
        &[&drill[..], &["--thaw-tier", "bulk", "--thaw-wait", "1m"]].concat(),
        0,
    );
    assert_eq!(json(&out)["estimates"][0]["thaw_seconds"], 48.0 * 3600.0);
    let (text, _) = c.run(&["drill", "--share", "100%", "--thaw-wait", "1m"], 0);
    assert!(
        text.contains("after a thaw of typically up to 12:00:00"),
        "{text}"
    );
}

/// The paths of `v`'s `waiting_for_thaw`.
fn waiting_paths(v: &serde_json::Value) -> Vec<String> {
    (v["waiting_for_thaw"]["paths"].as_array().unwrap().iter())
        .map(|p| p.as_str().unwrap().to_string())
        .collect()
}

/// "Ready first" (docs/cli.md "Cold tier"): a first snapshot's files lie in hot packs, a second's
/// new files in DEEP_ARCHIVE. `restore --thaw-wait 0s` restores the hot files byte for byte,
/// names the cold ones (a hard-linked name among them) as waiting, writes nothing for them and
/// exits 9; the rerun restores the rest byte for byte and fetches only the cold files' bytes.
#[test]
#[allow(clippy::too_many_lines, reason = "one scenario on one bucket")]
fn restore_ready_first_on_moto() {
    let Some(c) = Cold::new() else {
        return;
    };
    let src = c.env.path("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    let (hot, cold) = (pseudo_random(31, 300_000), pseudo_random(32, 400_000));
    std::fs::write(src.join("hot"), &hot).unwrap();
    std::fs::write(src.join("small"), b"small hot").unwrap();
    c.run(
        &["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"],
        0,
    );
    // The first backup with the default (hot) data class.
    let o = (c.cmd())
        .env_remove("TRESOR_S3_STORAGE_CLASS_DATA")
        .args(["backup", src.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(cold_count(&c), 0);
    std::fs::write(src.join("cold"), &cold).unwrap();
    std::fs::hard_link(src.join("cold"), src.join("link")).unwrap();
    std::fs::write(src.join("sub/tiny"), b"cold tiny").unwrap();
    c.backup(&src);
    let packs = cold_packs(&c.m, &c.bucket);

    let target = c.env.path("out");
    let t = target.to_str().unwrap();
    let restore = ["restore", "latest", "--target", t, "--json"];
    let (out, err) = c.run(&[&restore[..], &["--thaw-wait", "0s"]].concat(), THAWING);
    let sent = format!("thaw requests sent now {}, earlier 0", packs.len());
    assert!(err.contains(&sent), "{err}");
    assert!(err.contains("cold data still thawing"), "{err}");
    let v = json(&out);
    super::super::json_contract::check("restore", &v);
    let inner = target.join(src.strip_prefix("/").unwrap());
    let named = |p: &str| inner.join(p).display().to_string();
    assert_eq!(
        waiting_paths(&v),
        [named("cold"), named("link"), named("sub/tiny")]
    );
    assert_eq!(v["waiting_for_thaw"]["files"], 3, "{v}");
    assert_eq!(v["waiting_for_thaw"]["bytes"], 400_009, "{v}");
    assert_eq!(
        (v["files_restored"].as_u64(), v["errors"].as_u64()),
        (Some(2), Some(0)),
        "{v}"
    );
    assert_eq!(v["bytes_fetched"], 300_009, "{v}");
    assert_eq!(std::fs::read(inner.join("hot")).unwrap(), hot);
    assert_eq!(std::fs::read(inner.join("small")).unwrap(), b"small hot");
    // Nothing for the waiting files: not even a temporary file.
    let names = |d: &std::path::Path| -> Vec<String> {
        let mut n: Vec<String> = (std::fs::read_dir(d).unwrap())
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&inner), ["hot", "small", "sub"]);
    assert!(names(&inner.join("sub")).is_empty());

    // The rerun: no new request, the rest restored, the hot files not fetched again.
    let (out, err) = c.run(&[&restore[..], &["--thaw-wait", "1m"]].concat(), 0);
    assert!(err.contains("thaw requests sent now 0"), "{err}");
    let v = json(&out);
    super::super::json_contract::check("restore", &v);
    assert_eq!(v["waiting_for_thaw"]["files"], 0, "{v}");
    assert!(waiting_paths(&v).is_empty());
    let counts = ["files_restored", "files_skipped", "others", "errors"].map(|k| v[k].as_u64());
    assert_eq!(counts, [Some(2), Some(2), Some(1), Some(0)], "{v}");
    assert_eq!(
        (v["bytes_fetched"].as_u64(), v["bytes_reused"].as_u64()),
        (Some(400_009), Some(0)),
        "{v}"
    );
    assert_eq!(std::fs::read(inner.join("cold")).unwrap(), cold);
    assert_eq!(std::fs::read(inner.join("sub/tiny")).unwrap(), b"cold tiny");
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &str| std::fs::metadata(inner.join(p)).unwrap().ino();
    assert_eq!(ino("link"), ino("cold"));
    assert_eq!(std::fs::read(inner.join("hot")).unwrap(), hot);
    assert_eq!(c.recorded().len(), packs.len());

    later_file_waits_in_text(&c, &src, &target);
}

/// In text: a new file of a third snapshot, in a new cold pack, is named as waiting by a
/// restore into `target` (which holds the rest already).
fn later_file_waits_in_text(c: &Cold, src: &std::path::Path, target: &std::path::Path) {
    let inner = target.join(src.strip_prefix("/").unwrap());
    let named = |p: &str| inner.join(p).display().to_string();
    let t = target.to_str().unwrap();
    std::fs::write(src.join("later"), pseudo_random(33, 100_000)).unwrap();
    c.backup(src);
    let restore = ["restore", "latest", "--target", t, "--thaw-wait", "0s"];
    let (out, err) = c.run(&restore, THAWING);
    let line = format!("warning: {}: waiting for thaw\n", named("later"));
    assert!(err.contains(&line), "{err}");
    assert_eq!(err.matches("waiting for thaw").count(), 1, "{err}");
    assert!(
        out.contains("waiting for thaw: 1 files (97.66 KiB) not restored yet"),
        "{out}"
    );
    assert!(!inner.join("later").exists());
}
