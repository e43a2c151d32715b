//! Parsing the command line: clap's parse of [`crate::help`]'s command, first with only the
//! command the line names (the everyday path), then — for help, errors or anything the short
//! path does not take — with the whole command tree.

use crate::args::{Cli, Global};
use crate::help::{bare_command, command};
use clap::{Args, FromArgMatches};
use std::ffi::OsString;

/// The parsed command line (clap's usage errors and `--help` end the process, as
/// `Cli::parse` would).
///
/// Parsed without the examples ([`bare_command`]): only help shows them, and putting the 48
/// texts into the command tree cost every start 0.1 ms. A command line that asks for help (`-h`,
/// `--help`, `help COMMAND`, a group without its command) is parsed again with them, to show
/// it.
pub fn parse() -> (Cli, clap::ArgMatches) {
    let args: Vec<OsString> = std::env::args_os().collect();
    let mut cmd = bare_command();
    if let Some(parsed) = parse_named_command(&cmd, &args) {
        return parsed;
    }
    let matches = match cmd.try_get_matches_from_mut(&args) {
        Ok(m) => m,
        Err(e) if shows_help(e.kind()) => {
            cmd = command();
            cmd.try_get_matches_from_mut(&args)
                .unwrap_or_else(|e| e.exit())
        }
        Err(e) => e.exit(),
    };
    let cli = Cli::from_arg_matches_mut(&mut matches.clone())
        .unwrap_or_else(|e| e.format(&mut cmd).exit());
    (cli, matches)
}

/// `args` parsed by a command that holds the global options and only the command `args` name
/// (found by [`named_command`]); `None` when the line names none or that parse fails (help,
/// usage errors: the caller parses again with the whole tree, for its messages).
///
/// Why: clap copies every global option into every command of the tree before it parses (25
/// options into 40 commands: two thirds of the instructions of `tresor backup`'s start, and
/// 150 page faults). The result is the whole tree's: both commands have the same global
/// options and the same named command, and the tree has no positional arguments of its own, so
/// a line this command accepts names that command in the tree too and is read the same way.
fn parse_named_command(full: &clap::Command, args: &[OsString]) -> Option<(Cli, clap::ArgMatches)> {
    let name = named_command(full, args)?;
    let named = full.find_subcommand(name)?.clone();
    let mut cmd = Global::augment_args(clap::Command::new("tresor"))
        .subcommand(named)
        .subcommand_required(true);
    let matches = cmd.try_get_matches_from_mut(args).ok()?;
    let cli = Cli::from_arg_matches_mut(&mut matches.clone()).ok()?;
    Some((cli, matches))
}

/// The name of the command `args` (program name first) names: its first word that is neither
/// an option nor the value of a global option of `full`, when that word is one of `full`'s
/// commands or their aliases. `None` before such a word: `--`, a word that is not UTF-8, or an
/// option `full` does not have.
fn named_command<'a>(full: &'a clap::Command, args: &[OsString]) -> Option<&'a str> {
    let mut words = args.iter().skip(1);
    while let Some(word) = words.next() {
        let word = word.to_str()?;
        let takes_value_next = if let Some(long) = word.strip_prefix("--") {
            if long.is_empty() {
                return None;
            }
            !long.contains('=')
                && takes_value(full.get_arguments().find(|a| a.get_long() == Some(long))?)
        } else if let Some(shorts) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            short_cluster_takes_next(full, shorts)?
        } else {
            return full.find_subcommand(word).map(|c| c.get_name());
        };
        if takes_value_next {
            words.next()?;
        }
    }
    None
}

/// Whether the cluster of short options `shorts` (`-qr` without the dash) ends with one that
/// takes its value from the next word (`-qr PATH`, not `-qrPATH`); `None` for an unknown one.
fn short_cluster_takes_next(full: &clap::Command, shorts: &str) -> Option<bool> {
    for (i, c) in shorts.char_indices() {
        let arg = full.get_arguments().find(|a| a.get_short() == Some(c))?;
        if takes_value(arg) {
            return Some(i + c.len_utf8() == shorts.len());
        }
    }
    Some(false)
}

/// Whether `arg` takes a value (`-r PATH`), not a flag (`-q`, `-v`).
fn takes_value(arg: &clap::Arg) -> bool {
    arg.get_action().takes_values()
}

