//! Upload bodies within the server's memory limits: the global budget of bytes in flight, the
//! count of body bytes held in memory, and receiving a body into memory (small ones) or into an
//! unnamed temporary file (large ones, "spooling"), from which the object is written to the
//! storage through a read-only memory map (file-backed pages the kernel can drop, not heap).

use crate::config::Limits;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tresor_storage::{Kind, Storage, StorageError};

/// Bytes written to the spool file at once (body pieces are gathered up to this size first).
const SPOOL_BATCH: usize = 1 << 20;

/// A count of bytes with a limit and a high-water mark; [`Meter::take`] returns a guard that
/// gives its bytes back when dropped.
#[derive(Debug)]
pub(crate) struct Meter {
    limit: u64,
    state: Mutex<(u64, u64)>,
}

/// Bytes taken from a [`Meter`], given back on drop.
#[derive(Debug)]
pub(crate) struct Taken {
    meter: Arc<Meter>,
    bytes: u64,
}

impl Meter {
    pub(crate) fn new(limit: u64) -> Arc<Meter> {
        Arc::new(Meter {
            limit,
            state: Mutex::new((0, 0)),
        })
    }

    /// Take `bytes` if that stays within the limit.
    pub(crate) fn try_take(self: &Arc<Self>, bytes: u64) -> Option<Taken> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let used = s.0.checked_add(bytes).filter(|u| *u <= self.limit)?;
        s.0 = used;
        s.1 = s.1.max(used);
        Some(Taken {
            meter: Arc::clone(self),
            bytes,
        })
    }

    /// Take `bytes` whatever the limit (for counting only).
    pub(crate) fn take(self: &Arc<Self>, bytes: u64) -> Taken {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0 = s.0.saturating_add(bytes);
        s.1 = s.1.max(s.0);
        Taken {
            meter: Arc::clone(self),
            bytes,
        }
    }

    /// Bytes taken now and the most ever taken at once.
    pub(crate) fn now_and_peak(&self) -> (u64, u64) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        let mut s = self.meter.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0 = s.0.saturating_sub(self.bytes);
    }
}

/// Why receiving a body failed.
#[derive(Debug)]
pub(crate) enum ReceiveError {
    /// The body paused longer than the body timeout.
    Slow,
    /// The connection failed or the stream was reset before the end of the body.
    Incomplete(String),
    /// More or fewer bytes than `Content-Length` (hyper normally catches this first).
    WrongLength,
    /// The spool file could not be created or written (the message names the folder).
    Spool(String),
}

/// A received body: its bytes (in memory or in a spool file) and its BLAKE3 hash.
#[derive(Debug)]
pub(crate) struct Received {
    body: Held,
    /// BLAKE3 of the whole body.
    pub hash: blake3::Hash,
    /// Memory taken from the buffered-bytes meter while the body is held.
    _memory: Option<Taken>,
}

#[derive(Debug)]
enum Held {
    Memory(Vec<Bytes>),
    Spooled { file: std::fs::File, len: u64 },
}

/// Where and when bodies are spooled.
#[derive(Debug, Clone)]
pub(crate) struct Spool {
    /// Bodies larger than this go to a file.
    pub threshold: u64,
    /// The folder of the unnamed temporary files.
    pub dir: PathBuf,
}

impl Spool {
    /// The spool of one repository: `limits.spool_dir`, else `default_dir`.
    pub(crate) fn new(limits: &Limits, default_dir: &Path) -> Spool {
        Spool {
            threshold: limits.spool_threshold,
            dir: limits
                .spool_dir
                .clone()
                .unwrap_or_else(|| default_dir.to_path_buf()),
        }
    }
}

