//! Help beyond the flags' own texts: the examples that end every command's help, the
//! environment variables tresor reads (listed in the main help's footer) and the help topic
//! `tresor help exit-codes` (made from [`crate::exit::TABLE`]). [`command`] is the clap command
//! `main` parses with.

use crate::args::Cli;
use clap::CommandFactory;
use std::fmt::Write as _;

/// Every environment variable tresor reads, with what it sets: the one list (the main help's
/// footer shows it; a test checks that the sources read no other). Options with a variable show
/// it in their own help too (`[env: …]`).
pub const ENVIRONMENT: &[(&str, &str)] = &[
    ("TRESOR_REPOSITORY", "repository location (-r/--repo)"),
    ("TRESOR_PASSWORD", "the password (see --password-file)"),
    ("TRESOR_PASSWORD_FILE", "--password-file"),
    ("TRESOR_PASSWORD_COMMAND", "--password-command"),
    ("TRESOR_KEY_FILE", "--key-file"),
    ("TRESOR_CACHE_DIR", "--cache-dir"),
    ("TRESOR_RETRY_FOR", "--retry-for"),
    ("TRESOR_LIMIT_UPLOAD", "--limit-upload"),
    ("TRESOR_LIMIT_DOWNLOAD", "--limit-download"),
    ("TRESOR_S3_STORAGE_CLASS_DATA", "--s3-storage-class-data"),
    (
        "TRESOR_S3_STORAGE_CLASS_METADATA",
        "--s3-storage-class-metadata",
    ),
    ("TRESOR_S3_SSE", "--s3-sse"),
    ("TRESOR_S3_SSE_KMS_KEY_ID", "--s3-sse-kms-key-id"),
    ("TRESOR_S3_CONNECTIONS", "--s3-connections"),
    ("TRESOR_TLS_CA", "--tls-ca"),
    ("TRESOR_SERVER_TOKEN", "tresor+http(s)://: the client token"),
    ("TRESOR_SERVER_TOKEN_FILE", "--server-token-file"),
    ("TRESOR_SERVER_COMMAND", "--server-command"),
    ("AWS_ACCESS_KEY_ID", "s3: credentials (with the next two)"),
    ("AWS_SECRET_ACCESS_KEY", "s3: credentials"),
    ("AWS_SESSION_TOKEN", "s3: credentials (temporary)"),
    ("AWS_PROFILE", "s3: profile of the shared files"),
    (
        "AWS_SHARED_CREDENTIALS_FILE",
        "s3: default ~/.aws/credentials",
    ),
    ("AWS_CONFIG_FILE", "s3: default ~/.aws/config"),
    ("AWS_REGION", "s3: region (then AWS_DEFAULT_REGION)"),
    ("AWS_DEFAULT_REGION", "s3: region"),
    ("AWS_ENDPOINT_URL", "s3://: endpoint instead of AWS's"),
    (
        "AWS_EC2_METADATA_DISABLED",
        "s3: true skips instance metadata",
    ),
    ("XDG_CACHE_HOME", "default cache: $XDG_CACHE_HOME/tresor"),
    ("HOME", "~/.cache/tresor, ~/.config/tresor, ~/.aws"),
    ("TZ", "time zone of times shown and recorded"),
    ("TZDIR", "where TZ names are looked up"),
    (
        "TRESOR_PROGRESS_FPS",
        "progress redraws per second (0.01-100)",
    ),
    (
        "TRESOR_FROM_REPOSITORY",
        "copy: source location (--from-repo)",
    ),
    ("TRESOR_FROM_PASSWORD", "copy: the source's password"),
    ("TRESOR_FROM_PASSWORD_FILE", "copy: --from-password-file"),
    ("TRESOR_CONFIG", "--config: the file of profiles"),
    (
        "XDG_CONFIG_HOME",
        "config: $XDG_CONFIG_HOME/tresor/tresor.toml",
    ),
    (
        "TRESOR_FROM_PASSWORD_COMMAND",
        "copy: --from-password-command",
    ),
    ("TRESOR_PASSWORD_CREDENTIAL", "--password-credential"),
    (
        "CREDENTIALS_DIRECTORY",
        "systemd's directory of --password-credential",
    ),
];

/// What the main help's footer says after [`ENVIRONMENT`]: the variables named in exclude files.
const ENVIRONMENT_NOTE: &str = "Exclude files expand $NAME and ${NAME} from the environment.";

