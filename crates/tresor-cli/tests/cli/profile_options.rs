//! Profiles (issue 16): a key of each command a profile runs reaches that command under `-P`
//! (`exclude_if_present` for backup, `group_by` for forget, `prune_max_unused` for prune,
//! `check_read_data` for check, `drill_sample` and `drill_compare_source` for drill), and a flag
//! still beats the key. Real files and the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tresor_testkit::prelude::{Env, run_expecting};

/// `src/keep/a.txt`, `src/keep/b.txt`, `src/skip/.nobackup`, `src/skip/c.txt`; and the
/// configuration with profile `p` on the test repository.
fn setup(env: &Env) -> (PathBuf, PathBuf) {
    let src = env.path("src");
    for (p, body) in [
        ("keep/a.txt", "alpha"),
        ("keep/b.txt", "beta"),
        ("skip/.nobackup", ""),
        ("skip/c.txt", "gamma"),
    ] {
        std::fs::create_dir_all(src.join(p).parent().unwrap()).unwrap();
        std::fs::write(src.join(p), body).unwrap();
    }
    let pw = env.password_file("pw", tresor_testkit::prelude::PASSWORD);
    let text = format!(
        "[profiles.p]\n\
         repository = {repo:?}\n\
         password_file = {pw:?}\n\
         sources = [{src:?}]\n\
         exclude_if_present = [\".nobackup\"]\n\
         group_by = \"\"\n\
         prune_max_unused = \"7K\"\n\
         check_read_data = true\n\
         drill_sample = 1\n\
         drill_compare_source = true\n",
        repo = env.repo.display().to_string(),
        pw = pw.display().to_string(),
        src = src.display().to_string(),
    );
    let file = env.path("tresor.toml");
    std::fs::write(&file, text).unwrap();
    (src, file)
}

/// `tresor --config FILE -P p ARGS`, expecting exit `code`.
fn run(env: &Env, file: &Path, args: &[&str], code: i32) -> Output {
    let mut with = vec!["-P", "p"];
    with.extend(args);
    bare(env, file, &with, code)
}

/// `tresor --config FILE ARGS`, expecting exit `code`.
fn bare(env: &Env, file: &Path, args: &[&str], code: i32) -> Output {
    let mut c: Command = env.cmd();
    c.env_remove("TRESOR_REPOSITORY")
        .env_remove("TRESOR_PASSWORD")
        .arg("--config")
        .arg(file);
    run_expecting(c, args, code)
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn a_key_of_each_command_reaches_it_and_a_flag_beats_it() {
    let env = Env::new();
    let (src, file) = setup(&env);
    let init = ["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"];
    run(&env, &file, &init, 0);
    // backup: exclude_if_present leaves out src/skip.
    run(&env, &file, &["backup", "-q"], 0);
    let ls = run(&env, &file, &["ls", "latest"], 0);
    let prefix = src.display().to_string();
    let listed: Vec<String> = String::from_utf8_lossy(&ls.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix(&*prefix).map(str::to_string))
        .collect();
    assert_eq!(listed, ["", "/keep", "/keep/a.txt", "/keep/b.txt"]);
    // forget: group_by = "" groups by nothing; --group-by beats it.
    let f = json(&run(
        &env,
        &file,
        &["forget", "-n", "--keep-last", "5", "--json"],
        0,
    ));
    assert_eq!(f[0]["key"]["host"], serde_json::Value::Null);
    let args = [
        "forget",
        "-n",
        "--keep-last",
        "5",
        "--group-by",
        "host",
        "--json",
    ];
    let f = json(&run(&env, &file, &args, 0));
    assert!(f[0]["key"]["host"].is_string(), "{f}");
    // prune: prune_max_unused = "7K" is 7168 bytes tolerated; --max-unused beats it.
    let pr = json(&run(&env, &file, &["prune", "-n", "--json"], 0));
    assert_eq!(pr["plan"]["max_unused_bytes"], 7168);
    let pr = json(&run(
        &env,
        &file,
        &["prune", "-n", "--max-unused", "3K", "--json"],
        0,
    ));
    assert_eq!(pr["plan"]["max_unused_bytes"], 3072);
    // check: check_read_data = true reads every pack; a subset flag beats it.
    let c = json(&run(&env, &file, &["check", "--json"], 0));
    assert_eq!(c["selection"], "all packs");
    assert_eq!(c["packs_read"], c["packs"]);
    assert!(c["packs_read"].as_u64().unwrap() > 0);
    let c = json(&run(
        &env,
        &file,
        &["check", "--read-data-subset", "1/1000", "--json"],
        0,
    ));
    assert_eq!(
        c["selection"],
        "part 1/1000 by pack id holds no pack: one at random"
    );
    // drill: drill_sample = 1 and drill_compare_source = true; --sample beats the sample.
    let d = json(&run(&env, &file, &["drill", "--json"], 0));
    assert_eq!(
        (d["files"].as_u64(), d["source"]["compared"].as_u64()),
        (Some(1), Some(1))
    );
    let d = json(&run(&env, &file, &["drill", "--sample", "2", "--json"], 0));
    assert_eq!(
        (d["files"].as_u64(), d["source"]["compared"].as_u64()),
        (Some(2), Some(2))
    );
}

#[test]
fn profile_show_names_the_new_keys_with_their_lines() {
    let env = Env::new();
    let (_, file) = setup(&env);
    let o = bare(&env, &file, &["profile", "show", "p", "--json"], 0);
    let shown = json(&o);
    let find = |key: &str| {
        shown["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("{key} not shown"))
    };
    let at = |line: u32| format!("{}:{line}", file.display());
    assert_eq!(
        find("exclude_if_present")["value"],
        serde_json::json!([".nobackup"])
    );
    assert_eq!(find("exclude_if_present")["origin"], at(5));
    assert_eq!(find("prune_max_unused")["value"], "7K");
    assert_eq!(find("prune_max_unused")["origin"], at(7));
    assert_eq!(find("check_read_data")["value"], true);
    assert_eq!(find("drill_compare_source")["origin"], at(10));
    assert_eq!(find("drill_share")["value"], serde_json::Value::Null);
    assert_eq!(find("drill_share")["origin"], "default");
}
