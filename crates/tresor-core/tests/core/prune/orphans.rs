//! Orphaned packs of a killed backup (format §16, §16.1): marker refresh, the storage clock and
//! the prune rule that deletes unindexed packs when no backup can be running.

use super::*;
use std::io::Read;
use std::time::Duration;
use tresor_core::archiver::StdinSource;
use tresor_format::marker::Marker;

/// A stream of `total` bytes that takes `pause` per 64 KiB read: a backup that runs a while.
struct Slow {
    left: usize,
    pause: Duration,
}

impl Read for Slow {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        std::thread::sleep(self.pause);
        let n = buf.len().min(self.left).min(64 << 10);
        buf[..n].fill(7);
        self.left -= n;
        Ok(n)
    }
}

/// Every marker in storage, opened.
fn markers(env: &Env) -> Vec<(ObjectId, Marker)> {
    let mut out = Vec::new();
    for (name, _) in env.storage().list(Kind::Marker).unwrap() {
        let bytes = env.storage().read(Kind::Marker, &name).unwrap();
        let (_, m) = Marker::open(env.repo.key(), &bytes).unwrap();
        out.push((name.parse().unwrap(), m));
    }
    out
}

/// A backup whose refresh interval is made short writes several markers while it runs, each
/// declaring its interval, and its snapshot lists every one of them; after it ends no more
/// markers appear.
#[test]
fn a_running_backup_refreshes_its_marker_and_its_snapshot_lists_them_all() {
    let env = Env::new();
    let opts = BackupOptions {
        stdin: Some(StdinSource {
            filename: "slow".into(),
            reader: Box::new(Slow {
                left: 16 * (64 << 10),
                pause: Duration::from_millis(60),
            }),
        }),
        marker_refresh: Some(Duration::from_millis(100)),
        ..tresor_testkit::repo::backup_options(Path::new("/"), "h1")
    };
    let r = archiver::backup(&env.repo, opts, &NoProgress).unwrap();
    let snap = env.repo.load_snapshot(&r.snapshot_id.unwrap()).unwrap();
    let stored = markers(&env);
    assert!(
        stored.len() >= 3,
        "about 9 refreshes in ~1 s: {}",
        stored.len()
    );
    let mut listed = snap.markers.clone();
    listed.sort();
    let mut ids: Vec<ObjectId> = stored.iter().map(|(id, _)| *id).collect();
    ids.sort();
    assert_eq!(listed, ids, "the snapshot lists every marker of its backup");
    for (_, m) in &stored {
        assert_eq!((m.hostname.as_str(), m.refresh_secs), ("h1", Some(1)));
        assert_eq!(m.started, stored[0].1.started);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(env.count(Kind::Marker), stored.len(), "the thread stopped");
}

/// A backup killed before it indexed anything: its packs are stored, no index object lists
/// them, no snapshot lists its marker (no cache directory). Returns the packs it left.
fn killed_backup(env: &Env, src: &Path, host: &str) -> Vec<String> {
    let before: Vec<String> = env
        .storage()
        .list(Kind::Pack)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let refuse = Fault::on(Method::Write, ErrorKind::Other).kind(Kind::Index);
    env.guarded.inject(refuse.clone());
    let opts = tresor_testkit::repo::backup_options(src, host);
    assert!(archiver::backup(&env.repo, opts, &NoProgress).is_err());
    env.guarded.remove(&refuse);
    let mut left: Vec<String> = env
        .storage()
        .list(Kind::Pack)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| !before.contains(n))
        .collect();
    left.sort();
    assert!(!left.is_empty(), "the killed backup uploaded packs");
    left
}

/// Set every marker's modification time `mins` minutes back, in the storage itself.
fn age_markers(env: &Env, mins: u64) {
    let local = env.guarded.wrapped();
    let then = std::time::SystemTime::now() - Duration::from_secs(mins * 60);
    for (name, _) in env.storage().list(Kind::Marker).unwrap() {
        let f = std::fs::File::options()
            .write(true)
            .open(local.path(Kind::Marker, &name))
            .unwrap();
        f.set_modified(then).unwrap();
    }
}

fn ids(packs: &[tresor_core::prune::PlannedPack]) -> Vec<String> {
    let mut v: Vec<String> = packs.iter().map(|p| p.id.to_hex()).collect();
    v.sort();
    v
}