/// The examples that end each command's help: the command's words (`""` for tresor itself),
/// then two or three command lines.
pub const EXAMPLES: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "tresor -r /srv/backup init",
            "TRESOR_REPOSITORY=s3:https://s3.example.com/backups tresor backup ~",
            "tresor help exit-codes",
        ],
    ),
    (
        "init",
        &[
            "tresor -r /srv/backup init",
            "tresor -r s3://my-bucket/laptop init --pack-size-mib 64",
            "tresor -r tresor+https://backup.example.com:8443/main init",
        ],
    ),
    (
        "backup",
        &[
            "tresor -r /srv/backup backup ~/Documents ~/Pictures --tag daily",
            "tresor backup / -x --exclude-caches --exclude '/var/tmp/**'",
            "pg_dump app | tresor backup --stdin --stdin-filename app.sql",
        ],
    ),
    (
        "snapshots",
        &[
            "tresor -r /srv/backup snapshots",
            "tresor snapshots --host web1 --tag daily --json",
            "tresor snapshots --check-overdue --max-age 1d12h --metrics-textfile /srv/m/tresor.prom",
        ],
    ),
    (
        "ls",
        &[
            "tresor ls latest",
            "tresor ls -l 3173c619 /home/me/Documents",
        ],
    ),
    (
        "cat",
        &["tresor cat config", "tresor cat snapshot latest --json"],
    ),
    (
        "diff",
        &[
            "tresor diff 3173c619 latest",
            "tresor diff 3173c619:/home/me latest:/home/me --metadata --json",
        ],
    ),
    (
        "restore",
        &[
            "tresor restore latest --target /tmp/restore",
            "tresor restore 3173c619:/home/me/Documents --target ~/Documents --overwrite if-changed",
            "tresor restore latest --target / --include '/etc/**' --verify",
        ],
    ),
    (
        "mount",
        &[
            "tresor mount /mnt/tresor",
            "tresor mount --host web1 --allow-other /mnt/tresor",
        ],
    ),
    (
        "check",
        &[
            "tresor check",
            "tresor check --read-data-subset 10%",
            "tresor check --read-data",
        ],
    ),
    (
        "forget",
        &[
            "tresor forget --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --dry-run",
            "tresor forget --keep-last 10 --host web1 --prune",
            "tresor forget 3173c619",
        ],
    ),
    (
        "key",
        &[
            "tresor key list",
            "tresor key add --put-only --host web1 --new-password-file web1.pw",
            "tresor key export --paper",
        ],
    ),
    ("key list", &["tresor key list", "tresor key list --json"]),
    (
        "key add",
        &[
            "tresor key add",
            "tresor key add --put-only --host web1 --new-password-file web1.pw",
        ],
    ),
    (
        "key remove",
        &[
            "tresor key remove 1a2b3c4d",
            "tresor key remove 1a2b3c4d --json",
        ],
    ),
    (
        "key passwd",
        &[
            "tresor key passwd",
            "tresor key passwd --new-password-file new.pw",
        ],
    ),
    (
        "key export",
        &[
            "tresor key export --paper > paper-key.txt",
            "tresor key export --json",
        ],
    ),
    (
        "key signers",
        &[
            "tresor key signers",
            "tresor key signers --accept 1a2b3c4d5e6f7a8b --yes",
        ],
    ),
    (
        "key import",
        &[
            "tresor key import --file paper-key.txt",
            "tresor key import --new-password-file new.pw < paper-key.txt",
        ],
    ),
    (
        "prune",
        &[
            "tresor prune --dry-run",
            "tresor prune --max-unused 10% --max-repack-size 2G",
            "tresor prune --inactive-host old-laptop",
        ],
    ),
    (
        "repair",
        &[
            "tresor repair index --read-data",
            "tresor repair snapshots --forget",
        ],
    ),
    (
        "repair index",
        &[
            "tresor repair index --dry-run",
            "tresor repair index --read-data",
        ],
    ),
    (
        "repair snapshots",
        &[
            "tresor repair snapshots --dry-run",
            "tresor repair snapshots --read-data --forget",
        ],
    ),
    (
        "s3-policy",
        &[
            "tresor -r s3://my-bucket/web1 s3-policy --append-only",
            "tresor s3-policy --bucket my-bucket --prefix web1 --admin",
        ],
    ),
    (
        "serve",
        &[
            "tresor serve --listen [::]:8443 --config server.toml --tls-cert cert.pem --tls-key key.pem",
            "tresor serve --stdio --repo /srv/backup --role append",
        ],
    ),
    (
        "generate",
        &[
            "tresor generate --bash-completion /etc/bash_completion.d/tresor",
            "tresor generate --zsh-completion _tresor --fish-completion tresor.fish",
            "tresor generate --man /usr/local/share/man/man1",
        ],
    ),
    (
        "dump",
        &[
            "tresor dump latest:/etc/hosts > hosts",
            "tresor dump 3173c619:/home/me --target me.tar",
            "tresor dump latest:/home/me/Documents --archive zip --target docs.zip",
        ],
    ),
    (
        "serve hash-token",
        &[
            "tresor serve hash-token web1 --repository main --role append",
            "tresor serve hash-token web1 --stdin < token.txt",
        ],
    ),
    (
        "find",
        &[
            "tresor find '*.conf' --host web1",
            "tresor find -i 'photos/*.jpg' --newest '2024-06-30' --json",
            "tresor find --blob 1a2b3c4d --snapshot latest",
        ],
    ),
    (
        "stats",
        &[
            "tresor stats",
            "tresor stats latest --mode raw-data --json",
            "tresor stats --host web1 --mode files-by-contents",
        ],
    ),
    (
        "spool",
        &[
            "tresor spool status --spool ~/.local/share/tresor-spool",
            "tresor spool flush --spool ~/.local/share/tresor-spool",
        ],
    ),
    (
        "spool flush",
        &[
            "tresor -r s3:https://s3.example.com/backups spool flush --spool ~/.local/share/tresor-spool",
            "tresor -r /srv/backup spool flush --spool /var/spool/tresor --json",
        ],
    ),
    (
        "spool status",
        &[
            "tresor spool status --spool ~/.local/share/tresor-spool",
            "tresor spool status --spool /var/spool/tresor --json",
        ],
    ),
    (
        "copy",
        &[
            "tresor -r /srv/backup copy --from-repo s3://old-bucket/web1 --from-password-file old.pw",
            "tresor -r s3://offsite/web1 copy --from-repo /srv/backup --host web1 latest",
            "tresor -r /mnt/usb copy --from-repo /srv/backup --tag daily --json",
        ],
    ),
    (
        "tag",
        &[
            "tresor tag latest --add keep",
            "tresor tag --host web1 --tag daily --remove daily --add weekly",
            "tresor tag 3173c619 --set release,v2 --json",
        ],
    ),
    (
        "run",
        &[
            "tresor run laptop",
            "tresor --config /etc/tresor/fleet.toml run web1 --json",
        ],
    ),
    (
        "profile",
        &["tresor profile list", "tresor profile show laptop --json"],
    ),
    (
        "profile list",
        &[
            "tresor profile list",
            "tresor --config ./tresor.toml profile list",
        ],
    ),
    (
        "profile show",
        &[
            "tresor profile show laptop",
            "tresor -r /srv/other profile show laptop --json",
        ],
    ),
    (
        "rewrite",
        &[
            "tresor rewrite latest --exclude '*.tmp' --dry-run",
            "tresor rewrite --host web1 --exclude-file secrets.txt --forget",
            "tresor rewrite 3173c619 --iexclude '*.ISO' --forget",
        ],
    ),
    (
        "profile schema",
        &[
            "tresor profile schema > tresor.schema.json",
            "tresor profile schema | jq '.[\"$defs\"].Profile.properties | keys'",
        ],
    ),
    (
        "schedule",
        &[
            "tresor schedule install laptop --user --at daily",
            "tresor schedule list --user",
        ],
    ),
    (
        "schedule install",
        &[
            "tresor schedule install web1 --at hourly --randomized-delay 10min",
            "tresor schedule install laptop --user --at weekly --dry-run",
            "tresor schedule install web1 --cron --at daily",
        ],
    ),
    (
        "schedule list",
        &["tresor schedule list", "tresor schedule list --user --json"],
    ),
    (
        "schedule remove",
        &[
            "tresor schedule remove web1",
            "tresor schedule remove laptop --user",
        ],
    ),
    (
        "drill",
        &[
            "tresor drill",
            "tresor drill --host web1 --sample-bytes 1g --compare-source",
            "tresor drill --history --json",
        ],
    ),
    (
        "protect",
        &[
            "tresor protect latest --for 1y",
            "tresor protect 3173c619 4bd9e0f2 --until 2027-06-30 --dry-run",
            "tresor protect --list --json",
        ],
    ),
    (
        "cost",
        &[
            "tresor cost",
            "tresor cost --class-data DEEP_ARCHIVE --class-metadata STANDARD --json",
            "tresor cost --prices wasabi.toml",
        ],
    ),
];

