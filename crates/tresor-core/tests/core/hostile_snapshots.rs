//! Issue 11, item 2: what each field of a snapshot written by a put-only key can do (format
//! §11). The put-only key `evil` (certified for host `evil`) signs snapshots with every field
//! forged — another host, a time far in the future or the past, the victim's paths and tags, a
//! parent, a summary, other hosts' backup start markers — and each time the victim's snapshots
//! stay `latest` for their host, keep their retention decisions, and keep restoring; forged
//! hosts and future times are reported; nothing a put-only key writes approves a prune
//! generation for another host or hides another host's running backup.

use tresor_testkit::repo::*;

use std::path::PathBuf;
use std::sync::Arc;
use tresor_core::archiver::{self, BackupOptions};
use tresor_core::prune::{self, PruneOptions, PrunePlan};
use tresor_core::repo::Defect;
use tresor_core::repo::snapshots::{future_after, is_future};
use tresor_core::retention::{KeepCount, RetentionPolicy};
use tresor_core::snapshots::{self, SnapshotFilter};
use tresor_core::{NoProgress, Repository, check, forget, keys};
use tresor_format::ObjectId;
use tresor_format::keyfile::KeyKind;
use tresor_format::marker::Marker;
use tresor_format::snapshot::{Snapshot, SnapshotSummary};
use tresor_storage::{Kind, Storage};

struct World {
    dir: tempfile::TempDir,
    storage: Arc<dyn Storage>,
    /// The victim's two snapshots (older first), tagged `nightly`.
    victim: [ObjectId; 2],
    /// The forger's own honest snapshot.
    evil: ObjectId,
    /// Key file of the forger.
    evil_key: ObjectId,
}

fn src(w: &tempfile::TempDir, host: &str) -> PathBuf {
    let p = w.path().join(host);
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("f"), format!("{host} data")).unwrap();
    p
}

/// A backup of `host`'s source dated `ago` before now, with `tags`.
fn backup_at(repo: &Repository, dir: &tempfile::TempDir, host: &str, ago: i64) -> ObjectId {
    let opts = BackupOptions {
        time: jiff::ZonedDateTime::now()
            .checked_sub(jiff::SignedDuration::from_mins(ago))
            .unwrap(),
        tags: vec!["nightly".into()],
        ..backup_options(&src(dir, host), host)
    };
    archiver::backup(repo, opts, &NoProgress)
        .unwrap()
        .snapshot_id
        .unwrap()
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let (storage, admin) = setup(dir.path());
    keys::add(&admin, "victim", KeyKind::PutOnly, KDF, &owner("victim")).unwrap();
    let evil_key = keys::add(&admin, "evil", KeyKind::PutOnly, KDF, &owner("evil")).unwrap();
    let victim = Repository::open(storage.clone(), "victim").unwrap();
    let v1 = backup_at(&victim, &dir, "victim", 120);
    let v2 = backup_at(&victim, &dir, "victim", 60);
    let evil = backup_at(
        &Repository::open(storage.clone(), "evil").unwrap(),
        &dir,
        "evil",
        60,
    );
    backup_at(&admin, &dir, "admin", 60);
    World {
        dir,
        storage,
        victim: [v1, v2],
        evil,
        evil_key,
    }
}

impl World {
    fn open(&self, password: &str) -> Repository {
        Repository::open(self.storage.clone(), password).unwrap()
    }

    /// `evil` signs a copy of the victim's newest snapshot, dated now, for host `evil`, changed
    /// by `f`.
    fn forge(&self, f: impl FnOnce(&mut Snapshot)) -> ObjectId {
        let mut s = self.open("admin").load_snapshot(&self.victim[1]).unwrap();
        s.hostname = "evil".into();
        s.time = jiff::Timestamp::now().to_string();
        f(&mut s);
        let evil = self.open("evil");
        evil.write_object(Kind::Snapshot, &s.seal(evil.key(), evil.signer()).unwrap())
            .unwrap()
    }

    fn victim_paths(&self) -> Vec<String> {
        vec![self.dir.path().join("victim").display().to_string()]
    }

    /// `latest` under a filter, with the admin key.
    fn latest(&self, hosts: &[&str], paths: Vec<String>, tags: &[&str]) -> ObjectId {
        let admin = self.open("admin");
        let (list, skipped) = admin.load_snapshots().unwrap();
        let filter = SnapshotFilter {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            paths,
            tags: vec![tags.iter().map(|t| t.to_string()).collect()],
        };
        snapshots::find(&list, &skipped, "latest", &filter)
            .unwrap()
            .0
    }

    /// `forget --keep-last 1` (grouped by host and paths): (kept, removed) of the victim's
    /// group, and the snapshots left out as future.
    fn keep_last_one(&self) -> (Vec<String>, Vec<String>, Vec<ObjectId>) {
        let policy = RetentionPolicy {
            keep_last: Some(KeepCount::Count(1)),
            ..Default::default()
        };
        let plan = forget::plan_policy(
            &self.open("admin"),
            &policy,
            Default::default(),
            &Default::default(),
            &jiff::tz::TimeZone::UTC,
        )
        .unwrap();
        let g = plan
            .groups
            .iter()
            .find(|g| g.key.host.as_deref() == Some("victim"))
            .unwrap();
        let ids = |v: Vec<&str>| v.into_iter().map(String::from).collect();
        let future = plan.future.iter().map(|(id, _)| *id).collect();
        (ids(g.kept().collect()), ids(g.removed().collect()), future)
    }

