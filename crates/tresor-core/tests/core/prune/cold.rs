//! Prune on a cold tier (format §16.2): data packs in `DEEP_ARCHIVE` are never repacked (not
//! even read), a wholly unused one is condemned only after the class's minimum storage duration
//! or when asked, and a hot repository's prune never asks the storage about cold classes.

use super::*;
use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime};
use tresor_core::prune::ColdPackReport;
use tresor_storage::Forward;
use tresor_storage::cold::{ColdClass, ColdState, Restore};

/// Local storage whose data packs (every pack not written hot) lie in `DEEP_ARCHIVE`, stored at
/// `stored_at` (tree packs stay hot); counts `cold_state` calls and reads of cold packs.
#[derive(Debug)]
struct Chilly {
    inner: LocalStorage,
    cold: bool,
    stored_at: Mutex<SystemTime>,
    hot_packs: Mutex<BTreeSet<String>>,
    probes: AtomicU64,
    pack_reads: AtomicU64,
}

impl Chilly {
    fn is_cold(&self, kind: Kind, name: &str) -> bool {
        self.cold && kind == Kind::Pack && !self.hot_packs.lock().unwrap().contains(name)
    }

    /// The cold ones of `packs`.
    fn cold_of(&self, packs: &[prune::PlannedPack]) -> Vec<ObjectId> {
        let hot = self.hot_packs.lock().unwrap();
        (packs.iter().map(|p| p.id))
            .filter(|id| !hot.contains(&id.to_string()))
            .collect()
    }
}

