//! The workers: each packs the blobs it takes; the last one to run out of input combines the
//! others' unfinished packs.

use super::open::{Finished, OpenPack};
use super::spool::SPILL_AT;
use super::{Job, LAST_BLOB_ROOM, RECYCLE_MIN, record};
use crate::error::{CoreError, Result};
use crossbeam_channel::{Receiver, Sender};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tresor_format::blob::BlobType;
use tresor_format::crypto::MasterKey;
use tresor_format::index::IndexPack;
use tresor_format::pack::PackBuilder;

/// A finished pack on its way to the uploader: its bytes, as indexed, and its blobs' type.
pub(super) type Closed = (Finished, IndexPack, BlobType);

pub(super) struct WorkerCtx {
    pub(super) rx: Receiver<Vec<Job>>,
    pub(super) ptx: Sender<Closed>,
    /// Chunk buffers back to the caller.
    pub(super) spare: Sender<Vec<u8>>,
    /// Written pack buffers from the uploader (and the workers' own, of spooled packs).
    pub(super) pack_spare: Receiver<Vec<u8>>,
    /// Where a worker leaves the buffer of a pack it spooled, for the next pack.
    pub(super) pack_spare_tx: Sender<Vec<u8>>,
    /// Where workers leave their unfinished packs at the end of the input.
    pub(super) tail: Arc<Mutex<Tail>>,
}

/// The unfinished packs of the workers that have run out of input; the last worker to run out
/// combines them (see [`close_tail`]).
pub(super) struct Tail {
    /// Workers still taking input.
    pub(super) running: usize,
    /// Unfinished packs left by the others.
    pub(super) open: Vec<(BlobType, OpenPack)>,
}

/// A worker's settings: pack size (bytes), compression level, format version, and where open
/// packs are spooled (`None`: held in memory whole).
#[derive(Clone)]
pub(super) struct Settings {
    pub(super) pack_size: u64,
    pub(super) level: i32,
    pub(super) version: u32,
    pub(super) spool: Option<Arc<Path>>,
}

impl Settings {
    /// Bytes a data pack buffer is made with: room for what a pack holds before its bytes go
    /// to the spool file ([`SPILL_AT`]; without one, a pack closes once its blobs reach
    /// `pack_size`), one more blob of the default largest chunk as stored (Padmé-padded,
    /// format §7) and a sealed header of some size.
    pub(super) fn capacity(&self) -> usize {
        let held = match self.spool {
            Some(_) => SPILL_AT,
            None => (self.pack_size as usize).min(64 << 20),
        };
        held + LAST_BLOB_ROOM
    }

    /// Whether `b` is full: closed at `pack_size` bytes or [`tresor_format::pack::max_entries`]
    /// blobs.
    pub(super) fn full(&self, b: &OpenPack) -> bool {
        b.size() >= self.pack_size || b.len() >= tresor_format::pack::max_entries(self.pack_size)
    }

    /// A new open pack for blobs of type `t` (a data pack in a recycled buffer when there is
    /// one).
    pub(super) fn open(&self, t: BlobType, pack_spare: &Receiver<Vec<u8>>) -> Result<OpenPack> {
        let b = match (t, pack_spare.try_recv()) {
            (BlobType::Data, Ok(buf)) => PackBuilder::with_buffer(self.level, buf)?,
            (BlobType::Data, Err(_)) => PackBuilder::new(self.level, self.capacity())?,
            (BlobType::Tree, _) => PackBuilder::new(self.level, 1 << 20)?,
        };
        Ok(OpenPack::new(
            b.with_version(self.version),
            self.spool.clone(),
        ))
    }
}

/// Close pack `b` of blobs of type `t` and hand it to the uploader.
fn close(ctx: &WorkerCtx, key: &MasterKey, b: OpenPack, t: BlobType) -> Result<()> {
    let (bytes, id, header, spare) = b.finish(key)?;
    if let (BlobType::Data, Some(buf)) = (t, spare) {
        let _ = ctx.pack_spare_tx.try_send(buf);
    }
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
pub(super) fn worker(
    ctx: WorkerCtx,
    key: &MasterKey,
    settings: Settings,
    error: &Mutex<Option<CoreError>>,
) {
    let mut open: [Option<OpenPack>; 2] = [None, None];
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
        Some(open) => close_tail(&ctx, key, &settings, open),
        None => Ok(()),
    };
    if let Err(e) = ran.and(closed) {
        record(error, e);
    }
}

/// Close the unfinished packs all workers left (run by the last worker), per blob type with
/// [`combine`].
pub(super) fn close_tail(
    ctx: &WorkerCtx,
    key: &MasterKey,
    settings: &Settings,
    open: Vec<(BlobType, OpenPack)>,
) -> Result<()> {
    let (data, trees): (Vec<_>, Vec<_>) = open.into_iter().partition(|(t, _)| *t == BlobType::Data);
    for (t, packs) in [(BlobType::Data, data), (BlobType::Tree, trees)] {
        let packs = packs.into_iter().map(|(_, b)| b).collect();
        combine(ctx, key, settings, t, packs)?;
    }
    Ok(())
}

/// Combine unfinished packs of blobs of type `t` into as few packs as they fit in: the fullest
/// takes in the blobs of the others — decoded with their own data keys and encoded again under
/// its own ([`PackBuilder::drain`], blobs in a spool file read back one at a time; sealed blobs
/// are never copied between packs) — and is
/// closed whenever full. The last pack is taken in only when it fits whole (else the two would
/// make two packs either way, so both are closed as they are, nothing encoded again): with two
/// workers, their packs become one when together they fit one, and stay two otherwise. Memory:
/// the packs left (all held anyway, about [`SPILL_AT`] each when spooled), one new pack when the
/// blobs overflow the fullest (only with three workers or more), and one decoded blob or
/// frame with its stored bytes.
fn combine(
    ctx: &WorkerCtx,
    key: &MasterKey,
    settings: &Settings,
    t: BlobType,
    mut packs: Vec<OpenPack>,
) -> Result<()> {
    packs.sort_by_key(|b| std::cmp::Reverse(b.size()));
    let mut packs = packs.into_iter().peekable();
    let Some(mut base) = packs.next() else {
        return Ok(());
    };
    while let Some(b) = packs.next() {
        let fits = base.size() + b.size() <= settings.pack_size
            && base.len() + b.len() < tresor_format::pack::max_entries(settings.pack_size);
        if packs.peek().is_none() && !fits {
            close(ctx, key, std::mem::replace(&mut base, b), t)?;
            continue;
        }
        b.drain(&key.id_key, |bt, id, plain| {
            base.add(bt, id, plain)?;
            if settings.full(&base) {
                let done = std::mem::replace(&mut base, settings.open(t, &ctx.pack_spare)?);
                close(ctx, key, done, t)?;
            }
            Ok::<_, CoreError>(())
        })?;
    }
    if base.is_empty() {
        return Ok(());
    }
    close(ctx, key, base, t)
}
