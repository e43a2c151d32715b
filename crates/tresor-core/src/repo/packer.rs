//! The packer: turns blobs into packs and index objects, in background threads.
//!
//! ```text
//! caller ──(type, id, plaintext)──▶ N workers ──(pack bytes)──▶ uploader ──▶ storage
//!           bounded channel          each owns one open          writes the pack, then an
//!                                    data pack and one tree pack index object every
//!                                                                INDEX_EVERY packs and at the end
//! ```
//! Workers compress and encrypt ([`tresor_format::pack::PackBuilder`]); a pack is closed when it
//! reaches the configured size. The uploader writes each pack before listing it in an index
//! object, so an index never names a pack that is not stored (format §12). If the process dies,
//! packs not yet indexed are unreferenced and later removed by prune; indexed ones are reused by
//! the next backup. Memory is bounded: the channels are bounded and each worker holds at most two
//! open packs.
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

/// Packs per index object written during a run.
pub const INDEX_EVERY: usize = 16;

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
        let workers = (0..n)
            .map(|_| {
                let ctx = WorkerCtx {
                    rx: rx.clone(),
                    ptx: ptx.clone(),
                    spare: spare_tx.clone(),
                    pack_spare: pack_spare.clone(),
                };
                let (key, error) = (key.clone(), error.clone());
                let settings = (pack_size, level, version);
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
            let _ = w.join();
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
}

/// A worker: `settings` are the pack size, the compression level and the format version.
fn worker(
    ctx: WorkerCtx,
    key: &MasterKey,
    settings: (u64, i32, u32),
    error: &Mutex<Option<CoreError>>,
) {
    let (pack_size, level, version) = settings;
    let mut open: [Option<PackBuilder>; 2] = [None, None];
    // A pack closes once its blobs reach `pack_size`: room for one more blob of the default
    // largest chunk as stored (Padmé-padded, format §7) and a sealed header of some size.
    let capacity = (pack_size as usize).min(64 << 20) + LAST_BLOB_ROOM;
    let close = |b: PackBuilder, t: BlobType| -> Result<()> {
        let (bytes, header) = b.finish(key)?;
        let id = ObjectId::of(&bytes);
        ctx.ptx
            .send((
                bytes,
                IndexPack {
                    id,
                    data_key: header.data_key.clone(),
                    blobs: header.blobs,
                },
                t,
            ))
            .map_err(|_| CoreError::Damaged("uploader stopped".into()))
    };
    let mut run = || -> Result<()> {
        for job in ctx.rx.iter().flatten() {
            let slot = if job.blob_type == BlobType::Data {
                0
            } else {
                1
            };
            if open[slot].is_none() {
                let b = if slot == 0 {
                    match ctx.pack_spare.try_recv() {
                        Ok(buf) => PackBuilder::with_buffer(level, buf)?,
                        Err(_) => PackBuilder::new(level, capacity)?,
                    }
                } else {
                    PackBuilder::new(level, 1 << 20)?
                };
                open[slot] = Some(b.with_version(version));
            }
            let b = open[slot].as_mut().expect("open pack");
            b.add(job.blob_type, job.id, &job.data)?;
            if job.data.capacity() >= RECYCLE_MIN {
                let _ = ctx.spare.try_send(job.data);
            }
            if b.size() >= pack_size || b.len() >= tresor_format::pack::max_entries(pack_size) {
                close(open[slot].take().expect("open pack"), job.blob_type)?;
            }
        }
        for (slot, t) in [(0, BlobType::Data), (1, BlobType::Tree)] {
            if let Some(b) = open[slot].take().filter(|b| !b.is_empty()) {
                close(b, t)?;
            }
        }
        Ok(())
    };
    if let Err(e) = run() {
        record(error, e);
    }
}

#[derive(Default)]
struct UploadState {
    stats: PackerStats,
    /// Packs written and not yet listed in an index object.
    pending: Vec<IndexPack>,
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
/// [`INDEX_EVERY`] packs already stored, and one at the end for the rest — also after a
/// failure, so that the next backup reuses what was written.
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
    error: &Mutex<Option<CoreError>>,
) -> PackerStats {
    let shared = Mutex::new(UploadState::default());
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
                st.pending.push(pack);
                (st.pending.len() >= INDEX_EVERY).then(|| std::mem::take(&mut st.pending))
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
    let rest = std::mem::take(&mut lock().pending);
    if !rest.is_empty() {
        index_done(write_index(storage, keys, dry_run, rest));
    }
    shared.into_inner().expect("upload state lock").stats
}
