//! The packer: turns blobs into packs and index objects, in background threads.
//!
//! ```text
//! caller ──(type, id, plaintext)──▶ N workers ──(pack bytes)──▶ uploader ──▶ storage
//!           bounded channel          each owns one open          writes the pack, then an
//!                                    data pack and one tree pack index object every
//!                                                                INDEX_FLUSH packs and at the end
//! ```
//! Workers compress and encrypt ([`tresor_format::pack::PackBuilder`]); a pack is closed when it
//! reaches the configured size. The uploader writes each pack before listing it in an index
//! object, so an index never names a pack that is not stored (format §12). If the process dies,
//! packs not yet indexed are unreferenced and later removed by prune; indexed ones are reused by
//! the next backup. An index object lists up to [`INDEX_FLUSH`] packs (32), so a run of up to
//! 32 packs writes a single one (a PUT each on S3); the price is that a crash may leave up to
//! 31 stored packs unindexed (496 MiB at the default `pack_size`, 15 with the former 16 per
//! object), which the next backup uploads again. The packer counts each index object's bytes
//! and writes it before it would pass readers' limit ([`crate::repo::limits::max_index_size`]). Memory is bounded: the channels are bounded and each worker holds at most two
//! open packs.
//!
//! **One unfinished pack per run.** When the input ends, each worker leaves its unfinished data
//! and tree packs to the last worker still running, which combines them ([`close_tail`]): per
//! blob type, the fullest pack takes in the others' blobs — decoded with their packs' own data
//! keys and encoded again under its own, frames rebuilt — and is closed whenever full. So a run
//! writes at most one data pack and one tree pack below `pack_size`, not one per worker (a PUT
//! each on S3). This costs one decode and encode of the smaller packs' blobs (at most
//! `workers − 1` packs, usually well under one), and no memory beyond the packs the workers
//! held anyway, one new pack and one decoded blob or frame.
//!
//! Blobs travel in batches (up to [`BATCH_BYTES`] or [`BATCH_BLOBS`]), so that backing up many
//! small files costs one channel hand-off per batch, not per file. Buffers are recycled: workers
//! hand chunk buffers back to the caller ([`Packer::buffer`]) and the uploader hands written
//! pack buffers back to the workers, so large buffers are not mapped and faulted in again for
//! every chunk and every pack.

use crate::error::{CoreError, Result};
use crossbeam_channel::{Receiver, Sender, bounded};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tresor_format::blob::BlobType;
use tresor_format::crypto::MasterKey;
use tresor_format::index::{IndexFile, IndexPack};
use tresor_format::pack::PackBuilder;
use tresor_format::sign::Signer;
use tresor_format::{BlobId, ObjectId};
use tresor_storage::{Kind, Storage};

/// Packs per index object that readers' size limit for index objects is sized for
/// ([`crate::repo::limits::max_index_size`]: `INDEX_EVERY × pack_size`).
pub const INDEX_EVERY: usize = 16;

/// A run writes an index object once this many packs are stored and not yet listed (and one at
/// its end): a run of up to `INDEX_FLUSH` packs (512 MiB at the default `pack_size`) writes
/// one index object. An index object is also written earlier when the next pack would take it
/// over readers' size limit (see [`Pending`]), which only packs of many tiny blobs reach.
pub const INDEX_FLUSH: usize = 2 * INDEX_EVERY;

/// Bytes of an index object besides what [`index_bytes`] counts per pack, at most: the signed
/// envelope (signer, signature), HPKE's encapsulated key and tag, the dedup list's nonce and
/// tag, the `IndexFile`'s version and list lengths (format §3, §9). About 250 bytes.
const INDEX_OVERHEAD: u64 = 1024;

/// A batch of blobs is handed to the workers once it holds this many plaintext bytes…
pub const BATCH_BYTES: usize = 1 << 20;
/// … or this many blobs.
pub const BATCH_BLOBS: usize = 256;

/// Chunk buffers at least this large (bytes) are recycled through [`Packer::buffer`].
const RECYCLE_MIN: usize = 64 << 10;
/// Bytes a pack buffer holds beyond `pack_size`: the stored length of a blob of the default
/// largest chunk (4 MiB, Padmé-padded to 4 MiB + 128 KiB, format §7) and 64 KiB for the sealed
/// header.
const LAST_BLOB_ROOM: usize = tresor_format::blob::stored_len(4 << 20) + (64 << 10);

