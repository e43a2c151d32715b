//! Thawing cold data packs before a restore (the cold tier, issue 18).
//!
//! Data packs may lie in a storage class that cannot be read without a thaw (S3 `GLACIER`,
//! `DEEP_ARCHIVE`; [`tresor_storage::cold`]). [`needed_packs`] works out the packs a snapshot's
//! files need (from its trees, which stay hot, and the index); [`thaw`] asks the storage about
//! each, sends one thaw request per cold pack not yet thawed nor recorded as requested in the
//! [`Requests`] file, and polls (with backoff, for at most [`ThawOptions::wait`]) until all can
//! be read. Requests sent are recorded (pack id, tier, time) so that a rerun sends none again
//! for packs already thawing.

use crate::Result;
use crate::repo::blobs::BlobReader;
use crate::repo::index::Index;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use tresor_format::{BlobId, ObjectId};
use tresor_storage::cold::{ColdClass, Restore, ThawTier};
use tresor_storage::{Kind, Storage};

/// How to thaw.
#[derive(Debug, Clone)]
pub struct ThawOptions {
    /// The retrieval tier of new requests.
    pub tier: ThawTier,
    /// Days the thawed copies stay readable.
    pub days: u32,
    /// How long to wait for thaws to finish before giving up ([`Thawed::complete`] false).
    pub wait: Duration,
    /// First pause between polls; doubled after each, up to [`MAX_POLL`].
    pub first_poll: Duration,
    /// Only report (the bytes to thaw): send no request, wait for nothing.
    pub dry_run: bool,
}

/// The longest pause between two polls of the thaw states.
pub const MAX_POLL: Duration = Duration::from_secs(600);

/// Packs and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    /// Number of packs.
    pub packs: u64,
    /// Their stored size, bytes.
    pub bytes: u64,
}

impl Count {
    fn add(&mut self, bytes: u64) {
        self.packs += 1;
        self.bytes += bytes;
    }
}

/// What [`thaw`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Thawed {
    /// Every data pack the snapshot needs.
    pub needed: Count,
    /// Those in a cold class (thawed or not).
    pub cold: Count,
    /// Cold packs readable now (thawed).
    pub thawed: Count,
    /// Cold packs still thawing (or, with `dry_run`, to be thawed).
    pub thawing: Count,
    /// Thaw requests sent by this run.
    pub requests_sent: u64,
    /// Cold packs whose thaw an earlier run had asked for (no new request sent).
    pub requested_before: u64,
    /// Bytes to thaw per cold class (for the expected wait and the cost).
    pub to_thaw_by_class: BTreeMap<&'static str, u64>,
    /// Polls of the thaw states after the first look.
    pub polls: u64,
    /// Whether every needed pack can be read now.
    pub complete: bool,
    /// The cold packs still thawing (or, with `dry_run`, to be thawed), in the order given:
    /// a restore leaves the files needing them for a later run
    /// (`restorer::RestoreOptions::skip_packs`).
    pub pending: Vec<ObjectId>,
}

/// The data packs holding the content of every file below `root`, with their sizes from the
/// storage's listing (packs missing from the listing count with size 0).
///
/// # Errors
/// Tree read errors, listing errors.
pub fn needed_packs(
    reader: &BlobReader<'_>,
    index: &Index,
    storage: &dyn Storage,
    root: &BlobId,
) -> Result<Vec<(ObjectId, u64)>> {
    needed_packs_of(reader, index, storage, std::slice::from_ref(root))
}

/// [`needed_packs`] of several trees (each pack once).
///
/// # Errors
/// Tree read errors, listing errors.
pub fn needed_packs_of(
    reader: &BlobReader<'_>,
    index: &Index,
    storage: &dyn Storage,
    roots: &[BlobId],
) -> Result<Vec<(ObjectId, u64)>> {
    let mut packs = std::collections::BTreeSet::new();
    for root in roots {
        crate::repo::tree::walk(reader, root, "/", &mut |_, n| {
            add_packs(index, n, &mut packs);
        })?;
    }
    with_sizes(storage, packs)
}

/// The data packs of what `path` (a snapshot path; `/` for everything) names below `root`: a
/// file's content, or every file below a directory (none when nothing is there: the caller
/// reports a missing path). Sizes as [`needed_packs`].
///
/// # Errors
/// Tree read errors, listing errors.
pub fn needed_packs_below(
    reader: &BlobReader<'_>,
    index: &Index,
    storage: &dyn Storage,
    root: &BlobId,
    path: &[u8],
) -> Result<Vec<(ObjectId, u64)>> {
    let mut packs = std::collections::BTreeSet::new();
    let dirs = [path.to_vec()];
    crate::repo::tree::walk_selected(reader, root, &dirs, true, &mut |_, n| {
        add_packs(index, n, &mut packs);
    })?;
    with_sizes(storage, packs)
}

