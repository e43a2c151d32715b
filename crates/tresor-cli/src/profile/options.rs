//! The options of the commands a profile runs (`backup`, `forget`, `prune`, `check`, `drill`):
//! which key stands for which option ([`KEYS`]), which options no profile sets
//! ([`NOT_IN_PROFILES`], with the reason), and laying the keys added for issue 16 under the
//! command line (the older ones are laid in [`super::merge`]). A test walks clap's arguments of
//! each command: every option is keyed or excluded.

use super::merge::fill;
use super::show::{Setting, file_setting};
use super::{Chosen, Profile};
use crate::args::{BackupArgs, CheckArgs, DrillArgs, ForgetArgs, PruneArgs};
use clap::ArgMatches;

/// Per command, its options' profile keys as (key, clap argument id).
#[cfg(test)]
pub const KEYS: &[(&str, &[(&str, &str)])] = &[
    (
        "backup",
        &[
            ("sources", "paths"),
            ("excludes", "excludes"),
            ("exclude_files", "exclude_files"),
            ("exclude_if_present", "exclude_if_present"),
            ("exclude_caches", "exclude_caches"),
            ("one_file_system", "one_file_system"),
            ("tags", "tags"),
            ("host", "host"),
            ("iexcludes", "iexcludes"),
            ("iexclude_files", "iexclude_files"),
            ("exclude_larger_than", "exclude_larger_than"),
            ("metrics_textfile", "metrics_textfile"),
            ("pushgateway", "pushgateway"),
            ("spool", "spool"),
            ("spool_always", "spool_always"),
            ("extend_locks", "extend_locks"),
            ("extend_locks_max", "extend_locks_max"),
        ],
    ),
    (
        "forget",
        &[
            ("keep_last", "keep_last"),
            ("keep_hourly", "keep_hourly"),
            ("keep_daily", "keep_daily"),
            ("keep_weekly", "keep_weekly"),
            ("keep_monthly", "keep_monthly"),
            ("keep_yearly", "keep_yearly"),
            ("keep_within", "keep_within"),
            ("keep_within_hourly", "keep_within_hourly"),
            ("keep_within_daily", "keep_within_daily"),
            ("keep_within_weekly", "keep_within_weekly"),
            ("keep_within_monthly", "keep_within_monthly"),
            ("keep_within_yearly", "keep_within_yearly"),
            ("keep_tags", "keep_tags"),
            ("group_by", "group_by"),
            ("host", "hosts"),
            ("forget_paths", "paths"),
            ("forget_tags", "tags"),
            ("forget_prune", "prune"),
        ],
    ),
    (
        "prune",
        &[
            ("prune_max_unused", "max_unused"),
            ("prune_max_repack_size", "max_repack_size"),
            ("prune_inactive_hosts", "inactive_hosts"),
            ("prune_cold_early_delete", "cold_early_delete"),
        ],
    ),
    (
        "check",
        &[
            ("check_read_data", "read_data"),
            ("check_read_data_subset", "read_data_subset"),
            ("metrics_textfile", "metrics_textfile"),
            ("pushgateway", "pushgateway"),
        ],
    ),
    (
        "drill",
        &[
            ("drill_sample", "sample"),
            ("drill_sample_bytes", "sample_bytes"),
            ("drill_share", "share"),
            ("drill_target", "target"),
            ("drill_compare_source", "compare_source"),
            ("host", "hosts"),
            ("drill_paths", "paths"),
            ("drill_tags", "tags"),
            ("metrics_textfile", "metrics_textfile"),
            ("pushgateway", "pushgateway"),
        ],
    ),
];

/// Per command, the options no profile sets, as (clap argument id, why): what names one
/// invocation's objects or changes one invocation's nature (docs/cli.md, "Profiles").
#[cfg(test)]
pub const NOT_IN_PROFILES: &[(&str, &[(&str, &str)])] = &[
    (
        "backup",
        &[
            ("time", "one snapshot's time"),
            ("parent", "one snapshot's parent"),
            ("force", "one run that rereads every file"),
            ("stdin", "one run's source: standard input"),
            ("stdin_filename", "goes with --stdin"),
            ("dry_run", "one trial run"),
            (
                "files_from",
                "one run's source list (a profile has `sources`)",
            ),
            ("files_from_verbatim", "one run's source list"),
            ("files_from_raw", "one run's source list"),
        ],
    ),
    (
        "forget",
        &[
            ("snapshots", "names snapshots"),
            ("dry_run", "one trial run"),
        ],
    ),
    ("prune", &[("dry_run", "one trial run")]),
    (
        "check",
        &[
            (
                "thaw_tier",
                "one run's thaw of cold packs, as for restore (no profile keys)",
            ),
            ("thaw_days", "goes with --thaw-tier"),
            ("thaw_wait", "goes with --thaw-tier"),
        ],
    ),
    (
        "drill",
        &[
            ("snapshots", "names snapshots"),
            ("history", "a listing, not a drill"),
            ("seed", "hidden: the tests' random seed"),
            (
                "thaw_tier",
                "one run's thaw of cold packs, as for restore (no profile keys)",
            ),
            ("thaw_days", "goes with --thaw-tier"),
            ("thaw_wait", "goes with --thaw-tier"),
        ],
    ),
];

