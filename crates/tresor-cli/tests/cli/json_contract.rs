//! The JSON contract: every command run with `--json`, its output checked against the field
//! tables of `docs/cli.md` ("JSON output"). A field printed but not documented, a documented
//! field missing (unless `optional`) or a value of another type fails the test.

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tresor_testkit::prelude::{Env, PASSWORD, is_root};

/// The documented field tables and the checker.
mod contract {
    use serde_json::Value;
    use std::collections::BTreeMap;

    /// A documented type.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Ty {
        String,
        Integer,
        Number,
        Bool,
        Null,
        /// An object whose fields are documented.
        Object,
        /// An object whose keys are data (not descended into).
        Map,
        /// An array, with its elements' types (empty: given by the `path[]` row).
        Array(Vec<Ty>),
    }

    /// One documented field.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Field {
        pub types: Vec<Ty>,
        pub optional: bool,
    }

    /// The tables of one section: field path → field.
    pub type Table = BTreeMap<String, Field>;

    /// `T or U or array of V …` (`array of` takes the rest).
    pub fn parse_types(s: &str) -> Result<Vec<Ty>, String> {
        let mut out = Vec::new();
        let mut rest = s.trim();
        while !rest.is_empty() {
            if let Some(inner) = rest.strip_prefix("array of ") {
                out.push(Ty::Array(parse_types(inner)?));
                break;
            }
            let (word, tail) = match rest.split_once(" or ") {
                Some((w, t)) => (w.trim(), t.trim()),
                None => (rest, ""),
            };
            out.push(match word {
                "string" => Ty::String,
                "integer" => Ty::Integer,
                "number" => Ty::Number,
                "bool" => Ty::Bool,
                "null" => Ty::Null,
                "object" => Ty::Object,
                "map" => Ty::Map,
                "array" => Ty::Array(Vec::new()),
                w => return Err(format!("unknown type {w:?} in {s:?}")),
            });
            rest = tail;
        }
        if out.is_empty() {
            return Err(format!("no type in {s:?}"));
        }
        Ok(out)
    }

    /// The section under heading `` `name` `` of the "JSON output" part of `doc` (headings
    /// `###`/`####`, backticks dropped, e.g. `key list` or `snapshots, put-only key`).
    pub fn table(doc: &str, name: &str) -> Table {
        let part = doc
            .split_once("\n## JSON output")
            .expect("docs/cli.md has a JSON output part")
            .1;
        let part = part.split("\n## ").next().unwrap();
        let mut current: Option<String> = None;
        let mut table = Table::new();
        let mut found = false;
        for line in part.lines() {
            if let Some(h) = line.strip_prefix("### ").or(line.strip_prefix("#### ")) {
                current = Some(h.replace('`', ""));
                found |= current.as_deref() == Some(name);
                continue;
            }
            if current.as_deref() != Some(name) || !line.starts_with("| `") {
                continue;
            }
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let (paths, ty) = (cells[1], cells[2]);
            let (ty, optional) = match ty.strip_suffix(", optional") {
                Some(t) => (t, true),
                None => (ty, false),
            };
            let types = parse_types(ty).unwrap_or_else(|e| panic!("{name}: {e}"));
            for p in paths.split(", ") {
                let p = p.trim().trim_matches('`').to_string();
                let f = Field {
                    types: types.clone(),
                    optional,
                };
                assert!(table.insert(p.clone(), f).is_none(), "{name}: {p} twice");
            }
        }
        assert!(found, "docs/cli.md has no JSON section `{name}`");
        assert!(!table.is_empty(), "JSON section `{name}` has no table");
        table
    }

    /// What is wrong with `doc` under `table`; empty when it keeps the contract.
    pub fn problems(table: &Table, doc: &Value) -> Vec<String> {
        let mut out = Vec::new();
        if table.keys().any(|k| k.starts_with("[]")) {
            match doc.as_array() {
                Some(a) => a.iter().for_each(|v| value(table, "[]", v, &[], &mut out)),
                None => out.push("the document is not an array".into()),
            }
        } else {
            object(table, "", doc, &mut out);
        }
        out
    }

    fn matches(t: &Ty, v: &Value) -> bool {
        match t {
            Ty::String => v.is_string(),
            Ty::Integer => v.is_i64() || v.is_u64(),
            Ty::Number => v.is_number(),
            Ty::Bool => v.is_boolean(),
            Ty::Null => v.is_null(),
            Ty::Object | Ty::Map => v.is_object(),
            Ty::Array(_) => v.is_array(),
        }
    }

    /// Check `v` at `path`, typed by the row of `path`, else by `inherited` (the element types
    /// of the array it is in).
    fn value(table: &Table, path: &str, v: &Value, inherited: &[Ty], out: &mut Vec<String>) {
        let types = match table.get(path) {
            Some(f) => f.types.as_slice(),
            None if !inherited.is_empty() => inherited,
            None => {
                out.push(format!("{path}: not documented (value {v})"));
                return;
            }
        };
        let Some(t) = types.iter().find(|t| matches(t, v)) else {
            out.push(format!("{path}: {v} is none of {types:?}"));
            return;
        };
        match (t, v) {
            (Ty::Object, _) => object(table, path, v, out),
            (Ty::Array(inner), Value::Array(items)) => {
                let element = format!("{path}[]");
                for item in items {
                    value(table, &element, item, inner, out);
                }
            }
            _ => {}
        }
    }

    fn object(table: &Table, prefix: &str, v: &Value, out: &mut Vec<String>) {
        let Some(map) = v.as_object() else {
            out.push(format!("{prefix}: not an object: {v}"));
            return;
        };
        let join = |k: &str| {
            if prefix.is_empty() {
                k.to_string()
            } else {
                format!("{prefix}.{k}")
            }
        };
        for (k, field) in map {
            value(table, &join(k), field, &[], out);
        }
        for (path, f) in table {
            let direct = match path.rsplit_once('.') {
                Some((parent, name)) => parent == prefix && !name.contains('['),
                None => prefix.is_empty() && !path.contains('['),
            };
            let name = path.rsplit('.').next().unwrap();
            if direct && !f.optional && !map.contains_key(name) {
                out.push(format!("{path}: documented, but missing in {v}"));
            }
        }
    }
}

