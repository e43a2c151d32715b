//! Tests of the packer: the last worker's combining of unfinished packs, index objects'
//! sizes and when they are written.

use super::upload::{INDEX_OVERHEAD, Pending, index_bytes, varint_len};
use super::worker::{Settings, Tail, WorkerCtx, close_tail};
use super::*;
use crossbeam_channel::unbounded;
use tresor_format::blob;
use tresor_format::index::IndexFile;
use tresor_format::pack::PackBuilder;
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

/// A worker's context whose closed packs arrive on the receiver.
fn ctx() -> (WorkerCtx, Receiver<(Vec<u8>, IndexPack, BlobType)>) {
    let (ptx, prx) = unbounded();
    let ctx = WorkerCtx {
        rx: unbounded().1,
        ptx,
        spare: unbounded().0,
        pack_spare: unbounded().1,
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
    settings: Settings,
    t: BlobType,
    plains: Vec<Vec<u8>>,
    want: &mut Vec<(BlobType, BlobId, Vec<u8>)>,
) -> (BlobType, PackBuilder) {
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
            settings,
            BlobType::Data,
            plains,
            &mut want,
        ));
    }
    for w in 0..2u8 {
        let plains = vec![vec![w; 3000], format!("tree {w}").into_bytes()];
        open.push(unfinished(
            &key,
            settings,
            BlobType::Tree,
            plains,
            &mut want,
        ));
    }
    close_tail(&ctx, &key, settings, open).unwrap();
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
            unfinished(&key, settings, BlobType::Data, plains, &mut want)
        })
        .collect();
    close_tail(&ctx, &key, settings, open).unwrap();
    drop(ctx);
    let packs: Vec<_> = prx.iter().collect();
    assert_eq!(packs.len(), 2);
    for (p, w) in packs.iter().zip(want.chunks(2)) {
        let ids: Vec<_> = p.1.blobs.iter().map(|b| b.id).collect();
        assert_eq!(ids, [w[0].1, w[1].1]);
        assert_eq!(decode_pack(&key, &p.0), w);
    }
}