/// Every pack a restore of these snapshot trees reads: the packs of their tree blobs (the roots
/// and every subtree) and of their files' data blobs, each once. Blobs the index lacks are left
/// out (the restore would report them missing).
///
/// # Errors
/// Tree read errors.
pub fn restore_packs(
    reader: &BlobReader<'_>,
    index: &Index,
    roots: &[BlobId],
) -> Result<std::collections::BTreeSet<ObjectId>> {
    let mut packs = std::collections::BTreeSet::new();
    let add = |id: &BlobId, packs: &mut std::collections::BTreeSet<ObjectId>| {
        if let Some(loc) = index.get(id) {
            packs.insert(index.pack(loc.pack).id);
        }
    };
    for root in roots {
        add(root, &mut packs);
        crate::repo::tree::walk(reader, root, "/", &mut |_, n| {
            add_packs(index, n, &mut packs);
            if let Some(sub) = &n.subtree {
                add(sub, &mut packs);
            }
        })?;
    }
    Ok(packs)
}

fn add_packs(
    index: &Index,
    n: &tresor_format::tree::Node,
    packs: &mut std::collections::BTreeSet<ObjectId>,
) {
    for id in &n.content {
        if let Some(loc) = index.get(id) {
            packs.insert(index.pack(loc.pack).id);
        }
    }
}

/// Each pack of `ids` with its size from the storage's listing (0 for a pack the listing
/// lacks), in the order given.
///
/// # Errors
/// Listing errors.
pub fn with_sizes(
    storage: &dyn Storage,
    ids: impl IntoIterator<Item = ObjectId>,
) -> Result<Vec<(ObjectId, u64)>> {
    let sizes: BTreeMap<String, u64> = storage.list(Kind::Pack)?.into_iter().collect();
    Ok(ids
        .into_iter()
        .map(|id| (id, sizes.get(&id.to_hex()).copied().unwrap_or(0)))
        .collect())
}

/// Bring every pack of `packs` to a readable state (see the module doc).
///
/// # Errors
/// Storage errors of `HEAD` or of a thaw request (an unreadable `x-amz-restore` among them);
/// an unwritable request record.
pub fn thaw(
    storage: &dyn Storage,
    packs: &[(ObjectId, u64)],
    opts: &ThawOptions,
    record: &mut Requests,
    sleep: &mut dyn FnMut(Duration),
) -> Result<Thawed> {
    let started = Instant::now();
    let mut out = Thawed::default();
    let mut pending = look(storage, packs, opts, record, &mut out)?;
    let mut pause = opts.first_poll.max(Duration::from_millis(1));
    let mut slept = Duration::ZERO;
    while !pending.is_empty() && !opts.dry_run {
        // The time passed: the clock's, or the pauses (whichever says more).
        if started.elapsed().max(slept) + pause > opts.wait {
            break;
        }
        sleep(pause);
        slept += pause;
        pause = (pause * 2).min(MAX_POLL);
        out.polls += 1;
        pending = poll(storage, pending, &mut out)?;
    }
    out.complete = pending.is_empty();
    out.pending = pending.into_iter().map(|(id, _)| id).collect();
    Ok(out)
}

/// The first look at every pack: counts, and requests for cold packs not yet thawing.
fn look(
    storage: &dyn Storage,
    packs: &[(ObjectId, u64)],
    opts: &ThawOptions,
    record: &mut Requests,
    out: &mut Thawed,
) -> Result<Vec<(ObjectId, u64)>> {
    let mut pending = Vec::new();
    for &(id, size) in packs {
        out.needed.add(size);
        let name = id.to_hex();
        let Some(state) = storage.cold_state(Kind::Pack, &name)? else {
            continue;
        };
        out.cold.add(size);
        if state.restore == Restore::Done {
            out.thawed.add(size);
            continue;
        }
        *out.to_thaw_by_class
            .entry(class_name(state.class))
            .or_default() += size;
        out.thawing.add(size);
        pending.push((id, size));
        if opts.dry_run {
            continue;
        }
        let asked = record.contains(&id);
        out.requested_before += u64::from(asked);
        // Under way (whoever asked): no new request. Never asked, or an earlier thaw lost or
        // expired: ask (again).
        if state.restore == Restore::None {
            storage.request_thaw(Kind::Pack, &name, opts.tier, opts.days)?;
            record.add(&id, opts.tier)?;
            out.requests_sent += 1;
        }
    }
    Ok(pending)
}

