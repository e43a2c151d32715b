//! Tests of the packer: the last worker's combining of unfinished packs, index objects'
//! sizes and when they are written.

use super::open::{Finished, OpenPack};
use super::upload::{INDEX_OVERHEAD, Pending, index_bytes, varint_len};
use super::worker::{Closed, Settings, Tail, WorkerCtx, close_tail};
use super::*;
use crossbeam_channel::unbounded;
use tresor_format::blob;
use tresor_format::index::IndexFile;
use tresor_format::pack::{BlobEntry, read_header};
use tresor_storage::Kind;
use tresor_storage::memory::MemoryStorage;
use tresor_testkit::repo::noise;

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
    // The production limit: 8 MiB, within readers' limit for every pack size.
    let c = tresor_format::config::Config::new().unwrap();
    assert_eq!(Pending::new(c.pack_size).limit, 8 << 20);
    assert!(
        Pending::new(c.pack_size).limit
            <= crate::repo::limits::max_object_size(tresor_storage::Kind::Index, &c)
    );
    assert_eq!(
        Pending::new(1 << 20).limit,
        crate::repo::limits::max_index_size(1 << 20).min(8 << 20)
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

/// A run that stores nothing new (an unchanged backup) starts no thread and writes nothing;
/// the first blob starts them, and `finish` stores it.
#[test]
fn the_threads_start_with_the_first_blob() {
    let storage = Arc::new(MemoryStorage::new());
    storage.create().unwrap();
    let key = MasterKey::generate().unwrap();
    let idle = packer(&storage, &key, 2);
    assert!(idle.buffer().is_empty());
    assert!(!idle.started());
    let stats = idle.finish().unwrap();
    assert_eq!(
        (stats.packs, stats.bytes_written, stats.data_blobs),
        (0, 0, 0)
    );
    assert!(stats.index_objects.is_empty());
    assert!(storage.list(Kind::Pack).unwrap().is_empty());
    assert!(storage.list(Kind::Index).unwrap().is_empty());

    let p = packer(&storage, &key, 2);
    let data = noise(1, 70 << 10);
    p.add(BlobType::Data, key.blob_id(&data), data).unwrap();
    assert!(!p.started(), "one blob waits in the batch");
    p.flush().unwrap();
    assert!(p.started());
    let stats = p.finish().unwrap();
    assert_eq!(
        (stats.packs, stats.data_blobs, stats.index_objects.len()),
        (1, 1, 1)
    );
    assert_eq!(storage.list(Kind::Pack).unwrap().len(), 1);
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

/// A finished pack's bytes, wherever they are.
fn bytes_of(f: &Finished) -> Vec<u8> {
    match f {
        Finished::Bytes(b) => b.clone(),
        Finished::File(f) => std::fs::read(f.path()).unwrap(),
    }
}

/// A worker's context whose closed packs arrive on the receiver.
fn ctx() -> (WorkerCtx, Receiver<Closed>) {
    let (ptx, prx) = unbounded();
    let ctx = WorkerCtx {
        rx: unbounded().1,
        ptx,
        spare: unbounded().0,
        pack_spare: unbounded().1,
        pack_spare_tx: unbounded().0,
        tail: Arc::new(Mutex::new(Tail {
            running: 0,
            open: vec![],
        })),
    };
    (ctx, prx)
}

/// An unfinished pack of type `t` holding `plains`; records them in `want`.
fn unfinished(
    key: &MasterKey,
    settings: &Settings,
    t: BlobType,
    plains: Vec<Vec<u8>>,
    want: &mut Vec<(BlobType, BlobId, Vec<u8>)>,
) -> (BlobType, OpenPack) {
    let mut b = settings.open(t, &unbounded().1).unwrap();
    for p in plains {
        b.add(t, key.blob_id(&p), &p).unwrap();
        want.push((t, key.blob_id(&p), p));
    }
    (t, b)
}

/// Workers' settings of the combining tests: 1 MiB packs, zstd 3, format version 3.
fn settings() -> Settings {
    Settings {
        pack_size: 1 << 20,
        level: 3,
        version: 3,
        spool: None,
    }
}

/// Three workers' data packs of 0.6 pack each and two tree packs, combined: one full data
/// pack, one below `pack_size`, one tree pack; every blob stored once and intact.
#[test]
fn the_last_worker_combines_the_unfinished_packs() {
    let key = MasterKey::generate().unwrap();
    let settings = settings();
    let (ctx, prx) = ctx();
    let mut want = vec![];
    let mut open = vec![];
    for w in 0..3u64 {
        // Stored alone (over MEMBER_BELOW), and 20 frame members.
        let mut plains: Vec<_> = (0..2).map(|i| noise(w * 100 + i, 300 << 10)).collect();
        plains.extend((0..20).map(|i| format!("worker {w} file {i}\n").repeat(60).into_bytes()));
        open.push(unfinished(
            &key,
            &settings,
            BlobType::Data,
            plains,
            &mut want,
        ));
    }
    for w in 0..2u8 {
        let plains = vec![vec![w; 3000], format!("tree {w}").into_bytes()];
        open.push(unfinished(
            &key,
            &settings,
            BlobType::Tree,
            plains,
            &mut want,
        ));
    }
    close_tail(&ctx, &key, &settings, open).unwrap();
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
        let bytes = &bytes_of(bytes);
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

/// Two unfinished packs that do not fit one stay as they are: two packs either way, nothing
/// encoded again.
#[test]
fn two_unfinished_packs_that_do_not_fit_one_are_closed_as_they_are() {
    let key = MasterKey::generate().unwrap();
    let settings = settings();
    let (ctx, prx) = ctx();
    let mut want = vec![];
    let open = (0..2u64)
        .map(|w| {
            let plains = (0..2).map(|i| noise(w * 10 + i, 300 << 10)).collect();
            unfinished(&key, &settings, BlobType::Data, plains, &mut want)
        })
        .collect();
    close_tail(&ctx, &key, &settings, open).unwrap();
    drop(ctx);
    let packs: Vec<_> = prx.iter().collect();
    assert_eq!(packs.len(), 2);
    for (p, w) in packs.iter().zip(want.chunks(2)) {
        let ids: Vec<_> = p.1.blobs.iter().map(|b| b.id).collect();
        assert_eq!(ids, [w[0].1, w[1].1]);
        assert_eq!(decode_pack(&key, &bytes_of(&p.0)), w);
    }
}

/// Settings of 8 MiB packs spooled in `dir`.
fn spooled(dir: &std::path::Path) -> Settings {
    Settings {
        pack_size: 8 << 20,
        spool: Some(dir.into()),
        ..settings()
    }
}

/// The spool files in `dir`.
fn spool_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

/// A data pack of 8 MiB holds less than [`super::spool::SPILL_AT`] stored bytes in memory
/// between blobs as it fills (the rest is in its spool file); finished, the file is the whole pack,
/// named by its BLAKE3, every blob intact; dropped, the file is gone.
#[test]
fn an_open_pack_holds_about_one_mib_in_memory_and_its_file_is_the_pack() {
    let key = MasterKey::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = spooled(dir.path());
    let mut b = settings.open(BlobType::Data, &unbounded().1).unwrap();
    let mut want = vec![];
    let mut most = 0;
    for i in 0..30 {
        let p = noise(i, 300 << 10);
        b.add(BlobType::Data, key.blob_id(&p), &p).unwrap();
        want.push((BlobType::Data, key.blob_id(&p), p));
        most = most.max(b.held());
    }
    let small = b"a small file\n".repeat(50);
    b.add(BlobType::Data, key.blob_id(&small), &small).unwrap();
    want.push((BlobType::Data, key.blob_id(&small), small));
    assert!(b.size() > 8_900_000, "{}", b.size());
    // Between blobs: under SPILL_AT (while one is added, that blob more).
    let bound = super::spool::SPILL_AT;
    assert!(most < bound && most > 512 << 10, "held {most} bytes");
    assert_eq!(spool_files(dir.path()), 1);
    let (finished, id, header, spare) = b.finish(&key).unwrap();
    assert!(spare.is_some());
    let Finished::File(f) = &finished else {
        panic!("a pack of 9 MiB in memory")
    };
    assert!(f.path().starts_with(dir.path()));
    let bytes = bytes_of(&finished);
    assert_eq!((bytes.len() as u64, ObjectId::of(&bytes)), (f.len, id));
    assert_eq!(read_header(&key, &bytes).unwrap(), header);
    assert_eq!(decode_pack(&key, &bytes), want);
    drop(finished);
    assert_eq!(spool_files(dir.path()), 0);
    // Without a spool folder (a dry run), the pack stays in memory.
    let in_memory = Settings {
        spool: None,
        ..settings
    };
    let mut b = in_memory.open(BlobType::Data, &unbounded().1).unwrap();
    for i in 0..8 {
        let p = noise(i, 300 << 10);
        b.add(BlobType::Data, key.blob_id(&p), &p).unwrap();
    }
    assert!(b.held() > 2 << 20);
    assert!(matches!(b.finish(&key).unwrap().0, Finished::Bytes(_)));
}

/// Three workers' unfinished data packs of 2.4 MiB, spooled, combined into one pack: their
/// blobs read back from their spool files; the files of the packs taken in are removed.
#[test]
fn unfinished_spooled_packs_are_combined_from_their_files() {
    let key = MasterKey::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = spooled(dir.path());
    let (ctx, prx) = ctx();
    let mut want = vec![];
    let open: Vec<_> = (0..3u64)
        .map(|w| {
            let mut plains: Vec<_> = (0..8).map(|i| noise(w * 100 + i, 300 << 10)).collect();
            plains.extend((0..10).map(|i| format!("worker {w} file {i}\n").repeat(40).into()));
            unfinished(&key, &settings, BlobType::Data, plains, &mut want)
        })
        .collect();
    assert_eq!(spool_files(dir.path()), 3);
    close_tail(&ctx, &key, &settings, open).unwrap();
    drop(ctx);
    let packs: Vec<_> = prx.iter().collect();
    assert_eq!(packs.len(), 1);
    assert!(matches!(packs[0].0, Finished::File(_)));
    assert_eq!(spool_files(dir.path()), 1);
    let bytes = bytes_of(&packs[0].0);
    assert_eq!(ObjectId::of(&bytes), packs[0].1.id);
    let mut got = decode_pack(&key, &bytes);
    got.sort_by_key(|g| g.1);
    want.sort_by_key(|w| w.1);
    assert!(got == want, "blobs differ after combining");
    drop(packs);
    assert_eq!(spool_files(dir.path()), 0);
}

/// A spool file on the test's disk and on tmpfs holds exactly the bytes appended and their
/// BLAKE3; it is removed when dropped.
#[test]
fn spool_files_hold_the_bytes_appended_on_every_file_system_at_hand() {
    use super::spool::Spool;
    let mut dirs = vec![tempfile::tempdir().unwrap()];
    if let Ok(d) = tempfile::tempdir_in("/dev/shm") {
        dirs.push(d);
    }
    let data = noise(9, 5_000_000);
    for dir in &dirs {
        let mut s = Spool::create(dir.path()).unwrap();
        let mut at = 0;
        for piece in [10_000, 4096, 1 << 20, 3_000_000] {
            let end = (at + piece).min(data.len());
            assert_eq!(s.append(&data[at..end]).unwrap(), end - at);
            at = end;
        }
        assert_eq!(at, 4_062_672);
        let (f, hash) = s.finish(&data[at..]).unwrap();
        assert_eq!(f.len, data.len() as u64);
        assert_eq!(std::fs::read(f.path()).unwrap(), data);
        assert_eq!(hash, blake3::hash(&data));
        let path = f.path().to_path_buf();
        drop(f);
        assert!(!path.exists());
    }
}
