//! Property tests of every decoder of the crate (issue 10): arbitrary bytes, and mutations
//! (bit flips, overwrites, truncations, insertions of bytes and of huge varint lengths,
//! removals) of valid encodings, give `Ok` or `Err` — never a panic.
//!
//! Where a decoder authenticates its input first, the mutated plaintext is sealed, signed or
//! encrypted with the right key so that the parser behind the check is reached.
//!
//! No unbounded allocation: the test binary's allocator refuses any single allocation over
//! [`ALLOC_LIMIT`] (the process then aborts, failing the suite), so a decoder that allocated a
//! declared length up front could not pass. postcard reads byte strings and strings only after
//! checking that the input holds them, and serde caps the capacity it reserves for a declared
//! sequence length at 1 MiB (`size_hint::cautious`); JSON has no declared lengths.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::OnceLock;
use tresor_format::blob::{self, BlobType};
use tresor_format::config::Config;
use tresor_format::crypto::{DataKey, MasterKey, SealedKind};
use tresor_format::index::{IndexEnvelope, IndexFile, IndexPack, dedup_key};
use tresor_format::keyfile::{self, KdfParams, KeyFile, KeyPayload};
use tresor_format::marker::Marker;
use tresor_format::pack::{self, BlobEntry, PackBuilder};
use tresor_format::record::{
    Arming, ForgetRecord, FossilPack, FossilSet, Generation, PruneState, RECORD_MAGIC, Record,
};
use tresor_format::revocation::Revocation;
use tresor_format::sign::{self, SignedKind, Signer};
use tresor_format::snapshot::Snapshot;
use tresor_format::tree::TREE_VERSION;
use tresor_format::tree::{EncodedTree, Node, NodeKind, Timestamp, Tree, Xattr};
use tresor_format::trust::{RevokedKey, TrustRecord, TrustedKey};
use tresor_format::{BlobId, FORMAT_VERSION, FormatError, ObjectId};

/// Largest single allocation the decoders may make in these tests (64 MiB: four times the
/// largest data blob; the inputs here are a few KiB).
const ALLOC_LIMIT: usize = 64 << 20;

struct Capped;

// SAFETY: forwards to the system allocator; refusing (null) is allowed by `GlobalAlloc`.
unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOC_LIMIT {
            return std::ptr::null_mut();
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOC_LIMIT {
            return std::ptr::null_mut();
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > ALLOC_LIMIT {
            return std::ptr::null_mut();
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Capped = Capped;

// ---------------------------------------------------------------------------------------------
// Mutations.

/// One change to a byte string; positions are taken modulo the length.
#[derive(Debug, Clone)]
enum Op {
    Flip(usize, u8),
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    /// Insert the LEB128 varint of a (usually huge) number: a forged length or count.
    Varint(usize, u64),
    Remove(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<usize>(), 0u8..8).prop_map(|(i, b)| Op::Flip(i, b)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Op::Set(i, b)),
        1 => any::<usize>().prop_map(Op::Truncate),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..12))
            .prop_map(|(i, b)| Op::Insert(i, b)),
        2 => (any::<usize>(), prop_oneof![any::<u64>(), 1u64 << 32..u64::MAX, 1u64 << 20..1 << 40])
            .prop_map(|(i, n)| Op::Varint(i, n)),
        1 => (any::<usize>(), 1usize..12).prop_map(|(i, n)| Op::Remove(i, n)),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..5)
}

fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out
}

fn mutate(valid: &[u8], ops: &[Op]) -> Vec<u8> {
    let mut v = valid.to_vec();
    for op in ops {
        let at = |i: &usize, len: usize| i % (len + 1);
        match op {
            Op::Flip(i, b) if !v.is_empty() => {
                let n = v.len();
                v[i % n] ^= 1 << b
            }
            Op::Set(i, b) if !v.is_empty() => {
                let n = v.len();
                v[i % n] = *b
            }
            Op::Truncate(i) => v.truncate(at(i, v.len())),
            Op::Insert(i, b) => {
                let p = at(i, v.len());
                v.splice(p..p, b.iter().copied());
            }
            Op::Varint(i, n) => {
                let p = at(i, v.len());
                v.splice(p..p, varint(*n));
            }
            Op::Remove(i, n) => {
                let p = at(i, v.len());
                let end = (p + n).min(v.len());
                v.drain(p..end);
            }
            _ => {}
        }
    }
    v
}