/// What the packer wrote.
#[derive(Debug, Default, Clone)]
pub struct PackerStats {
    /// Packs written.
    pub packs: u64,
    /// Bytes written to storage (packs and index objects).
    pub bytes_written: u64,
    /// Data blobs stored.
    pub data_blobs: u64,
    /// Tree blobs stored.
    pub tree_blobs: u64,
    /// Index objects written.
    pub index_objects: Vec<ObjectId>,
    /// Packs written, as indexed.
    pub packs_written: Vec<IndexPack>,
}

struct Job {
    blob_type: BlobType,
    id: BlobId,
    data: Vec<u8>,
}

#[derive(Default)]
struct Batch {
    jobs: Vec<Job>,
    bytes: usize,
}

/// Background pack writer. Call [`Packer::add`] for each new blob, then [`Packer::finish`].
pub struct Packer {
    tx: Option<Sender<Vec<Job>>>,
    batch: Mutex<Batch>,
    /// Chunk buffers handed back by the workers.
    spare: Receiver<Vec<u8>>,
    workers: Vec<JoinHandle<()>>,
    uploader: Option<JoinHandle<PackerStats>>,
    error: Arc<Mutex<Option<CoreError>>>,
    dry_run: bool,
}

fn record(error: &Mutex<Option<CoreError>>, e: CoreError) {
    let mut g = error.lock().expect("packer error lock");
    if g.is_none() {
        *g = Some(e);
    }
}

