//! Help that helps: every command's help ends with examples, the main help names every
//! environment variable the sources read, global options stand under their own heading, `-r`
//! lists every location form, and `tresor help exit-codes` lists every exit code there is.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tresor_testkit::cli::tresor_bin;

/// stdout of `tresor ARGS` (which must succeed), with no environment variables of tresor's
/// set (clap would show their values).
fn tresor_out(args: &[&str]) -> String {
    let mut c = std::process::Command::new(tresor_bin());
    for (k, _) in std::env::vars_os() {
        if k.to_str()
            .is_some_and(|k| k.starts_with("TRESOR_") || k.starts_with("AWS_"))
        {
            c.env_remove(k);
        }
    }
    let o = c.args(args).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "tresor {args:?}: {o:?}");
    String::from_utf8(o.stdout).unwrap()
}

/// The lines of the section `heading` (`"Commands:"`) of a help text, up to the next heading.
fn section<'a>(help: &'a str, heading: &str) -> Vec<&'a str> {
    help.lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .filter(|l| !l.is_empty())
        .collect()
}

/// The first word of each line of a section (command names, variable names).
fn first_words(lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Every command path (`["key", "add"]`), by walking the "Commands:" sections of the help.
pub(crate) fn command_paths(prefix: &[String]) -> Vec<Vec<String>> {
    let mut args: Vec<&str> = prefix.iter().map(String::as_str).collect();
    args.push("--help");
    let help = tresor_out(&args);
    let mut out = Vec::new();
    for name in first_words(&section(&help, "Commands:")) {
        if name == "help" {
            continue;
        }
        let mut path = prefix.to_vec();
        path.push(name);
        out.extend(command_paths(&path));
        out.push(path);
    }
    out
}

#[test]
fn every_command_help_ends_with_two_or_three_examples() {
    let paths = command_paths(&[]);
    assert!(paths.len() >= 20, "{paths:?}");
    assert!(paths.contains(&vec!["key".to_string(), "add".to_string()]));
    for path in paths {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = tresor_out(&args);
        let tail = help
            .rsplit_once("\nExamples:\n")
            .unwrap_or_else(|| panic!("tresor {args:?}: no Examples:\n{help}"))
            .1;
        let lines: Vec<&str> = tail.lines().collect();
        assert!((2..=3).contains(&lines.len()), "{path:?}: {lines:?}");
        let words = path.join(" ");
        for l in lines {
            assert!(
                l.starts_with("  ") && l.contains("tresor "),
                "{path:?}: {l}"
            );
            assert!(l.contains(&words), "{path:?}: {l}");
        }
    }
    let main = tresor_out(&["--help"]);
    assert_eq!(section(&main, "Examples:").len(), 3, "{main}");
    // Help asked for in other ways (parsed again with the examples, help::parse): `-h`, the
    // `help` command, and a group without its command (exit 2, on standard error).
    for args in [&["backup", "-h"][..], &["help", "backup"]] {
        let help = tresor_out(args);
        assert!(
            help.contains("\nExamples:\n  tresor -r /srv/backup backup "),
            "{args:?}: {help}"
        );
    }
    let bare = std::process::Command::new(tresor_bin())
        .arg("key")
        .env_remove("TRESOR_REPOSITORY")
        .output()
        .unwrap();
    assert_eq!(bare.status.code(), Some(2), "{bare:?}");
    let text = String::from_utf8(bare.stderr).unwrap();
    assert!(text.contains("\nExamples:\n  tresor key list\n"), "{text}");
    // Other outcomes of parsing are the bare command's: the version, and usage errors (exit 2).
    assert!(tresor_out(&["--version"]).starts_with("tresor "));
    let wrong = std::process::Command::new(tresor_bin())
        .args(["backup", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2), "{wrong:?}");
    let text = String::from_utf8(wrong.stderr).unwrap();
    assert!(
        text.contains("--no-such-flag") && !text.contains("Examples:"),
        "{text}"
    );
}

/// The names of the environment variables the sources of the product (every crate but the test
/// kit) read: `env::var("X")`, `env::var_os(X_CONST)`, `env_nonempty("X")`, clap's
/// `env = "X"`. A variable name passed in (`name`) is allowed only where the sources expand
/// variables the user names (exclude files) or define the helper. Debug-only test hooks
/// (`TRESOR_TEST_…`) are left out.
fn env_reads() -> BTreeSet<String> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut names = BTreeSet::new();
    for file in rust_files(crates) {
        let text = std::fs::read_to_string(&file).unwrap();
        let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        let rel = file.strip_prefix(crates).unwrap().display().to_string();
        for pattern in ["env::var(", "env::var_os(", "env_nonempty(", "env = "] {
            for (at, _) in text.match_indices(pattern) {
                let arg = &text[at + pattern.len()..];
                let attribute = arg.starts_with('"') && !text[..at].ends_with("target_");
                if pattern == "env = " && !attribute {
                    continue; // `let env = …` or `cfg(target_env = …)`, not clap's attribute
                }
                if let Some(name) = read_name(arg, text, &rel) {
                    names.insert(name);
                }
            }
        }
    }
    names.retain(|n| !n.starts_with("TRESOR_TEST_"));
    names
}

