//! The storage conformance suite: every [`Storage`] implementation must pass [`run_all`].
//!
//! It panics with a message naming the broken rule, so it can be called from a `#[test]`.

use crate::{ErrorKind, Kind, Storage, name_of};

/// Run every conformance check against an empty, created storage.
pub fn run_all(s: &dyn Storage) {
    write_read_list(s);
    write_is_create_only(s);
    range_reads(s);
    names_are_checked(s);
    delete_removes(s);
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
    let missing = name_of(b"missing");
    assert_eq!(
        s.read(Kind::Pack, &missing).expect_err("missing").kind,
        ErrorKind::NotFound
    );
    assert_eq!(
        s.read_range(Kind::Pack, &missing, 0, 1)
            .expect_err("missing")
            .kind,
        ErrorKind::NotFound
    );
}

fn names_are_checked(s: &dyn Storage) {
    for bad in [
        "../../etc/passwd",
        "",
        "ABCDEF",
        &"g".repeat(64),
        &"a".repeat(63),
    ] {
        assert_eq!(
            s.write(Kind::Snapshot, bad, b"x")
                .expect_err("bad name")
                .kind,
            ErrorKind::InvalidName,
            "name {bad:?}"
        );
        assert_eq!(
            s.read(Kind::Snapshot, bad).expect_err("bad name").kind,
            ErrorKind::InvalidName,
            "name {bad:?}"
        );
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_storage_conforms() {
        let s = crate::memory::MemoryStorage::new();
        s.create().unwrap();
        run_all(&s);
    }

    #[test]
    fn local_storage_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::local::LocalStorage::new(dir.path().join("repo"));
        s.create().unwrap();
        run_all(&s);
    }
}