impl Packer {
    /// [`Packer::with_version`] writing format version [`tresor_format::REPO_VERSION`] (3).
    #[allow(
        clippy::too_many_arguments,
        reason = "the packer's settings; an options struct is r12-core's to introduce"
    )]
    pub fn new(
        storage: Arc<dyn Storage>,
        key: MasterKey,
        signer: Signer,
        pack_size: u64,
        level: i32,
        workers: usize,
        dry_run: bool,
    ) -> Self {
        let v = tresor_format::REPO_VERSION;
        Self::with_version(storage, key, signer, pack_size, level, v, workers, dry_run)
    }

    /// Start `workers` worker threads and an uploader writing to `storage`; index objects are
    /// signed by `signer`. Packs and index objects are written in format `version` (the
    /// repository's config `version`: 3 collects small data blobs into frames, 2 does not).
    /// With `dry_run`, blobs are encoded and counted but nothing is written.
    #[allow(
        clippy::too_many_arguments,
        reason = "the packer's settings; an options struct is r12-core's to introduce"
    )]
    pub fn with_version(
        storage: Arc<dyn Storage>,
        key: MasterKey,
        signer: Signer,
        pack_size: u64,
        level: i32,
        version: u32,
        workers: usize,
        dry_run: bool,
    ) -> Self {
        let n = workers.max(1);
        let (tx, rx) = bounded::<Vec<Job>>(n);
        let (ptx, prx) = bounded::<(Vec<u8>, IndexPack, BlobType)>(0);
        let (spare_tx, spare) = bounded::<Vec<u8>>(n + 1);
        // One spare pack buffer per upload in flight: written packs come back at about the
        // rate workers fill new ones.
        let (pack_spare_tx, pack_spare) = bounded::<Vec<u8>>(storage.write_concurrency().max(1));
        let error = Arc::new(Mutex::new(None));
        let key = Arc::new(key);
        let tail = Arc::new(Mutex::new(Tail {
            running: n,
            open: Vec::new(),
        }));
        let settings = Settings {
            pack_size,
            level,
            version,
        };
        let workers = (0..n)
            .map(|_| {
                let ctx = WorkerCtx {
                    rx: rx.clone(),
                    ptx: ptx.clone(),
                    spare: spare_tx.clone(),
                    pack_spare: pack_spare.clone(),
                    tail: tail.clone(),
                };
                let (key, error) = (key.clone(), error.clone());
                std::thread::spawn(move || worker(ctx, &key, settings, &error))
            })
            .collect();
        drop(ptx);
        let uploader = {
            let error = error.clone();
            std::thread::spawn(move || {
                uploader(
                    prx,
                    pack_spare_tx,
                    storage.as_ref(),
                    (&key, &signer, version),
                    dry_run,
                    Pending::new(pack_size),
                    &error,
                )
            })
        };
        Packer {
            tx: Some(tx),
            batch: Mutex::new(Batch::default()),
            spare,
            workers,
            uploader: Some(uploader),
            error,
            dry_run,
        }
    }

    /// Whether this packer writes nothing.
    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// An empty buffer to put the next blob's plaintext in: one handed back by a worker when
    /// there is one (its capacity kept), else a new one.
    pub fn buffer(&self) -> Vec<u8> {
        let mut b = self.spare.try_recv().unwrap_or_default();
        b.clear();
        b
    }

    /// Queue a new blob. Blocks while the workers are busy.
    ///
    /// # Errors
    /// The first error of a worker or the uploader (e.g. a full disk), after which the packer is
    /// unusable.
    pub fn add(&self, blob_type: BlobType, id: BlobId, data: Vec<u8>) -> Result<()> {
        if let Some(e) = self.take_error() {
            return Err(e);
        }
        let full = {
            let mut batch = self.batch.lock().expect("packer batch lock");
            batch.bytes += data.len();
            batch.jobs.push(Job {
                blob_type,
                id,
                data,
            });
            (batch.bytes >= BATCH_BYTES || batch.jobs.len() >= BATCH_BLOBS)
                .then(|| std::mem::take(&mut *batch).jobs)
        };
        match full {
            Some(jobs) => self.send(jobs),
            None => Ok(()),
        }
    }

    fn send(&self, jobs: Vec<Job>) -> Result<()> {
        let tx = self.tx.as_ref().expect("packer not finished");
        if tx.send(jobs).is_err() {
            return Err(self
                .take_error()
                .unwrap_or_else(|| CoreError::Damaged("packer stopped".into())));
        }
        Ok(())
    }

    /// Hand the queued blobs to the workers.
    fn flush(&self) -> Result<()> {
        let jobs = std::mem::take(&mut *self.batch.lock().expect("packer batch lock")).jobs;
        if jobs.is_empty() {
            return Ok(());
        }
        self.send(jobs)
    }

    fn take_error(&self) -> Option<CoreError> {
        self.error.lock().expect("packer error lock").take()
    }

    /// Flush all open packs, write the last index object and stop the threads.
    ///
    /// # Errors
    /// The first error any thread met.
    pub fn finish(mut self) -> Result<PackerStats> {
        let flushed = self.flush();
        drop(self.tx.take());
        for w in self.workers.drain(..) {
            if w.join().is_err() {
                record(
                    &self.error,
                    CoreError::Damaged("packer worker panicked".into()),
                );
            }
        }
        let stats = self
            .uploader
            .take()
            .expect("uploader")
            .join()
            .map_err(|_| CoreError::Damaged("uploader panicked".into()))?;
        match self.take_error() {
            Some(e) => Err(e),
            None => flushed.map(|()| stats),
        }
    }
}

impl Drop for Packer {
    fn drop(&mut self) {
        drop(self.tx.take());
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        if let Some(u) = self.uploader.take() {
            let _ = u.join();
        }
    }
}

struct WorkerCtx {
    rx: Receiver<Vec<Job>>,
    ptx: Sender<(Vec<u8>, IndexPack, BlobType)>,
    /// Chunk buffers back to the caller.
    spare: Sender<Vec<u8>>,
    /// Written pack buffers from the uploader.
    pack_spare: Receiver<Vec<u8>>,
    /// Where workers leave their unfinished packs at the end of the input.
    tail: Arc<Mutex<Tail>>,
}

/// The unfinished packs of the workers that have run out of input; the last worker to run out
/// combines them (see [`close_tail`]).
struct Tail {
    /// Workers still taking input.
    running: usize,
    /// Unfinished packs left by the others.
    open: Vec<(BlobType, PackBuilder)>,
}

/// A worker's settings: pack size (bytes), compression level, format version.
#[derive(Clone, Copy)]
struct Settings {
    pack_size: u64,
    level: i32,
    version: u32,
}

