//! Profiles (issue 16, first slice): a TOML configuration with named profiles, `-P NAME`
//! laying a profile under flags and environment, `tresor run NAME`, `tresor profile show`.
//! Real files and the real binary.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tresor_testkit::prelude::{Env, run_expecting};

/// A source tree: `src/keep/a.txt`, `src/keep/b.txt`, `src/skip/c.txt`, `src/x.tmp`.
fn tree(env: &Env) -> PathBuf {
    let src = env.path("src");
    for (p, body) in [
        ("keep/a.txt", "alpha"),
        ("keep/b.txt", "beta"),
        ("skip/c.txt", "gamma"),
        ("x.tmp", "tmp"),
    ] {
        std::fs::create_dir_all(src.join(p).parent().unwrap()).unwrap();
        std::fs::write(src.join(p), body).unwrap();
    }
    src
}

/// The configuration `tresor.toml` (mode `mode`) with two profiles, `work` and `other`, both
/// on the test repository with a password file; `extra` is added to `work`.
fn config(env: &Env, extra: &str, mode: u32) -> PathBuf {
    let pw = env.password_file("pw", tresor_testkit::prelude::PASSWORD);
    let src = env.path("src");
    let text = format!(
        "# profiles of the tests\n\
         [profiles.work]\n\
         repository = {repo:?}\n\
         password_file = {pw:?}\n\
         sources = [{src:?}]\n\
         excludes = [\"*.tmp\", {skip:?}]\n\
         tags = [\"daily\", \"work\"]\n\
         host = \"box1\"\n\
         keep_last = 1\n\
         {extra}\n\
         \n\
         [profiles.other]\n\
         repository = {repo:?}\n\
         password_command = \"cat {pw}\"\n\
         sources = [{keep:?}]\n\
         tags = [\"other\"]\n",
        repo = env.repo.display().to_string(),
        pw = pw.display().to_string(),
        src = src.display().to_string(),
        skip = src.join("skip").display().to_string(),
        keep = src.join("keep").display().to_string(),
    );
    let file = env.path("tresor.toml");
    std::fs::write(&file, text).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    file
}

/// `tresor --config FILE ARGS` with no repository or password in the environment.
fn tresor(env: &Env, file: &Path) -> Command {
    let mut c = env.cmd();
    c.env_remove("TRESOR_REPOSITORY")
        .env_remove("TRESOR_PASSWORD")
        .env_remove("TRESOR_CACHE_DIR")
        .arg("--config")
        .arg(file);
    c
}