/// One more look at the packs still thawing; returns those that still are.
fn poll(
    storage: &dyn Storage,
    pending: Vec<(ObjectId, u64)>,
    out: &mut Thawed,
) -> Result<Vec<(ObjectId, u64)>> {
    let mut still = Vec::new();
    for (id, size) in pending {
        let state = storage.cold_state(Kind::Pack, &id.to_hex())?;
        if state.is_none_or(|s| s.restore == Restore::Done) {
            out.thawed.add(size);
            out.thawing.packs -= 1;
            out.thawing.bytes -= size;
        } else {
            still.push((id, size));
        }
    }
    Ok(still)
}

fn class_name(c: ColdClass) -> &'static str {
    c.as_s3()
}

/// The record of thaw requests sent, one line per pack: `PACK-ID TIER UNIX-SECONDS`, in a file
/// of the local cache (`thaw/REPOSITORY-ID` under the cache directory). Without a cache
/// (`--no-cache`) it lives in memory only.
#[derive(Debug, Default)]
pub struct Requests {
    path: Option<PathBuf>,
    sent: BTreeMap<ObjectId, (String, u64)>,
}

impl Requests {
    /// The record of repository `repo_id` under `cache_dir` (`None`: in memory). Lines that do
    /// not parse are ignored (a damaged record costs at most a repeated request).
    pub fn open(cache_dir: Option<&Path>, repo_id: &str) -> Requests {
        let path = cache_dir
            .filter(|_| repo_id.bytes().all(|b| b.is_ascii_alphanumeric()))
            .map(|d| d.join("thaw").join(repo_id));
        let text = path.as_ref().and_then(|p| std::fs::read_to_string(p).ok());
        let sent = text
            .iter()
            .flat_map(|t| t.lines())
            .filter_map(|l| {
                let mut f = l.split(' ');
                let id: ObjectId = f.next()?.parse().ok()?;
                let tier = f.next()?.to_string();
                let at = f.next()?.parse().ok()?;
                Some((id, (tier, at)))
            })
            .collect();
        Requests { path, sent }
    }