impl Settings {
    /// Bytes a data pack buffer is made with: a pack closes once its blobs reach `pack_size`,
    /// so room for one more blob of the default largest chunk as stored (Padmé-padded, format
    /// §7) and a sealed header of some size.
    fn capacity(self) -> usize {
        (self.pack_size as usize).min(64 << 20) + LAST_BLOB_ROOM
    }

    /// Whether `b` is full: closed at `pack_size` bytes or [`tresor_format::pack::max_entries`]
    /// blobs.
    fn full(self, b: &PackBuilder) -> bool {
        b.size() >= self.pack_size || b.len() >= tresor_format::pack::max_entries(self.pack_size)
    }

    /// A new open pack for blobs of type `t` (a data pack in a recycled buffer when there is
    /// one).
    fn open(self, t: BlobType, pack_spare: &Receiver<Vec<u8>>) -> Result<PackBuilder> {
        let b = match (t, pack_spare.try_recv()) {
            (BlobType::Data, Ok(buf)) => PackBuilder::with_buffer(self.level, buf)?,
            (BlobType::Data, Err(_)) => PackBuilder::new(self.level, self.capacity())?,
            (BlobType::Tree, _) => PackBuilder::new(self.level, 1 << 20)?,
        };
        Ok(b.with_version(self.version))
    }
}

/// Close pack `b` of blobs of type `t` and hand it to the uploader.
fn close(ctx: &WorkerCtx, key: &MasterKey, b: PackBuilder, t: BlobType) -> Result<()> {
    let (bytes, header) = b.finish(key)?;
    let id = ObjectId::of(&bytes);
    let pack = IndexPack {
        id,
        data_key: header.data_key.clone(),
        blobs: header.blobs,
    };
    ctx.ptx
        .send((bytes, pack, t))
        .map_err(|_| CoreError::Damaged("uploader stopped".into()))
}

/// A worker: packs the blobs it takes (a data pack and a tree pack open at a time), then leaves
/// its unfinished packs to the last worker (see [`close_tail`]).
fn worker(ctx: WorkerCtx, key: &MasterKey, settings: Settings, error: &Mutex<Option<CoreError>>) {
    let mut open: [Option<PackBuilder>; 2] = [None, None];
    let mut run = || -> Result<()> {
        for job in ctx.rx.iter().flatten() {
            let t = job.blob_type;
            let slot = usize::from(t == BlobType::Tree);
            let b = match &mut open[slot] {
                Some(b) => b,
                none => none.insert(settings.open(t, &ctx.pack_spare)?),
            };
            b.add(t, job.id, &job.data)?;
            if job.data.capacity() >= RECYCLE_MIN {
                let _ = ctx.spare.try_send(job.data);
            }
            if settings.full(b) {
                close(&ctx, key, open[slot].take().expect("open pack"), t)?;
            }
        }
        Ok(())
    };
    let ran = run();
    let mine = [
        (BlobType::Data, open[0].take()),
        (BlobType::Tree, open[1].take()),
    ]
    .into_iter()
    .filter_map(|(t, b)| Some((t, b.filter(|b| !b.is_empty())?)));
    let last = {
        let mut tail = ctx.tail.lock().expect("packer tail lock");
        if ran.is_ok() {
            tail.open.extend(mine);
        }
        tail.running -= 1;
        (tail.running == 0).then(|| std::mem::take(&mut tail.open))
    };
    let closed = match last {
        Some(open) => close_tail(&ctx, key, settings, open),
        None => Ok(()),
    };
    if let Err(e) = ran.and(closed) {
        record(error, e);
    }
}

