//! Prune (two-phase, lock-free) and repair: space is freed, kept snapshots restore byte for byte,
//! condemned packs are deleted only when every host has moved on, backups that deduplicate
//! against condemned data resurrect it, concurrent backups survive, and damage is repaired.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tresor_core::archiver::{self, BackupOptions};
use tresor_core::check::{self, ReadData};
use tresor_core::prune::{
    self, FreedLater, Later, MaxUnused, PruneOptions, PrunePlan, PruneStats, WaitingHost,
};
use tresor_core::repair::{self, RepairSnapshotsOptions};
use tresor_core::repo::KeyOwner;
use tresor_core::restorer::{self, RestoreOptions};
use tresor_core::{NoProgress, Repository};
use tresor_format::ObjectId;
use tresor_format::config::Config;
use tresor_format::index::IndexFile;
use tresor_format::keyfile::KdfParams;
use tresor_storage::faulty::{Fault, FaultyStorage, Method};
use tresor_storage::local::LocalStorage;
use tresor_storage::{ErrorKind, Kind, Storage};

mod cold;
mod frames;
mod orphans;

const KDF: KdfParams = KdfParams {
    m_kib: 64,
    t: 1,
    p: 1,
};
const PW: &str = "pw";

/// Local storage behind the fault layer: told to refuse deleting index objects (append-only
/// storage), or to hold every pack under a lock until a given time (like S3 Object Lock:
/// `locked_until` reports it and deletes are refused).
type Guarded = FaultyStorage<LocalStorage>;

/// The fault that refuses deleting index objects.
fn refuse_index_delete() -> Fault {
    Fault::on(Method::Delete, ErrorKind::PermissionDenied).kind(Kind::Index)
}

/// Deletes of locked packs that were attempted (and refused).
fn locked_delete_attempts(g: &Guarded) -> usize {
    g.calls()
        .iter()
        .filter(|c| c.method == Method::Delete && c.kind == Some(Kind::Pack))
        .filter(|c| c.error == Some(ErrorKind::PermissionDenied))
        .count()
}

struct Env {
    dir: tempfile::TempDir,
    guarded: Arc<Guarded>,
    repo: Repository,
}

fn small_config() -> Config {
    let mut c = Config::new().unwrap();
    c.chunker.min_size = 16 << 10;
    c.chunker.avg_size = 64 << 10;
    c.chunker.max_size = 256 << 10;
    c.pack_size = 256 << 10;
    c
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let guarded = Arc::new(Guarded::new(LocalStorage::new(dir.path().join("repo"))));
        let owner = KeyOwner {
            host: "admin".into(),
            username: "test".into(),
            created: "2026-11-30T00:00:00Z".into(),
        };
        let repo = Repository::init(guarded.clone(), PW, KDF, &owner, small_config()).unwrap();
        Env { dir, guarded, repo }
    }

    fn storage(&self) -> &Arc<dyn Storage> {
        self.repo.storage()
    }

    fn src(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn count(&self, kind: Kind) -> usize {
        self.storage().list(kind).map(|l| l.len()).unwrap_or(0)
    }

    fn pack_bytes(&self) -> u64 {
        self.storage()
            .list(Kind::Pack)
            .unwrap()
            .iter()
            .map(|(_, s)| s)
            .sum()
    }

    fn forget(&self, id: &ObjectId) {
        let r = tresor_core::forget::remove(&self.repo, &[*id]).unwrap();
        assert_eq!(r.deleted, vec![*id]);
    }

    fn check(&self, read_data: bool) -> check::CheckReport {
        let r = check::check(
            &self.repo,
            if read_data {
                ReadData::All
            } else {
                ReadData::None
            },
        )
        .unwrap();
        assert!(r.errors.is_empty(), "check errors: {:#?}", r.errors);
        r
    }
}

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xDEAD_BEEF;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

type Files = BTreeMap<String, Vec<u8>>;

/// Make `root` hold exactly `files`.
fn write_tree(root: &Path, files: &Files) {
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root).unwrap();
    for (name, data) in files {
        let p = root.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
}

fn files(spec: &[(&str, u64, usize)]) -> Files {
    spec.iter()
        .map(|(n, seed, len)| (n.to_string(), bytes(*seed, *len)))
        .collect()
}

fn backup_at(repo: &Repository, path: &Path, host: &str, time: jiff::ZonedDateTime) -> ObjectId {
    backup_full(repo, path, host, time, None)
}

fn backup_full(
    repo: &Repository,
    path: &Path,
    host: &str,
    time: jiff::ZonedDateTime,
    cache_dir: Option<PathBuf>,
) -> ObjectId {
    let opts = BackupOptions {
        time,
        cache_dir,
        ..tresor_testkit::repo::backup_options(path, host)
    };
    let r = archiver::backup(repo, opts, &NoProgress).unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    r.snapshot_id.unwrap()
}

fn backup(repo: &Repository, path: &Path, host: &str) -> ObjectId {
    backup_at(repo, path, host, jiff::ZonedDateTime::now())
}