/// Whether a parse that ended with `kind` shows a help text (which ends with examples).
fn shows_help(kind: clap::error::ErrorKind) -> bool {
    use clap::error::ErrorKind as K;
    matches!(
        kind,
        K::DisplayHelp | K::DisplayHelpOnMissingArgumentOrSubcommand
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(words: &str) -> Vec<OsString> {
        std::iter::once("tresor")
            .chain(words.split_whitespace())
            .map(OsString::from)
            .collect()
    }

    /// The whole tree's parse of `args`: its `Cli` (as `Debug` text) and matches.
    fn full_parse(args: &[OsString]) -> Option<(String, clap::ArgMatches)> {
        let matches = bare_command().try_get_matches_from(args).ok()?;
        let cli = Cli::from_arg_matches_mut(&mut matches.clone()).ok()?;
        Some((format!("{cli:?}"), matches))
    }

    /// What `m` holds, level by level: each argument's id, where its value came from and its
    /// raw values; then the command and its matches. (Not `ArgMatches`' own `==`: debug builds
    /// also compare the lists of ids the tree could have given.)
    fn summary(m: &clap::ArgMatches) -> Vec<String> {
        let mut out: Vec<String> = m
            .ids()
            .map(|id| {
                let raw: Vec<_> = m.get_raw(id.as_str()).into_iter().flatten().collect();
                format!("{id} {:?} {raw:?}", m.value_source(id.as_str()))
            })
            .collect();
        if let Some((name, sub)) = m.subcommand() {
            out.push(format!("command {name}"));
            out.extend(summary(sub));
        }
        out
    }

    fn short_parse(args: &[OsString]) -> Option<(String, clap::ArgMatches)> {
        let (cli, matches) = parse_named_command(&bare_command(), args)?;
        Some((format!("{cli:?}"), matches))
    }

    /// Every example of the help, and lines that put global options (and their values, which
    /// may look like commands) before and after the command: the short path reads each, the
    /// same as the whole tree does, field for field and match for match.
    #[test]
    fn the_named_command_reads_a_line_as_the_whole_tree_does() {
        let mut lines: Vec<Vec<OsString>> = crate::help::EXAMPLES
            .iter()
            .flat_map(|(_, lines)| lines.iter())
            .map(|l| {
                crate::help::example_words(l)
                    .into_iter()
                    .map(OsString::from)
                    .collect()
            })
            .filter(|l: &Vec<OsString>| l.get(1).is_some_and(|w| w != "help"))
            .collect();
        for extra in [
            "-r snapshots snapshots",
            "-r backup backup /src",
            "--repo backup backup /src",
            "--repo=snapshots snapshots --json",
            "-rsnapshots snapshots",
            "-qr backup backup -v /src",
            "-vv -q snapshots --host h",
            "snapshots -r /repo",
            "--key-file backup -r /r backup --exclude snapshots /src",
            "-r /r key list",
            "-r /r forget --keep-last 3 --prune",
            "-r /r backup --exclude x -- -weird-name snapshots",
        ] {
            lines.push(line(extra));
        }
        assert!(lines.len() > 60, "{}", lines.len());
        for l in &lines {
            let full = full_parse(l).unwrap_or_else(|| panic!("{l:?}: the whole tree refuses it"));
            let short =
                short_parse(l).unwrap_or_else(|| panic!("{l:?}: not read by the short path"));
            assert_eq!(short.0, full.0, "{l:?}");
            assert_eq!(summary(&short.1), summary(&full.1), "{l:?}");
        }
    }

    /// Lines the short path leaves to the whole tree: help, versions, errors, no command.
    #[test]
    fn help_errors_and_lines_without_a_command_take_the_whole_tree() {
        for words in [
            "",
            "--help",
            "-h",
            "--version",
            "-V",
            "help backup",
            "backup --help",
            "backup -h",
            "key",
            "-r",
            "-r /r",
            "backupp /src",
            "-r /r -- backup /src",
            "--no-such-option backup /src",
            "-Z backup /src",
            "backup --no-such-option /src",
            "snapshots --keep-last 3",
        ] {
            let l = line(words);
            assert!(short_parse(&l).is_none(), "{words:?}");
        }
    }

    #[test]
    fn the_named_command_skips_the_values_of_global_options() {
        let full = bare_command();
        let name = |words: &str| named_command(&full, &line(words));
        assert_eq!(name("-r snapshots backup /src"), Some("backup"));
        assert_eq!(name("-rsnapshots backup /src"), Some("backup"));
        assert_eq!(name("-qr snapshots backup /src"), Some("backup"));
        assert_eq!(name("-q snapshots"), Some("snapshots"));
        assert_eq!(name("--repo=backup snapshots"), Some("snapshots"));
        assert_eq!(name("--repo backup snapshots"), Some("snapshots"));
        assert_eq!(name("-r /r key list"), Some("key"));
        assert_eq!(name("-r /r"), None);
        assert_eq!(name("-r /r nonsense"), None);
        assert_eq!(name("-- backup"), None);
        assert_eq!(name("--unknown backup"), None);
    }
}
