//! The storage conformance suite: every [`Storage`] implementation must pass [`run_all`]. It
//! checks every method of the trait, the optional ones included, and concurrent writers.
//!
//! It panics with a message naming the broken rule, so it can be called from a `#[test]`. It
//! runs against the local directory and memory storages, the fault-injection layer (passing
//! through), S3 (`tresor-s3`'s tests) and the `tresor serve` client (`tresor-server`'s tests).

use crate::{ErrorKind, Kind, Storage, name_of};
use std::sync::atomic::{AtomicBool, Ordering};

/// Threads of the concurrency checks.
pub const WRITERS: usize = 8;

/// Run every conformance check against an empty, created storage.
pub fn run_all(s: &dyn Storage) {
    describes_itself(s);
    write_read_list(s);
    write_is_create_only(s);
    owned_and_split_writes(s);
    spooled_writes(s);
    range_reads(s);
    missing_objects(s);
    names_are_checked(s);
    delete_removes(s);
    unlocked_objects(s);
    concurrent_writers(s);
}

/// Run the concurrency checks only: [`WRITERS`] threads writing the same object, with the same
/// bytes (all succeed) and with different bytes (exactly one succeeds), and listings while
/// objects are written (never a partial object).
pub fn concurrent_writers(s: &dyn Storage) {
    same_bytes_from_many_writers(s);
    different_bytes_from_many_writers(s);
    listing_never_shows_partial_objects(s);
}

fn describes_itself(s: &dyn Storage) {
    assert!(!s.location().is_empty(), "location names the storage");
    assert!(
        s.write_concurrency() >= 1,
        "write concurrency is at least 1"
    );
    s.create().expect("create is idempotent");
}

fn write_read_list(s: &dyn Storage) {
    for kind in Kind::ALL {
        let data = format!("conformance {kind}").into_bytes();
        let name = name_of(&data);
        s.write(kind, &name, &data).expect("write new object");
        assert_eq!(
            s.read(kind, &name).expect("read back"),
            data,
            "read returns written bytes ({kind})"
        );
        assert_eq!(
            s.size(kind, &name).expect("size"),
            data.len() as u64,
            "size ({kind})"
        );
        let listed = s.list(kind).expect("list");
        assert!(
            listed.contains(&(name.clone(), data.len() as u64)),
            "list shows new {kind} object with its size"
        );
        for other in Kind::ALL.iter().filter(|k| **k != kind) {
            assert!(
                !s.list(*other)
                    .expect("list")
                    .iter()
                    .any(|(n, _)| *n == name),
                "{kind} object not listed as {other}"
            );
        }
    }
}

fn write_is_create_only(s: &dyn Storage) {
    let data = b"create-only".to_vec();
    let name = name_of(&data);
    s.write(Kind::Pack, &name, &data).expect("first write");
    s.write(Kind::Pack, &name, &data)
        .expect("same bytes again is success");
    let err = s
        .write(Kind::Pack, &name, b"other bytes")
        .expect_err("other bytes under an existing name are refused");
    assert_eq!(err.kind, ErrorKind::AlreadyExists, "overwrite error kind");
    assert_eq!(
        s.read(Kind::Pack, &name).expect("read"),
        data,
        "refused overwrite leaves the object intact"
    );
}