impl Forward for Chilly {
    fn inner(&self) -> &dyn Storage {
        &self.inner
    }
    fn write_vec_hot(
        &self,
        kind: Kind,
        name: &str,
        data: Vec<u8>,
    ) -> tresor_storage::Result<Option<Vec<u8>>> {
        if kind == Kind::Pack {
            self.hot_packs.lock().unwrap().insert(name.to_string());
        }
        self.inner.write_vec_hot(kind, name, data)
    }
    fn write_file(
        &self,
        kind: Kind,
        name: &str,
        path: &std::path::Path,
        len: u64,
        hot: bool,
    ) -> tresor_storage::Result<()> {
        if hot && kind == Kind::Pack {
            self.hot_packs.lock().unwrap().insert(name.to_string());
        }
        self.inner.write_file(kind, name, path, len, hot)
    }
    fn read(&self, kind: Kind, name: &str) -> tresor_storage::Result<Vec<u8>> {
        if self.is_cold(kind, name) {
            self.pack_reads.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.read(kind, name)
    }
    fn read_range(
        &self,
        kind: Kind,
        name: &str,
        o: u64,
        l: u64,
    ) -> tresor_storage::Result<Vec<u8>> {
        if self.is_cold(kind, name) {
            self.pack_reads.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.read_range(kind, name, o, l)
    }
    fn cold_state(&self, kind: Kind, name: &str) -> tresor_storage::Result<Option<ColdState>> {
        self.probes.fetch_add(1, Ordering::SeqCst);
        self.inner.size(kind, name)?;
        Ok(self.is_cold(kind, name).then(|| ColdState {
            class: ColdClass::DeepArchive,
            restore: Restore::None,
            stored_at: Some(*self.stored_at.lock().unwrap()),
        }))
    }
}

/// A repository on [`Chilly`] with three snapshots; the first is forgotten, so that some data
/// packs are wholly unused and some partly used. Returns the storage, the repository, the
/// source directory (holding the last version), the kept snapshot and its files.
fn forgotten(cold: bool) -> (tempfile::TempDir, Arc<Chilly>, Repository, ObjectId, Files) {
    let dir = tempfile::tempdir().unwrap();
    let chilly = Arc::new(Chilly {
        inner: LocalStorage::new(dir.path().join("repo")),
        cold,
        stored_at: Mutex::new(SystemTime::now()),
        hot_packs: Mutex::default(),
        probes: AtomicU64::new(0),
        pack_reads: AtomicU64::new(0),
    });
    let owner = KeyOwner {
        host: "admin".into(),
        username: "test".into(),
        created: "2026-11-30T00:00:00Z".into(),
    };
    let repo = Repository::init(chilly.clone(), PW, KDF, &owner, small_config()).unwrap();
    let src = dir.path().join("src");
    // v1: a.bin (wholly dropped later) and small files; v2 keeps every other small file.
    let mut v1 = files(&[("a.bin", 1, 600 << 10)]);
    for i in 0..24u64 {
        v1.insert(format!("s{i:02}"), bytes(100 + i, 20 << 10));
    }
    write_tree(&src, &v1);
    let s1 = backup(&repo, &src, "h");
    let mut v2 = v1.clone();
    v2.remove("a.bin");
    for i in (1..24).step_by(2) {
        v2.remove(&format!("s{i:02}"));
    }
    write_tree(&src, &v2);
    let s2 = backup(&repo, &src, "h");
    let r = tresor_core::forget::remove(&repo, &[s1]).unwrap();
    assert_eq!(r.deleted, vec![s1]);
    (dir, chilly, repo, s2, v2)
}

fn opts(probe: bool, early: bool) -> PruneOptions {
    PruneOptions {
        max_unused: MaxUnused::Percent(0.0),
        cold_probe: probe,
        cold_early_delete: early,
        ..PruneOptions::default()
    }
}

fn ids(v: &[ColdPackReport]) -> Vec<ObjectId> {
    v.iter().map(|c| c.pack.id).collect()
}

/// A hot repository's prune asks no cold state, however many packs are unused; cold probing
/// over a hot storage changes nothing either.
#[test]
fn a_hot_repository_prune_asks_no_cold_state() {
    let (_dir, chilly, repo, _, _) = forgotten(false);
    let plan = prune::plan(&repo, &opts(false, false)).unwrap();
    assert!(!plan.condemn_unused.is_empty(), "{plan:?}");
    plan.execute(&repo, &NoProgress).unwrap();
    assert_eq!(chilly.probes.load(Ordering::SeqCst), 0);
    let again = prune::plan(&repo, &opts(true, false)).unwrap();
    assert!(again.cold_kept.is_empty() && again.cold_early.is_empty());
}

/// Young cold packs: nothing is repacked or condemned (no pack is read), both kinds are
/// reported; `--cold-early-delete` condemns the wholly unused ones only; aged ones go anyway.
#[test]
fn cold_packs_are_not_repacked_and_kept_until_their_minimum_storage() {
    let (dir, chilly, repo, s2, v2) = forgotten(true);
    chilly.pack_reads.store(0, Ordering::SeqCst);
    let plan = prune::plan(&repo, &opts(true, false)).unwrap();
    assert_eq!(chilly.cold_of(&plan.repack), []);
    assert_eq!(chilly.cold_of(&plan.condemn_unused), []);
    let unused: Vec<_> = plan
        .cold_kept
        .iter()
        .filter(|c| c.pack.used_blobs == 0)
        .collect();
    let partly: Vec<_> = plan
        .cold_kept
        .iter()
        .filter(|c| c.pack.used_blobs > 0)
        .collect();
    assert!(
        !unused.is_empty() && !partly.is_empty(),
        "{:?}",
        plan.cold_kept
    );
    let due = *chilly.stored_at.lock().unwrap() + Duration::from_secs(180 * 86_400);
    for c in &plan.cold_kept {
        assert_eq!(c.class, "DEEP_ARCHIVE");
        assert_eq!(
            c.minimum_storage_until,
            Some(tresor_core::repo::rfc3339_utc(due))
        );
    }
    let stats = plan.execute(&repo, &NoProgress).unwrap();
    assert_eq!(chilly.pack_reads.load(Ordering::SeqCst), 0);
    let cold: Vec<&FreedLater> = (stats.freed_later.iter())
        .filter(|f| matches!(f.when, Later::Cold | Later::ColdMinimum))
        .collect();
    let size = |v: &[&ColdPackReport]| v.iter().map(|c| c.pack.size).sum::<u64>();
    let partly_unused: u64 = partly.iter().map(|c| c.pack.size - c.pack.used_bytes).sum();
    assert_eq!(
        cold,
        [
            &FreedLater {
                packs: partly.len(),
                bytes: partly_unused,
                when: Later::Cold,
                hosts: vec![]
            },
            &FreedLater {
                packs: unused.len(),
                bytes: size(&unused),
                when: Later::ColdMinimum,
                hosts: vec![]
            }
        ]
    );
    // Early deletion asked: exactly the wholly unused cold packs are condemned.
    let early = prune::plan(&repo, &opts(true, true)).unwrap();
    let condemned = chilly.cold_of(&early.condemn_unused);
    assert_eq!(condemned, ids(&early.cold_early));
    assert_eq!(
        condemned,
        unused.iter().map(|c| c.pack.id).collect::<Vec<_>>()
    );
    assert_eq!(chilly.cold_of(&early.repack), []);
    // Aged (181 days): condemned without being asked, reported as kept no more.
    *chilly.stored_at.lock().unwrap() = SystemTime::now() - Duration::from_secs(181 * 86_400);
    let aged = prune::plan(&repo, &opts(true, false)).unwrap();
    assert_eq!(chilly.cold_of(&aged.condemn_unused), condemned);
    assert!(aged.cold_early.is_empty());
    assert_eq!(chilly.cold_of(&aged.repack), []);
    assert_eq!(aged.cold_kept.len(), partly.len());
    assert_restores(&repo, &s2, &dir.path().join("src"), &v2);
}