/// docs/cli.md.
fn docs() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/cli.md")).unwrap()
}

/// Check one document against section `name`.
pub(crate) fn check(name: &str, doc: &Value) {
    let table = contract::table(&docs(), name);
    let problems = contract::problems(&table, doc);
    assert!(
        problems.is_empty(),
        "`{name}` --json breaks docs/cli.md:\n  {}\ndocument: {doc:#}",
        problems.join("\n  ")
    );
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run with `--json`, require `code`, parse standard output as one document.
fn json(env: &Env, args: &[&str], code: i32) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let o = env.run_code(&all, code);
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}{}", stdout(&o), stderr(&o)))
}

/// A repository with snapshots of a small tree: a symlink, a name that is not UTF-8, two
/// files in a directory. Returns the source.
fn repo_with_snapshots(env: &Env) -> PathBuf {
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/a.txt"), b"hello").unwrap();
    std::fs::write(
        src.join("d/b.bin"),
        tresor_testkit::tree::pseudo_random(3, 200_000),
    )
    .unwrap();
    std::os::unix::fs::symlink("d/a.txt", src.join("link")).unwrap();
    use std::os::unix::ffi::OsStrExt;
    std::fs::write(src.join(std::ffi::OsStr::from_bytes(b"bad-\xff")), b"x").unwrap();
    let s = src.to_str().unwrap();
    env.ok(&["backup", s, "--tag", "t1", "--time", "2024-01-01 00:00:00"]);
    std::fs::write(src.join("d/c.txt"), b"more").unwrap();
    env.ok(&["backup", s, "--time", "2024-01-02 00:00:00"]);
    src
}