/// The value as it is.
fn same<T>(v: T) -> T {
    v
}

/// `backup`'s keys beyond [`super::merge`]'s.
pub fn backup(a: &mut BackupArgs, m: &ArgMatches, p: &Profile) {
    fill(
        m,
        "exclude_if_present",
        &mut a.exclude_if_present,
        p.exclude_if_present.as_ref(),
        same,
    );
    fill(
        m,
        "iexclude_files",
        &mut a.iexclude_files,
        p.iexclude_files.as_ref(),
        same,
    );
    fill(m, "spool", &mut a.spool, p.spool.as_ref(), Some);
    fill(
        m,
        "spool_always",
        &mut a.spool_always,
        p.spool_always.as_ref(),
        same,
    );
    fill(
        m,
        "extend_locks",
        &mut a.extend_locks,
        p.extend_locks.as_ref(),
        same,
    );
    fill(
        m,
        "extend_locks_max",
        &mut a.extend_locks_max,
        p.extend_locks_max.as_ref(),
        same,
    );
}

/// `forget`'s keys beyond [`super::merge`]'s.
pub fn forget(a: &mut ForgetArgs, m: &ArgMatches, p: &Profile) {
    let within = [
        (
            "keep_within_hourly",
            &mut a.keep_within_hourly,
            &p.keep_within_hourly,
        ),
        (
            "keep_within_daily",
            &mut a.keep_within_daily,
            &p.keep_within_daily,
        ),
        (
            "keep_within_weekly",
            &mut a.keep_within_weekly,
            &p.keep_within_weekly,
        ),
        (
            "keep_within_monthly",
            &mut a.keep_within_monthly,
            &p.keep_within_monthly,
        ),
        (
            "keep_within_yearly",
            &mut a.keep_within_yearly,
            &p.keep_within_yearly,
        ),
    ];
    for (id, slot, value) in within {
        fill(m, id, slot, value.as_ref(), Some);
    }
    fill(m, "group_by", &mut a.group_by, p.group_by.as_ref(), same);
    fill(
        m,
        "paths",
        &mut a.filter.paths,
        p.forget_paths.as_ref(),
        same,
    );
    fill(m, "tags", &mut a.filter.tags, p.forget_tags.as_ref(), same);
    fill(m, "prune", &mut a.prune, p.forget_prune.as_ref(), same);
}

/// `prune`'s keys.
pub fn prune(a: &mut PruneArgs, m: &ArgMatches, p: &Profile) {
    fill(
        m,
        "max_unused",
        &mut a.max_unused,
        p.prune_max_unused.as_ref(),
        |v| v,
    );
    let repack = p.prune_max_repack_size.as_ref();
    fill(m, "max_repack_size", &mut a.max_repack_size, repack, Some);
    let hosts = p.prune_inactive_hosts.as_ref();
    fill(m, "inactive_hosts", &mut a.inactive_hosts, hosts, |v| v);
    let early = p.prune_cold_early_delete.as_ref();
    fill(
        m,
        "cold_early_delete",
        &mut a.cold_early_delete,
        early,
        |v| v,
    );
}

/// `check`'s keys: a subset the user gives beats the profile's `check_read_data`, and
/// `--read-data` the profile's subset.
pub fn check(a: &mut CheckArgs, m: &ArgMatches, p: &Profile) {
    if a.read_data_subset.is_none() {
        fill(
            m,
            "read_data",
            &mut a.read_data,
            p.check_read_data.as_ref(),
            |v| v,
        );
    }
    if !a.read_data {
        let subset = p.check_read_data_subset.as_ref();
        fill(m, "read_data_subset", &mut a.read_data_subset, subset, Some);
    }
}

/// `drill`'s keys: the sample size (`drill_sample`, `drill_sample_bytes`, `drill_share`) only
/// when the user gave none of the three; the target, the source comparison, the filter.
pub fn drill(a: &mut DrillArgs, m: &ArgMatches, p: &Profile) {
    if a.history {
        return;
    }
    if a.sample.is_none() && a.sample_bytes.is_none() && a.share.is_none() {
        fill(m, "sample", &mut a.sample, p.drill_sample.as_ref(), Some);
        let bytes = p.drill_sample_bytes.as_ref();
        fill(m, "sample_bytes", &mut a.sample_bytes, bytes, Some);
        fill(m, "share", &mut a.share, p.drill_share.as_ref(), Some);
    }
    fill(m, "target", &mut a.target, p.drill_target.as_ref(), Some);
    let compare = p.drill_compare_source.as_ref();
    fill(m, "compare_source", &mut a.compare_source, compare, |v| v);
    fill(m, "hosts", &mut a.filter.hosts, p.host.as_ref(), |h| {
        vec![h]
    });
    fill(
        m,
        "paths",
        &mut a.filter.paths,
        p.drill_paths.as_ref(),
        |v| v,
    );
    fill(m, "tags", &mut a.filter.tags, p.drill_tags.as_ref(), |v| v);
}