/// What `tresor --version` prints after the name: the crate's version, the commit it was built
/// from (`unknown` outside a git checkout) and the repository format version it writes.
pub fn version() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        format!(
            "{} (commit {}, format {})",
            env!("CARGO_PKG_VERSION"),
            env!("TRESOR_COMMIT"),
            tresor_format::REPO_VERSION
        )
    })
}

/// The clap command tresor parses with: the derived one, every command's help ending with its
/// examples, the main help with the environment and where the exit codes are.
pub fn command() -> clap::Command {
    let mut cmd = bare_command();
    let header = *cmd.get_styles().get_header();
    let heading = |title: &str| format!("{}{title}:{}", header.render(), header.render_reset());
    for (path, lines) in EXAMPLES {
        let mut text = heading("Examples");
        for line in *lines {
            let _ = write!(text, "\n  {line}");
        }
        if path.is_empty() {
            text = format!("{text}\n\n{}", footer(&heading));
        }
        cmd = with_subcommand(cmd, path, |c| c.after_help(text));
    }
    cmd
}

/// [`command`] without what only help shows (the examples and the main help's footer).
pub(crate) fn bare_command() -> clap::Command {
    let cmd = Cli::command().version(version());
    // A profile's `sources` stand in for backup's PATHs: checked after the profile is applied
    // ([`require_backup_source`]).
    cmd.mut_subcommand("backup", |c| {
        c.mut_arg("paths", |a| {
            clap::Arg::new("paths")
                .help(a.get_help().cloned().unwrap_or_default())
                .value_name("PATHS")
                .num_args(1..)
                .action(clap::ArgAction::Append)
                .value_parser(clap::value_parser!(std::path::PathBuf))
        })
    })
}