fn run(c: Command, args: &[&str], code: i32) -> Output {
    run_expecting(c, args, code)
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The repository created through profile `work`, and a backup of it.
fn init_work(env: &Env, file: &Path) {
    let init = ["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"];
    let mut args = vec!["-P", "work"];
    args.extend(init);
    run(tresor(env, file), &args, 0);
}

#[test]
fn a_profile_backup_takes_its_sources_excludes_tags_and_host() {
    let env = Env::new();
    let src = tree(&env);
    let file = config(&env, "", 0o644);
    init_work(&env, &file);
    run(tresor(&env, &file), &["-P", "work", "backup", "-q"], 0);
    let snaps = json(&run(
        tresor(&env, &file),
        &["-P", "other", "snapshots", "--json"],
        0,
    ));
    let s = &snaps[0];
    assert_eq!(s["paths"], serde_json::json!([src.display().to_string()]));
    assert_eq!(s["tags"], serde_json::json!(["daily", "work"]));
    assert_eq!(s["hostname"], "box1");
    let ls = run(tresor(&env, &file), &["-P", "work", "ls", "latest"], 0);
    let listed: Vec<String> = String::from_utf8_lossy(&ls.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix(&*src.display().to_string()))
        .map(str::to_string)
        .collect();
    assert_eq!(
        listed,
        ["", "/keep", "/keep/a.txt", "/keep/b.txt"].map(String::from)
    );
    // The other profile: its own sources and tags, the password from its command.
    run(tresor(&env, &file), &["-P", "other", "backup", "-q"], 0);
    let snaps = json(&run(
        tresor(&env, &file),
        &["-P", "other", "snapshots", "--json"],
        0,
    ));
    assert_eq!(
        snaps[1]["paths"],
        serde_json::json!([src.join("keep").display().to_string()])
    );
    assert_eq!(snaps[1]["tags"], serde_json::json!(["other"]));
}

#[test]
fn flags_and_environment_override_the_profile() {
    let env = Env::new();
    tree(&env);
    let file = config(&env, "", 0o644);
    init_work(&env, &file);
    run(
        tresor(&env, &file),
        &["-P", "work", "backup", "-q", "--tag", "cli", "--host", "h2"],
        0,
    );
    // The environment's repository beats the profile's: a second repository.
    let env2 = Env::new();
    env2.init();
    let mut c = tresor(&env, &file);
    c.env("TRESOR_REPOSITORY", &env2.repo);
    run(c, &["-P", "work", "backup", "-q"], 0);
    let snaps = json(&run(
        tresor(&env, &file),
        &["-P", "work", "snapshots", "--json"],
        0,
    ));
    assert_eq!(snaps.as_array().unwrap().len(), 1);
    assert_eq!(snaps[0]["tags"], serde_json::json!(["cli"]));
    assert_eq!(snaps[0]["hostname"], "h2");
    let snaps2 = json(&env2.ok(&["snapshots", "--json"]));
    assert_eq!(snaps2.as_array().unwrap().len(), 1);
    assert_eq!(snaps2[0]["tags"], serde_json::json!(["daily", "work"]));
    // A PATH on the command line replaces the profile's sources.
    let keep = env.path("src/keep");
    run(
        tresor(&env, &file),
        &["-P", "work", "backup", "-q", keep.to_str().unwrap()],
        0,
    );
    let snaps = json(&run(
        tresor(&env, &file),
        &["-P", "work", "snapshots", "--json"],
        0,
    ));
    assert_eq!(
        snaps[1]["paths"],
        serde_json::json!([keep.display().to_string()])
    );
}

#[test]
fn an_unknown_key_is_an_error_naming_file_line_and_key() {
    let env = Env::new();
    let file = config(&env, "exclude_cache = true", 0o644);
    let o = run(tresor(&env, &file), &["-P", "work", "snapshots"], 1);
    let want = format!(
        "tresor: {}:10: unknown key \"exclude_cache\" (expected one of",
        file.display()
    );
    assert!(stderr(&o).starts_with(&want), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    // A missing profile names the ones there are.
    let file = config(&env, "", 0o644);
    let o = run(tresor(&env, &file), &["-P", "nope", "snapshots"], 1);
    assert_eq!(
        stderr(&o),
        format!(
            "tresor: {}: no profile \"nope\" (profiles: other, work)\n",
            file.display()
        )
    );
}

#[test]
fn a_password_in_the_file_needs_mode_600_and_consent() {
    let env = Env::new();
    tree(&env);
    let pw = format!("password = {:?}", tresor_testkit::prelude::PASSWORD);
    let file = config(&env, &pw, 0o644);
    let o = run(tresor(&env, &file), &["-P", "work", "snapshots"], 1);
    assert!(
        stderr(&o).contains(&format!("{}:10: a password in the configuration file is refused unless the file is mode 600 (it is 644)", file.display())),
        "{}",
        stderr(&o)
    );
    let file = config(&env, &pw, 0o600);
    let o = run(tresor(&env, &file), &["-P", "work", "snapshots"], 1);
    assert!(
        stderr(&o).contains("allow_password_in_file = true"),
        "{}",
        stderr(&o)
    );
    let file = config(&env, &format!("{pw}\nallow_password_in_file = true"), 0o600);
    init_work(&env, &file);
    // The password itself, with no password file: the profile's password_file is dropped.
    let text = std::fs::read_to_string(&file).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("password_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&file, text).unwrap();
    run(tresor(&env, &file), &["-P", "work", "backup", "-q"], 0);
    let show = run(tresor(&env, &file), &["profile", "show", "work"], 0);
    let out = String::from_utf8_lossy(&show.stdout);
    assert!(!out.contains(tresor_testkit::prelude::PASSWORD), "{out}");
    let line = out.lines().find(|l| l.starts_with("password ")).unwrap();
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        ["password", "***", &format!("({}:9)", file.display())]
    );
}

/// The packs of the repository.
fn packs(repo: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(repo.join("data"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .map(|e| e.path())
        .collect()
}

#[test]
fn run_does_backup_forget_prune_check_and_exits_with_the_worst_code() {
    let env = Env::new();
    tree(&env);
    let job =
        "after_backup = [\"forget\", \"prune\", \"check\"]\ncheck_read_data_subset = \"100%\"";
    let file = config(&env, job, 0o644);
    init_work(&env, &file);
    let o = run(tresor(&env, &file), &["run", "work", "-q"], 0);
    let steps: Vec<&str> = std::str::from_utf8(&o.stderr).unwrap().lines().collect();
    assert_eq!(
        steps,
        [
            "run work: backup",
            "run work: forget",
            "run work: prune",
            "run work: check --read-data-subset 100%"
        ]
    );
    run(tresor(&env, &file), &["run", "work", "-q"], 0);
    // forget kept the last one.
    let snaps = json(&run(
        tresor(&env, &file),
        &["-P", "work", "snapshots", "--json"],
        0,
    ));
    assert_eq!(snaps.as_array().unwrap().len(), 1);
    // Damaged packs: check reads them all: exit 5, the worst code of the steps.
    for pack in packs(&env.repo) {
        let mut bytes = std::fs::read(&pack).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&pack, bytes).unwrap();
    }
    let o = run(tresor(&env, &file), &["run", "work", "-q"], 5);
    assert!(
        stderr(&o).contains("run work: check --read-data-subset 100%\n"),
        "{}",
        stderr(&o)
    );
    // -P with run is refused.
    run(tresor(&env, &file), &["-P", "work", "run", "work"], 1);
}

#[test]
fn profile_show_names_origins_and_masks() {
    let env = Env::new();
    let file = config(&env, "", 0o644);
    let f = file.display().to_string();
    let mut c = tresor(&env, &file);
    c.env("TRESOR_CACHE_DIR", "/tmp/cache-from-env");
    let o = run(
        c,
        &["-r", "/srv/flag", "profile", "show", "work", "--json"],
        0,
    );
    let doc = json(&o);
    crate::json_contract::check("profile show", &doc);
    let origin = |key: &str| {
        let s = doc["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .unwrap();
        (
            s["value"].clone(),
            s["origin"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(origin("repository"), ("/srv/flag".into(), "flag".into()));
    assert_eq!(
        origin("cache_dir"),
        ("/tmp/cache-from-env".into(), "env TRESOR_CACHE_DIR".into())
    );
    assert_eq!(
        origin("password_file"),
        (
            env.path("pw").display().to_string().into(),
            format!("{f}:4")
        )
    );
    assert_eq!(
        origin("tags"),
        (serde_json::json!(["daily", "work"]), format!("{f}:7"))
    );
    assert_eq!(origin("keep_last"), (1.into(), format!("{f}:9")));
    assert_eq!(
        origin("keep_daily"),
        (serde_json::Value::Null, "default".into())
    );
    assert_eq!(doc["profile"], "work");
    let o = run(tresor(&env, &file), &["profile", "list", "--json"], 0);
    assert_eq!(json(&o)["profiles"], serde_json::json!(["other", "work"]));
    crate::json_contract::check("profile list", &json(&o));
}

#[test]
fn the_user_file_is_found_under_xdg_config_home_and_its_absence_is_named() {
    let env = Env::new();
    let file = config(&env, "", 0o644);
    let xdg = env.path("xdg");
    std::fs::create_dir_all(xdg.join("tresor")).unwrap();
    std::fs::rename(&file, xdg.join("tresor/tresor.toml")).unwrap();
    let mut c = env.cmd();
    c.env_remove("TRESOR_CONFIG").env("XDG_CONFIG_HOME", &xdg);
    let o = run(c, &["profile", "list"], 0);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!(
            "profiles of {}\nother\nwork\n",
            xdg.join("tresor/tresor.toml").display()
        )
    );
    // No file anywhere (the system file is absent on test machines).
    let mut c = env.cmd();
    c.env_remove("TRESOR_CONFIG")
        .env("XDG_CONFIG_HOME", env.path("none"));
    if !Path::new("/etc/tresor/tresor.toml").exists() {
        let o = run(c, &["-P", "work", "snapshots"], 1);
        assert!(
            stderr(&o).starts_with("tresor: no configuration file: use --config FILE or create "),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn a_systemd_credential_gives_the_password_and_its_absence_is_one_error() {
    let env = Env::new();
    tree(&env);
    let file = config(&env, "", 0o644);
    init_work(&env, &file);
    let creds = env.path("creds");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(
        creds.join("tresor-password"),
        format!("{}\n", tresor_testkit::prelude::PASSWORD),
    )
    .unwrap();
    // The profile's credential replaces nothing the user gave; here the profile gives only it.
    let text = std::fs::read_to_string(&file).unwrap().replace(
        "password_file = ",
        "password_credential = \"tresor-password\"\n# ",
    );
    std::fs::write(&file, text).unwrap();
    let mut c = tresor(&env, &file);
    c.env("CREDENTIALS_DIRECTORY", &creds);
    let o = run(c, &["-P", "work", "snapshots", "--json"], 0);
    assert_eq!(json(&o).as_array().unwrap().len(), 0);
    // No CREDENTIALS_DIRECTORY: one line naming the credential and the variable.
    let mut c = tresor(&env, &file);
    c.env_remove("CREDENTIALS_DIRECTORY");
    let e = stderr(&run(c, &["-P", "work", "snapshots"], 1));
    assert!(
        e.starts_with(
            "tresor: password credential \"tresor-password\": CREDENTIALS_DIRECTORY is not set"
        ),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
    // The variable set, the file missing.
    let mut c = tresor(&env, &file);
    c.env("CREDENTIALS_DIRECTORY", env.path("nowhere"));
    let e = stderr(&run(c, &["-P", "work", "snapshots"], 1));
    assert!(
        e.contains("password credential \"tresor-password\": "),
        "{e}"
    );
    assert!(e.contains("nowhere/tresor-password"), "{e}");
    // A name with a slash cannot leave the directory.
    let mut c = tresor(&env, &file);
    c.env("CREDENTIALS_DIRECTORY", &creds)
        .env("TRESOR_PASSWORD_CREDENTIAL", "../pw");
    let e = stderr(&run(c, &["-P", "work", "snapshots"], 1));
    assert!(e.contains("a credential name is a file name"), "{e}");
}

#[test]
fn every_global_option_is_a_profile_key_layered_under_flags_and_env() {
    let env = Env::new();
    let extra = "s3_storage_class_data = \"STANDARD_IA\"\ns3_connections = 9\n\
                 limit_upload = 100\nno_cache = true\nserver_command = \"ssh x\"";
    let file = config(&env, extra, 0o644);
    let mut c = tresor(&env, &file);
    c.env("TRESOR_LIMIT_UPLOAD", "7");
    let o = run(
        c,
        &["--s3-connections", "3", "profile", "show", "work", "--json"],
        0,
    );
    let v = json(&o);
    let get = |k: &str| {
        v["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == k)
            .cloned()
            .unwrap_or_else(|| panic!("no {k} in {v}"))
    };
    let at = |line: usize| format!("{}:{line}", file.display());
    assert_eq!(get("s3_storage_class_data")["value"], "STANDARD_IA");
    assert_eq!(get("s3_storage_class_data")["origin"], at(10));
    assert_eq!(get("s3_connections")["value"], 3);
    assert_eq!(get("s3_connections")["origin"], "flag");
    assert_eq!(get("limit_upload")["value"], 7);
    assert_eq!(get("limit_upload")["origin"], "env TRESOR_LIMIT_UPLOAD");
    assert_eq!(get("no_cache")["value"], true);
    assert_eq!(get("server_command")["value"], "ssh x");
    assert_eq!(get("tls_ca")["value"], serde_json::Value::Null);
    assert_eq!(get("tls_ca")["origin"], "default");
    // Out of range in the file: one error naming the line.
    let file = config(&env, "s3_connections = 0", 0o644);
    let e = stderr(&run(tresor(&env, &file), &["-P", "work", "snapshots"], 1));
    assert!(
        e.contains(&format!(
            "{}:10: s3_connections must be 1 to 64",
            file.display()
        )),
        "{e}"
    );
}