    /// Whether a thaw of `id` was asked for.
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.sent.contains_key(id)
    }

    /// The packs whose thaw was asked for less than `age` ago (by this machine's clock):
    /// thawing, or thawed and perhaps still readable.
    pub fn requested_within(&self, age: Duration) -> Vec<ObjectId> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let since = now.saturating_sub(age.as_secs());
        (self.sent.iter())
            .filter(|(_, (_, at))| *at >= since)
            .map(|(id, _)| *id)
            .collect()
    }

    /// How many requests are recorded.
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// Record a request (appended to the file at once, so that an interrupted run keeps it).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn add(&mut self, id: &ObjectId, tier: ThawTier) -> Result<()> {
        let at = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.sent.insert(*id, (tier.to_string(), at));
        let Some(path) = &self.path else {
            return Ok(());
        };
        let line = format!("{} {tier} {at}\n", id.to_hex());
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            std::io::Write::write_all(&mut f, line.as_bytes())
        };
        write().map_err(|source| crate::CoreError::Io {
            path: path.display().to_string(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tresor_storage::cold::ColdState;
    use tresor_storage::memory::MemoryStorage;
    use tresor_storage::{Forward, name_of};

    /// Every pack is cold; a requested thaw finishes after `polls_to_finish` looks at it
    /// (`u32::MAX`: never). Counts requests per pack.
    #[derive(Debug)]
    struct Glacier {
        inner: MemoryStorage,
        polls_to_finish: u32,
        state: Mutex<BTreeMap<String, (u32, u32)>>,
    }

    impl Glacier {
        fn new(polls_to_finish: u32) -> Glacier {
            Glacier {
                inner: MemoryStorage::new(),
                polls_to_finish,
                state: Mutex::default(),
            }
        }
        fn requests(&self) -> u32 {
            self.state.lock().unwrap().values().map(|v| v.0).sum()
        }
    }

    impl Forward for Glacier {
        fn inner(&self) -> &dyn Storage {
            &self.inner
        }
        fn cold_state(&self, _: Kind, name: &str) -> tresor_storage::Result<Option<ColdState>> {
            let mut st = self.state.lock().unwrap();
            let restore = match st.get_mut(name) {
                None => Restore::None,
                Some((_, looks)) => {
                    *looks = looks.saturating_add(1);
                    if *looks > self.polls_to_finish {
                        Restore::Done
                    } else {
                        Restore::Ongoing
                    }
                }
            };
            Ok(Some(ColdState {
                class: ColdClass::DeepArchive,
                restore,
                stored_at: None,
            }))
        }
        fn request_thaw(
            &self,
            _: Kind,
            name: &str,
            _: ThawTier,
            _: u32,
        ) -> tresor_storage::Result<()> {
            self.state.lock().unwrap().entry(name.into()).or_default().0 += 1;
            Ok(())
        }
    }

    fn packs(n: u8) -> Vec<(ObjectId, u64)> {
        (0..n)
            .map(|i| (name_of(&[i]).parse().unwrap(), 100 + u64::from(i)))
            .collect()
    }

    fn opts(wait_secs: u64) -> ThawOptions {
        ThawOptions {
            tier: ThawTier::Bulk,
            days: 2,
            wait: Duration::from_secs(wait_secs),
            first_poll: Duration::from_secs(1),
            dry_run: false,
        }
    }

    #[test]
    fn an_interrupted_thaw_resumes_without_new_requests() {
        let s = Glacier::new(1);
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Requests::open(Some(dir.path()), "repo1");
        let t = thaw(&s, &packs(3), &opts(0), &mut rec, &mut |_| {
            panic!("no wait")
        })
        .unwrap();
        assert!(!t.complete);
        assert_eq!((t.requests_sent, t.requested_before), (3, 0));
        assert_eq!(
            t.thawing,
            Count {
                packs: 3,
                bytes: 303
            }
        );
        assert_eq!(s.requests(), 3);
        let ids: Vec<ObjectId> = packs(3).iter().map(|p| p.0).collect();
        assert_eq!(t.pending, ids);
        // A new run (the record read back from the cache): the packs are thawing, none is
        // asked for again; the next look finds them thawed.
        let mut rec = Requests::open(Some(dir.path()), "repo1");
        assert_eq!(rec.len(), 3);
        let mut slept = Vec::new();
        let t = thaw(&s, &packs(3), &opts(60), &mut rec, &mut |d| slept.push(d)).unwrap();
        assert!(t.complete);
        assert_eq!((t.requests_sent, t.requested_before), (0, 3));
        assert_eq!(
            t.thawed,
            Count {
                packs: 3,
                bytes: 303
            }
        );
        assert_eq!(t.thawing, Count::default());
        assert!(t.pending.is_empty());
        assert_eq!(slept, [Duration::from_secs(1)]);
        assert_eq!(s.requests(), 3);
    }

    #[test]
    fn a_thaw_that_never_finishes_stops_at_the_wait() {
        let s = Glacier::new(u32::MAX);
        let mut rec = Requests::default();
        let mut total = Duration::ZERO;
        let t = thaw(&s, &packs(2), &opts(100), &mut rec, &mut |d| total += d).unwrap();
        assert!(!t.complete);
        // Pauses 1, 2, 4, 8, 16, 32 s: the next (64 s) would pass the 100 s wait.
        assert_eq!(t.polls, 6);
        assert_eq!(total, Duration::from_secs(63));
        assert_eq!(s.requests(), 2);
    }

    #[test]
    fn dry_run_sends_nothing_and_counts_bytes_per_class() {
        let s = Glacier::new(0);
        let mut rec = Requests::default();
        let o = ThawOptions {
            dry_run: true,
            ..opts(0)
        };
        let t = thaw(&s, &packs(2), &o, &mut rec, &mut |_| panic!("no wait")).unwrap();
        assert_eq!(s.requests(), 0);
        assert!(rec.is_empty());
        assert_eq!(t.to_thaw_by_class.get("DEEP_ARCHIVE"), Some(&201));
    }

    #[test]
    fn a_damaged_record_costs_at_most_a_repeated_request() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("thaw")).unwrap();
        let good: ObjectId = name_of(b"g").parse().unwrap();
        let text = format!("garbage\n{} bulk 5\nzz bulk x\n\u{0}\n", good.to_hex());
        std::fs::write(dir.path().join("thaw/r"), text).unwrap();
        let rec = Requests::open(Some(dir.path()), "r");
        assert_eq!(rec.len(), 1);
        assert!(rec.contains(&good));
        // Asked for at 5 s after the epoch: long ago.
        assert!(rec.requested_within(Duration::from_secs(86_400)).is_empty());
        assert_eq!(rec.requested_within(Duration::MAX), [good]);
        // A hostile repository id never names a path outside the cache.
        let rec = Requests::open(Some(dir.path()), "../../etc");
        assert!(rec.path.is_none());
    }
}