/// Restore a snapshot and compare every file under `path` with `expected`, byte for byte.
fn assert_restores(repo: &Repository, snap: &ObjectId, path: &Path, expected: &Files) {
    let target = tempfile::tempdir().unwrap();
    let s = repo.load_snapshot(snap).unwrap();
    let index = repo.load_index().unwrap();
    let opts = RestoreOptions {
        verify: true,
        ..RestoreOptions::new(target.path().to_path_buf())
    };
    let r = restorer::restore(repo, &index, &s, &opts, &NoProgress).unwrap();
    assert!(r.problems.is_empty(), "restore {snap}: {:?}", r.problems);
    let root = target.path().join(path.strip_prefix("/").unwrap());
    let mut got = Files::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                got.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "files of snapshot {snap}"
    );
    for (k, v) in expected {
        assert!(got[k] == *v, "content of {k} in snapshot {snap}");
    }
}

fn prune_with(repo: &Repository, opts: &PruneOptions) -> (PrunePlan, PruneStats) {
    let plan = prune::plan(repo, opts).unwrap();
    let stats = plan.execute(repo, &NoProgress).unwrap();
    (plan, stats)
}

fn prune(repo: &Repository) -> (PrunePlan, PruneStats) {
    prune_with(repo, &PruneOptions::default())
}