/// `profile show`'s lines of the keys added here (the file's values, as for the other
/// command keys).
pub fn shown(c: &Chosen) -> Vec<Setting> {
    let p = &c.profile;
    vec![
        file_setting(c, "exclude_if_present", p.exclude_if_present.as_ref()),
        file_setting(c, "iexclude_files", p.iexclude_files.as_ref()),
        file_setting(c, "spool", p.spool.as_ref()),
        file_setting(c, "spool_always", p.spool_always.as_ref()),
        file_setting(c, "extend_locks", p.extend_locks.as_ref()),
        file_setting(c, "extend_locks_max", p.extend_locks_max.as_ref()),
        file_setting(c, "keep_within_hourly", p.keep_within_hourly.as_ref()),
        file_setting(c, "keep_within_daily", p.keep_within_daily.as_ref()),
        file_setting(c, "keep_within_weekly", p.keep_within_weekly.as_ref()),
        file_setting(c, "keep_within_monthly", p.keep_within_monthly.as_ref()),
        file_setting(c, "keep_within_yearly", p.keep_within_yearly.as_ref()),
        file_setting(c, "group_by", p.group_by.as_ref()),
        file_setting(c, "forget_paths", p.forget_paths.as_ref()),
        file_setting(c, "forget_tags", p.forget_tags.as_ref()),
        file_setting(c, "forget_prune", p.forget_prune.as_ref()),
        file_setting(c, "prune_max_unused", p.prune_max_unused.as_ref()),
        file_setting(c, "prune_max_repack_size", p.prune_max_repack_size.as_ref()),
        file_setting(c, "prune_inactive_hosts", p.prune_inactive_hosts.as_ref()),
        file_setting(
            c,
            "prune_cold_early_delete",
            p.prune_cold_early_delete.as_ref(),
        ),
        file_setting(c, "check_read_data", p.check_read_data.as_ref()),
        file_setting(c, "drill_sample_bytes", p.drill_sample_bytes.as_ref()),
        file_setting(c, "drill_share", p.drill_share.as_ref()),
        file_setting(c, "drill_target", p.drill_target.as_ref()),
        file_setting(c, "drill_compare_source", p.drill_compare_source.as_ref()),
        file_setting(c, "drill_paths", p.drill_paths.as_ref()),
        file_setting(c, "drill_tags", p.drill_tags.as_ref()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every option of `name` (clap's arguments but the global ones and help) is keyed in
    /// [`KEYS`] or listed in [`NOT_IN_PROFILES`], not both; every key is one the loader accepts
    /// and `profile show` lists.
    fn every_option_has_a_key(name: &str) {
        let cmd = crate::help::command();
        let sub = cmd.find_subcommand(name).expect("the command");
        let table = |t: &[(&str, &'static [(&'static str, &'static str)])]| {
            t.iter().find(|e| e.0 == name).map(|e| e.1).expect("listed")
        };
        let (keys, excluded) = (table(KEYS), table(NOT_IN_PROFILES));
        let mut ids = Vec::new();
        for arg in sub.get_arguments().filter(|a| !a.is_global_set()) {
            let id = arg.get_id().as_str();
            if id == "help" {
                continue;
            }
            ids.push(id);
            let keyed = keys.iter().any(|k| k.1 == id);
            let out = excluded.iter().any(|k| k.0 == id);
            assert!(
                keyed ^ out,
                "{name} option {id}: add a profile key to KEYS (or list it in NOT_IN_PROFILES)"
            );
        }
        for (key, id) in keys {
            assert!(ids.contains(id), "{name}: {key} stands for no option {id}");
            let text = format!("[profiles.p]\n{key} = 1\n");
            if let Err(e) = toml::from_str::<super::super::Config>(&text) {
                assert!(!e.message().contains("unknown field"), "{key}: {e}");
            }
        }
    }

    /// `profile show` lists every key of [`KEYS`] once.
    #[test]
    fn profile_show_lists_every_command_key() {
        use clap::FromArgMatches;
        let m = crate::help::command().get_matches_from(["tresor", "profile", "show", "p"]);
        let cli = crate::args::Cli::from_arg_matches(&m).expect("parsed");
        let chosen = Chosen {
            name: "p".into(),
            file: "t.toml".into(),
            text: String::new(),
            profile: Profile::default(),
        };
        let shown = super::super::show::shown(&cli.global, &m, &chosen);
        for (cmd, keys) in KEYS {
            for (key, _) in *keys {
                let n = shown.settings.iter().filter(|s| s.key == *key).count();
                assert_eq!(n, 1, "{cmd}: {key} in profile show");
            }
        }
    }

    #[test]
    fn every_backup_option_has_a_profile_key() {
        every_option_has_a_key("backup");
    }

    #[test]
    fn every_forget_option_has_a_profile_key() {
        every_option_has_a_key("forget");
    }

    #[test]
    fn every_prune_option_has_a_profile_key() {
        every_option_has_a_key("prune");
    }

    #[test]
    fn every_check_option_has_a_profile_key() {
        every_option_has_a_key("check");
    }

    #[test]
    fn every_drill_option_has_a_profile_key() {
        every_option_has_a_key("drill");
    }
}
