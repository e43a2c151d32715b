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
//! 31 stored packs unindexed (992 MiB at the default 32 MiB `pack_size`, 15 packs with the
//! former 16 per object), which the next backup uploads again. The packer counts each index object's bytes
//! and writes it before it would pass 8 MiB (`upload::INDEX_TARGET`: only packs of tiny blobs
//! get there; readers' limit, [`crate::repo::limits::max_index_size`], is larger).
//!
//! **Memory.** The channels are bounded and each worker holds at most two open packs, whose
//! stored bytes go to a spool file (`spool.rs`) whenever 1 MiB of them is held
//! (`spool::SPILL_AT`): an open pack costs under 1 MiB of stored blobs, the blob being added
//! (up to the largest chunk as stored) and its open frame (at most 1 MiB of plaintext), not
//! `pack_size`. A finished pack is handed to the uploader as its spool file, which the storage
//! stores with [`Storage::write_file`]: a local repository spools in its own `data/` folder and
//! moves the file into place (no copy, nothing in memory); other storages spool in the system's
//! temporary folder and read the pack back to send it (one pack per upload in flight). A pack
//! that never held 1 MiB (tree packs, a run's last packs) stays in memory and goes to
//! [`Storage::write_vec`]. A dry run spools nothing: its packs are built in memory and dropped.
//!
//! **Fewer unfinished packs per run.** When the input ends, each worker leaves its unfinished
//! data and tree packs to the last worker still running, which combines them
//! (`worker::combine`): per blob type, the fullest pack takes in the others' blobs — decoded
//! with their packs' own data keys and encoded again under its own, frames rebuilt — and is
//! closed whenever full; the last of them only when it fits whole (else two packs are written
//! either way, as they are). So with two workers a run writes one data pack below `pack_size`,
//! not two, whenever their blobs fit one (one PUT less on S3), and never more packs than
//! before. This costs one decode and encode of the smaller packs' blobs (those in a spool file
//! read back from it one stored blob or frame at a time), and memory: one decoded blob or
//! frame; with three workers or more, one new open pack.
//!
//! Blobs travel in batches (up to [`BATCH_BYTES`] or [`BATCH_BLOBS`]), so that backing up many
//! small files costs one channel hand-off per batch, not per file. Buffers are recycled: workers
//! hand chunk buffers back to the caller ([`Packer::buffer`]) and the uploader hands written
//! pack buffers back to the workers, so large buffers are not mapped and faulted in again for
//! every chunk and every pack.

mod open;
mod spool;
#[cfg(test)]
mod tests;
mod upload;
mod worker;

use crate::error::{CoreError, Result};
use crossbeam_channel::{Receiver, Sender, bounded};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use tresor_format::blob::BlobType;
use tresor_format::crypto::MasterKey;
use tresor_format::index::IndexPack;
use tresor_format::sign::Signer;
use tresor_format::{BlobId, ObjectId};
use tresor_storage::Storage;
use upload::{Pending, uploader};
use worker::{Closed, Settings, Tail, WorkerCtx, worker};

/// A run writes an index object once this many packs are stored and not yet listed (and one at
/// its end): a run of up to `INDEX_FLUSH` packs (1 GiB at the default 32 MiB `pack_size`) writes
/// one index object. An index object is also written earlier when the next pack would take it
/// over 8 MiB (`upload::INDEX_TARGET`, below readers' size limit; a pack whose own entries are
/// more goes alone), which only packs of many tiny blobs reach.
pub const INDEX_FLUSH: usize = 2 * crate::repo::limits::INDEX_EVERY;

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
    /// The packs each index object written lists (ids, in [`PackerStats::packs_written`]).
    pub index_packs: Vec<(ObjectId, Vec<ObjectId>)>,
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
///
/// Its threads start with the first batch of blobs: a run that stores nothing new (an
/// unchanged backup) starts none.
pub struct Packer {
    /// What starts the threads, until they are started.
    start: Mutex<Option<Start>>,
    threads: OnceLock<Threads>,
    batch: Mutex<Batch>,
    error: Arc<Mutex<Option<CoreError>>>,
    dry_run: bool,
}

/// The settings the threads start with.
struct Start {
    storage: Arc<dyn Storage>,
    key: MasterKey,
    signer: Signer,
    settings: Settings,
    workers: usize,
}

/// The running workers and uploader, and the channels to them.
struct Threads {
    tx: Sender<Vec<Job>>,
    /// Chunk buffers handed back by the workers.
    spare: Receiver<Vec<u8>>,
    workers: Vec<JoinHandle<()>>,
    uploader: JoinHandle<PackerStats>,
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