/// Close the unfinished packs all workers left (run by the last worker): per blob type, the
/// fullest pack takes in the blobs of the others — decoded with their own data keys and
/// encoded again under its own ([`PackBuilder::drain`]; sealed blobs are never copied between
/// packs) — and is closed whenever full, so that at most one pack below `pack_size` is
/// written per type and run. Memory: the packs left (at most two per worker, all held
/// anyway), one new pack when the blobs overflow the fullest, and one decoded blob or frame.
fn close_tail(
    ctx: &WorkerCtx,
    key: &MasterKey,
    settings: Settings,
    mut open: Vec<(BlobType, PackBuilder)>,
) -> Result<()> {
    open.sort_by_key(|(t, b)| (*t == BlobType::Tree, std::cmp::Reverse(b.size())));
    let mut current: Option<(BlobType, PackBuilder)> = None;
    for (t, b) in open {
        let Some((ct, base)) = current.as_mut().filter(|(ct, _)| *ct == t) else {
            if let Some((ct, base)) = current.replace((t, b)) {
                close(ctx, key, base, ct)?;
            }
            continue;
        };
        b.drain(&key.id_key, |bt, id, plain| {
            base.add(bt, id, plain)?;
            if settings.full(base) {
                let done = std::mem::replace(base, settings.open(*ct, &ctx.pack_spare)?);
                close(ctx, key, done, *ct)?;
            }
            Ok::<_, CoreError>(())
        })?;
    }
    match current {
        Some((t, b)) if !b.is_empty() => close(ctx, key, b, t),
        _ => Ok(()),
    }
}

/// Length of `x` as a postcard varint, bytes.
fn varint_len(x: u64) -> u64 {
    u64::from((64 - x.max(1).leading_zeros()).div_ceil(7))
}

/// Bytes `pack` adds to an index object, at most: its `IndexPack` in the sealed `IndexFile`
/// (id, data key, entry count, entries with their varints, each `member` as version 3 writes
/// it) and one line per blob in the dedup list (format §9).
fn index_bytes(pack: &IndexPack) -> u64 {
    let entry = |e: &tresor_format::pack::BlobEntry| {
        let member = 1 + e.member.map_or(0, varint_len);
        let fields = varint_len(e.offset) + varint_len(e.length) + varint_len(e.raw_length);
        (1 + 32) + fields + member + (1 + 32)
    };
    let n = pack.blobs.len() as u64;
    32 + 32 + varint_len(n) + pack.blobs.iter().map(entry).sum::<u64>()
}

/// Packs written and not yet listed in an index object, and when to list them: at
/// [`INDEX_FLUSH`] packs, or before the next pack would take the index object over `limit`
/// bytes (readers' limit, [`crate::repo::limits::max_index_size`]).
struct Pending {
    packs: Vec<IndexPack>,
    /// [`index_bytes`] of `packs`.
    bytes: u64,
    limit: u64,
}

impl Pending {
    fn new(pack_size: u64) -> Self {
        Self::with_limit(crate::repo::limits::max_index_size(pack_size))
    }

    fn with_limit(limit: u64) -> Self {
        Pending {
            packs: Vec::new(),
            bytes: 0,
            limit,
        }
    }

    /// Add a stored pack; returns the packs to list in an index object now, if any.
    fn push(&mut self, pack: IndexPack) -> Option<Vec<IndexPack>> {
        let n = index_bytes(&pack);
        let over = INDEX_OVERHEAD + self.bytes + n > self.limit;
        let before = (over && !self.packs.is_empty()).then(|| self.take());
        self.bytes += n;
        self.packs.push(pack);
        before.or_else(|| (self.packs.len() >= INDEX_FLUSH).then(|| self.take()))
    }

    fn take(&mut self) -> Vec<IndexPack> {
        self.bytes = 0;
        std::mem::take(&mut self.packs)
    }
}

struct UploadState {
    stats: PackerStats,
    pending: Pending,
    failed: bool,
}

/// Write the index object for `packs` (all of them already stored), signed by `signer`, in
/// format `version`.
fn write_index(
    storage: &dyn Storage,
    (key, signer, version): (&MasterKey, &Signer, u32),
    dry_run: bool,
    packs: Vec<IndexPack>,
) -> Result<(ObjectId, u64)> {
    let file = IndexFile {
        version,
        supersedes: vec![],
        packs,
    };
    let bytes = file.to_object(key, signer)?;
    let id = ObjectId::of(&bytes);
    if !dry_run {
        storage.write(Kind::Index, &id.to_hex(), &bytes)?;
    }
    Ok((id, bytes.len() as u64))
}