/// `write_vec` and `write_parts` store exactly what `write` would, and are create-only too.
fn owned_and_split_writes(s: &dyn Storage) {
    let data: Vec<u8> = (0..70_000u32).map(|i| (i % 241) as u8).collect();
    let name = name_of(&data);
    // The buffer handed back (if any) is the caller's to reuse; its content is unspecified.
    let _spare = s
        .write_vec(Kind::Index, &name, data.clone())
        .expect("write_vec");
    assert_eq!(s.read(Kind::Index, &name).expect("read"), data, "write_vec");
    s.write_vec(Kind::Index, &name, data.clone())
        .expect("write_vec of the same bytes again");
    let e = s.write_vec(Kind::Index, &name, b"other".to_vec());
    assert_eq!(
        e.expect_err("write_vec over").kind,
        ErrorKind::AlreadyExists
    );

    let parts: [&[u8]; 4] = [&data[..1], &data[1..1000], &[], &data[1000..]];
    let joined: Vec<u8> = data.iter().rev().copied().collect();
    let rev_parts: [&[u8]; 2] = [&joined[..30_000], &joined[30_000..]];
    let split = name_of(&joined);
    s.write_parts(Kind::Pack, &split, &rev_parts)
        .expect("write_parts");
    assert_eq!(s.read(Kind::Pack, &split).expect("read"), joined, "parts");
    assert_eq!(
        s.size(Kind::Pack, &split).expect("size"),
        joined.len() as u64
    );
    s.write_parts(Kind::Pack, &split, &[&joined])
        .expect("write_parts of the same bytes in other pieces");
    let e = s.write_parts(Kind::Pack, &split, &parts);
    assert_eq!(
        e.expect_err("write_parts over").kind,
        ErrorKind::AlreadyExists
    );
    assert_eq!(s.read(Kind::Pack, &split).expect("read"), joined, "intact");
}

/// A new file of `data` in the storage's spool folder (else the system's temporary folder).
fn spool(s: &dyn Storage, data: &[u8]) -> std::path::PathBuf {
    let mut rnd = [0u8; 8];
    getrandom::fill(&mut rnd).expect("random name");
    let dir = s.spool_dir().unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!(".tmp-conformance-{}", hex::encode(rnd)));
    std::fs::write(&path, data).expect("spool file");
    path
}

fn spooled_writes(s: &dyn Storage) {
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 239) as u8).collect();
    let name = name_of(&data);
    for hot in [false, true] {
        let path = spool(s, &data);
        s.write_file(Kind::Pack, &name, &path, data.len() as u64, hot)
            .expect("write_file");
        let _ = std::fs::remove_file(&path);
        assert_eq!(s.read(Kind::Pack, &name).expect("read"), data, "write_file");
    }
    let mut other = data.clone();
    other[7] ^= 1;
    let path = spool(s, &other);
    let e = s.write_file(Kind::Pack, &name, &path, other.len() as u64, false);
    assert_eq!(
        e.expect_err("write_file over").kind,
        ErrorKind::AlreadyExists
    );
    // A file shorter or longer than said is refused, nothing stored.
    let short = name_of(&other);
    let e = s.write_file(Kind::Pack, &short, &path, other.len() as u64 + 1, false);
    assert_eq!(
        e.expect_err("write_file of a short file").kind,
        ErrorKind::Other
    );
    let _ = std::fs::remove_file(&path);
    let e = s.size(Kind::Pack, &short).expect_err("nothing stored");
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(s.read(Kind::Pack, &name).expect("read"), data, "intact");
}

fn range_reads(s: &dyn Storage) {
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let name = name_of(&data);
    s.write(Kind::Pack, &name, &data).expect("write");
    assert_eq!(
        s.read_range(Kind::Pack, &name, 0, 10).expect("range"),
        &data[..10]
    );
    assert_eq!(
        s.read_range(Kind::Pack, &name, 9_990, 10)
            .expect("range at end"),
        &data[9_990..]
    );
    assert_eq!(
        s.read_range(Kind::Pack, &name, 1234, 0)
            .expect("empty range"),
        Vec::<u8>::new()
    );
    let err = s
        .read_range(Kind::Pack, &name, 9_995, 10)
        .expect_err("range past the end");
    assert_eq!(err.kind, ErrorKind::ShortRead, "short read kind");
}

