//! `tresor generate` (shell completions and man pages from the clap definitions) and
//! `tresor --version` (commit and format version). Neither needs a repository or a password.

use super::help::command_paths;
use std::path::Path;
use std::process::Output;
use tresor_testkit::cli::tresor_bin;

/// `tresor ARGS` in `dir`, with no environment variable of tresor's set (so no repository and
/// no password are at hand).
fn tresor_in(dir: &Path, args: &[&str]) -> Output {
    let mut c = std::process::Command::new(tresor_bin());
    for (k, _) in std::env::vars_os() {
        if k.to_str()
            .is_some_and(|k| k.starts_with("TRESOR_") || k.starts_with("AWS_"))
        {
            c.env_remove(k);
        }
    }
    c.current_dir(dir).args(args).output().unwrap()
}

/// stdout of `tresor ARGS` in `dir`, which must succeed with nothing on stderr.
fn ok_out(dir: &Path, args: &[&str]) -> String {
    let o = tresor_in(dir, args);
    assert_eq!(o.status.code(), Some(0), "tresor {args:?}: {o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "", "tresor {args:?}");
    String::from_utf8(o.stdout).unwrap()
}

/// The text of `dir/name`.
fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn generate_without_a_request_is_a_usage_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let o = tresor_in(dir.path(), &["generate"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: the following required arguments were not provided:"),
        "{err}"
    );
    assert!(err.contains("--bash-completion <FILE>") && err.contains("--man <DIR>"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn bash_completion_is_valid_bash_with_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok_out(
        dir.path(),
        &["generate", "--bash-completion", "tresor.bash"],
    );
    assert_eq!(out, "");
    let script = read(dir.path(), "tresor.bash");
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(dir.path().join("tresor.bash"))
        .output()
        .expect("bash runs");
    assert!(check.status.success(), "bash -n: {check:?}");
    let paths = command_paths(&[]);
    assert!(paths.len() >= 20, "{paths:?}");
    for path in &paths {
        let (name, parents) = path.split_last().unwrap();
        let mut case = String::from("tresor");
        for p in parents {
            case.push_str("__subcmd__");
            case.push_str(p);
        }
        let line = format!("{case},{name})");
        assert!(
            script.lines().any(|l| l.trim() == line),
            "no `{line}` for {path:?}"
        );
    }
    // `-` writes the same script to standard output.
    assert_eq!(
        ok_out(dir.path(), &["generate", "--bash-completion", "-"]),
        script
    );
}

#[test]
fn zsh_and_fish_completions_name_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["generate", "--zsh-completion", "_tresor"];
    ok_out(
        dir.path(),
        &[&args[..], &["--fish-completion", "tresor.fish"]].concat(),
    );
    let zsh = read(dir.path(), "_tresor");
    assert!(zsh.starts_with("#compdef tresor\n"), "{}", &zsh[..40]);
    let fish = read(dir.path(), "tresor.fish");
    for path in command_paths(&[]) {
        let (name, parents) = path.split_last().unwrap();
        let condition = match parents {
            [] => "\"__fish_tresor_needs_command\"".to_string(),
            [.., parent] => {
                format!(
                    "\"__fish_tresor_using_subcommand {parent}; and not __fish_seen_subcommand_from "
                )
            }
        };
        let prefix = format!("complete -c tresor -n {condition}");
        let choice = format!(" -a \"{name}\" ");
        assert!(
            fish.lines()
                .any(|l| l.starts_with(&prefix) && l.contains(&choice)),
            "no `{prefix}…{choice}` line for {path:?}"
        );
    }
    assert_eq!(
        ok_out(dir.path(), &["generate", "--zsh-completion", "-"]),
        zsh
    );
}

#[test]
fn man_pages_one_per_command_each_titled_by_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let man = dir.path().join("share/man/man1");
    ok_out(dir.path(), &["generate", "--man", "share/man/man1"]);
    let mut expected: Vec<String> = command_paths(&[])
        .iter()
        .map(|p| format!("tresor-{}", p.join("-")))
        .collect();
    expected.push("tresor".into());
    let mut files: Vec<String> = std::fs::read_dir(&man)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut pages: Vec<String> = expected.iter().map(|n| format!("{n}.1")).collect();
    pages.sort();
    assert_eq!(files, pages);
    let version = ok_out(dir.path(), &["--version"]);
    let source = format!("\"{}\"", version.trim_end());
    for name in &expected {
        let page = read(&man, &format!("{name}.1"));
        let th = page
            .lines()
            .find(|l| l.starts_with(".TH "))
            .unwrap_or_else(|| panic!("{name}.1 has no .TH"));
        assert_eq!(th.trim_end(), format!(".TH {name} 1  {source}"), "{name}.1");
        let words = name.replace('-', "\\-");
        assert!(
            page.contains(&format!(".SH NAME\n{words} \\- ")),
            "{name}.1"
        );
    }
}

#[test]
fn version_names_the_commit_and_the_format() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok_out(dir.path(), &["--version"]);
    let rest = out
        .strip_prefix(&format!("tresor {} (commit ", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{out}"));
    let (commit, rest) = rest.split_once(", ").unwrap_or_else(|| panic!("{out}"));
    assert_eq!(rest, "format 3)\n", "{out}");
    assert_eq!(tresor_format::FORMAT_VERSION, 2);
    let git = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match git {
        Ok(g) if g.status.success() => {
            let head = String::from_utf8(g.stdout).unwrap();
            assert_eq!(commit, head.trim_end(), "{out}");
            assert_eq!(commit.len(), 12);
        }
        // Built outside a checkout (a source tarball) or without git: the build had no
        // commit either, and says so.
        _ => assert_eq!(commit, "unknown", "{out}"),
    }
    assert_eq!(ok_out(dir.path(), &["-V"]), out);
}

/// The binary carries its relative relocations packed (DT_RELR, `build.rs`): the loader then
/// reads 9 KB of them instead of an 820 KB `.rela.dyn` at every start — unless the build was
/// told not to (`TRESOR_PACKED_RELOCS=0`, for older glibc), then it has them all unpacked.
/// `readelf` is binutils', installed with the linker.
#[test]
fn the_binary_packs_its_relative_relocations() {
    let dynamic = binutils_on_binary("readelf", &["--dynamic", "--wide"]);
    let count = dynamic
        .lines()
        .find(|l| l.contains("(RELACOUNT)"))
        .and_then(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .unwrap_or(0);
    if std::env::var("TRESOR_PACKED_RELOCS").as_deref() == Ok("0") {
        assert!(!dynamic.contains("(RELR)"), "{dynamic}");
        assert!(count > 1000, "{count} unpacked relative relocations");
    } else {
        assert!(dynamic.contains("(RELR)"), "{dynamic}");
        assert!(count < 100, "{count} relative relocations left unpacked");
    }
}

/// The functions `symbols.order` names sit at the front of the binary's code, in the file's
/// order (`build.rs`, lld's `--symbol-ordering-file`): a one-file unchanged backup then maps
/// about 2 MiB of code instead of 7. A test build has other names for tresor's own functions
/// (cargo's symbol hashes include the profile), but the standard library's and the C
/// libraries' are the same in every build, so hundreds of the file's names are here. Unless the
/// build was told not to (`TRESOR_SYMBOL_ORDER=0`): then they are in the linker's order. `nm` is
/// binutils', installed with the linker.
#[test]
fn the_binary_puts_its_everyday_functions_first() {
    let code = code_symbols();
    let order_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("symbols.order");
    let listed: Vec<String> = std::fs::read_to_string(order_file)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    // Their order is checked on Rust's functions, each in a section of its own (an assembly
    // file holds several in one section, placed by the first of them the file names).
    let wanted: Vec<&String> = listed
        .iter()
        .filter(|n| n.starts_with("_R") || n.starts_with("_ZN"))
        .collect();
    // A name can be defined several times (an inlined function's local copy in each code
    // unit): the linker places every copy where the name's line puts it.
    let mut at: std::collections::HashMap<&str, (u64, u64)> = std::collections::HashMap::new();
    for (a, n) in &code {
        let span = at.entry(n.as_str()).or_insert((*a, *a));
        *span = (span.0.min(*a), span.1.max(*a));
    }
    let placed: Vec<(u64, u64)> = wanted
        .iter()
        .filter_map(|n| at.get(n.as_str()).copied())
        .collect();
    assert!(
        placed.len() >= 100,
        "only {} of the names are in the binary",
        placed.len()
    );
    let in_order = placed.windows(2).all(|w| w[0].1 < w[1].0);
    let last = placed.iter().map(|p| p.1).max().unwrap();
    let names: std::collections::HashSet<&String> = listed.iter().collect();
    let ordered: std::collections::HashSet<u64> = code
        .iter()
        .filter(|(_, n)| names.contains(n))
        .map(|(a, _)| *a)
        .collect();
    let others_before: Vec<&str> = code
        .iter()
        .filter(|(a, _)| *a < last && !ordered.contains(a))
        .map(|(_, n)| n.as_str())
        .collect();
    if std::env::var("TRESOR_SYMBOL_ORDER").as_deref() == Ok("0") {
        assert!(
            !in_order,
            "{} names in the file's order without it",
            placed.len()
        );
    } else {
        assert!(in_order, "the names are not in the file's order");
        assert!(
            others_before.is_empty(),
            "functions not in the file among the first ones: {others_before:?}"
        );
    }
}

/// stdout of binutils' `tool ARGS` on the tresor binary, which must succeed.
fn binutils_on_binary(tool: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(tool)
        .args(args)
        .arg(tresor_bin())
        .output()
        .unwrap_or_else(|e| panic!("{tool} (binutils) does not run: {e}"));
    assert!(out.status.success(), "{tool}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The tresor binary's functions (`nm`'s t, T, w, W symbols) as (address, linker name), by
/// address.
fn code_symbols() -> Vec<(u64, String)> {
    let mut code: Vec<(u64, String)> = binutils_on_binary("nm", &["--defined-only"])
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (addr, kind, name) = (f.next()?, f.next()?, f.next()?);
            matches!(kind, "t" | "T" | "w" | "W")
                .then(|| Some((u64::from_str_radix(addr, 16).ok()?, name.to_string())))?
        })
        .collect();
    code.sort();
    code
}