/// The uploader: [`Storage::write_concurrency`] threads take finished packs and write them; an
/// index object is written (by whichever thread completes the batch) for every
/// [`INDEX_FLUSH`] packs already stored (fewer when [`Pending`] says the object would grow too
/// large), and one at the end for the rest — also after a failure, so that the next backup
/// reuses what was written.
#[allow(
    clippy::too_many_arguments,
    reason = "a thread body taking its channels and shared state"
)]
fn uploader(
    prx: Receiver<(Vec<u8>, IndexPack, BlobType)>,
    pack_spare: Sender<Vec<u8>>,
    storage: &dyn Storage,
    keys: (&MasterKey, &Signer, u32),
    dry_run: bool,
    pending: Pending,
    error: &Mutex<Option<CoreError>>,
) -> PackerStats {
    let shared = Mutex::new(UploadState {
        stats: PackerStats::default(),
        pending,
        failed: false,
    });
    let lock = || shared.lock().expect("upload state lock");
    let index_done = |r: Result<(ObjectId, u64)>| match r {
        Ok((id, n)) => {
            let mut st = lock();
            st.stats.bytes_written += n;
            st.stats.index_objects.push(id);
        }
        Err(e) => {
            record(error, e);
            lock().failed = true;
        }
    };
    let upload = || {
        for (bytes, pack, blob_type) in prx.iter() {
            if lock().failed {
                continue;
            }
            let len = bytes.len() as u64;
            let r = if dry_run {
                Ok(Some(bytes))
            } else {
                let name = pack.id.to_hex();
                match blob_type {
                    BlobType::Data => storage.write_vec(Kind::Pack, &name, bytes),
                    BlobType::Tree => storage.write_vec_hot(Kind::Pack, &name, bytes),
                }
                .map_err(CoreError::from)
            };
            let reusable = match r {
                Ok(b) => b,
                Err(e) => {
                    record(error, e);
                    lock().failed = true;
                    continue;
                }
            };
            let full = {
                let mut st = lock();
                st.stats.packs += 1;
                st.stats.bytes_written += len;
                let n = pack.blobs.len() as u64;
                match blob_type {
                    BlobType::Data => st.stats.data_blobs += n,
                    BlobType::Tree => st.stats.tree_blobs += n,
                }
                st.stats.packs_written.push(pack.clone());
                st.pending.push(pack)
            };
            if blob_type == BlobType::Data
                && let Some(b) = reusable
            {
                let _ = pack_spare.try_send(b);
            }
            if let Some(packs) = full {
                index_done(write_index(storage, keys, dry_run, packs));
            }
        }
    };
    let threads = storage.write_concurrency().max(1);
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(upload);
        }
        upload();
    });
    let rest = lock().pending.take();
    if !rest.is_empty() {
        index_done(write_index(storage, keys, dry_run, rest));
    }
    shared.into_inner().expect("upload state lock").stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::unbounded;
    use tresor_format::blob;
    use tresor_format::pack::{BlobEntry, read_header};
    use tresor_storage::memory::MemoryStorage;

    /// `n` bytes that do not compress (xorshift from `seed`).
    fn noise(seed: u64, n: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn keys() -> (MasterKey, Signer) {
        (MasterKey::generate().unwrap(), Signer::generate().unwrap())
    }

    /// A pack of `n` entries whose varints are as long as `big` makes them.
    fn listed(n: usize, big: u64) -> IndexPack {
        let blobs = (0..n)
            .map(|i| BlobEntry {
                blob_type: BlobType::Data,
                id: BlobId::of(&[7; 32], &i.to_le_bytes()),
                offset: big,
                length: big / 3 + i as u64,
                raw_length: i as u64,
                member: (i % 2 == 0).then_some(big),
            })
            .collect();
        IndexPack {
            id: ObjectId::of(&n.to_le_bytes()),
            data_key: tresor_format::crypto::DataKey([1; 32]),
            blobs,
        }
    }

    fn object_len(key: &MasterKey, signer: &Signer, packs: Vec<IndexPack>) -> u64 {
        let file = IndexFile {
            version: 3,
            supersedes: vec![],
            packs,
        };
        file.to_object(key, signer).unwrap().len() as u64
    }

    #[test]
    fn index_bytes_bound_the_index_object_tightly() {
        let (key, signer) = keys();
        for (counts, big) in [
            (vec![0], 0),
            (vec![1, 300], 1 << 20),
            (vec![50, 7, 999], u64::MAX),
        ] {
            let packs: Vec<_> = counts.iter().map(|&n| listed(n, big)).collect();
            let counted: u64 = packs.iter().map(index_bytes).sum();
            let real = object_len(&key, &signer, packs);
            assert!(
                real <= counted + INDEX_OVERHEAD,
                "{real} > {counted} + overhead"
            );
            assert!(
                real > counted && real < counted + 300,
                "{real} vs {counted}"
            );
        }
        assert_eq!(
            [0, 127, 128, 1 << 21, u64::MAX].map(varint_len),
            [1, 1, 2, 4, 10]
        );
    }

    /// An honest writer never passes readers' limit: at the boundary, each index object is
    /// within it and the next pack would have taken it over.
    #[test]
    fn pending_packs_are_listed_before_the_limit_is_reached() {
        let (key, signer) = keys();
        let limit = 1 << 20;
        let mut pending = Pending::with_limit(limit);
        let pack = listed(2000, u64::MAX);
        let one = index_bytes(&pack);
        let mut objects = vec![];
        for _ in 0..12 {
            objects.extend(pending.push(pack.clone()));
        }
        // 2000 entries of long varints (about 95 bytes each): 5 packs fit in 1 MiB, 6 do not.
        assert_eq!(objects.iter().map(Vec::len).collect::<Vec<_>>(), [5, 5]);
        assert_eq!(pending.packs.len(), 2);
        for o in objects {
            let real = object_len(&key, &signer, o);
            assert!(real <= limit, "{real}");
            assert!(
                real + one > limit - INDEX_OVERHEAD,
                "{real} not at the boundary"
            );
        }
        // The production limit is readers' limit for the pack size.
        let c = tresor_format::config::Config::new().unwrap();
        assert_eq!(
            Pending::new(c.pack_size).limit,
            crate::repo::limits::max_object_size(tresor_storage::Kind::Index, &c)
        );
    }

    #[test]
    fn index_objects_list_index_flush_packs_and_the_rest_at_the_end() {
        let mut pending = Pending::new(16 << 20);
        let got: Vec<_> = (0..2 * INDEX_FLUSH + 5)
            .filter_map(|i| pending.push(listed(i % 50, 1 << 24)).map(|v| (i, v.len())))
            .collect();
        assert_eq!(got, [(31, 32), (63, 32)]);
        assert_eq!(pending.take().len(), 5);
        assert_eq!(pending.bytes, 0);
    }

    /// A packer writing one pack per blob into `storage` with `workers` workers.
    fn packer(storage: &Arc<MemoryStorage>, key: &MasterKey, workers: usize) -> Packer {
        let (_, signer) = keys();
        let s: Arc<dyn Storage> = storage.clone();
        Packer::new(s, key.clone(), signer, 64 << 10, 3, workers, false)
    }

    #[test]
    fn a_run_of_22_packs_writes_one_index_object() {
        let storage = Arc::new(MemoryStorage::new());
        storage.create().unwrap();
        let key = MasterKey::generate().unwrap();
        let p = packer(&storage, &key, 1);
        for i in 0..22 {
            let data = noise(i, 70 << 10);
            p.add(BlobType::Data, key.blob_id(&data), data).unwrap();
        }
        let stats = p.finish().unwrap();
        assert_eq!((stats.packs, stats.index_objects.len()), (22, 1));
        let names = storage.list(Kind::Index).unwrap();
        assert_eq!(names.len(), 1);
        let bytes = storage.read(Kind::Index, &names[0].0).unwrap();
        let (_, file) = IndexFile::open(&key, &bytes).unwrap();
        let mut listed: Vec<_> = file.packs.iter().map(|p| p.id).collect();
        let mut stored: Vec<_> = storage.list(Kind::Pack).unwrap();
        listed.sort();
        stored.sort();
        let stored: Vec<_> = stored.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(
            listed.iter().map(ObjectId::to_hex).collect::<Vec<_>>(),
            stored
        );
    }

    /// Every blob of a pack, decoded and checked: (type, id, plaintext).
    fn decode_pack(key: &MasterKey, bytes: &[u8]) -> Vec<(BlobType, BlobId, Vec<u8>)> {
        let h = read_header(key, bytes).unwrap();
        let dk = &h.data_key;
        let stored = |e: &BlobEntry| &bytes[e.offset as usize..(e.offset + e.length) as usize];
        let plain = |e: &BlobEntry| match e.member {
            None => blob::decode(dk, &key.id_key, e.blob_type, &e.id, stored(e)).unwrap(),
            Some(at) => {
                let f = blob::decode_frame(dk, e.blob_type, stored(e)).unwrap();
                blob::frame_member(&f, &key.id_key, &e.id, at, e.raw_length)
                    .unwrap()
                    .to_vec()
            }
        };
        h.blobs
            .iter()
            .map(|e| (e.blob_type, e.id, plain(e)))
            .collect()
    }

    /// An unfinished pack of type `t` holding `plains`; records them in `want`.
    fn unfinished(
        key: &MasterKey,
        settings: Settings,
        t: BlobType,
        plains: Vec<Vec<u8>>,
        want: &mut Vec<(BlobType, BlobId, Vec<u8>)>,
    ) -> (BlobType, PackBuilder) {
        let mut b = settings.open(t, &unbounded().1).unwrap();
        for p in plains {
            b.add(t, key.blob_id(&p), &p).unwrap();
            want.push((t, key.blob_id(&p), p));
        }
        (t, b)
    }

    /// Three workers' data packs of 0.6 pack each and two tree packs, combined: one full data
    /// pack, one below `pack_size`, one tree pack; every blob stored once and intact.
    #[test]
    fn the_last_worker_combines_the_unfinished_packs() {
        let key = MasterKey::generate().unwrap();
        let settings = Settings {
            pack_size: 1 << 20,
            level: 3,
            version: 3,
        };
        let (ptx, prx) = unbounded();
        let ctx = WorkerCtx {
            rx: unbounded().1,
            ptx,
            spare: unbounded().0,
            pack_spare: unbounded().1,
            tail: Arc::new(Mutex::new(Tail {
                running: 0,
                open: vec![],
            })),
        };
        let mut want = vec![];
        let mut open = vec![];
        for w in 0..3u64 {
            // Stored alone (over MEMBER_BELOW), and 20 frame members.
            let mut plains: Vec<_> = (0..2).map(|i| noise(w * 100 + i, 300 << 10)).collect();
            plains
                .extend((0..20).map(|i| format!("worker {w} file {i}\n").repeat(60).into_bytes()));
            open.push(unfinished(
                &key,
                settings,
                BlobType::Data,
                plains,
                &mut want,
            ));
        }
        for w in 0..2u8 {
            let plains = vec![vec![w; 3000], format!("tree {w}").into_bytes()];
            open.push(unfinished(
                &key,
                settings,
                BlobType::Tree,
                plains,
                &mut want,
            ));
        }
        close_tail(&ctx, &key, settings, open).unwrap();
        drop(ctx);
        let packs: Vec<_> = prx.iter().collect();
        let types: Vec<_> = packs.iter().map(|p| p.2).collect();
        assert_eq!(types, [BlobType::Data, BlobType::Data, BlobType::Tree]);
        let end = |p: &IndexPack| p.blobs.iter().map(|b| b.offset + b.length).max().unwrap();
        let full = settings.pack_size - (64 << 10);
        assert!(end(&packs[0].1) >= full, "{}", end(&packs[0].1));
        assert!(end(&packs[1].1) < full, "{}", end(&packs[1].1));
        let mut got = vec![];
        for (bytes, listed, _) in &packs {
            assert_eq!(read_header(&key, bytes).unwrap().blobs, listed.blobs);
            assert_eq!(listed.id, ObjectId::of(bytes));
            got.extend(decode_pack(&key, bytes));
        }
        got.sort_by_key(|g| g.1);
        want.sort_by_key(|w| w.1);
        assert_eq!(got.len(), 2 * 3 + 20 * 3 + 4);
        assert!(got == want, "blobs differ after combining");
        // Frame members were rebuilt into frames of the combined packs.
        let members = |p: &IndexPack| p.blobs.iter().filter(|b| b.member.is_some()).count();
        assert_eq!(members(&packs[0].1) + members(&packs[1].1), 60);
    }
}