/// A JSON value to put in place of a field: wrong types, huge and negative numbers, odd text.
fn json_leaf() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::from),
        "[0-9a-f]{0,70}".prop_map(Value::from),
        Just(json!([])),
        Just(json!({})),
        Just(json!(["a", 1, null])),
    ]
}

/// `valid` JSON with the `i`-th field (in key order, nested objects included) replaced by
/// `leaf`, or removed when `remove`.
fn mutate_json(valid: &[u8], i: usize, leaf: serde_json::Value, remove: bool) -> Vec<u8> {
    fn paths(v: &serde_json::Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if let serde_json::Value::Object(m) = v {
            for (k, child) in m {
                prefix.push(k.clone());
                out.push(prefix.clone());
                paths(child, prefix, out);
                prefix.pop();
            }
        }
    }
    let mut v: serde_json::Value = serde_json::from_slice(valid).unwrap();
    let mut all = Vec::new();
    paths(&v, &mut Vec::new(), &mut all);
    let path = &all[i % all.len()];
    let mut cur = &mut v;
    for k in &path[..path.len() - 1] {
        cur = cur.get_mut(k).unwrap();
    }
    let obj = cur.as_object_mut().unwrap();
    let last = &path[path.len() - 1];
    if remove {
        obj.remove(last);
    } else {
        obj.insert(last.clone(), leaf);
    }
    serde_json::to_vec(&v).unwrap()
}

/// A JSON mutation: which field, its new value, or its removal.
fn json_change() -> impl Strategy<Value = (usize, serde_json::Value, bool)> {
    (any::<usize>(), json_leaf(), prop::bool::weighted(0.2))
}

// ---------------------------------------------------------------------------------------------
// Fixtures.

struct Keys {
    master: MasterKey,
    signer: Signer,
    admin: Signer,
}

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let master = MasterKey::generate().unwrap();
        Keys {
            admin: master.admin().unwrap(),
            master,
            signer: Signer::generate().unwrap(),
        }
    })
}

fn node(name: &[u8], kind: NodeKind) -> Node {
    Node {
        name: name.to_vec(),
        kind,
        mode: 0o755,
        uid: 1000,
        gid: 100,
        user: Some("ana".into()),
        group: None,
        mtime: Timestamp {
            secs: -5,
            nanos: 999_999_999,
        },
        atime: Timestamp::default(),
        ctime: Timestamp {
            secs: i64::MAX,
            nanos: 0,
        },
        size: 12,
        device: 1,
        inode: 2,
        links: 1,
        rdev: 0,
        target: Vec::new(),
        xattrs: Vec::new(),
        sparse: false,
        content: Vec::new(),
        subtree: None,
    }
}

fn fixture_tree() -> Tree {
    let mut dir = node(b"dir", NodeKind::Dir);
    dir.subtree = Some(BlobId([0x5d; 32]));
    let mut file = node(b"file", NodeKind::File);
    file.content = vec![BlobId([1; 32]), BlobId([2; 32])];
    file.xattrs = vec![
        Xattr {
            name: b"security.capability".to_vec(),
            value: vec![1, 0, 0, 2],
        },
        Xattr {
            name: b"user.x".to_vec(),
            value: b"y".to_vec(),
        },
    ];
    let mut link = node(b"link", NodeKind::Symlink);
    link.target = b"../x".to_vec();
    let mut dev = node(b"sda", NodeKind::BlockDevice);
    dev.rdev = 0x800;
    let nodes = vec![dir, file, link, dev, node(b"\xffpipe", NodeKind::Fifo)];
    Tree { nodes }
}

fn entry(blob_type: BlobType, id: u8, offset: u64) -> BlobEntry {
    BlobEntry {
        blob_type,
        id: BlobId([id; 32]),
        offset,
        length: 104,
        raw_length: 40,
        member: None,
    }
}

