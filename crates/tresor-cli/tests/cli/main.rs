//! The integration tests of the `tresor` binary, one test binary: a module per subject. Run one
//! with `cargo test -p tresor --test cli mount::`. Repositories, the binary, trees and the
//! requirement gate come from `tresor_testkit`; tests that send signals, mount, start daemons on
//! ports picked in advance or race a deadline hold `tresor_testkit::serial::exclusive`.

mod backup_exactness;
mod backup_memory;
mod backup_options;
mod backup_pause;
mod backup_sources;
mod backup_verbose;
mod byte_paths;
mod check_subset;
mod cold;
mod copy;
mod deep;
mod diff;
mod drill;
mod dump;
mod exclude_vs_restic;
mod failures;
mod find_stats;
mod forget;
mod garbage_objects;
mod generate;
mod help;
mod hostile;
mod hostile_source;
mod hostile_trust;
mod interrupt;
mod json_contract;
mod keys;
mod limits;
mod ls_paths;
mod metrics;
mod mount;
mod named_errors;
mod names_in_output;
mod output_rules;
mod profiles;
mod progress;
mod progress_pty;
mod protect;
mod prune;
mod repair_heals;
mod restore_exact;
mod restore_flags;
mod restore_safety;
mod roundtrip;
mod run_hooks;
mod s3;
mod s3_faults;
mod s3_policy;
mod schedule;
mod serve;
mod serve_ssh;
mod snapshot_hosts;
mod spool;
mod tag_rewrite;
mod tags;
mod unlocked_key;
mod user_names;
// Appended (cost and request counting):
mod cost;
// Appended (profile keys of every command option):
mod profile_options;

/// The kit finds the binary cargo built for these tests.
#[test]
fn the_kit_runs_the_binary_cargo_built() {
    assert_eq!(
        tresor_testkit::cli::tresor_bin(),
        std::path::Path::new(env!("CARGO_BIN_EXE_tresor"))
    );
}
