//! A file's content: its blobs loaded (verified against their ids) and written, several at a
//! time for large files, sequentially when the index's lengths cannot be trusted; pieces of an
//! older file at the same place whose keyed hash is the blob's id are copied instead of
//! fetched; and verify, which reads the file back through the descriptor it was written with.

use super::Shared;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tresor_format::blob::BlobType;
use tresor_format::tree::Node;

/// Files with at least this many blobs are written by [`Shared::file_threads`] threads at once
/// (positional writes), so that restoring one large file uses every core.
const PARALLEL_MIN_BLOBS: usize = 4;

/// An error of writing content: message, and whether it is repository damage.
pub(super) type Failure = (String, bool);

/// Why the parallel path gave up.
enum Parallel {
    /// The index's plaintext lengths do not match the verified blobs (or the node's size):
    /// write again sequentially, positions from the blobs themselves.
    Lengths,
    /// Anything else.
    Failed(Failure),
}

/// An older file at the place being restored, whose matching pieces are copied.
#[derive(Clone, Copy)]
pub(super) struct Old<'f> {
    pub file: &'f File,
    /// Its size when it was checked (pieces beyond it are not tried).
    pub size: u64,
}

/// Write `node`'s content into the new, empty file `f`; returns the length of every blob as
/// loaded and verified (what [`verify`] then reads back). With `old`, every piece of `old` at a
/// blob's place whose keyed hash is that blob's id is copied from it instead of fetched (read
/// and hashed once, then written: what is copied is exactly what was checked).
///
/// # Errors
/// Damage (blob missing or corrupt, content not of the node's size) or write errors.
pub(super) fn write_content(
    sh: &Shared<'_>,
    node: &Node,
    f: &File,
    old: Option<Old<'_>>,
) -> Result<Vec<u64>, Failure> {
    // Large files use every core; sparse files use the positional path for its holes; pieces
    // of an older file are found at the index's offsets.
    let parallel = node.content.len() >= PARALLEL_MIN_BLOBS && sh.file_threads > 1;
    if parallel || node.sparse || old.is_some() {
        match write_parallel(sh, node, f, old) {
            Ok(lens) => return Ok(lens),
            Err(Parallel::Failed(e)) => return Err(e),
            // A shadow index entry with a wrong length must not break an honest restore.
            Err(Parallel::Lengths) => f
                .set_len(0)
                .map_err(|e| (format!("truncate: {e}"), false))?,
        }
    }
    write_sequential(sh, node, f)
}

/// Blob after blob, each at the end of the previous one (all-zero blocks of sparse files left
/// as holes).
fn write_sequential(sh: &Shared<'_>, node: &Node, f: &File) -> Result<Vec<u64>, Failure> {
    if node.sparse {
        f.set_len(node.size)
            .map_err(|e| (format!("truncate: {e}"), false))?;
    }
    let mut lens = Vec::with_capacity(node.content.len());
    let mut off = 0u64;
    for id in &node.content {
        let data = fetch(sh, id).map_err(|e| (e, true))?;
        let len = data.len() as u64;
        if off + len > node.size {
            return Err((
                format!(
                    "content is longer than the {} bytes the snapshot says",
                    node.size
                ),
                true,
            ));
        }
        let w = if node.sparse {
            write_nonzero_at(f, &data, off)
        } else {
            f.write_all_at(&data, off)
        };
        w.map_err(|e| (format!("write: {e}"), false))?;
        sh.progress.bytes_read(len);
        lens.push(len);
        off += len;
    }
    if off != node.size {
        return Err((
            format!("content is {off} bytes, snapshot says {}", node.size),
            true,
        ));
    }
    Ok(lens)
}

/// Blob end offsets from the preferred copies' plaintext lengths (index), if they add up to the node's size.
fn index_offsets(sh: &Shared<'_>, node: &Node) -> Result<Option<Vec<u64>>, Failure> {
    let mut offsets = Vec::with_capacity(node.content.len() + 1);
    let mut end = 0u64;
    for id in &node.content {
        let loc = sh
            .reader
            .location(id)
            .ok_or_else(|| (sh.reader.not_indexed(id), true))?;
        offsets.push(end);
        end += u64::from(loc.raw_length);
    }
    offsets.push(end);
    Ok((end == node.size).then_some(offsets))
}