/// A repository with one snapshot of host h1 and the packs a killed backup of h2 left.
fn with_orphans() -> (Env, Vec<String>, ObjectId, Files) {
    let env = Env::new();
    let (a, b) = (env.src("a"), env.src("b"));
    let va = files(&[("x", 40, 200 << 10)]);
    write_tree(&a, &va);
    let s1 = backup(&env.repo, &a, "h1");
    write_tree(&b, &files(&[("y", 41, 600 << 10)]));
    let left = killed_backup(&env, &b, "h2");
    (env, left, s1, va)
}

/// Orphaned packs of a killed backup are deleted by the second prune run when every marker no
/// snapshot lists refreshes and is older than 30 minutes by the storage's clock; no snapshot
/// is needed. The plan says why.
#[test]
fn a_killed_backups_packs_go_after_two_runs_when_its_markers_are_stale() {
    let (env, left, s1, va) = with_orphans();
    let snapshots = env.count(Kind::Snapshot);
    age_markers(&env, 31);
    let (plan, stats) = prune(&env.repo);
    assert_eq!(
        ids(&plan.unindexed_seen),
        left,
        "the first run only remembers them"
    );
    assert_eq!(stats.packs_deleted, 0);
    assert!(plan.orphan_rule.applies, "{:?}", plan.orphan_rule);
    let (plan, stats) = prune(&env.repo);
    assert_eq!(ids(&plan.delete_unindexed), left);
    assert!(plan.condemn_unindexed.is_empty());
    assert!(
        plan.orphan_rule
            .reason
            .starts_with("no backup can be running: 1 start markers"),
        "{:?}",
        plan.orphan_rule
    );
    assert_eq!(stats.packs_deleted, left.len());
    for p in &left {
        assert!(
            env.storage().size(Kind::Pack, p).is_err(),
            "pack {p} is gone"
        );
    }
    assert_eq!(
        env.count(Kind::Snapshot),
        snapshots,
        "no new snapshot was needed"
    );
    env.check(true);
    assert_restores(&env.repo, &s1, &env.src("a"), &va);
}

/// A marker younger than 30 minutes (a backup may be running) keeps the packs: the second run
/// condemns them as before, and says why.
#[test]
fn a_fresh_marker_keeps_the_packs() {
    let (env, left, _, _) = with_orphans();
    age_markers(&env, 29);
    let _ = prune(&env.repo);
    let (plan, stats) = prune(&env.repo);
    assert!(plan.delete_unindexed.is_empty());
    assert_eq!(ids(&plan.condemn_unindexed), left);
    assert!(!plan.orphan_rule.applies);
    assert!(
        plan.orphan_rule.reason.starts_with(
            "a backup may be running: 1 start markers no snapshot lists are 30 min old or younger"
        ),
        "{:?}",
        plan.orphan_rule
    );
    assert_eq!(stats.packs_deleted, 0);
    for p in &left {
        assert!(env.storage().size(Kind::Pack, p).is_ok(), "pack {p} stays");
    }
    env.check(true);
}

/// A marker without `refresh_secs` (an older tresor's backup, which never refreshes) is never
/// judged stale: the packs are condemned, not deleted, however old the marker is.
#[test]
fn a_marker_without_refresh_keeps_the_packs() {
    let (env, left, _, _) = with_orphans();
    let mut old =
        tresor_core::repo::markers::PendingMarkers::load(None, &env.repo.config().id, "h3");
    old.start(&env.repo, "h3", "2026-11-30T00:00:00Z", None)
        .unwrap();
    age_markers(&env, 24 * 60);
    let (first, _) = prune(&env.repo);
    assert!(!first.orphan_rule.applies);
    let (plan, stats) = prune(&env.repo);
    assert!(plan.delete_unindexed.is_empty());
    assert_eq!(ids(&plan.condemn_unindexed), left);
    assert_eq!(
        plan.orphan_rule.reason,
        "1 backup start markers no snapshot lists do not refresh (an older tresor's, or unreadable): such a backup may still be running"
    );
    assert_eq!(stats.packs_deleted, 0);
    for p in &left {
        assert!(env.storage().size(Kind::Pack, p).is_ok(), "pack {p} stays");
    }
}