    /// The victim's group keeps its newest snapshot and removes the older, as without forgeries.
    fn victim_group_unchanged(&self) {
        let (kept, removed, _) = self.keep_last_one();
        assert_eq!(kept, [self.victim[1].to_hex()]);
        assert_eq!(removed, [self.victim[0].to_hex()]);
    }

    fn check(&self) -> check::CheckReport {
        let report = check::check(&self.open("admin"), check::ReadData::All).unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        report
    }

    fn plan(&self) -> PrunePlan {
        prune::plan(&self.open("admin"), &PruneOptions::default()).unwrap()
    }
}

#[test]
fn a_snapshot_claiming_another_host_is_ignored_and_reported() {
    let w = world();
    let forged = w.forge(|s| s.hostname = "victim".into());
    let admin = w.open("admin");
    let (list, skipped) = admin.load_snapshots().unwrap();
    assert!(!list.iter().any(|(id, _)| *id == forged));
    let s = skipped.iter().find(|s| s.id == forged).unwrap();
    assert_eq!(s.defect, Defect::Ignored);
    assert_eq!(
        s.error.to_string(),
        format!(
            "snapshot {forged} claims host \"victim\", but it is signed by a put-only key certified for host \"evil\": ignored"
        )
    );
    assert!(matches!(
        admin.load_snapshot(&forged),
        Err(tresor_core::CoreError::Untrusted(_))
    ));
    assert_eq!(w.latest(&["victim"], vec![], &[]), w.victim[1]);
    let paths = w.victim_paths();
    assert_eq!(
        w.latest(&[], paths, &[]),
        w.victim[1],
        "not even without a host"
    );
    w.victim_group_unchanged();
    let named: Vec<_> = w
        .check()
        .warnings
        .into_iter()
        .filter(|m| m.contains(&forged.to_hex()))
        .collect();
    assert_eq!(named.len(), 1, "{named:?}");
    assert!(named[0].contains("claims host \"victim\""));

    // Removing the key keeps it bound: its revocation accepts what it signed (the forgery
    // too) and names its host, so the forgery stays ignored and its own snapshot accepted.
    keys::remove(&admin, &w.evil_key.to_hex(), "2026-12-01T00:00:00Z").unwrap();
    let (list, skipped) = w.open("admin").load_snapshots().unwrap();
    assert!(list.iter().any(|(id, _)| *id == w.evil));
    assert!(
        skipped
            .iter()
            .any(|s| s.id == forged && s.defect == Defect::Ignored)
    );

    // A full key may write for any host.
    let mut s = admin.load_snapshot(&w.victim[1]).unwrap();
    s.time = jiff::Timestamp::now().to_string();
    let by_admin = admin.save_snapshot(&s).unwrap();
    assert_eq!(w.latest(&["victim"], vec![], &[]), by_admin);
}

#[test]
fn a_future_snapshot_is_flagged_never_latest_never_judged_by_a_policy() {
    let w = world();
    let in_30_days = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(30 * 24))
        .unwrap();
    // Its own host, and the victim's paths: only the time is forged.
    let future = w.forge(|s| s.time = in_30_days.to_string());
    let admin = w.open("admin");
    let (list, _) = admin.load_snapshots().unwrap();
    let (_, s) = list.iter().find(|(id, _)| *id == future).unwrap();
    assert!(is_future(s, future_after()));
    assert_eq!(list.last().unwrap().0, future, "it sorts last");
    assert_eq!(w.latest(&["evil"], vec![], &[]), w.evil);
    assert_eq!(w.latest(&[], w.victim_paths(), &[]), w.victim[1]);
    let (_, _, left_out) = w.keep_last_one();
    assert_eq!(left_out, [future]);
    w.victim_group_unchanged();
    let warned: Vec<_> = w
        .check()
        .warnings
        .into_iter()
        .filter(|m| m.contains(&future.to_hex()))
        .collect();
    assert_eq!(warned.len(), 1);
    assert!(
        warned[0].contains("more than a day ahead of this clock"),
        "{warned:?}"
    );

    // Within a day of the clock it is not future (clocks a little off, time zones).
    let soon = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(23))
        .unwrap();
    let near = w.forge(|s| s.time = soon.to_string());
    assert_eq!(w.latest(&[], w.victim_paths(), &[]), near);
}

