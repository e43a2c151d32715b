//! Laying a profile under the command line: a setting the user gave (flag or environment
//! variable, as clap's [`ArgMatches::value_source`] tells) stays; any other takes the profile's
//! value; what neither gives keeps its built-in default.

use super::{Chosen, Profile, load};
use crate::args::{BackupArgs, Cli, Command, ForgetArgs, Global};
use anyhow::Result;
use clap::ArgMatches;
use clap::parser::ValueSource;
use std::path::PathBuf;
use toml::Spanned;

/// Where a setting the user gave comes from, as `profile show` names it (a profile's own
/// setting is `FILE:LINE`, [`Chosen::at`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The command line.
    Flag,
    /// This environment variable.
    Env(&'static str),
    /// Nobody: the built-in default.
    Default,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag => f.write_str("flag"),
            Origin::Env(name) => write!(f, "env {name}"),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// Where the value of argument `id` in `m` came from, if the user gave it.
pub fn given(m: &ArgMatches, id: &str, env: Option<&'static str>) -> Option<Origin> {
    match m.value_source(id) {
        Some(ValueSource::CommandLine) => Some(Origin::Flag),
        Some(ValueSource::EnvVariable) => Some(Origin::Env(env.unwrap_or("?"))),
        _ => None,
    }
}

/// The name of the profile the command line asks for: `run NAME` or `profile show NAME`, else
/// `-P NAME`.
pub fn wanted(cli: &Cli) -> Option<&str> {
    match &cli.command {
        Command::Run(a) => Some(&a.name),
        Command::Profile(crate::args::ProfileCommand::Show { name }) => Some(name),
        _ => cli.global.profile.as_deref(),
    }
}

/// The global options a profile sets, as (key, clap argument id, environment variable); the
/// password sources and `repository`/`cache_dir` are listed too. A test walks clap's global
/// arguments: each is here or in [`NOT_IN_PROFILES`].
pub const GLOBAL_KEYS: &[(&str, &str, Option<&str>)] = &[
    ("repository", "repo", Some("TRESOR_REPOSITORY")),
    (
        "password_file",
        "password_file",
        Some("TRESOR_PASSWORD_FILE"),
    ),
    (
        "password_command",
        "password_command",
        Some("TRESOR_PASSWORD_COMMAND"),
    ),
    (
        "password_credential",
        "password_credential",
        Some("TRESOR_PASSWORD_CREDENTIAL"),
    ),
    ("insecure_password_file", "insecure_password_file", None),
    ("cache_dir", "cache_dir", Some("TRESOR_CACHE_DIR")),
    ("key_file", "key_file", Some("TRESOR_KEY_FILE")),
    ("no_cache", "no_cache", None),
    ("insecure_http", "insecure_http", None),
    ("retry_for", "retry_for", Some("TRESOR_RETRY_FOR")),
    ("limit_upload", "limit_upload", Some("TRESOR_LIMIT_UPLOAD")),
    (
        "limit_download",
        "limit_download",
        Some("TRESOR_LIMIT_DOWNLOAD"),
    ),
    (
        "s3_storage_class_data",
        "storage_class_data",
        Some("TRESOR_S3_STORAGE_CLASS_DATA"),
    ),
    (
        "s3_storage_class_metadata",
        "storage_class_metadata",
        Some("TRESOR_S3_STORAGE_CLASS_METADATA"),
    ),
    ("s3_sse", "sse", Some("TRESOR_S3_SSE")),
    (
        "s3_sse_kms_key_id",
        "sse_kms_key_id",
        Some("TRESOR_S3_SSE_KMS_KEY_ID"),
    ),
    (
        "s3_connections",
        "connections",
        Some("TRESOR_S3_CONNECTIONS"),
    ),
    ("tls_ca", "tls_ca", Some("TRESOR_TLS_CA")),
    (
        "server_token_file",
        "server_token_file",
        Some("TRESOR_SERVER_TOKEN_FILE"),
    ),
    (
        "server_command",
        "server_command",
        Some("TRESOR_SERVER_COMMAND"),
    ),
];

/// Global options no profile sets (clap argument id, why): the list the test of
/// [`GLOBAL_KEYS`] allows (docs/operations.md, "The configuration file").
#[cfg(test)]
pub const NOT_IN_PROFILES: &[(&str, &str)] = &[
    ("json", "the output format is the caller's, not the job's"),
    ("quiet", "the output is the caller's, not the job's"),
    ("verbose", "the output is the caller's, not the job's"),
    ("profile", "names the profile itself"),
    ("config", "names the configuration file itself"),
    (
        "summary_file",
        "hidden: `tresor run` sets it for each step (TRESOR_SUMMARY_FILE of the hooks)",
    ),
];

/// Apply the profile the command line names (if any) to `cli`, whose matches are `m`.
///
/// # Errors
/// The configuration cannot be read or has no such profile.
pub fn apply(cli: &mut Cli, m: &ArgMatches) -> Result<Option<Chosen>> {
    let Some(name) = wanted(cli).map(str::to_string) else {
        return Ok(None);
    };
    let chosen = load::choose(cli.global.config.as_deref(), &name)?;
    global(&mut cli.global, m, &chosen.profile);
    options(&mut cli.global, m, &chosen.profile);
    remote_options(&mut cli.global, m, &chosen.profile);
    if !(1..=64).contains(&cli.global.s3.connections) {
        let at = chosen.profile.s3_connections.as_ref().map(|v| chosen.at(v));
        anyhow::bail!(
            "{}: s3_connections must be 1 to 64",
            at.unwrap_or_else(|| "s3_connections".into())
        );
    }
    command(&mut cli.command, m, &chosen.profile);
    metrics_of(&mut cli.command, m, &chosen);
    Ok(Some(chosen))
}

/// Fill `slot` from the profile's `value` (converted by `f`) unless argument `id` was given.
pub(super) fn fill<T, U: Clone>(
    m: &ArgMatches,
    id: &str,
    slot: &mut T,
    value: Option<&Spanned<U>>,
    f: impl FnOnce(U) -> T,
) {
    if let (None, Some(v)) = (given(m, id, None), value) {
        *slot = f(v.get_ref().clone());
    }
}

/// Whether the user gave a password source: a flag, its variable, or `TRESOR_PASSWORD`.
pub fn password_given(m: &ArgMatches) -> bool {
    given(m, "password_file", None).is_some()
        || given(m, "password_command", None).is_some()
        || given(m, "password_credential", None).is_some()
        || std::env::var_os("TRESOR_PASSWORD").is_some()
}

/// The global options: repository, password source, cache directory.
fn global(g: &mut Global, m: &ArgMatches, p: &Profile) {
    fill(m, "repo", &mut g.repo, p.repository.as_ref(), Some);
    fill(m, "cache_dir", &mut g.cache_dir, p.cache_dir.as_ref(), Some);
    if !password_given(m) {
        fill(m, "key_file", &mut g.key_file, p.key_file.as_ref(), Some);
    }
    if !password_given(m) {
        g.password_file = p.password_file.as_ref().map(|v| v.get_ref().clone());
        g.password_command = p.password_command.as_ref().map(|v| v.get_ref().clone());
        g.password_credential = p.password_credential.as_ref().map(|v| v.get_ref().clone());
        g.profile_password = p.password.as_ref().map(|v| v.get_ref().clone());
    }
}

/// The other global options: switches, limits, S3 and server options.
fn options(g: &mut Global, m: &ArgMatches, p: &Profile) {
    let id = |v: bool| v;
    fill(
        m,
        "insecure_password_file",
        &mut g.insecure_password_file,
        p.insecure_password_file.as_ref(),
        id,
    );
    fill(m, "no_cache", &mut g.no_cache, p.no_cache.as_ref(), id);
    fill(
        m,
        "insecure_http",
        &mut g.insecure_http,
        p.insecure_http.as_ref(),
        id,
    );
    fill(
        m,
        "retry_for",
        &mut g.retry_for,
        p.retry_for.as_ref(),
        |v| v,
    );
    fill(
        m,
        "limit_upload",
        &mut g.limit_upload,
        p.limit_upload.as_ref(),
        Some,
    );
    fill(
        m,
        "limit_download",
        &mut g.limit_download,
        p.limit_download.as_ref(),
        Some,
    );
}

/// The S3 and server options.
fn remote_options(g: &mut Global, m: &ArgMatches, p: &Profile) {
    let s3 = &mut g.s3;
    fill(
        m,
        "storage_class_data",
        &mut s3.storage_class_data,
        p.s3_storage_class_data.as_ref(),
        Some,
    );
    fill(
        m,
        "storage_class_metadata",
        &mut s3.storage_class_metadata,
        p.s3_storage_class_metadata.as_ref(),
        Some,
    );
    fill(m, "sse", &mut s3.sse, p.s3_sse.as_ref(), Some);
    fill(
        m,
        "sse_kms_key_id",
        &mut s3.sse_kms_key_id,
        p.s3_sse_kms_key_id.as_ref(),
        Some,
    );
    fill(
        m,
        "connections",
        &mut s3.connections,
        p.s3_connections.as_ref(),
        |v| v,
    );
    let sv = &mut g.server;
    fill(m, "tls_ca", &mut sv.tls_ca, p.tls_ca.as_ref(), Some);
    fill(
        m,
        "server_token_file",
        &mut sv.server_token_file,
        p.server_token_file.as_ref(),
        Some,
    );
    fill(
        m,
        "server_command",
        &mut sv.server_command,
        p.server_command.as_ref(),
        Some,
    );
}

/// The options of the command itself: `backup`, `forget` here, theirs added for issue 16 and
/// those of `prune`, `check`, `drill` in [`super::options`]; the others take only global ones.
pub fn command(c: &mut Command, m: &ArgMatches, p: &Profile) {
    match c {
        Command::Backup(a) => backup(a, m.subcommand_matches("backup").unwrap_or(m), p),
        Command::Forget(a) => forget(a, m.subcommand_matches("forget").unwrap_or(m), p),
        _ => {}
    }
    let sub = |name| m.subcommand_matches(name).unwrap_or(m);
    match c {
        Command::Backup(a) => super::options::backup(a, sub("backup"), p),
        Command::Forget(a) => super::options::forget(a, sub("forget"), p),
        Command::Prune(a) => super::options::prune(a, sub("prune"), p),
        Command::Check(a) => super::options::check(a, sub("check"), p),
        Command::Drill(a) => super::options::drill(a, sub("drill"), p),
        _ => {}
    }
}

/// `backup`: sources (when no PATH and no other source is given), excludes, tags, host.
fn backup(a: &mut BackupArgs, m: &ArgMatches, p: &Profile) {
    let no_source = a.paths.is_empty()
        && !a.stdin
        && a.files_from.is_empty()
        && a.files_from_verbatim.is_empty()
        && a.files_from_raw.is_empty();
    if no_source && let Some(s) = &p.sources {
        a.paths = s.get_ref().iter().map(|s| home(s)).collect();
    }
    fill(m, "excludes", &mut a.excludes, p.excludes.as_ref(), |v| v);
    fill(
        m,
        "exclude_files",
        &mut a.exclude_files,
        p.exclude_files.as_ref(),
        |v| v,
    );
    fill(
        m,
        "iexcludes",
        &mut a.iexcludes,
        p.iexcludes.as_ref(),
        |v| v,
    );
    fill(
        m,
        "exclude_caches",
        &mut a.exclude_caches,
        p.exclude_caches.as_ref(),
        |v| v,
    );
    fill(
        m,
        "one_file_system",
        &mut a.one_file_system,
        p.one_file_system.as_ref(),
        |v| v,
    );
    let larger = p.exclude_larger_than.as_ref();
    fill(
        m,
        "exclude_larger_than",
        &mut a.exclude_larger_than,
        larger,
        Some,
    );
    fill(m, "tags", &mut a.tags, p.tags.as_ref(), |v| v);
    fill(m, "host", &mut a.host, p.host.as_ref(), Some);
}

/// `forget`: the keep-* policy and the host filter.
fn forget(a: &mut ForgetArgs, m: &ArgMatches, p: &Profile) {
    let count = |c: super::Count| Some(c.to_string());
    fill(
        m,
        "keep_last",
        &mut a.keep_last,
        p.keep_last.as_ref(),
        count,
    );
    fill(
        m,
        "keep_hourly",
        &mut a.keep_hourly,
        p.keep_hourly.as_ref(),
        count,
    );
    fill(
        m,
        "keep_daily",
        &mut a.keep_daily,
        p.keep_daily.as_ref(),
        count,
    );
    fill(
        m,
        "keep_weekly",
        &mut a.keep_weekly,
        p.keep_weekly.as_ref(),
        count,
    );
    fill(
        m,
        "keep_monthly",
        &mut a.keep_monthly,
        p.keep_monthly.as_ref(),
        count,
    );
    fill(
        m,
        "keep_yearly",
        &mut a.keep_yearly,
        p.keep_yearly.as_ref(),
        count,
    );
    fill(
        m,
        "keep_within",
        &mut a.keep_within,
        p.keep_within.as_ref(),
        Some,
    );
    fill(
        m,
        "keep_tags",
        &mut a.keep_tags,
        p.keep_tags.as_ref(),
        |v| v,
    );
    fill(m, "hosts", &mut a.filter.hosts, p.host.as_ref(), |h| {
        vec![h]
    });
}

/// A source path: a leading `~/` is `$HOME/`.
fn home(s: &str) -> PathBuf {
    match (s.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(h)) => PathBuf::from(h).join(rest),
        _ => PathBuf::from(s),
    }
}

