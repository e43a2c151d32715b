//! `restore`: what was restored, and what the target could not reproduce.

use super::{Level, Outcome, Text};
use crate::output::{bytes, duration};
use anyhow::Result;
use serde::{Serialize, Serializer};
use std::path::Path;
use tresor_core::restorer::{ActionKind, DiffKind, RestoreResult};
use tresor_format::ObjectId;

/// Paths named one by one in the warning about dropped privileges; the rest are counted.
const NAMED_PATHS: usize = 10;

/// What a restore did, with the choices it was made with (JSON: `docs/cli.md`, "restore").
#[derive(Debug)]
pub struct Restored<'a> {
    /// The counts, problems and differences.
    pub result: &'a RestoreResult,
    /// The snapshot restored.
    pub snapshot: ObjectId,
    /// Whether a full key wrote the snapshot (else a put-only key).
    pub full_key_snapshot: bool,
    /// Whether privileged metadata was applied.
    pub privileged: bool,
    /// The `--overwrite` mode.
    pub overwrite: &'a str,
    /// The target directory.
    pub target: &'a Path,
    /// `--verify`.
    pub verify: bool,
    /// `--no-owner`.
    pub no_owner: bool,
    /// `--dry-run`: nothing was written; the actions say what would have been.
    pub dry_run: bool,
}

/// The JSON document.
#[derive(Serialize)]
struct Json<'a> {
    message_type: &'static str,
    snapshot_id: ObjectId,
    overwrite: &'a str,
    files_restored: u64,
    files_skipped: u64,
    entries_kept: u64,
    dirs: u64,
    others: u64,
    bytes_restored: u64,
    files_verified: u64,
    bytes_fetched: u64,
    blobs_fetched: u64,
    bytes_reused: u64,
    owner_skipped: bool,
    devices_skipped: u64,
    special_skipped: u64,
    snapshot_signer: &'static str,
    privileged: bool,
    withheld: Withheld,
    privileges_dropped: &'a [String],
    xattrs_filtered: u64,
    differences: Vec<Difference<'a>>,
    owners_not_restored: u64,
    difference_counts: Counts,
    leftovers_removed: u64,
    waiting_for_thaw: Waiting<'a>,
    #[serde(serialize_with = "super::seconds")]
    total_duration: std::time::Duration,
    errors: usize,
    damaged: usize,
    error_list: Vec<Problem<'a>>,
    dry_run: bool,
    actions: Vec<Action<'a>>,
}

#[derive(Serialize)]
struct Action<'a> {
    path: &'a str,
    action: &'static str,
}

#[derive(Serialize)]
struct Waiting<'a> {
    files: u64,
    bytes: u64,
    paths: &'a [String],
}

#[derive(Serialize)]
struct Withheld {
    devices: u64,
    setid_files: u64,
    xattrs: u64,
}

#[derive(Serialize)]
struct Difference<'a> {
    path: &'a str,
    what: &'static str,
    wanted: &'a str,
    got: &'a str,
}

#[derive(Serialize)]
struct Counts {
    owner: u64,
    mode: u64,
    mtime: u64,
    atime: u64,
    xattr: u64,
    entry: u64,
    total: u64,
}

#[derive(Serialize)]
struct Problem<'a> {
    path: &'a str,
    message: &'a str,
    damage: bool,
}

impl<'a> From<&'a tresor_core::restorer::Difference> for Difference<'a> {
    fn from(d: &'a tresor_core::restorer::Difference) -> Self {
        Difference {
            path: &d.path,
            what: d.what.name(),
            wanted: &d.wanted,
            got: &d.got,
        }
    }
}

impl From<tresor_core::restorer::DifferenceCounts> for Counts {
    fn from(c: tresor_core::restorer::DifferenceCounts) -> Self {
        Counts {
            owner: c.owner,
            mode: c.mode,
            mtime: c.mtime,
            atime: c.atime,
            xattr: c.xattr,
            entry: c.entry,
            total: c.total(),
        }
    }
}

impl<'a> From<&'a tresor_core::restorer::RestoreProblem> for Problem<'a> {
    fn from(p: &'a tresor_core::restorer::RestoreProblem) -> Self {
        Problem {
            path: &p.path,
            message: &p.message,
            damage: p.damage,
        }
    }
}