#[test]
fn a_future_snapshot_does_not_approve_a_generation() {
    let w = world();
    let admin = w.open("admin");
    let extra = w.dir.path().join("extra");
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::write(extra.join("big"), data(5, 1 << 20)).unwrap();
    let gone = backup(&admin, &extra, "admin", None).snapshot_id.unwrap();
    forget::remove(&admin, &[gone]).unwrap();
    let plan = w.plan();
    assert!(!plan.condemn_unused.is_empty(), "{plan:?}");
    assert!(plan.execute(&admin, &NoProgress).unwrap().armed);

    backup_at(&admin, &w.dir, "admin", 0);
    backup_at(&w.open("victim"), &w.dir, "victim", 0);
    let in_a_year = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(365 * 24))
        .unwrap();
    w.forge(|s| s.time = in_a_year.to_string());
    let plan = w.plan();
    assert_eq!(plan.generations[0].waiting_for, ["evil"], "{plan:?}");
    assert!(plan.delete.is_empty());
    // A snapshot dated now approves it.
    w.forge(|_| {});
    let plan = w.plan();
    assert!(plan.generations[0].approved, "{plan:?}");
    assert!(!plan.delete.is_empty());
}

#[test]
fn a_far_past_snapshot_only_sorts_first_in_its_own_hosts_group() {
    let w = world();
    let old = w.forge(|s| s.time = "1970-01-02T00:00:00Z".into());
    let (list, _) = w.open("admin").load_snapshots().unwrap();
    assert_eq!(list[0].0, old);
    assert_eq!(w.latest(&["evil"], vec![], &[]), w.evil);
    assert_eq!(w.latest(&["victim"], vec![], &[]), w.victim[1]);
    w.victim_group_unchanged();
    w.check();
}

#[test]
fn forged_paths_and_tags_select_only_among_the_forgers_snapshots() {
    let w = world();
    // The newest snapshot, with the victim's paths and tag, of the forger's own host.
    let forged = w.forge(|s| s.tags = vec!["nightly".into(), "weekly".into()]);
    let paths = w.victim_paths();
    assert_eq!(
        w.latest(&["victim"], paths.clone(), &["nightly"]),
        w.victim[1]
    );
    // Without a host, `latest` is the newest of any host: the forger's (named as its host's).
    assert_eq!(w.latest(&[], paths, &["nightly"]), forged);
    w.victim_group_unchanged();
    let policy = RetentionPolicy {
        keep_last: Some(KeepCount::Count(1)),
        keep_tags: vec![vec!["weekly".into()]],
        ..Default::default()
    };
    let groups = forget::plan(
        &w.open("admin"),
        &policy,
        Default::default(),
        &Default::default(),
        &jiff::tz::TimeZone::UTC,
    )
    .unwrap();
    let victim = groups
        .iter()
        .find(|g| g.key.host.as_deref() == Some("victim"))
        .unwrap();
    let kept: Vec<&str> = victim.kept().collect();
    assert_eq!(kept, [w.victim[1].to_hex()]);
    w.check();
}

#[test]
fn a_forged_parent_and_summary_are_informational() {
    let w = world();
    let evil_paths = vec![w.dir.path().join("evil").display().to_string()];
    let summary = SnapshotSummary {
        total_bytes_processed: u64::MAX,
        errors: u64::MAX,
        backup_start: "not a time".into(),
        ..Default::default()
    };
    let forged = w.forge(|s| {
        s.parent = Some(w.victim[1]);
        s.paths = evil_paths.clone();
        s.summary = Some(summary.clone());
    });
    let admin = w.open("admin");
    let s = admin.load_snapshot(&forged).unwrap();
    assert_eq!((s.parent, s.summary), (Some(w.victim[1]), Some(summary)));
    // A full key backing up as host `evil` never takes it (nor any put-only snapshot of another
    // key) as its parent.
    let r = backup(&admin, &w.dir.path().join("evil"), "evil", None);
    assert_eq!(r.parent, None);
    w.victim_group_unchanged();
    w.check();
    assert!(w.plan().warnings.is_empty());
}

#[test]
fn forged_markers_do_not_hide_another_hosts_running_backup() {
    let w = world();
    // The victim's backup is running: its start marker is written, no snapshot lists it.
    let victim = w.open("victim");
    let m = Marker::new("victim", "2026-12-01T00:00:00Z").unwrap();
    let marker = victim
        .write_object(
            Kind::Marker,
            &m.seal(victim.key(), victim.signer()).unwrap(),
        )
        .unwrap();
    let exists = |id: &ObjectId| w.storage.size(Kind::Marker, &id.to_hex()).is_ok();
    // The forger lists it in a snapshot of its own host, and in one claiming the victim's.
    let own = w.forge(|s| s.markers = vec![marker]);
    w.forge(|s| {
        s.hostname = "victim".into();
        s.markers = vec![marker];
    });
    let admin = w.open("admin");
    let plan = w.plan();
    plan.execute(&admin, &NoProgress).unwrap();
    assert!(exists(&marker), "prune keeps another host's marker");
    forget::remove(&admin, &[own]).unwrap();
    assert!(exists(&marker), "forget keeps another host's marker");
    // The victim's own snapshot listing it ends it.
    let mut s = admin.load_snapshot(&w.victim[1]).unwrap();
    s.markers = vec![marker];
    victim
        .write_object(
            Kind::Snapshot,
            &s.seal(victim.key(), victim.signer()).unwrap(),
        )
        .unwrap();
    w.plan().execute(&admin, &NoProgress).unwrap();
    assert!(
        !exists(&marker),
        "the victim's snapshot resolves its marker"
    );
}