/// `cmd` with `f` applied to its subcommand at `path` (space-separated words; `""`: itself).
fn with_subcommand(
    cmd: clap::Command,
    path: &str,
    f: impl FnOnce(clap::Command) -> clap::Command,
) -> clap::Command {
    match path.split_once(' ') {
        _ if path.is_empty() => f(cmd),
        Some((first, rest)) => cmd.mut_subcommand(first, |c| with_subcommand(c, rest, f)),
        None => cmd.mut_subcommand(path, f),
    }
}

/// The main help's footer: the environment variables, then where the exit codes are.
fn footer(heading: &dyn Fn(&str) -> String) -> String {
    let width = ENVIRONMENT.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut text = heading("Environment");
    for (name, what) in ENVIRONMENT {
        let _ = write!(text, "\n  {name:width$}  {what}");
    }
    let _ = write!(
        text,
        "\n  {ENVIRONMENT_NOTE}\n\n{}\n  tresor help exit-codes",
        heading("Exit codes")
    );
    text
}

/// `backup` without any source once a profile (`-P`) had its say: the usage error clap gives
/// for a missing argument (exit 2). (clap itself cannot require PATHs: a profile's `sources`
/// stand in for them.)
pub fn require_backup_source(cli: &Cli) {
    let crate::args::Command::Backup(a) = &cli.command else {
        return;
    };
    let none = a.paths.is_empty()
        && !a.stdin
        && a.files_from.is_empty()
        && a.files_from_verbatim.is_empty()
        && a.files_from_raw.is_empty();
    if none {
        let mut cmd = command();
        cmd.build();
        let backup = cmd.find_subcommand_mut("backup").expect("backup");
        backup
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "the following required arguments were not provided:\n  <PATHS>... \
                 (or --stdin, --files-from…, or a profile's sources with -P NAME)",
            )
            .exit();
    }
}

/// The text of the help topic the arguments (without the program name) ask for:
/// `help exit-codes`. `None` for any other command line.
pub fn topic(args: &[std::ffi::OsString]) -> Option<String> {
    match args {
        [help, topic] if help == "help" && topic == "exit-codes" => Some(exit_codes()),
        _ => None,
    }
}