#[test]
fn prune_frees_space_repacks_and_kept_snapshots_restore() {
    let env = Env::new();
    let src = env.src("src");
    let mut spec: Vec<(String, u64, usize)> = vec![
        ("a.bin".into(), 1, 600 << 10),
        ("b.bin".into(), 2, 600 << 10),
    ];
    for i in 0..24 {
        spec.push((format!("small/s{i:02}"), 100 + i, 20 << 10));
    }
    let v1: Files = spec
        .iter()
        .map(|(n, s, l)| (n.clone(), bytes(*s, *l)))
        .collect();
    write_tree(&src, &v1);
    let s1 = backup(&env.repo, &src, "h");
    // v2: a.bin and half the small files go, c.bin comes.
    let mut v2 = v1.clone();
    v2.remove("a.bin");
    for i in 12..24 {
        v2.remove(&format!("small/s{i:02}"));
    }
    v2.insert("c.bin".into(), bytes(3, 500 << 10));
    write_tree(&src, &v2);
    let s2 = backup(&env.repo, &src, "h");
    let mut v3 = v2.clone();
    v3.insert("d.bin".into(), bytes(4, 300 << 10));
    write_tree(&src, &v3);
    let s3 = backup(&env.repo, &src, "h");
    env.check(true);

    // Forget the first snapshot; nothing is free yet.
    env.forget(&s1);
    let before = env.pack_bytes();
    let opts = PruneOptions {
        max_unused: MaxUnused::Percent(0.0),
        ..PruneOptions::default()
    };
    let dry = prune::plan(&env.repo, &opts).unwrap();
    assert!(!dry.condemn_unused.is_empty(), "{dry:?}");
    assert!(
        !dry.repack.is_empty(),
        "partly used packs are repacked: {dry:?}"
    );
    assert!(dry.delete.is_empty());
    let json = serde_json::to_value(&dry).unwrap();
    assert!(json["condemn_unused"].as_array().unwrap().len() == dry.condemn_unused.len());
    drop(dry);
    assert_eq!(env.pack_bytes(), before, "planning writes nothing");

    let (plan, stats) = prune_with(&env.repo, &opts);
    assert_eq!(
        stats.packs_condemned,
        plan.condemn_unused.len() + plan.repack.len()
    );
    assert!(stats.packs_repacked > 0 && stats.blobs_repacked > 0);
    assert_eq!(stats.packs_deleted, 0, "phase 1 deletes nothing");
    assert!(stats.armed);
    assert!(stats.undeletable.is_empty());
    // During the grace period every kept snapshot restores and the repository checks clean.
    env.check(true);
    assert_restores(&env.repo, &s2, &src, &v2);
    assert_restores(&env.repo, &s3, &src, &v3);

    // The host backs up again: the generation is approved and deleted.
    let s4 = backup(&env.repo, &src, "h");
    let (plan, stats) = prune_with(&env.repo, &opts);
    assert_eq!(plan.generations.len(), 1);
    assert!(plan.generations[0].approved, "{plan:?}");
    assert!(stats.packs_deleted > 0);
    assert!(stats.bytes_freed > 0);
    let after = env.pack_bytes();
    assert!(
        after + (500 << 10) < before,
        "space freed: {before} → {after}"
    );
    env.check(true);
    for (s, v) in [(&s2, &v2), (&s3, &v3), (&s4, &v3)] {
        assert_restores(&env.repo, s, &src, v);
    }
    // Nothing left to do, no prune state left behind.
    let (plan, _) = prune(&env.repo);
    assert!(plan.is_empty(), "{plan:?}");
    // Only the forget record stays (format §16: it says the snapshot was deleted on purpose).
    let recs = tresor_core::repo::records::load_records(&env.repo).unwrap();
    assert!(recs.states.is_empty() && recs.fossils.is_empty());
    assert_eq!(recs.forgotten.len(), 1);
    assert_eq!(env.count(Kind::PruneRecord), 1);
    // Every pack and blob accounted for once.
    let r = env.check(true);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn condemned_packs_wait_for_every_host_in_repository_time() {
    let env = Env::new();
    let (a, b) = (env.src("a"), env.src("b"));
    let va = files(&[("x", 10, 300 << 10), ("y", 11, 300 << 10)]);
    let vb = files(&[("z", 12, 200 << 10)]);
    write_tree(&a, &va);
    write_tree(&b, &vb);
    let a1 = backup(&env.repo, &a, "h1");
    let _b1 = backup(&env.repo, &b, "h2");
    let va2 = files(&[("y", 11, 300 << 10)]);
    write_tree(&a, &va2);
    let a2 = backup(&env.repo, &a, "h1");
    env.forget(&a1);

    // Run 1 condemns x's data and arms the generation with hosts h1, h2.
    let (plan, stats) = prune(&env.repo);
    assert!(!plan.condemn_unused.is_empty());
    assert!(stats.armed);
    let condemned: Vec<ObjectId> = plan.condemn_unused.iter().map(|p| p.id).collect();
    // It says what it frees later, and on which condition: every host backs up again.
    assert_eq!(
        stats.freed_later,
        [FreedLater {
            packs: stats.packs_condemned,
            bytes: stats.bytes_condemned,
            when: Later::HostsBackUp,
            hosts: vec!["h1".into(), "h2".into()],
        }]
    );
    assert!(stats.packs_condemned >= condemned.len());
    let time_of = |id: &ObjectId| env.repo.load_snapshot(id).unwrap().time;
    let present = |id: &ObjectId| env.storage().size(Kind::Pack, &id.to_hex()).is_ok();
    assert!(condemned.iter().all(present));

    // Run 2, nobody backed up: nothing is deleted. The plan names each host, since when it
    // is waited for (its newest snapshot) and how to release it.
    let (plan, stats) = prune(&env.repo);
    assert_eq!(plan.generations[0].waiting_for, vec!["h1", "h2"]);
    let waiting = |host: &str, last: &ObjectId| WaitingHost {
        host: host.into(),
        last_snapshot: Some(time_of(last)),
        unfinished: vec![],
        release: format!("tresor prune --inactive-host {host}"),
    };
    assert_eq!(
        plan.generations[0].waiting,
        [waiting("h1", &a2), waiting("h2", &_b1)]
    );
    assert_eq!(plan.generations[0].armed_run, Some(plan.run - 1));
    assert_eq!(stats.packs_deleted, 0);
    assert_eq!(stats.freed_later.len(), 1, "{:?}", stats.freed_later);
    assert_eq!(stats.freed_later[0].when, Later::HostsBackUp);
    assert_eq!(stats.freed_later[0].hosts, ["h1", "h2"]);
    assert_eq!(stats.freed_later[0].packs, plan.generations[0].packs);
    assert!(condemned.iter().all(present));

    // h1 backs up with a clock 36 years behind: it still counts (only snapshot ids matter).
    let old = jiff::civil::date(1990, 1, 1)
        .at(0, 0, 0, 0)
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .unwrap();
    let a3 = backup_at(&env.repo, &a, "h1", old);
    let (plan, stats) = prune(&env.repo);
    assert_eq!(plan.generations[0].waiting_for, vec!["h2"]);
    assert_eq!(plan.generations[0].waiting, [waiting("h2", &_b1)]);
    assert_eq!(stats.freed_later[0].hosts, ["h2"]);
    assert_eq!(stats.packs_deleted, 0);
    assert!(condemned.iter().all(present));
    env.check(true);

    // The operator declares h2 inactive: approved, deleted.
    let opts = PruneOptions {
        inactive_hosts: vec!["h2".into()],
        ..PruneOptions::default()
    };
    let (plan, stats) = prune_with(&env.repo, &opts);
    assert!(plan.generations[0].approved, "{plan:?}");
    assert!(stats.packs_deleted >= condemned.len());
    assert_eq!(stats.bytes_freed, plan.generations[0].bytes);
    assert_eq!(stats.freed_later, []);
    assert!(!condemned.iter().any(present));
    env.check(true);
    assert_restores(&env.repo, &a2, &a, &va2);
    assert_restores(&env.repo, &a3, &a, &va2);
}

#[test]
fn packs_under_object_lock_are_planned_around_and_deleted_later() {
    let env = Env::new();
    let a = env.src("a");
    let v1 = files(&[("x", 20, 300 << 10), ("y", 21, 300 << 10)]);
    write_tree(&a, &v1);
    let s1 = backup(&env.repo, &a, "h");
    let v2 = files(&[("y", 21, 300 << 10)]);
    write_tree(&a, &v2);
    let s2 = backup(&env.repo, &a, "h");
    env.forget(&s1);
    let (plan, stats) = prune(&env.repo);
    assert!(!plan.condemn_unused.is_empty(), "{plan:?}");
    assert!(stats.armed);
    // Unused packs and repacked ones are condemned alike.
    let condemned: Vec<ObjectId> = plan
        .condemn_unused
        .iter()
        .chain(plan.repack.iter())
        .map(|p| p.id)
        .collect();
    let s3 = backup(&env.repo, &a, "h");

    // Every pack is locked for another hour: the approved packs are not attempted.
    let until = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    env.guarded.lock_kind(Kind::Pack, Some(until));
    let plan = prune::plan(&env.repo, &PruneOptions::default()).unwrap();
    assert!(plan.generations[0].approved, "{plan:?}");
    assert!(plan.delete.is_empty(), "{plan:?}");
    assert_eq!(plan.bytes_freed, 0);
    let mut locked: Vec<ObjectId> = plan.locked.iter().map(|(p, _)| p.id).collect();
    locked.sort();
    let mut want = condemned.clone();
    want.sort();
    assert_eq!(locked, want);
    // (How the plan shows locked packs: `tresor-cli/src/render/prune.rs`.)
    let stats = plan.execute(&env.repo, &NoProgress).unwrap();
    assert_eq!(stats.packs_deleted, 0);
    assert!(stats.undeletable.is_empty(), "{:?}", stats.undeletable);
    assert_eq!(
        locked_delete_attempts(&env.guarded),
        0,
        "no delete of a locked pack is attempted"
    );
    let present = |id: &ObjectId| env.storage().size(Kind::Pack, &id.to_hex()).is_ok();
    assert!(condemned.iter().all(present));
    env.check(true);
    assert_restores(&env.repo, &s2, &a, &v2);

    // Still locked: the next run plans around them again.
    let (plan, stats) = prune(&env.repo);
    assert_eq!(plan.locked.len(), condemned.len(), "{plan:?}");
    assert_eq!(stats.packs_deleted, 0);

    // The lock ends: the next run deletes them, without waiting for anything else.
    env.guarded.lock_kind(Kind::Pack, None);
    let (plan, stats) = prune(&env.repo);
    assert!(plan.locked.is_empty(), "{plan:?}");
    assert_eq!(stats.packs_deleted, condemned.len());
    assert!(!condemned.iter().any(present));
    assert_eq!(locked_delete_attempts(&env.guarded), 0);
    env.check(true);
    assert_restores(&env.repo, &s2, &a, &v2);
    assert_restores(&env.repo, &s3, &a, &v2);
}

/// A host with no snapshot yet whose first backup started before a prune run armed a
/// generation is waited for, through its backup start marker (format §16.1).
#[test]
fn a_new_hosts_running_first_backup_holds_back_deletion_through_its_marker() {
    let env = Env::new();
    let (a, b) = (env.src("a"), env.src("b"));
    let v1 = files(&[("x", 30, 300 << 10), ("y", 31, 300 << 10)]);
    write_tree(&a, &v1);
    let s1 = backup(&env.repo, &a, "h1");
    let v2 = files(&[("y", 31, 300 << 10)]);
    write_tree(&a, &v2);
    let _s2 = backup(&env.repo, &a, "h1");
    env.forget(&s1);
    // Every snapshot lists its own marker: forget deletes s1's, prune the one of s2.
    assert_eq!(env.count(Kind::Marker), 1);
    let (_, stats) = prune(&env.repo);
    assert_eq!(stats.markers_deleted, 1);
    assert_eq!(env.count(Kind::Marker), 0);

    // h2's first backup starts: its marker is written before it reads the index...
    let cache = env.src("cache");
    let mut pending =
        tresor_core::repo::markers::PendingMarkers::load(Some(&cache), &env.repo.config().id, "h2");
    let m = pending
        .start(&env.repo, "h2", "2026-11-30T00:00:00Z", None)
        .unwrap();
    assert_eq!(env.count(Kind::Marker), 1);

    // ...a new generation is condemned and armed while it runs...
    let v3 = files(&[("z", 32, 200 << 10)]);
    write_tree(&a, &v3);
    let s3 = backup(&env.repo, &a, "h1");
    env.forget(&_s2);
    let (plan, stats) = prune(&env.repo);
    assert!(stats.armed);
    assert!(stats.packs_condemned > 0, "{plan:?}");
    let run = plan.run;
    // ...and h1 backs up again: without the marker the generation would now be approved.
    let s4 = backup(&env.repo, &a, "h1");
    let (plan, stats) = prune(&env.repo);
    let g = plan.generations.iter().find(|g| g.run == run).unwrap();
    assert!(!g.approved, "{plan:?}");
    assert_eq!(stats.packs_deleted, 0);
    assert_eq!(g.waiting_for, vec!["h2"], "{plan:?}");
    // Waiting for a backup that started and has no snapshot: named with its start time.
    assert_eq!(
        g.waiting,
        [WaitingHost {
            host: "h2".into(),
            last_snapshot: None,
            unfinished: vec!["2026-11-30T00:00:00Z".into()],
            release: "tresor prune --inactive-host h2".into(),
        }]
    );
    assert_eq!(
        env.count(Kind::Marker),
        1,
        "an unfinished backup's marker stays"
    );
    env.check(true);

    // h2's backup ends: its snapshot lists the marker (remembered in the cache directory).
    let vb = files(&[("w", 33, 100 << 10)]);
    write_tree(&b, &vb);
    let now = jiff::ZonedDateTime::now();
    let sb = backup_full(&env.repo, &b, "h2", now, Some(cache.clone()));
    let snap = env.repo.load_snapshot(&sb).unwrap();
    assert_eq!(snap.markers.len(), 2, "{:?}", snap.markers);
    assert!(snap.markers.contains(&m));
    let (plan, stats) = prune(&env.repo);
    assert!(plan.generations.iter().all(|g| g.approved), "{plan:?}");
    assert!(stats.packs_deleted > 0);
    assert_eq!(
        env.count(Kind::Marker),
        0,
        "markers of ended backups are deleted"
    );
    env.check(true);
    assert_restores(&env.repo, &s3, &a, &v3);
    assert_restores(&env.repo, &s4, &a, &v3);
    assert_restores(&env.repo, &sb, &b, &vb);
}

#[test]
fn backup_deduplicating_against_condemned_data_resurrects_it() {
    let env = Env::new();
    let (a, c) = (env.src("a"), env.src("c"));
    let with_x = files(&[("x", 20, 500 << 10), ("keep", 21, 100 << 10)]);
    let without_x = files(&[("keep", 21, 100 << 10)]);
    write_tree(&a, &with_x);
    let s1 = backup(&env.repo, &a, "h");
    let s1_snap = env.repo.load_snapshot(&s1).unwrap();
    write_tree(&a, &without_x);
    let s2 = backup(&env.repo, &a, "h");
    env.forget(&s1);

    // Run 1 on storage that refuses to delete index objects (e.g. object lock): x's packs are
    // condemned, but the superseded index objects (and their dedup lists) stay, so the
    // generation cannot be armed.
    env.guarded.inject(refuse_index_delete());
    let (plan, stats) = prune(&env.repo);
    assert!(!plan.condemn_unused.is_empty());
    assert!(
        !stats.undeletable.is_empty(),
        "refused deletions are reported"
    );
    assert!(!stats.armed);
    env.check(true);

    // A backup starting now does not deduplicate against the superseded index objects (format
    // §9): it would store x again (a dry run, so that x stays condemned below).
    write_tree(&c, &files(&[("x", 20, 500 << 10)]));
    let dry = BackupOptions {
        dry_run: true,
        ..tresor_testkit::repo::backup_options(&c, "fresh")
    };
    let fresh = archiver::backup(&env.repo, dry, &NoProgress).unwrap();
    assert!(fresh.summary.data_blobs > 0, "x would be stored again");
    // A backup on another host that read the index before run 1 (and deduplicated x against
    // it) ends now: its snapshot references condemned blobs (s1's tree, as host "other").
    let mut other = s1_snap.clone();
    other.hostname = "other".into();
    let s3 = env.repo.save_snapshot(&other).unwrap();
    // Readers still see condemned packs: check is clean and the snapshot restores.
    env.check(true);
    assert_restores(&env.repo, &s3, &a, &with_x);

    // Run 2 (deletes allowed again): resurrects x's packs, deletes the superseded index
    // objects and arms what remains.
    env.guarded.remove(&refuse_index_delete());
    let (plan, stats) = prune(&env.repo);
    assert!(!plan.resurrect.is_empty(), "{plan:?}");
    assert_eq!(stats.packs_resurrected, plan.resurrect.len());
    assert!(stats.armed);
    env.check(true);

    // Everyone backs up, the generation is approved: x survives.
    backup(&env.repo, &a, "h");
    backup(&env.repo, &c, "other");
    let (_, _) = prune(&env.repo);
    let (plan, _) = prune(&env.repo);
    // (Later runs may condemn duplicates the resurrection left; the first two are settled.)
    assert!(
        plan.generations
            .iter()
            .all(|g| g.run > 2 || g.packs == 0 || g.approved),
        "{plan:?}"
    );
    env.check(true);
    assert_restores(&env.repo, &s3, &a, &with_x);
    assert_restores(&env.repo, &s2, &a, &without_x);

    // A backup that was running while a generation was armed (it read the old index) finishes
    // afterwards: simulated by a snapshot of a forgotten tree, written after arming.
    let with_y = files(&[("y", 40, 400 << 10), ("keep", 21, 100 << 10)]);
    write_tree(&a, &with_y);
    let s = backup(&env.repo, &a, "h");
    let old_snap = env.repo.load_snapshot(&s).unwrap();
    env.forget(&s);
    write_tree(&a, &without_x);
    backup(&env.repo, &a, "h");
    backup(&env.repo, &c, "other");
    let (plan, stats) = prune(&env.repo);
    assert!(stats.armed);
    assert!(!plan.condemn_unused.is_empty(), "{plan:?}");
    let mut late = old_snap.clone();
    late.hostname = "late".into();
    let s_late = env.repo.save_snapshot(&late).unwrap();
    env.check(true);
    assert_restores(&env.repo, &s_late, &a, &with_y);
    backup(&env.repo, &a, "h");
    backup(&env.repo, &c, "other");
    let (plan, stats) = prune(&env.repo);
    assert!(!plan.resurrect.is_empty(), "{plan:?}");
    assert!(stats.packs_resurrected > 0);
    backup(&env.repo, &a, "h");
    backup(&env.repo, &c, "other");
    prune(&env.repo);
    env.check(true);
    assert_restores(&env.repo, &s_late, &a, &with_y);
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn concurrent_backups_and_prunes_keep_every_snapshot_restorable() {
    let env = Env::new();
    let storage = env.storage().clone();
    let done = Arc::new(AtomicBool::new(false));
    let kept: Arc<Mutex<Vec<(ObjectId, PathBuf, Files)>>> = Arc::default();
    let forgotten: Arc<Mutex<Vec<ObjectId>>> = Arc::default();
    let root = env.dir.path().to_path_buf();
    let version = |t: u64, run: u64| {
        // Shared content (deduplicated across hosts, and coming back after its snapshots were
        // forgotten), content kept across runs, and content new in each run.
        files(&[
            ("shared", 500 + run % 2, 300 << 10),
            ("steady", 600 + t, 150 << 10),
            ("new", 700 + t * 10 + run, 400 << 10),
        ])
    };
    // Every host has backed up once before prunes start (the documented assumption: a host's
    // first backup does not span two prune runs).
    for t in 0..3u64 {
        let src = root.join(format!("host{t}"));
        let v = version(t, 0);
        write_tree(&src, &v);
        let id = backup(&env.repo, &src, &format!("host{t}"));
        kept.lock().unwrap().push((id, src, v));
    }
    let mut threads = Vec::new();
    for t in 0..3u64 {
        let (storage, kept, root) = (storage.clone(), kept.clone(), root.clone());
        threads.push(std::thread::spawn(move || {
            let repo = Repository::open(storage, PW).unwrap();
            let src = root.join(format!("host{t}"));
            for run in 1..6u64 {
                let v = version(t, run);
                write_tree(&src, &v);
                let id = backup(&repo, &src, &format!("host{t}"));
                kept.lock().unwrap().push((id, src.clone(), v));
            }
        }));
    }
    let pruner = {
        let (storage, kept, forgotten, done) = (
            storage.clone(),
            kept.clone(),
            forgotten.clone(),
            done.clone(),
        );
        std::thread::spawn(move || {
            let repo = Repository::open(storage.clone(), PW).unwrap();
            let mut runs = 0;
            let mut total = PruneStats::default();
            while !done.load(Ordering::SeqCst) || runs < 2 {
                // Forget the oldest snapshot of some host now and then.
                {
                    let mut k = kept.lock().unwrap();
                    if k.len() >= 4 && runs % 2 == 0 {
                        let (id, _, _) = k.remove(0);
                        storage.delete(Kind::Snapshot, &id.to_hex()).unwrap();
                        forgotten.lock().unwrap().push(id);
                    }
                }
                let plan = prune::plan(
                    &repo,
                    &PruneOptions {
                        max_unused: MaxUnused::Percent(0.0),
                        ..PruneOptions::default()
                    },
                )
                .unwrap();
                let st = plan.execute(&repo, &NoProgress).unwrap();
                total.packs_condemned += st.packs_condemned;
                total.packs_deleted += st.packs_deleted;
                total.packs_resurrected += st.packs_resurrected;
                total.packs_repacked += st.packs_repacked;
                runs += 1;
            }
            (runs, total)
        })
    };
    for t in threads {
        t.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let (runs, total) = pruner.join().unwrap();
    eprintln!(
        "{runs} prunes during the backups: {} packs condemned, {} repacked, {} resurrected, {} deleted",
        total.packs_condemned, total.packs_repacked, total.packs_resurrected, total.packs_deleted
    );
    assert!(runs >= 2);
    assert!(total.packs_condemned > 0);
    env.check(true);
    let kept = kept.lock().unwrap().clone();
    for (id, src, v) in &kept {
        assert_restores(&env.repo, id, src, v);
    }
    // Finish: every host backs up, prune until nothing is pending; everything still restores.
    for _ in 0..3 {
        for t in 0..3 {
            let src = env.src(&format!("host{t}"));
            backup(&env.repo, &src, &format!("host{t}"));
        }
        prune(&env.repo);
    }
    let (plan, _) = prune(&env.repo);
    assert!(plan.generations.iter().all(|g| g.packs == 0), "{plan:?}");
    env.check(true);
    for (id, src, v) in &kept {
        assert_restores(&env.repo, id, src, v);
    }
}

fn small_repo() -> (Env, PathBuf, Files, ObjectId) {
    let env = Env::new();
    let src = env.src("src");
    let v = files(&[
        ("one", 30, 300 << 10),
        ("two", 31, 300 << 10),
        ("dir/three", 32, 100 << 10),
        ("dir/four", 33, 10 << 10),
    ]);
    write_tree(&src, &v);
    let s = backup(&env.repo, &src, "h");
    (env, src, v, s)
}

fn errors(env: &Env, read_data: bool) -> Vec<String> {
    check::check(
        &env.repo,
        if read_data {
            ReadData::All
        } else {
            ReadData::None
        },
    )
    .unwrap()
    .errors
}

fn pack_of(env: &Env, file: &str, v: &Files) -> ObjectId {
    // The pack holding the file's first chunk (at least min_size = 16 KiB long).
    let index = env.repo.load_index().unwrap();
    let reader = tresor_core::repo::blobs::BlobReader::new(&env.repo, &index);
    for (bid, loc) in index.blobs() {
        if loc.blob_type != tresor_format::blob::BlobType::Data {
            continue;
        }
        let plain = reader
            .load(bid, tresor_format::blob::BlobType::Data)
            .unwrap();
        if v[file].starts_with(&plain) && plain.len() >= 16 << 10 {
            return index.pack(loc.pack).id;
        }
    }
    panic!("no pack holds {file}");
}

#[test]
fn repair_index_rebuilds_access_after_losing_every_index_object() {
    let (env, src, v, s) = small_repo();
    for (n, _) in env.storage().list(Kind::Index).unwrap() {
        env.storage().delete(Kind::Index, &n).unwrap();
    }
    assert!(!errors(&env, false).is_empty(), "check notices");
    let dry = repair::repair_index(&env.repo, true, &NoProgress).unwrap();
    assert!(
        dry.packs > 0 && env.count(Kind::Index) == 0,
        "dry run writes nothing"
    );
    let r = repair::repair_index(&env.repo, false, &NoProgress).unwrap();
    assert_eq!(r.packs, env.count(Kind::Pack));
    assert_eq!(
        r.packs_verified, r.packs,
        "no full key vouched for them: verified"
    );
    assert!(r.unreadable.is_empty() && r.blobs_dropped.is_empty());
    env.check(true);
    assert_restores(&env.repo, &s, &src, &v);
}

#[test]
fn repair_snapshots_leaves_out_exactly_the_damaged_files() {
    let (env, src, v, s) = small_repo();
    let lost = pack_of(&env, "one", &v);
    env.storage().delete(Kind::Pack, &lost.to_hex()).unwrap();
    assert!(!errors(&env, false).is_empty());
    let dry = repair::repair_snapshots(
        &env.repo,
        &RepairSnapshotsOptions {
            dry_run: true,
            ..RepairSnapshotsOptions::default()
        },
        &NoProgress,
    )
    .unwrap();
    assert_eq!(dry.repaired.len(), 1);
    assert!(dry.repaired[0].new_snapshot.is_none());
    let r = repair::repair_snapshots(
        &env.repo,
        &RepairSnapshotsOptions {
            workers: 2,
            ..RepairSnapshotsOptions::default()
        },
        &NoProgress,
    )
    .unwrap();
    let fixed = &r.repaired[0];
    assert_eq!(fixed.snapshot, s);
    // Which files were in the lost pack: exactly those are left out.
    let damaged: Vec<&String> = v
        .keys()
        .filter(|f| fixed.removed.iter().any(|p| p.contains(&format!("/{f} ("))))
        .collect();
    assert!(damaged.contains(&&"one".to_string()), "{:?}", fixed.removed);
    assert_eq!(damaged.len(), fixed.removed.len(), "{:?}", fixed.removed);
    let new = fixed.new_snapshot.unwrap();
    let snap = env.repo.load_snapshot(&new).unwrap();
    assert!(snap.tags.contains(&"repaired".to_string()));
    assert_eq!(snap.parent, Some(s));
    let mut rest = v.clone();
    rest.retain(|k, _| !damaged.contains(&k));
    assert_restores(&env.repo, &new, &src, &rest);
    assert!(env.repo.load_snapshot(&s).is_ok(), "the original stays");
    // With --forget the original goes, and check is clean again.
    let r = repair::repair_snapshots(
        &env.repo,
        &RepairSnapshotsOptions {
            forget: true,
            workers: 2,
            ..RepairSnapshotsOptions::default()
        },
        &NoProgress,
    )
    .unwrap();
    assert!(r.repaired.iter().all(|x| x.forgotten));
    // The lost pack is still listed by the index; prune drops it (nothing needs it any more).
    assert!(!errors(&env, false).is_empty());
    let (plan, _) = prune(&env.repo);
    assert_eq!(plan.drop_missing, vec![lost]);
    env.check(false);
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn damaged_packs_are_found_and_repaired_or_reported() {
    // Truncated pack: found by check, reported by repair index, files left out by repair
    // snapshots.
    {
        let (env, src, v, _) = small_repo();
        let p = pack_of(&env, "two", &v);
        let path = env
            .dir
            .path()
            .join("repo/data")
            .join(&p.to_hex()[..2])
            .join(p.to_hex());
        let len = std::fs::metadata(&path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len / 2).unwrap();
        assert!(errors(&env, false).iter().any(|e| e.contains("truncated")));
        let r = repair::repair_index(&env.repo, false, &NoProgress).unwrap();
        assert_eq!(r.unreadable.len(), 1, "{r:?}");
        let r = repair::repair_snapshots(
            &env.repo,
            &RepairSnapshotsOptions {
                forget: true,
                workers: 2,
                ..RepairSnapshotsOptions::default()
            },
            &NoProgress,
        )
        .unwrap();
        assert!(r.repaired[0].removed.iter().any(|x| x.contains("/two (")));
        env.check(false);
        let mut rest = v.clone();
        rest.retain(|k, _| {
            !r.repaired[0]
                .removed
                .iter()
                .any(|x| x.contains(&format!("/{k} (")))
        });
        assert_restores(&env.repo, &r.repaired[0].new_snapshot.unwrap(), &src, &rest);
    }
    // Bit-flipped pack: found by check --read-data; repair snapshots --read-data leaves out the
    // file that uses the flipped blob.
    {
        let (env, src, v, _) = small_repo();
        let p = pack_of(&env, "one", &v);
        let path = env
            .dir
            .path()
            .join("repo/data")
            .join(&p.to_hex()[..2])
            .join(p.to_hex());
        let mut b = std::fs::read(&path).unwrap();
        b[100] ^= 0x40;
        std::fs::write(&path, &b).unwrap();
        assert!(errors(&env, false).is_empty(), "structure is intact");
        assert!(!errors(&env, true).is_empty(), "--read-data finds it");
        let r = repair::repair_snapshots(
            &env.repo,
            &RepairSnapshotsOptions {
                read_data: true,
                workers: 2,
                ..RepairSnapshotsOptions::default()
            },
            &NoProgress,
        )
        .unwrap();
        let removed = &r.repaired[0].removed;
        assert!(!removed.is_empty());
        let mut rest = v.clone();
        rest.retain(|k, _| !removed.iter().any(|x| x.contains(&format!("/{k} ("))));
        assert!(rest.len() < v.len());
        assert_restores(&env.repo, &r.repaired[0].new_snapshot.unwrap(), &src, &rest);
    }
    // Duplicated pack (a copy stored under another name): check warns; the first prune only
    // remembers it (it could be a running backup's), the second deletes it without ever
    // listing it: no marker that no snapshot lists, so no backup can be running (format §16,
    // step 3).
    {
        let (env, src, v, s) = small_repo();
        let p = pack_of(&env, "one", &v);
        let bytes = env.storage().read(Kind::Pack, &p.to_hex()).unwrap();
        let fake = "ab".repeat(32);
        env.guarded
            .wrapped()
            .write(Kind::Pack, &fake, &bytes)
            .unwrap();
        let r = env.check(true);
        assert!(r.warnings.iter().any(|w| w.contains(&fake)));
        let (plan, _) = prune(&env.repo);
        assert_eq!(plan.unindexed_seen.len(), 1);
        assert!(plan.condemn_unindexed.is_empty());
        let (plan, stats) = prune(&env.repo);
        assert!(plan.condemn_unindexed.is_empty());
        assert_eq!(plan.delete_unindexed.len(), 1);
        assert_eq!(plan.delete_unindexed[0].id.to_hex(), fake);
        assert_eq!(stats.packs_deleted, 1);
        assert!(env.storage().size(Kind::Pack, &fake).is_err());
        let r = env.check(true);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert_restores(&env.repo, &s, &src, &v);
    }
    // Missing pack: see repair_snapshots_leaves_out_exactly_the_damaged_files; repair index
    // reports it too.
    {
        let (env, _, v, _) = small_repo();
        let p = pack_of(&env, "one", &v);
        env.storage().delete(Kind::Pack, &p.to_hex()).unwrap();
        assert!(errors(&env, false).iter().any(|e| e.contains("missing")));
        let r = repair::repair_index(&env.repo, false, &NoProgress).unwrap();
        assert_eq!(r.missing_packs, vec![p]);
    }
}

#[test]
fn damaged_index_objects_are_found_and_repaired() {
    type Damage = fn(&mut Vec<u8>);
    let damage: [(&str, Damage); 3] = [
        ("truncated", |b| b.truncate(b.len() / 2)),
        ("bit-flipped", |b| b[200] ^= 1),
        ("missing", |b| b.clear()),
    ];
    for (what, f) in damage {
        let (env, src, v, s) = small_repo();
        let (name, _) = env.storage().list(Kind::Index).unwrap().remove(0);
        let path = env.dir.path().join("repo/index").join(&name);
        let mut b = std::fs::read(&path).unwrap();
        let listed = IndexFile::open(env.repo.key(), &b).unwrap().1.packs.len();
        f(&mut b);
        if b.is_empty() {
            std::fs::remove_file(&path).unwrap();
        } else {
            std::fs::write(&path, &b).unwrap();
        }
        assert!(!errors(&env, false).is_empty(), "{what}: check finds it");
        // Prune goes on: the object is garbage (its bytes do not match its name), and the packs
        // it listed count as unindexed, so their used blobs are indexed again.
        let plan = prune::plan(&env.repo, &PruneOptions::default()).unwrap();
        let garbage: Vec<String> = plan
            .garbage
            .iter()
            .map(|g| format!("{} {}", g.kind, g.id))
            .collect();
        match what {
            "missing" => assert!(garbage.is_empty(), "{garbage:?}"),
            _ => assert_eq!(garbage, vec![format!("index {name}")], "{what}"),
        }
        assert_eq!(plan.resurrect.len(), listed, "{what}: {plan:?}");
        if what == "truncated" {
            let stats = plan.execute(&env.repo, &NoProgress).unwrap();
            assert_eq!(stats.garbage_deleted, 1);
            assert_eq!(stats.packs_resurrected, listed);
            assert!(env.storage().size(Kind::Index, &name).is_err(), "deleted");
            env.check(true);
            assert_restores(&env.repo, &s, &src, &v);
            continue;
        }
        let r = repair::repair_index(&env.repo, false, &NoProgress).unwrap();
        assert_eq!(
            r.damaged_index.len(),
            usize::from(what != "missing"),
            "{what}"
        );
        env.check(true);
        assert_restores(&env.repo, &s, &src, &v);
    }
    // Duplicated index object (the same packs listed twice): tolerated by check, consolidated
    // by prune.
    let (env, src, v, s) = small_repo();
    let (name, _) = env.storage().list(Kind::Index).unwrap().remove(0);
    let b = env.storage().read(Kind::Index, &name).unwrap();
    let (_, f) = IndexFile::open(env.repo.key(), &b).unwrap();
    let copy = f.to_object(env.repo.key(), env.repo.signer()).unwrap();
    env.repo.write_object(Kind::Index, &copy).unwrap();
    assert_eq!(env.count(Kind::Index), 2);
    env.check(true);
    let (plan, _) = prune(&env.repo);
    assert!(plan.is_empty(), "{plan:?}");
    let r = repair::repair_index(&env.repo, false, &NoProgress).unwrap();
    assert_eq!((r.index_superseded, r.packs_verified), (2, 0));
    assert_eq!(env.count(Kind::Index), 1);
    env.check(true);
    assert_restores(&env.repo, &s, &src, &v);
}