fn missing_objects(s: &dyn Storage) {
    let missing = name_of(b"missing");
    for (what, kind) in [
        ("read", s.read(Kind::Pack, &missing).map(drop)),
        (
            "read_range",
            s.read_range(Kind::Pack, &missing, 0, 1).map(drop),
        ),
        ("size", s.size(Kind::Pack, &missing).map(drop)),
        ("delete", s.delete(Kind::Pack, &missing)),
    ]
    .map(|(w, r)| (w, r.expect_err("a missing object").kind))
    {
        assert_eq!(kind, ErrorKind::NotFound, "{what} of a missing object");
    }
    match s.locked_until(Kind::Pack, &missing) {
        Ok(None) => {}
        Err(e) if e.kind == ErrorKind::NotFound => {}
        other => panic!("locked_until of a missing object: {other:?}"),
    }
}

fn names_are_checked(s: &dyn Storage) {
    for bad in [
        "../../etc/passwd",
        "",
        "ABCDEF",
        &"g".repeat(64),
        &"a".repeat(63),
        &format!("{}/{}", "a".repeat(31), "b".repeat(32)),
    ] {
        let k = Kind::Snapshot;
        let results = [
            ("write", s.write(k, bad, b"x")),
            ("write_vec", s.write_vec(k, bad, b"x".to_vec()).map(drop)),
            ("write_parts", s.write_parts(k, bad, &[b"x", b"y"])),
            ("read", s.read(k, bad).map(drop)),
            ("read_range", s.read_range(k, bad, 0, 1).map(drop)),
            ("size", s.size(k, bad).map(drop)),
            ("delete", s.delete(k, bad)),
            ("locked_until", s.locked_until(k, bad).map(drop)),
        ];
        for (method, r) in results {
            let e = r.expect_err("bad name");
            assert_eq!(e.kind, ErrorKind::InvalidName, "{method} of {bad:?}");
        }
    }
}

fn delete_removes(s: &dyn Storage) {
    let data = b"to delete".to_vec();
    let name = name_of(&data);
    s.write(Kind::Index, &name, &data).expect("write");
    s.delete(Kind::Index, &name).expect("delete");
    assert_eq!(
        s.read(Kind::Index, &name).expect_err("gone").kind,
        ErrorKind::NotFound
    );
    assert_eq!(
        s.size(Kind::Index, &name).expect_err("gone").kind,
        ErrorKind::NotFound
    );
    assert_eq!(
        s.delete(Kind::Index, &name).expect_err("twice").kind,
        ErrorKind::NotFound
    );
    assert!(
        !s.list(Kind::Index)
            .expect("list")
            .iter()
            .any(|(n, _)| *n == name),
        "deleted object not listed"
    );
    s.write(Kind::Index, &name, &data)
        .expect("a deleted name can be written again");
    s.delete(Kind::Index, &name).expect("delete");
}

/// On a storage without locks (every storage the suite runs on), nothing is held.
fn unlocked_objects(s: &dyn Storage) {
    let data = b"not locked".to_vec();
    let name = name_of(&data);
    s.write(Kind::Pack, &name, &data).expect("write");
    assert_eq!(
        s.locked_until(Kind::Pack, &name).expect("locked_until"),
        None
    );
    s.delete(Kind::Pack, &name)
        .expect("an unlocked object can be deleted");
}

fn same_bytes_from_many_writers(s: &dyn Storage) {
    let data: Vec<u8> = (0..50_000u32).map(|i| (i % 239) as u8).collect();
    let name = name_of(&data);
    let results: Vec<_> = std::thread::scope(|t| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|_| t.spawn(|| s.write(Kind::Pack, &name, &data)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("writer"))
            .collect()
    });
    for r in results {
        r.expect("every writer of the same bytes succeeds");
    }
    assert_eq!(s.read(Kind::Pack, &name).expect("read"), data);
}