/// The variable an `env::var(` call reads: a literal, or a `const` of the same file.
fn read_name(arg: &str, file: &str, rel: &str) -> Option<String> {
    if let Some(lit) = arg.strip_prefix('"') {
        return Some(lit[..lit.find('"').unwrap()].to_string());
    }
    let ident: String = arg
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if ident
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && !ident.is_empty()
    {
        let decl = format!("const {ident}: &str = \"");
        let at = file.find(&decl).unwrap_or_else(|| panic!("{rel}: {ident}"));
        let rest = &file[at + decl.len()..];
        return Some(rest[..rest.find('"').unwrap()].to_string());
    }
    let allowed = [
        ("tresor-s3/src/lib.rs", "name"),
        ("tresor-core/src/exclude.rs", "name"),
    ];
    assert!(
        allowed.contains(&(rel, ident.as_str())),
        "{rel}: reads the environment variable named by `{ident}`: list it in help.rs"
    );
    None
}

/// The `.rs` files under `crates/*/src`, but the test kit's and unit tests (`tests.rs`).
fn rust_files(crates: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("tests.rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(crates).unwrap() {
        let dir = e.unwrap().path();
        if dir.file_name().unwrap() != "tresor-testkit" && dir.join("src").is_dir() {
            walk(&dir.join("src"), &mut out);
        }
    }
    out
}

#[test]
fn the_main_help_names_every_environment_variable_the_code_reads() {
    let read = env_reads();
    for known in [
        "TRESOR_PASSWORD",
        "TRESOR_SERVER_TOKEN",
        "TRESOR_REPOSITORY",
        "AWS_REGION",
    ] {
        assert!(
            read.contains(known),
            "the source scan missed {known}: {read:?}"
        );
    }
    let main = tresor_out(&["--help"]);
    let listed: BTreeSet<String> = first_words(&section(&main, "Environment:"))
        .into_iter()
        .filter(|w| {
            w.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .collect();
    let missing: Vec<&String> = read.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "not in the main help: {missing:?}\n{main}"
    );
    assert!(main.contains("tresor help exit-codes"), "{main}");
}

#[test]
fn global_options_stand_apart_and_name_their_variables_and_locations() {
    let help = tresor_out(&["backup", "--help"]);
    let own = section(&help, "Options:").join("\n");
    let global = section(&help, "Global options:").join("\n");
    assert!(own.contains("--exclude <EXCLUDES>"), "{help}");
    assert!(!own.contains("--repo") && !own.contains("--json"), "{own}");
    assert!(global.contains("-r, --repo <LOCATION>"), "{global}");
    assert!(global.contains("--json"), "{global}");
    for form in [
        "PATH or local:PATH",
        "s3:https://ENDPOINT/BUCKET[/PREFIX]",
        "s3://BUCKET[/PREFIX]",
        "tresor+https://HOST[:PORT]/REPO",
        "ssh://[USER@]HOST[:PORT]/PATH",
        "AWS_ACCESS_KEY_ID",
        "TRESOR_SERVER_TOKEN",
        "[env: TRESOR_REPOSITORY=]",
        "[env: TRESOR_PASSWORD_FILE=]",
        "TRESOR_PASSWORD,",
    ] {
        assert!(global.contains(form), "{form}: {global}");
    }
    let s3 = section(&help, "Global options for S3:").join("\n");
    assert!(s3.contains("[env: TRESOR_S3_SSE=]"), "{help}");
    let server = section(&help, "Global options for tresor servers:").join("\n");
    assert!(server.contains("[env: TRESOR_TLS_CA=]"), "{help}");
    let short = tresor_out(&["backup", "-h"]);
    for form in ["s3://BUCKET", "tresor+https://HOST", "ssh://[USER@]HOST"] {
        assert!(short.contains(form), "{form}: {short}");
    }
}

/// The exit codes `exit.rs` declares (`NAME = N, "…";`).
fn declared_exit_codes() -> BTreeSet<i32> {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/exit.rs")).unwrap();
    let body = src.split("exit_codes! {").nth(1).unwrap();
    body.lines()
        .filter_map(|l| {
            let (name, rest) = l.trim().split_once(" = ")?;
            name.chars()
                .all(|c| c.is_ascii_uppercase() || c == '_')
                .then(|| rest.split(',').next()?.parse().ok())?
        })
        .collect()
}

#[test]
fn help_exit_codes_lists_every_exit_code_and_so_does_the_manual() {
    let text = tresor_out(&["help", "exit-codes"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Exit codes of tresor:");
    assert_eq!(lines[1], "    0  success");
    let listed: BTreeSet<i32> = lines[1..]
        .iter()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    let declared = declared_exit_codes();
    assert_eq!(
        declared,
        BTreeSet::from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 130, 141])
    );
    assert_eq!(listed, declared, "{text}");
    let manual =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/cli.md")).unwrap();
    let table = manual.split("## Exit codes").nth(1).unwrap();
    let in_manual: BTreeSet<i32> = table
        .lines()
        .skip_while(|l| !l.starts_with("| code"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            l.trim_start_matches('|')
                .split('|')
                .next()?
                .trim()
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(in_manual, declared);
}
