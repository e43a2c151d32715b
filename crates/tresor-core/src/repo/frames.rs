//! A small shared cache of decoded frames (format §7, flag 2), for [`super::blobs::BlobReader`].
//!
//! Reading one member of a frame fetches and decompresses the whole frame (at most 1 MiB of
//! plaintext from tresor's writers, 16 MiB from any). Restoring the small files of one frame
//! one after the other — often by several workers at once — would decompress it once per
//! member; the cache keeps recently decoded frames (bounded by [`FRAME_CACHE_BYTES`] of
//! plaintext, least recently used evicted first), and a thread that asks for a frame another
//! thread is decoding waits for that result instead of decoding it again.

use crate::error::Result;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Plaintext bytes the cache holds at most.
pub const FRAME_CACHE_BYTES: usize = 4 << 20;

/// Frames larger than this (a quarter of the cache) are not kept.
const LARGEST_KEPT: usize = FRAME_CACHE_BYTES / 4;

/// A stored frame: position of the pack's listing in the index, offset, stored length and the
/// blob type byte it was decoded under (its associated data).
pub type FrameKey = (u32, u64, u32, u8);

enum Slot {
    /// A thread is decoding it.
    Loading,
    /// Decoded, with the tick of its last use.
    Ready(Arc<Vec<u8>>, u64),
}

#[derive(Default)]
struct State {
    slots: HashMap<FrameKey, Slot>,
    bytes: usize,
    tick: u64,
}

/// Decoded frames shared by the threads of one reader.
#[derive(Default)]
pub struct FrameCache {
    state: Mutex<State>,
    done: Condvar,
}

/// Clears a `Loading` slot if its loader returns without a result (or unwinds).
struct Pending<'a> {
    cache: &'a FrameCache,
    key: FrameKey,
    armed: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.cache.lock().slots.remove(&self.key);
            self.cache.done.notify_all();
        }
    }
}

impl FrameCache {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The decoded frame at `key`: from the cache, or by `load` (called at most once at a time
    /// per key; other threads wait for it). A failed load is not kept: the next caller loads
    /// again.
    ///
    /// # Errors
    /// Those of `load`.
    pub fn get_or_load(
        &self,
        key: FrameKey,
        load: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<Arc<Vec<u8>>> {
        let mut st = self.lock();
        loop {
            st.tick += 1;
            let tick = st.tick;
            match st.slots.get_mut(&key) {
                Some(Slot::Ready(v, used)) => {
                    *used = tick;
                    return Ok(v.clone());
                }
                Some(Slot::Loading) => st = self.done.wait(st).unwrap_or_else(|e| e.into_inner()),
                None => break,
            }
        }
        st.slots.insert(key, Slot::Loading);
        drop(st);
        let mut pending = Pending {
            cache: self,
            key,
            armed: true,
        };
        let frame = Arc::new(load()?);
        pending.armed = false;
        let mut st = self.lock();
        if frame.len() <= LARGEST_KEPT {
            st.bytes += frame.len();
            let tick = st.tick;
            st.slots.insert(key, Slot::Ready(frame.clone(), tick));
            evict(&mut st);
        } else {
            st.slots.remove(&key);
        }
        drop(st);
        self.done.notify_all();
        Ok(frame)
    }

    /// Plaintext bytes held (for tests).
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

/// Drop the least recently used frames until the cache is within [`FRAME_CACHE_BYTES`].
fn evict(st: &mut State) {
    while st.bytes > FRAME_CACHE_BYTES {
        let oldest = st
            .slots
            .iter()
            .filter_map(|(k, s)| match s {
                Slot::Ready(v, used) => Some((*used, *k, v.len())),
                Slot::Loading => None,
            })
            .min();
        let Some((_, k, len)) = oldest else { return };
        st.slots.remove(&k);
        st.bytes -= len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn concurrent_readers_decode_a_frame_once() {
        let cache = FrameCache::default();
        let loads = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let f = cache
                        .get_or_load((1, 0, 100, 0), || {
                            loads.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(50));
                            Ok(vec![7u8; 1000])
                        })
                        .unwrap();
                    assert_eq!(*f, vec![7u8; 1000]);
                });
            }
        });
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert_eq!(cache.bytes(), 1000);
    }

    #[test]
    fn the_cache_is_bounded_and_keeps_the_recently_used() {
        let cache = FrameCache::default();
        // Eight frames of an eighth of the cache fill it.
        let mb = |n: u8| move || Ok(vec![n; FRAME_CACHE_BYTES / 8]);
        for i in 0..8u8 {
            cache.get_or_load((0, u64::from(i), 1, 0), mb(i)).unwrap();
        }
        assert_eq!(cache.bytes(), FRAME_CACHE_BYTES);
        // Frame 0 used again; a ninth evicts frame 1, the least recently used.
        cache
            .get_or_load((0, 0, 1, 0), || panic!("cached"))
            .unwrap();
        cache.get_or_load((0, 8, 1, 0), mb(8)).unwrap();
        assert_eq!(cache.bytes(), FRAME_CACHE_BYTES);
        cache
            .get_or_load((0, 0, 1, 0), || panic!("cached"))
            .unwrap();
        let reloaded = AtomicUsize::new(0);
        let again = cache.get_or_load((0, 1, 1, 0), || {
            reloaded.fetch_add(1, Ordering::SeqCst);
            Ok(vec![1; 10])
        });
        assert_eq!(again.unwrap().len(), 10);
        assert_eq!(reloaded.load(Ordering::SeqCst), 1);
        // Frames over a quarter of the cache are returned, not kept; failures are not kept.
        let before = cache.bytes();
        let big = cache.get_or_load((2, 0, 1, 0), || Ok(vec![0; LARGEST_KEPT + 1]));
        assert_eq!(big.unwrap().len(), LARGEST_KEPT + 1);
        assert_eq!(LARGEST_KEPT, tresor_format::pack::FRAME_TARGET);
        assert_eq!(cache.bytes(), before);
        let e = cache.get_or_load((3, 0, 1, 0), || {
            Err(crate::error::CoreError::Damaged("x".into()))
        });
        assert!(e.is_err());
        assert_eq!(
            cache.get_or_load((3, 0, 1, 0), || Ok(vec![3])).unwrap()[..],
            [3]
        );
    }
}