/// [`fixture_index`] in version 3: the data entry is a frame member.
fn fixture_index_v3() -> IndexFile {
    let mut f = fixture_index();
    f.version = 3;
    f.packs[0].blobs[0].member = Some(17);
    f
}

fn fixture_index() -> IndexFile {
    IndexFile {
        version: FORMAT_VERSION,
        supersedes: vec![ObjectId([9; 32])],
        packs: vec![IndexPack {
            id: ObjectId([3; 32]),
            data_key: DataKey([4; 32]),
            blobs: vec![entry(BlobType::Data, 5, 0), entry(BlobType::Tree, 6, 104)],
        }],
    }
}

fn fixture_snapshot() -> Snapshot {
    Snapshot {
        version: FORMAT_VERSION,
        time: "2026-01-02T03:04:05.5+01:00".into(),
        tree: BlobId([7; 32]),
        paths: vec!["/home".into()],
        hostname: "h".into(),
        username: "u".into(),
        uid: 1,
        gid: 2,
        tags: vec!["t".into()],
        excludes: vec![],
        parent: Some(ObjectId([8; 32])),
        summary: Some(Default::default()),
        program_version: "tresor 0.1.0".into(),
        markers: vec![ObjectId([9; 32])],
        original: None,
    }
}

const DEDUP_AAD: &[u8] = b"tresor dedup v2";
const KEY_AAD: &[u8] = b"tresor key v2";
const CHEAP: KdfParams = KdfParams {
    m_kib: 8,
    t: 1,
    p: 1,
};

/// A key file for password "pw" with cheap parameters whose encrypted payload is `payload`.
fn key_file_around(payload: Vec<u8>) -> KeyFile {
    let salt = [5u8; 16];
    let kek = keyfile::derive_key("pw", &salt, CHEAP).unwrap();
    let sealed = DataKey(*kek).encrypt(KEY_AAD, payload).unwrap();
    KeyFile {
        version: FORMAT_VERSION,
        kind: keyfile::KeyKind::Full,
        host: "h".into(),
        username: "u".into(),
        created: "2026-01-01T00:00:00Z".into(),
        kdf: "argon2id".into(),
        params: CHEAP,
        salt: B64.encode(salt),
        nonce: B64.encode(&sealed[..24]),
        data: B64.encode(&sealed[24..]),
        signing_public: hex::encode(keys().signer.public()),
        certificate: hex::encode([0u8; 64]),
    }
}