/// Writer 0 writes bytes under their own name ([`name_of`]), the others other bytes under the
/// same name: exactly one succeeds and its bytes are stored. The others are refused with
/// [`ErrorKind::AlreadyExists`] — or, when their bytes are not what the name says, with any
/// error (a storage may check names against contents, as `tresor serve` does).
fn different_bytes_from_many_writers(s: &dyn Storage) {
    let bytes: Vec<Vec<u8>> = (0..WRITERS)
        .map(|i| format!("writer {i}: ").repeat(500 + i).into_bytes())
        .collect();
    let name = name_of(&bytes[0]);
    let results: Vec<_> = std::thread::scope(|t| {
        let handles: Vec<_> = bytes
            .iter()
            .map(|b| t.spawn(|| s.write(Kind::Snapshot, &name, b)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("writer"))
            .collect()
    });
    let winners: Vec<usize> = (0..WRITERS).filter(|&i| results[i].is_ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one writer wins: {results:?}");
    let winner = winners[0];
    for (i, r) in results.iter().enumerate().filter(|(i, _)| *i != winner) {
        let e = r.as_ref().expect_err("a loser");
        // Wrong bytes may be refused for what they are when the right ones won.
        let refused_as_wrong = winner == 0;
        assert!(
            e.kind == ErrorKind::AlreadyExists || refused_as_wrong,
            "writer {i} (winner {winner}): {e}"
        );
    }
    let stored = s.read(Kind::Snapshot, &name).expect("read");
    assert!(
        stored == bytes[winner],
        "the winner's bytes are stored, whole"
    );
    s.delete(Kind::Snapshot, &name).expect("delete");
}

/// Objects listed while others are being written are complete: listed with their full size,
/// read back whole.
fn listing_never_shows_partial_objects(s: &dyn Storage) {
    const OBJECTS: usize = 6;
    const LEN: usize = (3 << 20) / 2;
    let objects: Vec<Vec<u8>> = (0..OBJECTS)
        .map(|i| (0..LEN).map(|j| (j * 7 + i * 13) as u8).collect())
        .collect();
    let names: Vec<String> = objects.iter().map(|o| name_of(o)).collect();
    let done = AtomicBool::new(false);
    let listings = std::thread::scope(|t| {
        let writer = t.spawn(|| {
            for (name, data) in names.iter().zip(&objects) {
                s.write(Kind::Pack, name, data).expect("write");
            }
            done.store(true, Ordering::SeqCst);
        });
        let lister = t.spawn(|| list_while_writing(s, &names, LEN as u64, &done));
        writer.join().expect("writer");
        lister.join().expect("lister")
    });
    assert!(listings > 0, "listed at least once");
    let listed = s.list(Kind::Pack).expect("list");
    for name in &names {
        assert!(
            listed.contains(&(name.clone(), LEN as u64)),
            "{name} listed"
        );
        s.delete(Kind::Pack, name).expect("delete");
    }
}

/// List packs until `done` (at most 10,000 times); every listed object of `names` must have
/// size `len`, and the first one seen in each listing must read back whole. Returns how many
/// listings were made.
fn list_while_writing(s: &dyn Storage, names: &[String], len: u64, done: &AtomicBool) -> usize {
    let mut listings = 0;
    while listings < 10_000 {
        let finished = done.load(Ordering::SeqCst);
        let listed = s.list(Kind::Pack).expect("list while writing");
        listings += 1;
        let ours: Vec<&(String, u64)> = listed.iter().filter(|(n, _)| names.contains(n)).collect();
        for (name, size) in &ours {
            assert_eq!(*size, len, "{name} listed with its full size");
        }
        if let Some((name, _)) = ours.last() {
            let data = s.read(Kind::Pack, name).expect("read a listed object");
            assert_eq!(name_of(&data), *name, "a listed object reads back whole");
        }
        if finished {
            break;
        }
    }
    listings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faulty::FaultyStorage;
    use crate::local::LocalStorage;
    use crate::memory::MemoryStorage;

    #[test]
    fn memory_storage_conforms() {
        let s = MemoryStorage::new();
        s.create().unwrap();
        run_all(&s);
    }

    #[test]
    fn local_storage_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path().join("repo"));
        s.create().unwrap();
        run_all(&s);
    }

    #[test]
    fn the_fault_layer_passing_through_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let s = FaultyStorage::new(LocalStorage::new(dir.path().join("repo")));
        s.create().unwrap();
        run_all(&s);
        let s = FaultyStorage::new(MemoryStorage::new());
        run_all(&s);
    }
}