/// Object files of `kind` (`data`, `index`, `keys`, …) in the repository.
fn objects(env: &Env, kind: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![env.repo.join(kind)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn name(p: &Path) -> &str {
    p.file_name().unwrap().to_str().unwrap()
}

/// `tresor ARGS --json` as user 65534 (as root: the repository and `dirs` are handed to that
/// user first; otherwise the test's own user runs it).
fn as_nobody(env: &Env, dirs: &[&Path], args: &[&str]) -> Output {
    let mut cmd = if is_root() {
        for d in [env.dir.path()].iter().chain(dirs) {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let mut chown = Command::new("chown");
        chown.args(["-R", "65534:65534"]).arg(&env.repo).args(dirs);
        assert!(chown.status().unwrap().success());
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        c.arg(env!("CARGO_BIN_EXE_tresor"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_tresor"))
    };
    cmd.env("TRESOR_REPOSITORY", &env.repo)
        .env("TRESOR_PASSWORD", PASSWORD)
        .env_remove("TRESOR_PASSWORD_FILE")
        .env_remove("TRESOR_PASSWORD_COMMAND")
        .args(args)
        .args(["--json", "--no-cache"]);
    cmd.output().unwrap()
}

#[test]
fn the_checker_refuses_undocumented_missing_and_mistyped_fields() {
    let doc = "x\n## JSON output\n### `demo`\n\n| field | type | meaning |\n|---|---|---|\n\
               | `a`, `b` | integer | |\n| `c` | array of object | |\n| `c[].d` | string or null | |\n\
               | `e` | map, optional | |\n| `f` | array of array | |\n| `f[][]` | string or integer | |\n\
               ## Next\n### `demo`\n| `z` | string | |\n";
    let t = contract::table(doc, "demo");
    assert_eq!(t.len(), 7, "{t:?}");
    let ok = serde_json::json!({"a": 1, "b": 2, "c": [{"d": null}, {"d": "x"}], "e": {"k": [1]}, "f": [["s", 1]]});
    assert_eq!(contract::problems(&t, &ok), Vec::<String>::new());
    let extra =
        serde_json::json!({"a": 1, "b": 2, "c": [{"d": "x", "new": 1}], "f": [], "g": true});
    assert_eq!(
        contract::problems(&t, &extra),
        [
            "c[].new: not documented (value 1)",
            "g: not documented (value true)"
        ]
    );
    let wrong = serde_json::json!({"a": 1.5, "c": [{"d": 3}], "f": [[true]]});
    assert_eq!(
        contract::problems(&t, &wrong),
        [
            "a: 1.5 is none of [Integer]",
            "c[].d: 3 is none of [String, Null]",
            "f[][]: true is none of [String, Integer]",
            "b: documented, but missing in {\"a\":1.5,\"c\":[{\"d\":3}],\"f\":[[true]]}",
        ]
    );
    assert!(contract::parse_types("string or blob").is_err());
}

#[test]
fn every_documented_section_parses() {
    let doc = docs();
    for name in [
        "init",
        "backup",
        "snapshots",
        "snapshots, put-only key",
        "ls",
        "cat config",
        "cat key",
        "cat snapshot",
        "cat index",
        "cat pack",
        "cat tree",
        "restore",
        "check",
        "forget",
        "prune",
        "repair index",
        "repair snapshots",
        "key list",
        "key add, key remove, key passwd",
        "key export",
        "key export --unlocked",
        "key signers",
        "key import",
        "s3-policy",
        "serve hash-token",
        "find",
        "stats",
        "copy",
        "profile show",
        "profile list",
        "webhook (notification body)",
        "schedule install",
        "schedule list",
        "schedule remove",
        "snapshots --check-overdue",
        "cost",
    ] {
        contract::table(&doc, name);
    }
}

#[test]
fn init_and_backup() {
    let env = Env::new();
    let init = json(
        &env,
        &["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"],
        0,
    );
    check("init", &init);
    assert_eq!(init["message_type"], "initialized");
    let src = env.path("src");
    std::fs::create_dir_all(src.join("closed")).unwrap();
    std::fs::write(src.join("open"), b"readable").unwrap();
    std::fs::write(src.join("secret"), b"unreadable").unwrap();
    let s = src.to_str().unwrap();
    let first = json(&env, &["backup", s], 0);
    check("backup", &first);
    assert_eq!(first["parent"], Value::Null);
    let dry = json(&env, &["backup", "-n", s], 0);
    check("backup", &dry);
    assert_eq!(
        (&dry["dry_run"], &dry["snapshot_id"]),
        (&Value::Bool(true), &Value::Null)
    );
    // Unreadable entries fill `error_list` (exit 3).
    for p in ["secret", "closed"] {
        std::fs::set_permissions(src.join(p), std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    let o = as_nobody(&env, &[], &["backup", s]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let partial: Value = serde_json::from_slice(&o.stdout).unwrap();
    check("backup", &partial);
    assert_eq!(
        partial["error_list"].as_array().unwrap().len(),
        2,
        "{partial}"
    );
    assert!(partial["parent"].is_string(), "{partial}");
    std::fs::set_permissions(src.join("closed"), std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn snapshots_ls_and_cat() {
    let env = Env::new();
    repo_with_snapshots(&env);
    let list = json(&env, &["snapshots"], 0);
    check("snapshots", &list);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(list[1]["parent"].is_string() && list[0]["summary"].is_object());
    let overdue = json(&env, &["snapshots", "--check-overdue"], 6);
    check("snapshots --check-overdue", &overdue);
    assert_eq!(overdue["groups"].as_array().unwrap().len(), 1, "{overdue}");
    let o = env.ok(&["ls", "--json", "latest"]);
    let entries: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for e in &entries {
        check("ls", e);
    }
    assert!(entries.iter().any(|e| e["name_hex"] == "6261642dff"));
    assert!(entries.iter().any(|e| e["target"] == "d/a.txt"));
    check("cat config", &json(&env, &["cat", "config"], 0));
    let key = objects(&env, "keys").pop().unwrap();
    check("cat key", &json(&env, &["cat", "key", name(&key)], 0));
    check(
        "cat snapshot",
        &json(&env, &["cat", "snapshot", "latest"], 0),
    );
    let index = objects(&env, "index").pop().unwrap();
    let packs = json(&env, &["cat", "index", name(&index)], 0);
    check("cat index", &packs);
    let pack = packs[0]["pack"].as_str().unwrap();
    check("cat pack", &json(&env, &["cat", "pack", pack], 0));
    let tree = list[1]["tree"].as_str().unwrap();
    check("cat tree", &json(&env, &["cat", "tree", tree], 0));
    // Without --json, cat prints the same document.
    let text = env.ok(&["cat", "tree", tree]);
    let same: Value = serde_json::from_slice(&text.stdout).unwrap();
    assert_eq!(same, json(&env, &["cat", "tree", tree], 0));
}

#[test]
fn snapshots_of_a_put_only_key() {
    let env = Env::new();
    repo_with_snapshots(&env);
    let pw = env.password_file("put.pw", "put-only password\n");
    let p = pw.to_str().unwrap();
    let args = ["key", "add", "--put-only", "--host", "vps"];
    let mut add = args.to_vec();
    add.extend(["--new-password-file", p, "--kdf-memory-kib", "8192"]);
    add.extend(["--kdf-iterations", "1"]);
    env.ok(&add);
    let o = env
        .cmd()
        .env_remove("TRESOR_PASSWORD")
        .args(["snapshots", "--json", "--password-file", p])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    check("snapshots, put-only key", &list);
    assert_eq!(list.as_array().unwrap().len(), 2);
}

#[test]
fn restore_with_differences_and_damage() {
    let env = Env::new();
    let src = repo_with_snapshots(&env);
    if is_root() {
        // A device node cannot be made without root: a difference of kind `entry`.
        let dev = src.join("null");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &dev,
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_bits_truncate(0o666),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
        env.ok(&["backup", src.to_str().unwrap()]);
    }
    let t1 = env.path("t1");
    let ok = json(
        &env,
        &["restore", "latest", "--target", t1.to_str().unwrap()],
        0,
    );
    check("restore", &ok);
    let t2 = env.path("t2");
    std::fs::create_dir(&t2).unwrap();
    let o = as_nobody(
        &env,
        &[&t2],
        &["restore", "latest", "--target", t2.to_str().unwrap()],
    );
    let diff: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&o), stderr(&o)));
    check("restore", &diff);
    if is_root() {
        assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
        assert_eq!(diff["differences"][0]["what"], "entry", "{diff}");
    }
    // A missing pack: the files that need it are damage, listed in `error_list` (exit 5).
    for p in objects(&env, "data") {
        std::fs::remove_file(p).unwrap();
    }
    let t3 = env.path("t3");
    let damaged = json(
        &env,
        &["restore", "latest", "--target", t3.to_str().unwrap()],
        5,
    );
    check("restore", &damaged);
    assert_eq!(damaged["error_list"][0]["damage"], true, "{damaged}");
}

#[test]
fn check_with_errors_and_warnings() {
    let env = Env::new();
    repo_with_snapshots(&env);
    let clean = json(&env, &["check", "--read-data"], 0);
    check("check", &clean);
    assert_eq!(clean["errors"], serde_json::json!([]));
    // Without its index objects every pack is unreferenced (warnings) and every snapshot's
    // data is missing (errors).
    for p in objects(&env, "index") {
        std::fs::remove_file(p).unwrap();
    }
    let bad = json(&env, &["check"], 5);
    check("check", &bad);
    assert!(!bad["errors"].as_array().unwrap().is_empty(), "{bad}");
    assert!(!bad["warnings"].as_array().unwrap().is_empty(), "{bad}");
}

#[test]
fn forget_and_prune() {
    let env = Env::new();
    let src = repo_with_snapshots(&env);
    let groups = json(
        &env,
        &[
            "forget",
            "--keep-last",
            "1",
            "--group-by",
            "host,paths,tags",
            "-n",
        ],
        0,
    );
    check("forget", &groups);
    assert!(groups[0]["key"]["tags"].is_array(), "{groups}");
    let policy = json(&env, &["forget", "--keep-last", "1"], 0);
    check("forget", &policy);
    // A garbage snapshot object: the plan lists it, the run deletes it.
    let junk = b"not a snapshot";
    let hash = blake3::hash(junk).to_hex().to_string();
    std::fs::write(env.repo.join("snapshots").join(&hash), junk).unwrap();
    let plan = json(&env, &["prune", "-n", "--max-unused", "0%"], 0);
    check("prune", &plan);
    assert_eq!(
        (&plan["message_type"], &plan["plan"]["garbage"][0]["kind"]),
        (&"plan".into(), &"snapshot".into())
    );
    let first = json(&env, &["prune", "--max-unused", "0%"], 0);
    check("prune", &first);
    assert!(
        !first["plan"]["condemn_unused"]
            .as_array()
            .unwrap()
            .is_empty()
            || !first["plan"]["repack"].as_array().unwrap().is_empty(),
        "{first}"
    );
    // A new snapshot of the host approves the generation: the next run deletes its packs.
    env.ok(&["backup", src.to_str().unwrap()]);
    let second = json(&env, &["prune"], 0);
    check("prune", &second);
    assert!(
        !second["plan"]["generations"].as_array().unwrap().is_empty(),
        "{second}"
    );
    let third = json(&env, &["prune"], 0);
    check("prune", &third);
    // Forget by id prints no document of its own; with --prune, prune's follows.
    let id = env.snapshot_ids()[0].clone();
    let o = env.ok(&["forget", "--json", &id]);
    assert_eq!(stdout(&o), "");
}

#[test]
fn repair_index_and_snapshots() {
    let env = Env::new();
    repo_with_snapshots(&env);
    let clean = json(&env, &["repair", "index", "-n"], 0);
    check("repair index", &clean);
    let pack = objects(&env, "data")
        .into_iter()
        .max_by_key(|p| p.metadata().unwrap().len());
    std::fs::remove_file(pack.unwrap()).unwrap();
    let damaged = json(&env, &["repair", "index"], 0);
    check("repair index", &damaged);
    assert!(
        !damaged["report"]["missing_packs"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{damaged}"
    );
    let snaps = json(&env, &["repair", "snapshots", "--forget"], 0);
    check("repair snapshots", &snaps);
    assert!(
        !snaps["report"]["repaired"].as_array().unwrap().is_empty(),
        "{snaps}"
    );
}

#[test]
fn keys() {
    let env = Env::new();
    repo_with_snapshots(&env);
    let kdf = ["--kdf-memory-kib", "8192", "--kdf-iterations", "1"];
    let pw2 = env.password_file("two.pw", "second password\n");
    let mut add = vec!["key", "add", "--new-password-file", pw2.to_str().unwrap()];
    add.extend(kdf);
    let added = json(&env, &add, 0);
    check("key add, key remove, key passwd", &added);
    let list = json(&env, &["key", "list"], 0);
    check("key list", &list);
    let paper = json(&env, &["key", "export"], 0);
    check("key export", &paper);
    let file = env.path("unlocked.key");
    let unlocked = json(
        &env,
        &["key", "export", "--unlocked", file.to_str().unwrap()],
        0,
    );
    check("key export --unlocked", &unlocked);
    // The second key backs up, then its key file is lost: its signer is unknown.
    let src = env.path("src");
    let o = env
        .cmd()
        .env("TRESOR_PASSWORD", "second password")
        .args(["backup", "-q", src.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let second = added["id"].as_str().unwrap();
    std::fs::remove_file(env.repo.join("keys").join(second)).unwrap();
    let signers = json(&env, &["key", "signers"], 0);
    check("key signers", &signers);
    assert_eq!(
        signers["unknown"][0]["snapshots"].as_array().unwrap().len(),
        1,
        "{signers}"
    );
    // A paper key imported: the unknown signer is listed again.
    let paper_file = env.path("paper");
    std::fs::write(&paper_file, paper["paper"].as_str().unwrap()).unwrap();
    let pw3 = env.password_file("three.pw", "third password\n");
    let mut import = vec!["key", "import", "--file", paper_file.to_str().unwrap()];
    import.extend(["--new-password-file", pw3.to_str().unwrap()]);
    import.extend(kdf);
    let imported = json(&env, &import, 0);
    check("key import", &imported);
    assert_eq!(
        imported["unknown_signers"].as_array().unwrap().len(),
        1,
        "{imported}"
    );
    let accepted = json(&env, &["key", "signers", "--accept", "all", "--yes"], 0);
    check("key signers", &accepted);
    assert_eq!(
        accepted["accepted"].as_array().unwrap().len(),
        1,
        "{accepted}"
    );
    let imported_id = imported["id"].as_str().unwrap();
    let removed = json(&env, &["key", "remove", imported_id], 0);
    check("key add, key remove, key passwd", &removed);
    assert_eq!(removed["message_type"], "removed");
    // Last: the key in use gets a new password.
    let pw4 = env.password_file("four.pw", "fourth password\n");
    let mut passwd = vec![
        "key",
        "passwd",
        "--new-password-file",
        pw4.to_str().unwrap(),
    ];
    passwd.extend(kdf);
    check("key add, key remove, key passwd", &json(&env, &passwd, 0));
}

#[test]
fn s3_policy_and_hash_token() {
    let env = Env::new();
    let append = json(
        &env,
        &[
            "s3-policy",
            "--bucket",
            "b",
            "--prefix",
            "p",
            "--append-only",
        ],
        0,
    );
    check("s3-policy", &append);
    let admin = json(
        &env,
        &[
            "s3-policy",
            "--bucket",
            "b",
            "--admin",
            "--principal",
            "arn:aws:iam::123456789012:user/admin",
            "--object-lock-days",
            "7",
        ],
        0,
    );
    check("s3-policy", &admin);
    assert!(admin["Statement"][0]["Principal"].is_object(), "{admin}");
    let new = json(&env, &["serve", "hash-token", "vps1"], 0);
    check("serve hash-token", &new);
    assert!(new["token"].as_str().unwrap().starts_with("vps1."));
    let mut c = env.cmd();
    c.args(["serve", "hash-token", "vps1", "--stdin", "--json"]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    let token = format!("{}\n", new["token"].as_str().unwrap());
    child
        .stdin
        .take()
        .unwrap()
        .write_all(token.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    let again: Value = serde_json::from_slice(&o.stdout).unwrap();
    check("serve hash-token", &again);
    assert_eq!(again["token"], Value::Null);
}

#[test]
fn spool_status_and_flush() {
    let env = Env::new();
    let src = repo_with_snapshots(&env);
    let sp = env.path("spool");
    let spool = sp.to_str().unwrap();
    let s = src.to_str().unwrap();
    env.ok(&["backup", s, "--spool", spool, "--spool-always", "-q"]);
    let status = json(&env, &["spool", "status", "--spool", spool], 0);
    check("spool status", &status);
    assert_eq!(status["snapshots"], 1, "{status}");
    let flushed = json(&env, &["spool", "flush", "--spool", spool], 0);
    check("spool flush", &flushed);
    assert_eq!(flushed["snapshots"], 1, "{flushed}");
    assert_eq!(flushed["bytes"], status["bytes"], "{flushed}");
}

#[test]
fn schedule_install_list_remove() {
    let env = Env::new();
    let file = env.path("tresor.toml");
    std::fs::write(&file, "[profiles.p]\nrepository = \"s3://b/x\"\n").unwrap();
    let dir = env.path("units");
    let d = dir.to_str().unwrap();
    let cfg = file.to_str().unwrap();
    for (name, args) in [
        (
            "schedule install",
            vec!["schedule", "install", "p", "--unit-dir", d],
        ),
        (
            "schedule install",
            vec!["schedule", "install", "p", "--cron"],
        ),
        ("schedule list", vec!["schedule", "list", "--unit-dir", d]),
        (
            "schedule remove",
            vec!["schedule", "remove", "p", "--unit-dir", d],
        ),
    ] {
        let mut all = vec!["--config", cfg, "--json"];
        all.extend(args);
        let o = env.ok(&all);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        check(name, &v);
    }
}

#[test]
fn cost() {
    let env = Env::new();
    repo_with_snapshots(&env);
    let cache = env.path("cache");
    let c = cache.to_str().unwrap();
    json(&env, &["check", "--cache-dir", c], 0);
    let v = json(&env, &["cost", "--cache-dir", c], 0);
    check("cost", &v);
    assert_eq!(v["runs"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["runs"][0]["command"], "check");
    let cold = json(&env, &["cost", "--class-data", "DEEP_ARCHIVE"], 0);
    check("cost", &cold);
    assert_eq!(cold["restore"][0]["cost"], Value::Null, "no expedited thaw");
}
