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
    assert!(stored.len() >= 3, "about 9 refreshes in ~1 s: {}", stored.len());
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