/// Load blob `id` from the repository (verified), counted as fetched.
fn fetch(sh: &Shared<'_>, id: &tresor_format::BlobId) -> Result<Vec<u8>, String> {
    let data = sh
        .reader
        .load(id, BlobType::Data)
        .map_err(|e| e.to_string())?;
    sh.c.fetched.fetch_add(data.len() as u64, Ordering::Relaxed);
    super::bump(&sh.c.blobs_fetched);
    Ok(data)
}

/// The piece of `old` at `off` of length `want`, if its keyed hash is `id` (counted as reused).
fn reuse(
    sh: &Shared<'_>,
    old: Option<Old<'_>>,
    id: &tresor_format::BlobId,
    off: u64,
    want: u64,
) -> Option<Vec<u8>> {
    let old = old.filter(|o| off + want <= o.size && want <= sh.max_chunk)?;
    let mut buf = vec![0u8; want as usize];
    old.file.read_exact_at(&mut buf, off).ok()?;
    if sh.reader.repo().key().blob_id(&buf) != *id {
        return None;
    }
    sh.c.reused.fetch_add(want, Ordering::Relaxed);
    Some(buf)
}

/// Write a file's blobs with [`Shared::file_threads`] threads, each taking the next blob,
/// loading it (or copying it from `old`) and writing it at its offset (from the index's
/// plaintext lengths, trusted for positioning only: a verified blob of another length sends
/// the file to the sequential path). The file is first extended to its size, so the all-zero
/// blocks of sparse files are simply not written (holes, see [`write_nonzero_at`]).
fn write_parallel(
    sh: &Shared<'_>,
    node: &Node,
    f: &File,
    old: Option<Old<'_>>,
) -> Result<Vec<u64>, Parallel> {
    let offsets = match index_offsets(sh, node) {
        Ok(Some(o)) => o,
        Ok(None) => return Err(Parallel::Lengths),
        Err(e) => return Err(Parallel::Failed(e)),
    };
    f.set_len(node.size)
        .map_err(|e| Parallel::Failed((format!("truncate: {e}"), false)))?;
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let failed: Mutex<Option<Parallel>> = Mutex::new(None);
    let work = || {
        while !stop.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= node.content.len() {
                break;
            }
            let at = Piece {
                f,
                off: offsets[i],
                want: offsets[i + 1] - offsets[i],
            };
            if let Err(e) = write_blob(sh, node, i, &at, old) {
                stop.store(true, Ordering::Relaxed);
                failed.lock().expect("failed lock").get_or_insert(e);
                break;
            }
        }
    };
    let threads = sh.file_threads.min(node.content.len()).max(1);
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(work);
        }
        work();
    });
    match failed.into_inner().expect("failed lock") {
        Some(e) => Err(e),
        None => Ok(offsets.windows(2).map(|w| w[1] - w[0]).collect()),
    }
}

/// Where one blob of [`write_parallel`] goes.
struct Piece<'f> {
    f: &'f std::fs::File,
    off: u64,
    want: u64,
}

/// Load blob `i` of `node` (or copy it from `old`) and write it at its place, if it has the
/// expected length.
fn write_blob(
    sh: &Shared<'_>,
    node: &Node,
    i: usize,
    at: &Piece<'_>,
    old: Option<Old<'_>>,
) -> Result<(), Parallel> {
    let id = &node.content[i];
    let data = match reuse(sh, old, id, at.off, at.want) {
        Some(d) => d,
        None => fetch(sh, id).map_err(|e| Parallel::Failed((e, true)))?,
    };
    if data.len() as u64 != at.want {
        return Err(Parallel::Lengths);
    }
    let written = if node.sparse {
        write_nonzero_at(at.f, &data, at.off)
    } else {
        at.f.write_all_at(&data, at.off)
    };
    written.map_err(|e| Parallel::Failed((format!("write: {e}"), false)))?;
    sh.progress.bytes_read(at.want);
    Ok(())
}

/// The lengths the index gives for `node`'s blobs, each at most the repository's largest
/// chunk (for checking a file found in the target; a wrong length only fails the check).
pub(super) fn index_lengths(sh: &Shared<'_>, node: &Node) -> Result<Vec<u64>, String> {
    node.content
        .iter()
        .map(|id| match sh.reader.location(id) {
            Some(loc) if u64::from(loc.raw_length) <= sh.max_chunk => Ok(u64::from(loc.raw_length)),
            Some(_) => Err(format!(
                "blob {id}: the index gives a length above the largest chunk"
            )),
            None => Err(sh.reader.not_indexed(id)),
        })
        .collect()
}

