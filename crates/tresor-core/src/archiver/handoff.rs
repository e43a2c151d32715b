//! A bounded queue from one thread to another whose sender, once it found the queue full,
//! waits until it is down to half.
//!
//! The lister ([`super::lister`]) hands the walker one message per directory. Through a plain
//! bounded channel, a lister that runs ahead (a first backup, where the walker reads files) is
//! woken for every message the walker takes: twice the context switches of a walk without a
//! lister (`perf stat` of the bench tree's first backup: 8,650 against 3,976; 3,000–3,500 with
//! this queue), each a few microseconds of both cores. A receiver that finds the queue empty is
//! woken by the next item: making it wait for several made the unchanged rerun, where the
//! walker waits for the lister, slower (0.116 against 0.106 s).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// The queue's state, behind one lock.
struct State<T> {
    items: VecDeque<T>,
    sender_gone: bool,
    receiver_gone: bool,
    sender_waits: bool,
    receiver_waits: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    /// Signalled for a waiting sender.
    to_sender: Condvar,
    /// Signalled for a waiting receiver.
    to_receiver: Condvar,
    cap: usize,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The sending side; dropping it ends the queue (the receiver gets what is left, then `None`).
pub(super) struct Sender<T>(Arc<Shared<T>>);

/// The receiving side; dropping it makes every later (and a waiting) [`Sender::send`] fail.
pub(super) struct Receiver<T>(Arc<Shared<T>>);

/// A queue of at most `cap` items (at least 1).
pub(super) fn handoff<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let cap = cap.max(1);
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::with_capacity(cap),
            sender_gone: false,
            receiver_gone: false,
            sender_waits: false,
            receiver_waits: false,
        }),
        to_sender: Condvar::new(),
        to_receiver: Condvar::new(),
        cap,
    });
    (Sender(shared.clone()), Receiver(shared))
}

impl<T> Sender<T> {
    /// Queue `item`, waiting while the queue is full.
    ///
    /// # Errors
    /// The item back when the receiver is gone.
    pub(super) fn send(&self, item: T) -> Result<(), T> {
        let q = &self.0;
        let mut s = q.lock();
        while s.items.len() >= q.cap && !s.receiver_gone {
            s.sender_waits = true;
            s = q.to_sender.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.sender_waits = false;
        if s.receiver_gone {
            return Err(item);
        }
        s.items.push_back(item);
        if s.receiver_waits {
            q.to_receiver.notify_one();
        }
        Ok(())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.0.lock().sender_gone = true;
        self.0.to_receiver.notify_one();
    }
}

impl<T> Receiver<T> {
    /// The next item, waiting while the queue is empty; `None` once it is empty and the sender
    /// is gone.
    pub(super) fn recv(&self) -> Option<T> {
        let q = &self.0;
        let mut s = q.lock();
        loop {
            if let Some(item) = s.items.pop_front() {
                if s.sender_waits && s.items.len() <= q.cap / 2 {
                    q.to_sender.notify_one();
                }
                return Some(item);
            }
            if s.sender_gone {
                return None;
            }
            s.receiver_waits = true;
            s = q.to_receiver.wait(s).unwrap_or_else(|e| e.into_inner());
            s.receiver_waits = false;
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.receiver_gone = true;
        s.items.clear();
        drop(s);
        self.0.to_sender.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every item arrives, in order, through a small queue, whichever side runs ahead.
    #[test]
    fn items_arrive_in_order() {
        for (cap, slow_receiver) in [(4, true), (4, false), (1, true), (32, false)] {
            let (tx, rx) = handoff(cap);
            let sender = std::thread::spawn(move || {
                for i in 0..2_000u32 {
                    if !slow_receiver && i % 100 == 0 {
                        std::thread::yield_now();
                    }
                    tx.send(i).unwrap();
                }
            });
            let mut got = Vec::new();
            while let Some(i) = rx.recv() {
                if slow_receiver && i % 100 == 0 {
                    std::thread::yield_now();
                }
                got.push(i);
            }
            sender.join().unwrap();
            assert_eq!(got, (0..2_000).collect::<Vec<_>>(), "{cap}");
        }
    }

    /// What is queued arrives after the sender ended, and then `None`.
    #[test]
    fn what_is_queued_arrives_when_the_sender_ends() {
        let (tx, rx) = handoff(32);
        let sender = std::thread::spawn(move || {
            tx.send(1).unwrap();
            tx.send(2).unwrap();
        });
        assert_eq!((rx.recv(), rx.recv(), rx.recv()), (Some(1), Some(2), None));
        sender.join().unwrap();
    }

    /// A sender waiting on a full queue gets its item back when the receiver goes, and so does
    /// every later send.
    #[test]
    fn a_waiting_sender_fails_when_the_receiver_goes() {
        let (tx, rx) = handoff(2);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        let sender = std::thread::spawn(move || (tx.send(3), tx.send(4)));
        let start = std::time::Instant::now();
        while !rx.0.lock().sender_waits {
            assert!(start.elapsed().as_secs() < 10, "the sender never waited");
            std::thread::yield_now();
        }
        drop(rx);
        assert_eq!(sender.join().unwrap(), (Err(3), Err(4)));
    }
}