impl Serialize for Restored<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let r = self.result;
        Json {
            message_type: "summary",
            snapshot_id: self.snapshot,
            overwrite: self.overwrite,
            files_restored: r.files_restored,
            files_skipped: r.files_skipped,
            entries_kept: r.entries_kept,
            dirs: r.dirs,
            others: r.others,
            bytes_restored: r.bytes_written,
            files_verified: r.files_verified,
            bytes_fetched: r.bytes_fetched,
            blobs_fetched: r.blobs_fetched,
            bytes_reused: r.bytes_reused,
            owner_skipped: r.owner_skipped,
            devices_skipped: r.devices_skipped,
            special_skipped: r.special_skipped,
            snapshot_signer: if self.full_key_snapshot {
                "full"
            } else {
                "put-only"
            },
            privileged: self.privileged,
            withheld: Withheld {
                devices: r.withheld.devices,
                setid_files: r.withheld.setid_files,
                xattrs: r.withheld.xattrs,
            },
            privileges_dropped: &r.privileges_dropped,
            xattrs_filtered: r.xattrs_filtered,
            differences: r.differences.iter().map(Difference::from).collect(),
            owners_not_restored: r.difference_counts.owner,
            difference_counts: Counts::from(r.difference_counts),
            leftovers_removed: r.leftovers_removed,
            waiting_for_thaw: Waiting {
                files: r.waiting.files,
                bytes: r.waiting.bytes,
                paths: &r.waiting.paths,
            },
            total_duration: r.elapsed,
            errors: r.problems.len(),
            damaged: r.problems.iter().filter(|p| p.damage).count(),
            error_list: r.problems.iter().map(Problem::from).collect(),
            dry_run: self.dry_run,
            actions: r
                .actions
                .iter()
                .map(|a| Action {
                    path: &a.path,
                    action: a.kind.name(),
                })
                .collect(),
        }
        .serialize(s)
    }
}

impl Outcome for Restored<'_> {
    fn text(&self, t: &mut Text) {
        let r = self.result;
        for p in &r.problems {
            t.diag(Level::Error, format!("{}: {}", p.path, p.message));
        }
        for a in &r.actions {
            t.out(format!("{:<9} {}", a.kind.name(), a.path));
        }
        if self.dry_run {
            return self.dry_summary(t);
        }
        differences(r, t);
        dropped_privileges(r, t);
        t.info(format!(
            "restored snapshot {} to {}: {} files ({}), {} already correct, {} directories, {} other entries in {}",
            self.snapshot.short(),
            self.target.display(),
            r.files_restored,
            bytes(r.bytes_written),
            r.files_skipped,
            r.dirs,
            r.others,
            duration(r.elapsed)
        ));
        if self.verify {
            t.info(format!("verified {} files", r.files_verified));
        }
        self.notes(t);
        self.skipped(t);
        waiting(r, t);
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        t.json_line(self)
    }
}