/// `tresor help exit-codes`: every code of [`crate::exit::TABLE`] with its meaning.
fn exit_codes() -> String {
    let mut text = String::from("Exit codes of tresor:\n");
    for (code, meaning) in crate::exit::TABLE {
        // Lines of at most 96 columns; the meaning's lines start in column 8.
        let mut line = format!("  {code:>3} ");
        for word in meaning.split(' ') {
            if line.len() + 1 + word.len() > 96 {
                text.push_str(&line);
                text.push('\n');
                line = " ".repeat(6);
            }
            line.push(' ');
            line.push_str(word);
        }
        text.push_str(&line);
        text.push('\n');
    }
    text.push_str("An error that ends a command is one line on standard error, \"tresor: …\".\n");
    text
}

/// The words of an example's tresor command line: from `tresor` to the first `|`, `<` or `>`,
/// single quotes removed, a leading `VAR=value` dropped (for the tests that parse the examples).
#[cfg(test)]
pub(crate) fn example_words(line: &str) -> Vec<String> {
    line.split_whitespace()
        .skip_while(|w| *w != "tresor")
        .take_while(|w| !matches!(*w, "|" | "<" | ">"))
        .map(|w| w.replace('\'', ""))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_parses_as_the_command_it_illustrates() {
        for (path, lines) in EXAMPLES {
            assert!((2..=3).contains(&lines.len()), "{path}: {lines:?}");
            for line in *lines {
                let w = example_words(line);
                assert_eq!(w.first().map(String::as_str), Some("tresor"), "{line}");
                let rest: Vec<std::ffi::OsString> = w[1..].iter().map(Into::into).collect();
                if topic(&rest).is_some() {
                    continue;
                }
                let m = command()
                    .try_get_matches_from(&w)
                    .unwrap_or_else(|e| panic!("{line}: {e}"));
                if path.is_empty() {
                    continue;
                }
                let mut sub = &m;
                for word in path.split(' ') {
                    let (name, next) = sub.subcommand().unwrap_or_else(|| panic!("{line}"));
                    assert_eq!(name, word, "{line} under {path}");
                    sub = next;
                }
            }
        }
    }

    #[test]
    fn every_command_has_examples() {
        fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
            out.push(path.to_string());
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                let p = format!("{path} {}", sub.get_name());
                walk(sub, p.trim_start(), out);
            }
        }
        let mut paths = Vec::new();
        walk(&Cli::command(), "", &mut paths);
        let listed: Vec<&str> = EXAMPLES.iter().map(|(p, _)| *p).collect();
        let missing: Vec<&String> = paths
            .iter()
            .filter(|p| !listed.contains(&p.as_str()))
            .collect();
        assert!(missing.is_empty(), "commands without examples: {missing:?}");
        assert_eq!(
            paths.len(),
            listed.len(),
            "examples of no command: {listed:?}"
        );
    }

    #[test]
    fn the_environment_list_fits_80_columns() {
        let width = ENVIRONMENT.iter().map(|(n, _)| n.len()).max().unwrap();
        for (name, what) in ENVIRONMENT {
            assert!(2 + width + 2 + what.chars().count() <= 80, "{name}: {what}");
        }
        assert!(2 + ENVIRONMENT_NOTE.len() <= 80);
    }

    #[test]
    fn the_exit_codes_topic_lists_the_table() {
        let args = |a: &[&str]| {
            a.iter()
                .map(Into::into)
                .collect::<Vec<std::ffi::OsString>>()
        };
        assert_eq!(topic(&args(&["help", "backup"])), None);
        assert_eq!(topic(&args(&["help", "exit-codes", "x"])), None);
        let text = topic(&args(&["help", "exit-codes"])).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.iter().all(|l| l.chars().count() <= 96), "{text}");
        let codes: Vec<&str> = lines
            .iter()
            .filter(|l| !l.starts_with("      "))
            .copied()
            .collect();
        assert_eq!(codes.len(), crate::exit::TABLE.len() + 2);
        assert_eq!(codes[1], "    0  success");
        assert_eq!(
            codes[3],
            "    2  usage error: unknown flag, missing argument"
        );
        let broken_pipe = text.split_once("  141 ").unwrap().1;
        assert_eq!(
            broken_pipe.replace("\n      ", ""),
            " standard output was closed by its reader (`tresor snapshots | head -1`)\n\
             An error that ends a command is one line on standard error, \"tresor: …\".\n"
        );
    }
}