    /// A packer of `workers` worker threads and an uploader writing to `storage` (started with
    /// the first batch of blobs; stale spool files are swept now); index objects are signed by
    /// `signer`. Packs and index objects are written in format `version` (the
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
        let settings = Settings {
            pack_size,
            level,
            version,
            spool: (!dry_run).then(|| spool_dir(storage.as_ref())),
        };
        let start = Start {
            storage,
            key,
            signer,
            settings,
            workers: workers.max(1),
        };
        Packer {
            start: Mutex::new(Some(start)),
            threads: OnceLock::new(),
            batch: Mutex::new(Batch::default()),
            error: Arc::new(Mutex::new(None)),
            dry_run,
        }
    }

    /// The threads, started now if they are not yet.
    fn threads(&self) -> &Threads {
        self.threads.get_or_init(|| {
            let start = self.start.lock().expect("packer start lock").take();
            start
                .expect("packer started once")
                .spawn(&self.error, self.dry_run)
        })
    }

    /// Whether this packer writes nothing.
    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// An empty buffer to put the next blob's plaintext in: one handed back by a worker when
    /// there is one (its capacity kept), else a new one.
    pub fn buffer(&self) -> Vec<u8> {
        let spare = self.threads.get().and_then(|t| t.spare.try_recv().ok());
        let mut b = spare.unwrap_or_default();
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
        if self.threads().tx.send(jobs).is_err() {
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
        let stats = match self.threads.take() {
            Some(t) => t.stop(&self.error)?,
            None => PackerStats::default(),
        };
        match self.take_error() {
            Some(e) => Err(e),
            None => flushed.map(|()| stats),
        }
    }

    /// Whether the threads were started (a batch was handed to them).
    #[cfg(test)]
    fn started(&self) -> bool {
        self.threads.get().is_some()
    }
}

impl Start {
    /// Start the workers and the uploader (`dry_run`: the uploader writes nothing); each
    /// records its first error in `error`.
    fn spawn(self, error: &Arc<Mutex<Option<CoreError>>>, dry_run: bool) -> Threads {
        let Start {
            storage,
            key,
            signer,
            settings,
            workers: n,
        } = self;
        let version = settings.version;
        let pack_size = settings.pack_size;
        let (tx, rx) = bounded::<Vec<Job>>(n);
        let (ptx, prx) = bounded::<Closed>(0);
        let (spare_tx, spare) = bounded::<Vec<u8>>(n + 1);
        // One spare pack buffer per upload in flight: written packs come back at about the
        // rate workers fill new ones.
        let (pack_spare_tx, pack_spare) = bounded::<Vec<u8>>(storage.write_concurrency().max(1));
        let key = Arc::new(key);
        let tail = Arc::new(Mutex::new(Tail {
            running: n,
            open: Vec::new(),
        }));
        let workers = (0..n)
            .map(|_| {
                let ctx = WorkerCtx {
                    rx: rx.clone(),
                    ptx: ptx.clone(),
                    spare: spare_tx.clone(),
                    pack_spare: pack_spare.clone(),
                    pack_spare_tx: pack_spare_tx.clone(),
                    tail: tail.clone(),
                };
                let (key, error, settings) = (key.clone(), error.clone(), settings.clone());
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
        Threads {
            tx,
            spare,
            workers,
            uploader,
        }
    }
}

impl Threads {
    /// Close the input, wait for the workers and then the uploader: its statistics.
    ///
    /// # Errors
    /// A thread that panicked (a worker's is recorded in `error`, the uploader's returned).
    fn stop(self, error: &Mutex<Option<CoreError>>) -> Result<PackerStats> {
        let Threads {
            tx,
            spare: _spare,
            workers,
            uploader,
        } = self;
        drop(tx);
        for w in workers {
            if w.join().is_err() {
                record(error, CoreError::Damaged("packer worker panicked".into()));
            }
        }
        uploader
            .join()
            .map_err(|_| CoreError::Damaged("uploader panicked".into()))
    }
}

/// Where the packer spools open packs: the storage's spool folder, else the system's temporary
/// folder; spool files a dead process left there are removed first ([`spool::sweep`]).
fn spool_dir(storage: &dyn Storage) -> Arc<std::path::Path> {
    let dir = storage.spool_dir().unwrap_or_else(std::env::temp_dir);
    spool::sweep(&dir);
    dir.into()
}

impl Drop for Packer {
    fn drop(&mut self) {
        if let Some(t) = self.threads.take() {
            let _ = t.stop(&self.error);
        }
    }
}