/// `backup`, `check`, `drill` and `snapshots --check-overdue`: where metrics go (`metrics_textfile`,
/// `pushgateway`), the `profile` label, and `max_age` and `notify` of the overdue check.
fn metrics_of(c: &mut Command, m: &ArgMatches, chosen: &Chosen) {
    let p = &chosen.profile;
    let (a, sub) = match c {
        Command::Backup(a) => (&mut a.metrics, "backup"),
        Command::Check(a) => (&mut a.metrics, "check"),
        Command::Drill(a) if !a.history => (&mut a.metrics, "drill"),
        Command::Snapshots(a) if a.check_overdue => {
            let sm = m.subcommand_matches("snapshots").unwrap_or(m);
            fill(sm, "max_age", &mut a.max_age, p.max_age.as_ref(), Some);
            a.notify = p.notify.as_ref().map(|n| n.get_ref().clone());
            (&mut a.metrics, "snapshots")
        }
        _ => return,
    };
    let sm = m.subcommand_matches(sub).unwrap_or(m);
    let file = p.metrics_textfile.as_ref();
    fill(sm, "metrics_textfile", &mut a.metrics_textfile, file, Some);
    fill(
        sm,
        "pushgateway",
        &mut a.pushgateway,
        p.pushgateway.as_ref(),
        Some,
    );
    a.profile = Some(chosen.name.clone());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every global argument of clap has a profile key (or is listed in [`NOT_IN_PROFILES`]),
    /// so a new flag cannot be forgotten; every key is one the loader accepts and `profile
    /// show` lists.
    #[test]
    fn every_global_option_has_a_profile_key() {
        let cmd = crate::help::command();
        for arg in cmd.get_arguments().filter(|a| a.is_global_set()) {
            let id = arg.get_id().as_str();
            let keyed = GLOBAL_KEYS.iter().any(|k| k.1 == id);
            let excluded = NOT_IN_PROFILES.iter().any(|k| k.0 == id);
            assert!(
                keyed ^ excluded,
                "global option {id}: add a profile key to GLOBAL_KEYS (or list it in NOT_IN_PROFILES)"
            );
            if let (true, Some(env)) = (keyed, arg.get_env()) {
                let k = GLOBAL_KEYS.iter().find(|k| k.1 == id).expect("keyed");
                assert_eq!(Some(env.to_str().unwrap_or("")), k.2, "{id}");
            }
        }
        for (key, _, _) in GLOBAL_KEYS {
            for value in ["\"x\"", "1", "true"] {
                let text = format!("[profiles.p]\n{key} = {value}\n");
                if let Err(e) = toml::from_str::<super::super::Config>(&text) {
                    assert!(!e.message().contains("unknown field"), "{key}: {e}");
                }
            }
        }
    }
}