fn valid_key_payload() -> Vec<u8> {
    let p = KeyPayload {
        master: keys().master.clone(),
        signing_secret: [3; 32],
    };
    serde_json::to_vec(&p).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The decoders, each with everything it can be handed.

/// Tree blobs: decode, and everything a decoded tree offers; kept encoded, the same verdict and
/// the same nodes, and every lookup of the encoded tree.
fn tree_any(b: &[u8]) {
    let encoded = EncodedTree::decode(b);
    assert_eq!(encoded.is_ok(), Tree::decode(b).is_ok());
    if let Ok(t) = Tree::decode(b) {
        t.validate().unwrap();
        assert_eq!(Tree::decode(&t.encode_checked().unwrap()).unwrap(), t);
        for n in &t.nodes {
            let _ = (n.name_lossy(), t.find(&n.name));
        }
        let e = encoded.unwrap();
        assert_eq!(e.to_tree().unwrap(), t);
        for (i, n) in t.nodes.iter().enumerate() {
            assert_eq!((e.name(i), e.find(&n.name)), (n.name.as_slice(), Some(i)));
        }
        let _ = (e.node(e.len()), e.name(usize::MAX), e.same_nodes(&t.nodes));
    }
}

/// A blob whose encrypted inner encoding is `inner`, of either type.
fn blob_any(inner: &[u8]) {
    let key = DataKey([1; 32]);
    let id_key = [2u8; 32];
    for t in [BlobType::Data, BlobType::Tree] {
        let id = BlobId::of(&id_key, b"anything");
        let mut aad = vec![t.byte()];
        aad.extend_from_slice(&id.0);
        let stored = key.encrypt(&aad, inner.to_vec()).unwrap();
        let _ = blob::decode(&key, &id_key, t, &id, &stored);
        let _ = blob::decode(&key, &id_key, t, &id, inner);
        // The same inner encoding as a frame (associated data: type byte and 32 zeros).
        let frame_aad = [&[t.byte()][..], &[0; 32]].concat();
        let stored = key.encrypt(&frame_aad, inner.to_vec()).unwrap();
        if let Ok(frame) = blob::decode_frame(&key, t, &stored) {
            assert!(frame.len() <= blob::MAX_FRAME_SIZE);
            for (m, n) in [
                (0, 8),
                (3, u64::MAX),
                (u64::MAX, 1),
                (0, frame.len() as u64),
            ] {
                let _ = blob::frame_member(&frame, &id_key, &id, m, n);
            }
        }
        let _ = blob::decode_frame(&key, t, inner);
    }
}

fn inner_of(flag: u8, body: &[u8]) -> Vec<u8> {
    let mut inner = vec![flag];
    inner.extend_from_slice(&(body.len() as u32).to_le_bytes());
    inner.extend_from_slice(body);
    inner.resize(blob::padded_len(inner.len()), 0);
    inner
}

fn sealed_any(b: &[u8]) {
    let k = &keys().master;
    for kind in [
        SealedKind::Snapshot,
        SealedKind::Index,
        SealedKind::PackHeader,
        SealedKind::Marker,
    ] {
        let signer = kind.in_envelope().then(|| keys().signer.public());
        let _ = k.open(kind, b, signer.as_ref());
    }
    let _ = k.put_only().open(SealedKind::Index, b, Some(&[0; 32]));
    let _ = DataKey([1; 32]).decrypt(b"aad", b, "x");
}

fn signed_any(b: &[u8]) {
    for kind in [
        SignedKind::Snapshot,
        SignedKind::Index,
        SignedKind::KeyCertificate,
        SignedKind::Revocation,
        SignedKind::Marker,
        SignedKind::Trust,
    ] {
        let _ = sign::open_envelope(kind, b);
    }
}

/// Pack bytes: trailer, header, and a sealed header plaintext.
fn pack_any(pack: &[u8], header_plain: &[u8]) {
    let k = &keys().master;
    let tail = &pack[pack.len().saturating_sub(8)..];
    let _ = pack::parse_trailer(tail);
    if let Ok(h) = pack::read_header(k, pack) {
        for e in &h.blobs {
            let stored = &pack[e.offset as usize..(e.offset + e.length) as usize];
            let Some(m) = e.member else { continue };
            if let Ok(f) = blob::decode_frame(&h.data_key, e.blob_type, stored) {
                let _ = blob::frame_member(&f, &k.id_key, &e.id, m, e.raw_length);
            }
        }
    }
    let _ = pack::open_header(k, pack);
    let _ = pack::decode_header(header_plain);
    let sealed = k.seal(SealedKind::PackHeader, header_plain, None).unwrap();
    let _ = pack::open_header(k, &sealed);
}

/// Index objects: the stored object, a signed envelope body, a sealed index plaintext and a
/// dedup list plaintext.
fn index_any(stored: &[u8], body: &[u8], plain: &[u8], dedup: &[u8]) {
    let (k, writer) = (&keys().master, &keys().signer);
    let _ = IndexFile::open(k, stored);
    let _ = IndexFile::envelope(stored);
    let signed = writer.envelope(SignedKind::Index, body);
    if let Ok((who, env)) = IndexFile::envelope(&signed) {
        let _ = IndexFile::open_sealed(k, &env.sealed, &who);
        let _ = IndexFile::dedup_list(writer, &env);
    }
    let sealed = k.seal(SealedKind::Index, plain, Some(&writer.public()));
    let _ = IndexFile::open_sealed(k, &sealed.unwrap(), &writer.public());
    let env = IndexEnvelope {
        sealed: Vec::new(),
        dedup: dedup_key(writer)
            .encrypt(DEDUP_AAD, dedup.to_vec())
            .unwrap(),
    };
    let _ = IndexFile::dedup_list(writer, &env);
}

/// Snapshots and markers: stored bytes, and a JSON plaintext sealed and signed properly.
fn snapshot_any(stored: &[u8], json: &[u8]) {
    let Keys { master, signer, .. } = keys();
    let _ = Snapshot::open(master, stored);
    let _ = Snapshot::signer_of(stored);
    let _ = Marker::open(master, stored);
    for (s, k) in [
        (SealedKind::Snapshot, SignedKind::Snapshot),
        (SealedKind::Marker, SignedKind::Marker),
    ] {
        let obj = signer.envelope(k, &master.seal(s, json, Some(&signer.public())).unwrap());
        let _ = Snapshot::open(master, &obj);
        let _ = Marker::open(master, &obj);
    }
}

/// Prune records, one per variant, every field set (as the vectors' fixtures).
fn fixture_records() -> Vec<Record> {
    let state = PruneState {
        version: FORMAT_VERSION,
        run: 7,
        supersedes: vec![ObjectId([1; 32])],
        generations: vec![Generation {
            run: 6,
            fossils: vec![ObjectId([2; 32])],
            blind: vec![ObjectId([3; 32])],
            packs: 2,
            bytes: 1 << 30,
            armed: Some(Arming {
                run: 7,
                snapshots: vec![ObjectId([4; 32])],
                hosts: vec!["a".into(), "b".into()],
            }),
        }],
        deleting: vec![ObjectId([5; 32])],
        unindexed: vec![ObjectId([6; 32])],
    };
    let fossils = FossilSet {
        version: FORMAT_VERSION,
        run: 6,
        packs: vec![FossilPack {
            pack: fixture_index().packs[0].clone(),
            verified: true,
        }],
    };
    let forgotten = ForgetRecord {
        version: FORMAT_VERSION,
        ids: vec![ObjectId([8; 32]), ObjectId([9; 32])],
    };
    let fossils_v3 = FossilSet {
        version: 3,
        run: 6,
        packs: vec![FossilPack {
            pack: fixture_index_v3().packs[0].clone(),
            verified: false,
        }],
    };
    vec![
        Record::State(state),
        Record::Fossils(fossils),
        Record::Forgotten(forgotten),
        Record::Fossils(fossils_v3),
    ]
}

/// Prune records: stored bytes, and a postcard body behind the magic, sealed and signed
/// properly (so that the parser behind the checks is reached).
fn record_any(stored: &[u8], body: &[u8]) {
    let Keys { master, signer, .. } = keys();
    let _ = Record::open(master, stored);
    let mut plain = RECORD_MAGIC.to_vec();
    plain.extend_from_slice(body);
    let _ = Record::decode(&plain);
    let _ = Record::decode(body);
    let sealed = master
        .seal(SealedKind::Index, &plain, Some(&signer.public()))
        .unwrap();
    if let Ok((who, r)) = Record::open(master, &signer.envelope(SignedKind::Index, &sealed)) {
        assert_eq!(who, signer.public());
        // Version 2, or 3 for a fossil set (whose entries may be frame members).
        match r {
            Record::Fossils(f) => assert!([2, 3].contains(&f.version)),
            r => assert_eq!(r.version(), FORMAT_VERSION),
        }
    }
}

fn revocation_any(body: &[u8]) {
    let Keys { master, admin, .. } = keys();
    let _ = Revocation::open(&master.admin_public, body);
    let obj = admin.envelope(SignedKind::Revocation, body);
    if let Ok(r) = Revocation::open(&master.admin_public, &obj) {
        let _ = r.revoked_key();
    }
}

/// Trust records: the stored bytes, and a JSON body signed properly by the admin key.
fn trust_any(stored: &[u8], body: &[u8]) {
    let Keys { master, admin, .. } = keys();
    let _ = TrustRecord::open(&master.admin_public, stored);
    let obj = admin.envelope(SignedKind::Trust, body);
    if let Ok(r) = TrustRecord::open(&master.admin_public, &obj) {
        let _ = r.merge_conservatively(&r);
    }
}

fn fixture_trust() -> TrustRecord {
    let mut r = TrustRecord::new(4, ObjectId([3; 32]));
    r.trust(TrustedKey {
        signing_public: [1; 32],
        kind: keyfile::KeyKind::Full,
        host: "h".into(),
        created: "2026-01-01T00:00:00Z".into(),
    });
    r.revoke(RevokedKey {
        signing_public: [2; 32],
        kind: None,
        host: None,
        revocation: ObjectId([4; 32]),
    });
    r
}

/// Key files: the JSON, and (with cheap parameters only: costly ones are refused by
/// `KdfParams::validate`, tested on its own) opening it with a password.
fn key_file_any(json: &[u8]) {
    let Ok(kf) = KeyFile::from_bytes(json) else {
        return;
    };
    kf.params.validate().unwrap();
    let _ = (
        kf.signing_public(),
        kf.certified_by(&keys().master.admin_public),
    );
    if kf.params.cost() <= 64 {
        let _ = kf.open("pw");
    }
}

fn key_payload_any(payload: &[u8]) {
    let kf = key_file_around(payload.to_vec());
    if let Ok(p) = kf.open("pw") {
        let _ = (
            p.signer().public(),
            p.master.is_consistent(),
            p.master.admin(),
        );
    }
}

fn config_any(b: &[u8]) {
    if let Ok(c) = Config::from_bytes(b) {
        assert!(tresor_format::config::is_repository_id(&c.id));
        c.chunker.validate().unwrap();
    }
}

/// `cases` cases, or `PROPTEST_CASES` when set (for a long run by hand).
fn cfg(cases: u32) -> ProptestConfig {
    let env = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok());
    ProptestConfig {
        cases: env.unwrap_or(cases),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Properties: arbitrary bytes.

proptest! {
    #![proptest_config(cfg(256))]

    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..600)) {
        tree_any(&b);
        let mut tree = vec![TREE_VERSION];
        tree.extend_from_slice(&b);
        tree_any(&tree);
        blob_any(&b);
        blob_any(&inner_of(0, &b));
        blob_any(&inner_of(1, &b));
        blob_any(&inner_of(2, &b));
        sealed_any(&b);
        signed_any(&b);
        pack_any(&b, &b);
        index_any(&b, &b, &b, &b);
        record_any(&b, &b);
        snapshot_any(&b, &b);
        revocation_any(&b);
        trust_any(&b, &b);
        key_file_any(&b);
        key_payload_any(&b);
        config_any(&b);
    }
}