/// Receive a body of `declared` bytes: in memory when it is at most the spool threshold, else
/// into an unnamed temporary file. `buffered` counts the body bytes held in memory; `progress`
/// is told the bytes received so far.
pub(crate) async fn receive(
    mut body: Incoming,
    declared: u64,
    spool: &Spool,
    idle: std::time::Duration,
    buffered: &Arc<Meter>,
    progress: &mut u64,
) -> Result<Received, ReceiveError> {
    let to_file = declared > spool.threshold;
    let mut hasher = blake3::Hasher::new();
    let mut parts: Vec<Bytes> = Vec::new();
    let mut pending: Vec<Bytes> = Vec::new();
    let mut pending_len = 0usize;
    let mut pending_memory: Vec<Taken> = Vec::new();
    let mut file: Option<std::fs::File> = None;
    let mut received = 0u64;
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(ReceiveError::Slow),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(ReceiveError::Incomplete(e.to_string())),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        received += chunk.len() as u64;
        if received > declared {
            return Err(ReceiveError::WrongLength);
        }
        *progress = received;
        hasher.update(&chunk);
        pending_memory.push(buffered.take(chunk.len() as u64));
        pending_len += chunk.len();
        if to_file {
            pending.push(chunk);
            if pending_len >= SPOOL_BATCH {
                file = Some(spool_write(file, &spool.dir, std::mem::take(&mut pending)).await?);
                pending_len = 0;
                pending_memory.clear();
            }
        } else {
            parts.push(chunk);
        }
    }
    if received != declared {
        return Err(ReceiveError::WrongLength);
    }
    let hash = hasher.finalize();
    if !to_file {
        // One guard for the whole body, held until the object is written.
        drop(pending_memory);
        let memory = Some(buffered.take(received));
        return Ok(Received {
            body: Held::Memory(parts),
            hash,
            _memory: memory,
        });
    }
    let file = spool_write(file, &spool.dir, pending).await?;
    drop(pending_memory);
    Ok(Received {
        body: Held::Spooled {
            file,
            len: received,
        },
        hash,
        _memory: None,
    })
}

/// Append `pieces` to the spool file (created on first use), on a blocking thread.
async fn spool_write(
    file: Option<std::fs::File>,
    dir: &Path,
    pieces: Vec<Bytes>,
) -> Result<std::fs::File, ReceiveError> {
    let dir = dir.to_path_buf();
    let spool_error = |e: &dyn std::fmt::Display| {
        ReceiveError::Spool(format!("spool file in {}: {e}", dir.display()))
    };
    let d = dir.clone();
    tokio::task::spawn_blocking(move || {
        let mut f = match file {
            Some(f) => f,
            None => tempfile::tempfile_in(&d)?,
        };
        for p in &pieces {
            f.write_all(p)?;
        }
        Ok::<_, std::io::Error>(f)
    })
    .await
    .map_err(|e| spool_error(&e))?
    .map_err(|e| spool_error(&e))
}

impl Received {
    /// Whether the body was written to a spool file.
    pub(crate) fn spooled(&self) -> bool {
        matches!(self.body, Held::Spooled { .. })
    }

    /// Write the body to `storage` as object `name` of `kind` (blocking); `hot`: with
    /// [`Storage::write_vec_hot`] (the client's `Tresor-Hot: 1`), which costs one copy of the
    /// body into a buffer of its own.
    pub(crate) fn store(
        self,
        storage: &dyn Storage,
        kind: Kind,
        name: &str,
        hot: bool,
    ) -> Result<(), StorageError> {
        match &self.body {
            Held::Memory(parts) if hot => {
                storage.write_vec_hot(kind, name, parts.concat()).map(drop)
            }
            Held::Memory(parts) => {
                let slices: Vec<&[u8]> = parts.iter().map(|p| &p[..]).collect();
                storage.write_parts(kind, name, &slices)
            }
            Held::Spooled { len: 0, .. } if hot => {
                storage.write_vec_hot(kind, name, Vec::new()).map(drop)
            }
            Held::Spooled { len: 0, .. } => storage.write(kind, name, &[]),
            Held::Spooled { file, len } => {
                // SAFETY: the file is an unnamed temporary file (O_TMPFILE, or unlinked at once
                // by `tempfile`) that only this process holds open; nothing can change or
                // truncate it while it is mapped, and the map is read-only.
                let map = unsafe { memmap2::Mmap::map(file) }
                    .map_err(|e| StorageError::io("write", kind, name, &e))?;
                if map.len() as u64 != *len {
                    return Err(StorageError::new(
                        tresor_storage::ErrorKind::Other,
                        "write",
                        kind,
                        name,
                        "spool file has the wrong length",
                    ));
                }
                if hot {
                    return storage.write_vec_hot(kind, name, map.to_vec()).map(drop);
                }
                storage.write(kind, name, &map)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meters_count_limit_and_remember_the_peak() {
        let m = Meter::new(10);
        let a = m.try_take(6).unwrap();
        assert!(m.try_take(5).is_none(), "over the limit");
        let b = m.try_take(4).unwrap();
        assert_eq!(m.now_and_peak(), (10, 10));
        drop(a);
        assert_eq!(m.now_and_peak(), (4, 10));
        let c = m.take(100);
        assert_eq!(m.now_and_peak(), (104, 104));
        drop((b, c));
        assert_eq!(m.now_and_peak(), (0, 104));
        assert!(m.try_take(u64::MAX).is_none());
    }
}