/// Read the file back through `f` and compare every piece (of the given `lens`) with the blob
/// ids of the snapshot.
///
/// # Errors
/// The first difference, or a read error.
pub(super) fn verify(
    sh: &Shared<'_>,
    f: &std::fs::File,
    node: &Node,
    lens: &[u64],
) -> Result<(), String> {
    if lens.len() != node.content.len() {
        return Err("blob lengths missing".into());
    }
    let key = sh.reader.repo().key();
    let mut buf = Vec::new();
    let mut off = 0u64;
    for (id, len) in node.content.iter().zip(lens) {
        if *len > sh.max_chunk {
            return Err(format!("blob {id}: {len} bytes is above the largest chunk"));
        }
        buf.resize(*len as usize, 0);
        f.read_exact_at(&mut buf, off)
            .map_err(|e| format!("reading back: {e}"))?;
        if key.blob_id(&buf) != *id {
            return Err(format!("content differs from the snapshot at blob {id}"));
        }
        off += len;
    }
    let size = f.metadata().map_err(|e| e.to_string())?.len();
    if size != off {
        return Err(format!(
            "file is {size} bytes, the snapshot's content {off}"
        ));
    }
    Ok(())
}

/// The block size of holes: a sparse file's all-zero blocks of this size (aligned in the
/// file) are not written.
const HOLE_BLOCK: usize = 4096;

/// Write `data` at `off` in a sparse file, which was extended to its size beforehand: blocks of
/// [`HOLE_BLOCK`] bytes (aligned in the file) that hold only zeros are not written, so they stay
/// holes of the file.
fn write_nonzero_at(f: &std::fs::File, data: &[u8], off: u64) -> std::io::Result<()> {
    let block = HOLE_BLOCK;
    let mut i = 0usize;
    let mut run: Option<usize> = None;
    while i < data.len() {
        let end = (((off as usize + i) / block + 1) * block - off as usize).min(data.len());
        let zero = data[i..end].iter().all(|b| *b == 0);
        match (zero, run) {
            (false, None) => run = Some(i),
            (true, Some(start)) => {
                f.write_all_at(&data[start..i], off + start as u64)?;
                run = None;
            }
            _ => {}
        }
        i = end;
    }
    if let Some(start) = run {
        f.write_all_at(&data[start..], off + start as u64)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// Pieces of odd lengths at odd offsets, some with all-zero blocks, written out of order by
    /// the sparse path (on the test machine's temp folder and on tmpfs), give exactly the
    /// expected file; the zero blocks inside pieces and the ranges no piece covers are holes.
    #[test]
    fn sparse_positional_writes_leave_zero_blocks_as_holes() {
        let mut dirs = vec![tempfile::tempdir().unwrap()];
        if let Ok(d) = tempfile::tempdir_in("/dev/shm") {
            dirs.push(d);
        }
        let lens = [1usize, 4095, 4097, 70_000, 1 << 20, 123, 3 << 20, 9000];
        let mut pieces = Vec::new();
        let mut off = 0u64;
        for (i, &len) in lens.iter().enumerate() {
            let mut data: Vec<u8> = (0..len)
                .map(|k| (k as u8).wrapping_mul(7).wrapping_add(i as u8 + 1) | 1)
                .collect();
            if len >= 1 << 20 {
                data[4096..(len - 4096)].fill(0); // all but the edges zero
            }
            pieces.push((off, data));
            off += len as u64;
            if i == 4 {
                off += 1 << 20; // a hole between pieces
            }
        }
        let size = off + 777; // and one at the end
        for dir in &dirs {
            let path = dir.path().join("f");
            let f = std::fs::File::create(&path).unwrap();
            f.set_len(size).unwrap();
            for (off, data) in pieces.iter().rev() {
                write_nonzero_at(&f, data, *off).unwrap();
            }
            f.sync_all().unwrap();
            drop(f);
            let mut want = vec![0u8; size as usize];
            for (off, data) in &pieces {
                want[*off as usize..*off as usize + data.len()].copy_from_slice(data);
            }
            let got = std::fs::read(&path).unwrap();
            assert_eq!(got.len(), want.len());
            assert!(got == want, "content differs in {}", dir.path().display());
            // About 5 MiB of the 6.2 MiB are zeros: far fewer blocks are allocated.
            let allocated = std::fs::metadata(&path).unwrap().blocks() * 512;
            assert!(
                allocated < size / 2,
                "{allocated} bytes allocated of {size} in {}",
                dir.path().display()
            );
        }
    }
}