// ---------------------------------------------------------------------------------------------
// Properties: mutations of valid encodings.

proptest! {
    #![proptest_config(cfg(192))]

    #[test]
    fn mutated_trees_never_panic(ops in ops()) {
        let valid = fixture_tree().encode_checked().unwrap();
        tree_any(&mutate(&valid, &ops));
    }

    #[test]
    fn mutated_blobs_never_panic(ops in ops(), flag in 0u8..3) {
        let plain = fixture_tree().encode();
        let body = if flag > 0 { zstd::bulk::compress(&plain, 3).unwrap() } else { plain.clone() };
        blob_any(&mutate(&inner_of(flag, &body), &ops));
        blob_any(&inner_of(flag, &mutate(&body, &ops)));
    }

    #[test]
    fn mutated_packs_never_panic(ops in ops()) {
        let k = &keys().master;
        let mut b = PackBuilder::new(3, 1 << 12).unwrap();
        for i in 0..3u8 {
            let plain = vec![i; 100 + usize::from(i) * 50];
            b.add(BlobType::Data, k.blob_id(&plain), &plain).unwrap();
        }
        let (bytes, header) = b.finish(k).unwrap();
        let plain = pack::encode_header(&header);
        pack_any(&mutate(&bytes, &ops), &mutate(&plain, &ops));
    }

    #[test]
    fn mutated_index_objects_never_panic(ops in ops(), v3 in any::<bool>()) {
        let Keys { master, signer, .. } = keys();
        let f = if v3 { fixture_index_v3() } else { fixture_index() };
        let stored = f.to_object(master, signer).unwrap();
        let (_, env) = IndexFile::envelope(&stored).unwrap();
        let body = postcard::to_stdvec(&env).unwrap();
        let list: Vec<(BlobType, BlobId)> =
            f.packs[0].blobs.iter().map(|b| (b.blob_type, b.id)).collect();
        let dedup = postcard::to_stdvec(&list).unwrap();
        index_any(
            &mutate(&stored, &ops),
            &mutate(&body, &ops),
            &mutate(&f.encode(), &ops),
            &mutate(&dedup, &ops),
        );
    }

    #[test]
    fn mutated_prune_records_never_panic(ops in ops(), which in 0usize..4) {
        let Keys { master, signer, .. } = keys();
        let r = &fixture_records()[which];
        let stored = r.seal(master, signer).unwrap();
        assert_eq!(&Record::open(master, &stored).unwrap().1, r);
        let body = postcard::to_stdvec(r).unwrap();
        record_any(&mutate(&stored, &ops), &mutate(&body, &ops));
    }

    #[test]
    fn mutated_snapshots_and_markers_never_panic(ops in ops(), change in json_change()) {
        let Keys { master, signer, .. } = keys();
        let s = fixture_snapshot();
        let stored = s.seal(master, signer).unwrap();
        let json = serde_json::to_vec(&s).unwrap();
        snapshot_any(&mutate(&stored, &ops), &mutate(&json, &ops));
        snapshot_any(&stored, &mutate_json(&json, change.0, change.1.clone(), change.2));
        let m = serde_json::to_vec(&Marker::new("h", "2026-01-01T00:00:00Z").unwrap()).unwrap();
        snapshot_any(&stored, &mutate_json(&m, change.0, change.1, change.2));
    }

    #[test]
    fn mutated_revocations_never_panic(ops in ops(), change in json_change()) {
        let r = Revocation {
            version: FORMAT_VERSION,
            revoked: hex::encode([1u8; 32]),
            created: "2026-01-01T00:00:00Z".into(),
            accepted: vec![ObjectId([2; 32])],
            kind: Some(keyfile::KeyKind::PutOnly),
            host: Some("h".into()),
        };
        let obj = r.to_object(&keys().admin);
        signed_any(&mutate(&obj, &ops));
        revocation_any(&mutate(&obj, &ops));
        let body = serde_json::to_vec(&r).unwrap();
        revocation_any(&mutate(&body, &ops));
        revocation_any(&mutate_json(&body, change.0, change.1, change.2));
    }

    #[test]
    fn mutated_trust_records_never_panic(ops in ops(), change in json_change()) {
        let r = fixture_trust();
        let obj = r.to_object(&keys().admin);
        signed_any(&mutate(&obj, &ops));
        let body = serde_json::to_vec(&r).unwrap();
        trust_any(&mutate(&obj, &ops), &mutate(&body, &ops));
        trust_any(&obj, &mutate_json(&body, change.0, change.1, change.2));
    }

    #[test]
    fn mutated_key_files_never_panic(ops in ops(), change in json_change()) {
        let kf = key_file_around(valid_key_payload());
        assert!(kf.open("pw").is_ok());
        let json = kf.to_bytes();
        key_file_any(&mutate(&json, &ops));
        key_file_any(&mutate_json(&json, change.0, change.1.clone(), change.2));
        let payload = valid_key_payload();
        key_payload_any(&mutate(&payload, &ops));
        key_payload_any(&mutate_json(&payload, change.0, change.1, change.2));
    }

    #[test]
    fn mutated_configs_never_panic(ops in ops(), change in json_change()) {
        let c = Config::new().unwrap().to_bytes();
        config_any(&mutate(&c, &ops));
        config_any(&mutate_json(&c, change.0, change.1, change.2));
    }

    #[test]
    fn mutated_sealed_and_signed_objects_never_panic(ops in ops()) {
        let Keys { master, signer, .. } = keys();
        let sealed = master
            .seal(SealedKind::Marker, b"{\"version\":2}", Some(&signer.public()))
            .unwrap();
        sealed_any(&mutate(&sealed, &ops));
        let signed = signer.envelope(SignedKind::Snapshot, &sealed);
        signed_any(&mutate(&signed, &ops));
        snapshot_any(&mutate(&signed, &ops), b"{}");
    }
}