impl Restored<'_> {
    /// The dry run's last line: counts of the actions, nothing written.
    fn dry_summary(&self, t: &mut Text) {
        let count = |k: ActionKind| self.result.actions.iter().filter(|a| a.kind == k).count();
        t.info(format!(
            "dry run of snapshot {} to {}: would restore {}, update {}, leave {} unchanged, keep {}, delete {}; nothing written",
            self.snapshot.short(),
            self.target.display(),
            count(ActionKind::Restore),
            count(ActionKind::Update),
            count(ActionKind::Unchanged),
            count(ActionKind::Keep),
            count(ActionKind::Delete),
        ));
    }

    /// The lines about existing entries, reused and fetched data, leftovers and differences.
    fn notes(&self, t: &mut Text) {
        let r = self.result;
        if r.entries_kept > 0 {
            t.info(format!(
                "{} existing entries left as they were (--overwrite {})",
                r.entries_kept, self.overwrite
            ));
        }
        if r.bytes_reused > 0 {
            t.info(format!(
                "fetched {} in {} blobs; {} copied from the files already in the target",
                bytes(r.bytes_fetched),
                r.blobs_fetched,
                bytes(r.bytes_reused)
            ));
        }
        if r.leftovers_removed > 0 {
            t.info(format!(
                "removed {} temporary files of an interrupted restore",
                r.leftovers_removed
            ));
        }
        let c = r.difference_counts;
        if c.total() > 0 {
            t.info(format!(
                "restored with {} differences: owner {}, mode {}, mtime {}, atime {}, xattr {}, entry {}",
                c.total(),
                c.owner,
                c.mode,
                c.mtime,
                c.atime,
                c.xattr,
                c.entry
            ));
        }
    }

    /// The lines about what was not applied by choice or by the snapshot's writer.
    fn skipped(&self, t: &mut Text) {
        let r = self.result;
        if r.owner_skipped {
            let why = if self.no_owner {
                "--no-owner"
            } else {
                "not running as root"
            };
            t.info(format!("ownership not restored ({why})"));
        }
        if r.special_skipped > 0 {
            t.info(format!(
                "{} fifos, sockets and device nodes not created (--no-special-files)",
                r.special_skipped
            ));
        }
        let w = r.withheld;
        if w.any() {
            t.info(format!(
                "withheld because a put-only key wrote this snapshot: {} device nodes, setuid/setgid bits of {} files, {} security/trusted attributes (--trust-privileged applies them)",
                w.devices, w.setid_files, w.xattrs
            ));
        }
    }
}

/// One `warning:` line per listed difference; owners: the first [`NAMED_PATHS`] (only listed when
/// root's `chown` was refused) and one line counting all.
fn differences(r: &RestoreResult, t: &mut Text) {
    let mut owners = 0;
    for d in &r.differences {
        match d.what {
            DiffKind::Entry => t.diag(
                Level::Warning,
                format!("{}: {} {}", d.path, d.wanted, d.got),
            ),
            DiffKind::Owner if owners >= NAMED_PATHS => {}
            w => {
                owners += usize::from(w == DiffKind::Owner);
                let (path, what, wanted, got) = (&d.path, w.name(), &d.wanted, &d.got);
                t.diag(
                    Level::Warning,
                    format!("{path}: {what} differs: wanted {wanted}, got {got}"),
                );
            }
        }
    }
    let c = r.difference_counts;
    let listed = r
        .differences
        .iter()
        .filter(|d| d.what != DiffKind::Owner)
        .count() as u64;
    if c.total() - c.owner > listed {
        let more = c.total() - c.owner - listed;
        t.diag(
            Level::Warning,
            format!("… and {more} more differences (all counted in --json)"),
        );
    }
    if c.owner > 0 {
        let why = if r.owner_skipped {
            "not running as root"
        } else {
            "the target refused chown"
        };
        t.diag(
            Level::Warning,
            format!("owners not restored: {} entries ({why})", c.owner),
        );
    }
}

/// Files whose setuid/setgid bits or capability were not applied: the first [`NAMED_PATHS`]
/// named, the rest counted.
fn dropped_privileges(r: &RestoreResult, t: &mut Text) {
    for p in r.privileges_dropped.iter().take(NAMED_PATHS) {
        t.diag(
            Level::Warning,
            format!(
                "{p}: setuid/setgid bits or file capability not applied: its owner was not restored"
            ),
        );
    }
    if r.privileges_dropped.len() > NAMED_PATHS {
        t.diag(
            Level::Warning,
            format!(
                "… and {} more files without their setuid/setgid bits or capability",
                r.privileges_dropped.len() - NAMED_PATHS
            ),
        );
    }
}

/// Files left for a rerun because their data is still thawing: the first [`NAMED_PATHS`]
/// named, then one line counting all.
fn waiting(r: &RestoreResult, t: &mut Text) {
    let w = &r.waiting;
    if w.files == 0 {
        return;
    }
    for p in w.paths.iter().take(NAMED_PATHS) {
        t.diag(Level::Warning, format!("{p}: waiting for thaw"));
    }
    if w.files > NAMED_PATHS as u64 {
        let more = w.files - NAMED_PATHS as u64;
        t.diag(
            Level::Warning,
            format!("… and {more} more files waiting for thaw (listed in --json)"),
        );
    }
    t.info(format!(
        "waiting for thaw: {} files ({}) not restored yet, their data packs are still thawing",
        w.files,
        bytes(w.bytes)
    ));
}