/// The guard itself: an allocation over the limit fails (and would abort a decoder that made
/// it), one below succeeds.
#[test]
fn the_allocation_limit_holds() {
    assert!(Vec::<u8>::new().try_reserve_exact(ALLOC_LIMIT + 1).is_err());
    assert!(Vec::<u8>::new().try_reserve_exact(1 << 20).is_ok());
}

/// Declared lengths far beyond the input are refused without allocating them: a tree of 2^60
/// nodes, a byte string of 2^40 bytes, an index of 2^50 packs.
#[test]
fn huge_declared_lengths_are_refused_cheaply() {
    let mut tree = vec![TREE_VERSION];
    tree.extend(varint(1 << 60));
    assert!(matches!(
        Tree::decode(&tree),
        Err(FormatError::Malformed { .. })
    ));
    let mut tree = vec![TREE_VERSION, 1];
    tree.extend(varint(1 << 40));
    tree.extend_from_slice(b"short");
    assert!(matches!(
        Tree::decode(&tree),
        Err(FormatError::Malformed { .. })
    ));
    let Keys {
        master: k, signer, ..
    } = keys();
    let mut index = varint(u64::from(FORMAT_VERSION));
    index.extend(varint(0));
    index.extend(varint(1 << 50));
    let sealed = k
        .seal(SealedKind::Index, &index, Some(&signer.public()))
        .unwrap();
    assert!(matches!(
        IndexFile::open_sealed(k, &sealed, &signer.public()),
        Err(FormatError::Malformed { .. })
    ));
    let list = varint(1 << 62);
    let writer = &keys().signer;
    let env = IndexEnvelope {
        sealed: vec![],
        dedup: dedup_key(writer).encrypt(DEDUP_AAD, list).unwrap(),
    };
    assert!(IndexFile::dedup_list(writer, &env).is_err());
}

/// A snapshot's optional `original` (format §11, written by `tag`, `rewrite`, `repair
/// snapshots`, `copy`): absent from the JSON when none, a hex id when set, `null` read as none,
/// and a malformed id a clear error.
#[test]
fn snapshot_original_is_optional_hex() {
    let Keys { master, signer, .. } = keys();
    let seal = |json: &[u8]| {
        let sealed = master.seal(SealedKind::Snapshot, json, Some(&signer.public()));
        signer.envelope(SignedKind::Snapshot, &sealed.unwrap())
    };
    let mut s = fixture_snapshot();
    let json = String::from_utf8(serde_json::to_vec(&s).unwrap()).unwrap();
    assert!(!json.contains("original"), "{json}");
    assert_eq!(Snapshot::open(master, &seal(json.as_bytes())).unwrap().1, s);

    s.original = Some(ObjectId([7; 32]));
    let json = String::from_utf8(serde_json::to_vec(&s).unwrap()).unwrap();
    let want = format!("\"original\":\"{}\"", "07".repeat(32));
    assert!(json.ends_with(&format!(",{want}}}")), "{json}");
    let opened = Snapshot::open(master, &s.seal(master, signer).unwrap()).unwrap();
    assert_eq!(opened.1.original, Some(ObjectId([7; 32])));
    assert_eq!(opened.1, s);

    let null = json.replace(&want, "\"original\":null");
    let opened = Snapshot::open(master, &seal(null.as_bytes())).unwrap().1;
    assert_eq!(opened.original, None);
    for bad in [
        "\"original\":\"07\"",
        "\"original\":\"zz\"",
        "\"original\":7",
    ] {
        let e = Snapshot::open(master, &seal(json.replace(&want, bad).as_bytes())).unwrap_err();
        assert!(e.to_string().contains("snapshot"), "{bad}: {e}");
    }
}
