//! Format test vectors (`docs/format.md` §15).
//!
//! `tests/vectors/v2.json` was generated once by the ignored test [`generate`]
//! (`cargo test -p tresor-format --test format -- --ignored vectors::generate`) and is committed. Every
//! other test here only *reads* that file and checks the code against it, so any change to an
//! encoding, to key derivation, to sealing, to padding or to chunk boundaries fails a test.
//! Regenerating the file is a format change: it needs a new format version, not a new vector
//! file. (Format version 1 had `v1.json`; version 1 repositories are refused now, and so are
//! its objects: see [`other_versions_are_refused`].)
//!
//! Deterministic encodings (trees, index objects, pack headers, snapshot JSON, config, ids, chunk
//! lengths, Argon2id output) are recomputed from the fixtures below and compared byte for byte.
//! Randomised outputs (sealed objects, key files, packs and their blobs) are stored as produced
//! once; the tests open/decode them and compare with the fixtures. Several checks decode the bytes
//! independently of the crate (HPKE and XChaCha20-Poly1305 called directly with the associated
//! data spelled out, a hand-written postcard reader, Padmé and the gear table computed from the
//! text) to pin what the specification says, not only what the crate does.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::inout::InOutBuf;
use chacha20poly1305::{AeadInOut, KeyInit, Tag, XChaCha20Poly1305, XNonce};
use hpke::{Deserializable, Kem as _, OpModeR, Serializable};
use serde_json::{Value, json};
use std::path::PathBuf;
use tresor_format::blob::{self, BlobType, PAD_TO};
use tresor_format::chunker::{Chunker, ChunkerParams};
use tresor_format::config::Config;
use tresor_format::crypto::{DataKey, MasterKey, SealedKind};
use tresor_format::drill::{DrillRecord, DrillResult};
use tresor_format::index::{IndexFile, IndexPack};
use tresor_format::keyfile::{self, KdfParams, KeyFile, KeyKind, KeyPayload};
use tresor_format::marker::Marker;
use tresor_format::pack::{self, BlobEntry, PackBuilder, PackHeader};
use tresor_format::record::{
    Arming, ForgetRecord, FossilPack, FossilSet, Generation, PruneState, RECORD_MAGIC, Record,
};
use tresor_format::revocation::Revocation;
use tresor_format::sign::{self, SignedKind, Signer};
use tresor_format::snapshot::{Snapshot, SnapshotSummary};
use tresor_format::tree::{Node, NodeKind, Timestamp, Tree, Xattr};
use tresor_format::{BlobId, FORMAT_VERSION, FormatError, ObjectId};

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::ChaCha20Poly1305;

// ---------------------------------------------------------------------------------------------
// Fixtures and helpers shared by the generator and the checks.

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/v2.json")
}

fn load() -> Value {
    let text = std::fs::read_to_string(vectors_path()).expect("tests/vectors/v2.json is readable");
    serde_json::from_str(&text).expect("v2.json is JSON")
}

fn s(v: &Value) -> &str {
    v.as_str().expect("string")
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(s(v)).expect("hex")
}

fn unhex32(v: &Value) -> [u8; 32] {
    unhex(v).try_into().expect("32 bytes")
}

fn u(v: &Value) -> u64 {
    v.as_u64().expect("unsigned integer")
}

/// SplitMix64 (Steele, Lea, Flood 2014): `state += 0x9e3779b97f4a7c15`, then
/// `z = state; z = (z ^ z>>30) * 0xbf58476d1ce4e5b9; z = (z ^ z>>27) * 0x94d049bb133111eb;
/// z ^ z>>31` (wrapping). The output stream is the little-endian bytes of successive outputs.
fn splitmix_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Seed of the chunking input.
const CHUNK_INPUT_SEED: u64 = 0x7265_736f_7274_0001;
/// Length of the chunking input (16 MiB).
const CHUNK_INPUT_LEN: usize = 16 << 20;
/// Length of the odd-length prefix checked as a second chunking case.
const CHUNK_PREFIX_LEN: usize = 5_000_001;
/// The fixed master key's IKM for `DeriveKeyPair` (RFC 9180 §7.1.3).
const MASTER_IKM: &[u8] = b"tresor format v2 test vector master key";
/// The fixed chunker key: bytes `0xc0 ^ i`.
const CHUNKER_KEY: [u8; 32] = {
    let mut k = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        k[i] = 0xc0 ^ i as u8;
        i += 1;
    }
    k
};
/// Chunker keys of the chunking vectors besides the fixture's.
const OTHER_CHUNKER_KEYS: [[u8; 32]; 2] = [[0; 32], [0x5e; 32]];

/// Ed25519 secret of the fixed admin key.
const ADMIN_SECRET: [u8; 32] = [0xad; 32];
/// Ed25519 signing secrets of the fixed full key and put-only key.
const FULL_SIGNING_SECRET: [u8; 32] = [0xf1; 32];
const PUT_ONLY_SIGNING_SECRET: [u8; 32] = [0xb0; 32];

/// The fixed master key of the vectors: X25519 pair from `DeriveKeyPair(MASTER_IKM)`,
/// id key 0x00..0x1f, chunker key [`CHUNKER_KEY`], admin secret 0xad × 32.
fn fixture_master_key() -> MasterKey {
    let (sk, pk) = Kem::derive_keypair(MASTER_IKM);
    MasterKey {
        secret_key: Some(sk.to_bytes().as_slice().try_into().expect("32")),
        public_key: pk.to_bytes().as_slice().try_into().expect("32"),
        id_key: std::array::from_fn(|i| i as u8),
        chunker_key: CHUNKER_KEY,
        admin_public: Signer::from_secret(&ADMIN_SECRET).public(),
        admin_secret: Some(ADMIN_SECRET),
    }
}

fn full_signer() -> Signer {
    Signer::from_secret(&FULL_SIGNING_SECRET)
}

fn fixture_revocation() -> Revocation {
    Revocation {
        version: FORMAT_VERSION,
        revoked: hex::encode(Signer::from_secret(&PUT_ONLY_SIGNING_SECRET).public()),
        created: "2025-07-01T00:00:00Z".into(),
        accepted: vec![ObjectId([0x99; 32]), ObjectId([0x9a; 32])],
        kind: None,
        host: None,
    }
}

fn master_key_from(v: &Value) -> MasterKey {
    MasterKey {
        secret_key: v.get("secret_key").filter(|x| !x.is_null()).map(unhex32),
        public_key: unhex32(&v["public_key"]),
        id_key: unhex32(&v["id_key"]),
        chunker_key: unhex32(&v["chunker_key"]),
        admin_public: unhex32(&v["admin_public"]),
        admin_secret: v.get("admin_secret").filter(|x| !x.is_null()).map(unhex32),
    }
}

fn assert_same_key(a: &MasterKey, b: &MasterKey) {
    assert_eq!(a.secret_key, b.secret_key, "secret_key");
    assert_eq!(a.public_key, b.public_key, "public_key");
    assert_eq!(a.id_key, b.id_key, "id_key");
    assert_eq!(a.chunker_key, b.chunker_key, "chunker_key");
    assert_eq!(a.admin_public, b.admin_public, "admin_public");
    assert_eq!(a.admin_secret, b.admin_secret, "admin_secret");
}

fn ts(secs: i64, nanos: u32) -> Timestamp {
    Timestamp { secs, nanos }
}

fn base_node(name: &[u8], kind: NodeKind) -> Node {
    Node {
        mode: 0o644,
        uid: 1000,
        gid: 1000,
        user: Some("ana".into()),
        group: Some("staff".into()),
        mtime: ts(1_700_000_000, 5),
        atime: ts(1_700_000_001, 0),
        ctime: ts(1_700_000_002, 999_999_999),
        device: 0xfd01,
        inode: 1 << 40,
        links: 1,
        ..Node::bare(name, kind)
    }
}

/// A tree with every node kind, a non-UTF-8 name, negative and far-future timestamps, xattrs.
fn fixture_tree() -> Tree {
    let mut nodes = Vec::new();
    let mut n = base_node(b"block-dev", NodeKind::BlockDevice);
    (n.mode, n.uid, n.gid, n.rdev) = (0o660, 0, 6, 0x0800);
    (n.user, n.group) = (Some("root".into()), Some("disk".into()));
    nodes.push(n);
    let mut n = base_node(b"char-dev", NodeKind::CharDevice);
    (n.mode, n.rdev) = (0o666, 0x0103);
    nodes.push(n);
    let mut n = base_node(b"dir", NodeKind::Dir);
    (n.mode, n.links) = (0o1777, 3);
    n.subtree = Some(BlobId([0x5d; 32]));
    nodes.push(n);
    let mut n = base_node(b"file.txt", NodeKind::File);
    n.mode = 0o4755;
    n.size = 1_234_567;
    n.links = 2;
    n.mtime = ts(32_503_680_000, 123_456_789); // 3000-01-01T00:00:00.123456789Z
    n.atime = ts(-62_135_596_800, 0); // 0001-01-01T00:00:00Z
    n.ctime = ts(-1, 999_999_999); // 1969-12-31T23:59:59.999999999Z
    n.sparse = true;
    n.content = vec![BlobId([0xc1; 32]), BlobId([0xc2; 32])];
    n.xattrs = vec![
        Xattr {
            name: b"security.capability".to_vec(),
            value: vec![0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00],
        },
        Xattr {
            name: b"user.comment".to_vec(),
            value: "h\u{e9}llo \u{1F600}".as_bytes().to_vec(),
        },
    ];
    nodes.push(n);
    let mut n = base_node(b"link", NodeKind::Symlink);
    n.mode = 0o777;
    n.target = b"../\xfftarget".to_vec();
    n.size = n.target.len() as u64;
    nodes.push(n);
    nodes.push(base_node(b"pipe", NodeKind::Fifo));
    nodes.push(base_node(b"sock", NodeKind::Socket));
    let mut n = base_node(b"\xff\xfenon-utf8", NodeKind::File);
    (n.uid, n.gid, n.user, n.group) = (4_294_967_294, 65_534, None, None);
    n.mtime = ts(i64::MIN, 0);
    n.atime = ts(i64::MAX, 999_999_999);
    n.content = vec![BlobId([0xc3; 32])];
    n.size = 7;
    nodes.push(n);
    Tree { nodes }
}

fn entry(t: BlobType, id: u8, offset: u64, length: u64, raw_length: u64) -> BlobEntry {
    BlobEntry {
        blob_type: t,
        id: BlobId([id; 32]),
        offset,
        length,
        raw_length,
        member: None,
    }
}

/// Index entries: stored lengths as §7 gives them for the raw lengths (Padmé).
fn fixture_index() -> IndexFile {
    IndexFile {
        version: FORMAT_VERSION,
        supersedes: vec![ObjectId([0xaa; 32])],
        packs: vec![
            IndexPack {
                id: ObjectId([0x11; 32]),
                data_key: DataKey([0x22; 32]),
                blobs: vec![
                    entry(BlobType::Data, 0x33, 0, 104, 50),
                    entry(BlobType::Data, 0x34, 104, 17_301_544, 16_777_216),
                ],
            },
            IndexPack {
                id: ObjectId([0x12; 32]),
                data_key: DataKey([0x23; 32]),
                blobs: vec![entry(BlobType::Tree, 0x44, 0, 296, 250)],
            },
        ],
    }
}

fn fixture_pack_header() -> PackHeader {
    PackHeader {
        version: FORMAT_VERSION,
        data_key: DataKey([0x55; 32]),
        blobs: vec![
            entry(BlobType::Data, 0x66, 0, 232, 127),
            entry(BlobType::Data, 0x67, 232, 1_081_384, 1_048_576),
        ],
    }
}

fn fixture_snapshot() -> Snapshot {
    Snapshot {
        version: FORMAT_VERSION,
        time: "2025-06-01T12:34:56.789+02:00".into(),
        tree: BlobId([0x77; 32]),
        paths: vec!["/home/ana".into(), "/etc".into()],
        hostname: "vector-host".into(),
        username: "ana".into(),
        uid: 1000,
        gid: 1000,
        tags: vec!["nightly".into()],
        excludes: vec!["*.tmp".into()],
        parent: Some(ObjectId([0x88; 32])),
        summary: Some(SnapshotSummary {
            files_new: 1,
            files_changed: 2,
            files_unmodified: 3,
            files_deleted: 4,
            dirs_new: 5,
            dirs_changed: 6,
            dirs_unmodified: 7,
            total_files_processed: 8,
            total_bytes_processed: 9_000_000_000,
            bytes_read: 10,
            data_added: 11,
            data_blobs: 12,
            tree_blobs: 13,
            errors: 0,
            backup_start: "2025-06-01T10:34:56.789Z".into(),
            backup_end: "2025-06-01T10:35:01Z".into(),
        }),
        program_version: "tresor 0.1.0".into(),
        markers: vec![],
        original: None,
    }
}

fn fixture_config() -> Config {
    Config {
        version: FORMAT_VERSION,
        id: hex::encode(std::array::from_fn::<u8, 32, _>(|i| 0xe0 ^ i as u8)),
        chunker: ChunkerParams::default(),
        // The vectors' value (16 MiB, the default when they were made), not today's default.
        pack_size: 16 << 20,
        compression_level: 3,
        object_lock: None,
    }
}

fn snapshot_json(s: &Snapshot) -> Vec<u8> {
    serde_json::to_vec(s).expect("snapshot serializes")
}

fn fixture_marker() -> Marker {
    Marker {
        version: FORMAT_VERSION,
        hostname: "vector-host".into(),
        started: "2025-06-01T10:34:56.789Z".into(),
        nonce: "00112233445566778899aabbccddeeff".into(),
        refresh_secs: None,
    }
}

fn marker_json(m: &Marker) -> Vec<u8> {
    serde_json::to_vec(m).expect("marker serializes")
}

/// Prune records (§16), one per variant in variant order, every field set: a state with an
/// armed and an unarmed generation (a non-ASCII host name), a fossil set with a verified pack
/// (the fixture index's first) and a blind one without entries, a forget record.
fn fixture_records() -> Vec<(&'static str, Record)> {
    let state = PruneState {
        version: FORMAT_VERSION,
        run: 7,
        supersedes: vec![ObjectId([0x71; 32])],
        generations: vec![
            Generation {
                run: 6,
                fossils: vec![ObjectId([0x72; 32])],
                blind: vec![ObjectId([0x73; 32])],
                packs: 2,
                bytes: 1 << 33,
                armed: Some(Arming {
                    run: 7,
                    snapshots: vec![ObjectId([0x74; 32]), ObjectId([0x75; 32])],
                    hosts: vec!["h\u{f6}st-\u{1F600}".into(), "vector-host".into()],
                }),
            },
            Generation {
                run: 7,
                fossils: vec![],
                blind: vec![],
                packs: 0,
                bytes: 0,
                armed: None,
            },
        ],
        deleting: vec![ObjectId([0x76; 32])],
        unindexed: vec![ObjectId([0x77; 32]), ObjectId([0x78; 32])],
    };
    let fossils = FossilSet {
        version: FORMAT_VERSION,
        run: 6,
        packs: vec![
            FossilPack {
                pack: fixture_index().packs[0].clone(),
                verified: true,
            },
            FossilPack {
                pack: IndexPack {
                    id: ObjectId([0x79; 32]),
                    data_key: DataKey([0x7a; 32]),
                    blobs: vec![],
                },
                verified: false,
            },
        ],
    };
    let forgotten = ForgetRecord {
        version: FORMAT_VERSION,
        ids: vec![ObjectId([0x7b; 32]), ObjectId([0x7c; 32])],
    };
    vec![
        ("state", Record::State(state)),
        ("fossils", Record::Fossils(fossils)),
        ("forgotten", Record::Forgotten(forgotten)),
    ]
}

/// Drill records (§18): a failed drill with every field set (a non-ASCII host name, several
/// snapshots and packs, fractional throughput, bytes beyond 32 bits) and a passed one that took
/// no measurable time (zero throughput, no packs).
fn fixture_drills() -> Vec<DrillRecord> {
    let failed = DrillRecord {
        version: FORMAT_VERSION,
        time: "2026-12-06T21:52:01.5+01:00".into(),
        hostname: "h\u{f6}st-\u{1F600}".into(),
        key: ObjectId([0xd1; 32]),
        snapshots: vec![ObjectId([0xd2; 32]), ObjectId([0xd3; 32])],
        packs: vec![
            ObjectId([0xd4; 32]),
            ObjectId([0xd5; 32]),
            ObjectId([0xd6; 32]),
        ],
        files: 17,
        bytes: 9_000_000_001,
        result: DrillResult::Failed,
        mismatches: 2,
        seconds: 1.25,
        bytes_per_sec: 7_200_000_000.8,
        files_per_sec: 13.6,
        nonce: "000102030405060708090a0b0c0d0e0f".into(),
    };
    let passed = DrillRecord {
        time: "2026-12-07T00:00:00Z".into(),
        hostname: "vector-host".into(),
        snapshots: vec![ObjectId([0xd7; 32])],
        packs: vec![],
        files: 1,
        bytes: 0,
        result: DrillResult::Passed,
        mismatches: 0,
        seconds: 0.0,
        bytes_per_sec: 0.0,
        files_per_sec: 0.0,
        nonce: "f0e0d0c0b0a090807060504030201000".into(),
        ..failed.clone()
    };
    vec![failed, passed]
}

/// Inner lengths (`5 + body`) of the Padmé vectors: both ends of the small range, around the
/// 64-byte rounding and the worst Padmé case (129), powers of two and one past them, the
/// default chunk bounds, the largest data blob and the largest tree blob.
const PADME_LENGTHS: [u64; 22] = [
    0,
    1,
    2,
    3,
    5,
    9,
    63,
    64,
    65,
    129,
    1000,
    1025,
    4101,
    65_537,
    (256 << 10) + 5,
    1 << 20,
    (1 << 20) + 1,
    (1 << 20) + 5,
    (4 << 20) + 5,
    (16 << 20) + 5,
    (1 << 30) + 1,
    (256 << 20) + 5,
];

/// Padmé from §7's text, without the crate: `E` and `S` by counting bits.
fn spec_padme(l: u64) -> u64 {
    if l < 2 {
        return l;
    }
    let bits = |x: u64| 64 - x.leading_zeros() as u64; // ⌊log2 x⌋ + 1
    let e = bits(l) - 1;
    let s = bits(e);
    let z = e - s;
    let m = (1u64 << z) - 1;
    (l + m) & !m
}

/// The gear table from §6's text, without the crate: BLAKE3 keyed XOF of the input string.
fn spec_gear(chunker_key: &[u8; 32]) -> Vec<u64> {
    let mut x = [0u8; 2048];
    let mut h = blake3::Hasher::new_keyed(chunker_key);
    h.update(b"tresor v2 gear table");
    h.finalize_xof().fill(&mut x);
    x.chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8")))
        .collect()
}

/// AEAD associated data of a sealed object per §3: its 5-byte header, then the signer's public
/// key when the object travels in a signed envelope (every kind but pack headers).
fn spec_aad(sealed: &[u8], signer: Option<&[u8; 32]>) -> Vec<u8> {
    let mut aad = sealed[..5].to_vec();
    if let Some(pk) = signer {
        aad.extend_from_slice(pk);
    }
    aad
}

/// Argon2id cases: (label, password, salt, params).
fn argon2_cases() -> Vec<(&'static str, String, Vec<u8>, KdfParams)> {
    let small = KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    };
    vec![
        (
            "ascii",
            "correct horse battery staple".into(),
            b"tresor-salt-0001".to_vec(),
            small,
        ),
        (
            "nfc",
            "Am\u{e9}lie \u{212B}".into(), // é precomposed; U+212B ANGSTROM SIGN (NFC: U+00C5)
            b"tresor-salt-0002".to_vec(),
            small,
        ),
        (
            "nfd",
            "Ame\u{301}lie A\u{30A}".into(), // e + COMBINING ACUTE; A + COMBINING RING ABOVE
            b"tresor-salt-0002".to_vec(),
            small,
        ),
        (
            "two-lanes",
            "tresor".into(),
            b"tresor-salt-0004".to_vec(),
            KdfParams {
                m_kib: 128,
                t: 2,
                p: 2,
            },
        ),
        (
            "empty-2-lanes",
            String::new(),
            b"tresor-salt-0003".to_vec(),
            KdfParams {
                m_kib: 64,
                t: 2,
                p: 2,
            },
        ),
    ]
}

const KEYFILE_PARAMS: KdfParams = KdfParams {
    m_kib: 64,
    t: 1,
    p: 1,
};

/// Plaintexts of the blobs in the vector packs: (label, type, plaintext, expected flag).
fn pack_blobs() -> Vec<(&'static str, BlobType, Vec<u8>, u8)> {
    vec![
        ("short-raw", BlobType::Data, b"hello, tresor\n".to_vec(), 0),
        (
            "compressible-zstd",
            BlobType::Data,
            b"tresor test vector line\n".repeat(200),
            1,
        ),
        (
            "random-raw",
            BlobType::Data,
            splitmix_bytes(0x1234, 1000),
            0,
        ),
        // 5 005 bytes of inner: Padmé gives 5 120 (a multiple of 2^8), 64-byte padding 5 056.
        (
            "random-raw-padme",
            BlobType::Data,
            splitmix_bytes(0x5678, 5000),
            0,
        ),
    ]
}

/// Plaintexts of the blobs in the version-3 vector pack, in the order they are added: three
/// data blobs under 256 KiB (one frame, format §7 flag 2), a compressible blob and a random
/// one of at least 256 KiB (stored alone, flags 1 and 0). (label, plaintext, member.)
fn pack_v3_blobs() -> Vec<(&'static str, Vec<u8>, bool)> {
    let lines = |line: &str, len: usize| -> Vec<u8> {
        let mut v = Vec::new();
        let mut i = 0;
        while v.len() < len {
            v.extend_from_slice(format!("{line} {i:06}\n").as_bytes());
            i += 1;
        }
        v.truncate(len);
        v
    };
    vec![
        ("member-short", b"hello, frame\n".to_vec(), true),
        (
            "member-text",
            b"tresor frame member line\n".repeat(200),
            true,
        ),
        (
            "member-200k",
            lines("line of a 200 KiB member", 200 << 10),
            true,
        ),
        ("single-zstd", lines("single zstd blob", 300 << 10), false),
        ("single-raw", splitmix_bytes(0x9abc, 256 << 10), false),
    ]
}

/// The `packs_v3` entry: a version-3 data pack of [`pack_v3_blobs`].
fn generate_pack_v3(key: &MasterKey) -> Value {
    let mut b = PackBuilder::new(3, 1 << 20).expect("builder");
    for (_, plain, _) in pack_v3_blobs() {
        b.add(BlobType::Data, key.blob_id(&plain), &plain)
            .expect("add");
    }
    let (bytes, header) = b.finish(key).expect("finish");
    let blobs: Vec<Value> = pack_v3_blobs()
        .into_iter()
        .map(|(label, plain, _)| {
            let id = key.blob_id(&plain);
            let e = header.blobs.iter().find(|e| e.id == id).expect("listed");
            let mut v = json!({
                "label": label,
                "id": id.to_hex(),
                "offset": e.offset,
                "length": e.length,
                "raw_length": e.raw_length,
                "member": e.member,
                "plaintext_blake3": blake3::hash(&plain).to_hex().to_string(),
            });
            if plain.len() <= 8192 {
                v["plaintext_hex"] = json!(hex::encode(&plain));
            }
            v
        })
        .collect();
    json!({
        "pack_id": ObjectId::of(&bytes).to_hex(),
        "pack_hex": hex::encode(&bytes),
        "header_hex": hex::encode(pack::encode_header(&header)),
        "plaintexts": "as pack_v3_blobs in vectors.rs makes them: repeated numbered lines, and splitmix_bytes(0x9abc, 262144)",
        "blobs": blobs,
    })
}

/// The streaming loop of the archiver: a buffer of `buf_len` ≥ max bytes, refilled (with reads
/// of irregular sizes) whenever fewer than `max` unchunked bytes remain and input is left.
fn stream_lengths(chunker: &Chunker, input: &[u8], buf_len: usize) -> Vec<usize> {
    const READS: [usize; 5] = [65_536, 1, 12_295, 1 << 20, 3];
    let max = chunker.max_size();
    assert!(buf_len >= max);
    let mut buf = vec![0u8; buf_len];
    let (mut start, mut end, mut eof, mut pos, mut step) = (0usize, 0usize, false, 0usize, 0);
    let mut out = Vec::new();
    loop {
        if end - start < max && !eof {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
            while end < buf.len() && !eof {
                let n = (buf.len() - end)
                    .min(READS[step % READS.len()])
                    .min(input.len() - pos);
                step += 1;
                if n == 0 {
                    eof = true;
                } else {
                    buf[end..end + n].copy_from_slice(&input[pos..pos + n]);
                    pos += n;
                    end += n;
                }
            }
        }
        if start == end {
            return out;
        }
        let n = chunker.next_cut(&buf[start..end]);
        assert!(n > 0 && n <= max);
        out.push(n);
        start += n;
    }
}

fn lengths_json(v: &Value) -> Vec<usize> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| u(x) as usize)
        .collect()
}

/// A minimal postcard reader, written from the specification (§8–§10, §16), independent of the
/// `postcard` crate: unsigned varints (LEB128, 7 bits per byte, least significant first),
/// zigzag for signed, length-prefixed byte strings, fixed 32-byte ids.
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    /// Blob entries are version 3's (with `member`, an `Option<u64>`).
    v3: bool,
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Self {
        Reader {
            b,
            pos: 0,
            v3: false,
        }
    }
    /// Read a structure's leading version varint; entries that follow are read in its layout.
    fn version(&mut self) -> u32 {
        let v = self.varint() as u32;
        self.v3 = v == 3;
        v
    }
    fn byte(&mut self) -> u8 {
        let x = self.b[self.pos];
        self.pos += 1;
        x
    }
    fn varint(&mut self) -> u64 {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte();
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return v;
            }
        }
        panic!("varint too long")
    }
    fn signed(&mut self) -> i64 {
        let z = self.varint();
        ((z >> 1) as i64) ^ -((z & 1) as i64)
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let x = &self.b[self.pos..self.pos + n];
        self.pos += n;
        x
    }
    fn bytes(&mut self) -> Vec<u8> {
        let n = self.varint() as usize;
        self.take(n).to_vec()
    }
    fn id(&mut self) -> [u8; 32] {
        self.take(32).try_into().expect("32")
    }
    fn bool(&mut self) -> bool {
        match self.byte() {
            0 => false,
            1 => true,
            b => panic!("bool byte {b}"),
        }
    }
    fn option(&mut self) -> bool {
        self.bool()
    }
    fn string(&mut self) -> String {
        String::from_utf8(self.bytes()).expect("utf-8")
    }
    fn timestamp(&mut self) -> Timestamp {
        let secs = self.signed();
        let nanos = self.varint() as u32;
        Timestamp { secs, nanos }
    }
    fn blob_entry(&mut self) -> BlobEntry {
        let blob_type = match self.varint() {
            0 => BlobType::Data,
            1 => BlobType::Tree,
            t => panic!("blob type {t}"),
        };
        BlobEntry {
            blob_type,
            id: BlobId(self.id()),
            offset: self.varint(),
            length: self.varint(),
            raw_length: self.varint(),
            // Version 3: postcard Option (0 = None, 1 then a varint = Some).
            member: if self.v3 && self.option() {
                Some(self.varint())
            } else {
                None
            },
        }
    }
    fn entries(&mut self) -> Vec<BlobEntry> {
        (0..self.varint()).map(|_| self.blob_entry()).collect()
    }
    fn end(&self) {
        assert_eq!(self.pos, self.b.len(), "trailing bytes");
    }
}

fn read_index(b: &[u8]) -> IndexFile {
    let mut r = Reader::new(b);
    let version = r.version();
    let supersedes = (0..r.varint()).map(|_| ObjectId(r.id())).collect();
    let packs = (0..r.varint())
        .map(|_| IndexPack {
            id: ObjectId(r.id()),
            data_key: DataKey(r.id()),
            blobs: r.entries(),
        })
        .collect();
    r.end();
    IndexFile {
        version,
        supersedes,
        packs,
    }
}

fn read_pack_header(b: &[u8]) -> PackHeader {
    let mut r = Reader::new(b);
    let h = PackHeader {
        version: r.version(),
        data_key: DataKey(r.id()),
        blobs: r.entries(),
    };
    r.end();
    h
}

fn read_ids(r: &mut Reader<'_>) -> Vec<ObjectId> {
    (0..r.varint()).map(|_| ObjectId(r.id())).collect()
}

/// A prune record from its sealed plaintext, per §16: the magic, then the variant index and
/// the fields of the variant in order.
fn read_record(b: &[u8]) -> Record {
    assert_eq!(&b[..4], b"TPR2", "magic");
    let mut r = Reader::new(&b[4..]);
    let rec = match r.varint() {
        0 => Record::State(PruneState {
            version: r.varint() as u32,
            run: r.varint(),
            supersedes: read_ids(&mut r),
            generations: (0..r.varint())
                .map(|_| Generation {
                    run: r.varint(),
                    fossils: read_ids(&mut r),
                    blind: read_ids(&mut r),
                    packs: r.varint(),
                    bytes: r.varint(),
                    armed: r.option().then(|| Arming {
                        run: r.varint(),
                        snapshots: read_ids(&mut r),
                        hosts: (0..r.varint()).map(|_| r.string()).collect(),
                    }),
                })
                .collect(),
            deleting: read_ids(&mut r),
            unindexed: read_ids(&mut r),
        }),
        1 => Record::Fossils(FossilSet {
            version: r.version(),
            run: r.varint(),
            packs: (0..r.varint())
                .map(|_| FossilPack {
                    pack: IndexPack {
                        id: ObjectId(r.id()),
                        data_key: DataKey(r.id()),
                        blobs: r.entries(),
                    },
                    verified: r.bool(),
                })
                .collect(),
        }),
        2 => Record::Forgotten(ForgetRecord {
            version: r.varint() as u32,
            ids: read_ids(&mut r),
        }),
        v => panic!("record variant {v}"),
    };
    r.end();
    rec
}

fn read_tree(b: &[u8]) -> Tree {
    assert_eq!(b[0], 2, "tree version byte");
    let mut r = Reader::new(&b[1..]);
    const KINDS: [NodeKind; 7] = [
        NodeKind::File,
        NodeKind::Dir,
        NodeKind::Symlink,
        NodeKind::Fifo,
        NodeKind::Socket,
        NodeKind::CharDevice,
        NodeKind::BlockDevice,
    ];
    let nodes = (0..r.varint())
        .map(|_| Node {
            name: r.bytes(),
            kind: KINDS[r.varint() as usize],
            mode: r.varint() as u32,
            uid: r.varint() as u32,
            gid: r.varint() as u32,
            user: r.option().then(|| r.string()),
            group: r.option().then(|| r.string()),
            mtime: r.timestamp(),
            atime: r.timestamp(),
            ctime: r.timestamp(),
            size: r.varint(),
            device: r.varint(),
            inode: r.varint(),
            links: r.varint(),
            rdev: r.varint(),
            target: r.bytes(),
            xattrs: (0..r.varint())
                .map(|_| Xattr {
                    name: r.bytes(),
                    value: r.bytes(),
                })
                .collect(),
            sparse: r.bool(),
            content: (0..r.varint()).map(|_| BlobId(r.id())).collect(),
            subtree: r.option().then(|| BlobId(r.id())),
        })
        .collect();
    r.end();
    Tree { nodes }
}

/// Open a sealed object with the `hpke` crate directly, per §3 (info string, associated data).
fn hpke_open(secret: &[u8; 32], info: &str, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(secret).ok()?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&sealed[5..37]).ok()?;
    hpke::single_shot_open::<Aead, Kdf, Kem>(
        &OpModeR::Base,
        &sk,
        &enc,
        info.as_bytes(),
        &sealed[37..],
        aad,
    )
    .ok()
}

/// XChaCha20-Poly1305 decryption of `nonce (24) || ciphertext || tag (16)`, directly.
fn xchacha_open(key: &[u8; 32], aad: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let nonce = XNonce::try_from(&data[..24]).ok()?;
    let tag = Tag::try_from(&data[data.len() - 16..]).ok()?;
    let mut buf = data[24..data.len() - 16].to_vec();
    XChaCha20Poly1305::new_from_slice(key)
        .ok()?
        .decrypt_inout_detached(&nonce, aad, InOutBuf::from(buf.as_mut_slice()), &tag)
        .ok()?;
    Some(buf)
}

fn blob_type_name(t: BlobType) -> &'static str {
    match t {
        BlobType::Data => "data",
        BlobType::Tree => "tree",
    }
}

fn blob_type_from(v: &Value) -> BlobType {
    match s(v) {
        "data" => BlobType::Data,
        "tree" => BlobType::Tree,
        t => panic!("blob type {t}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The generator (run once; its output is committed).

fn certificate_cases() -> Vec<(KeyKind, [u8; 32], &'static str, &'static str)> {
    vec![
        (
            KeyKind::Full,
            FULL_SIGNING_SECRET,
            "vector-host",
            "2025-01-01T00:00:00Z",
        ),
        (
            KeyKind::PutOnly,
            PUT_ONLY_SIGNING_SECRET,
            "h\u{f6}st-\u{1F600}",
            "2025-01-02T03:04:05Z",
        ),
    ]
}

/// Signature cases: (kind, signer secret, body).
fn signature_cases() -> Vec<(SignedKind, [u8; 32], Vec<u8>)> {
    vec![
        (SignedKind::Snapshot, FULL_SIGNING_SECRET, b"".to_vec()),
        (
            SignedKind::Index,
            PUT_ONLY_SIGNING_SECRET,
            b"tresor signed body".to_vec(),
        ),
        (SignedKind::Revocation, ADMIN_SECRET, vec![0xff; 100]),
    ]
}

fn kind_name(k: KeyKind) -> &'static str {
    match k {
        KeyKind::Full => "full",
        KeyKind::PutOnly => "put-only",
    }
}

/// The sealed vectors: (label, kind, plaintext).
fn sealed_cases(
    snap: &[u8],
    index: &[u8],
    header: &[u8],
    marker: &[u8],
) -> Vec<(&'static str, SealedKind, Vec<u8>)> {
    vec![
        ("snapshot", SealedKind::Snapshot, snap.to_vec()),
        ("index", SealedKind::Index, index.to_vec()),
        ("pack header", SealedKind::PackHeader, header.to_vec()),
        ("marker", SealedKind::Marker, marker.to_vec()),
    ]
}

/// Writes `tests/vectors/v2.json`. Ignored: running it again replaces every randomised vector.
#[test]
#[ignore = "generates tests/vectors/v2.json; run only to create a new vector file"]
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn generate() {
    let key = fixture_master_key();
    let master_json = serde_json::to_string(&key).expect("key serializes");
    let signer = full_signer();

    let signatures: Vec<Value> = signature_cases()
        .into_iter()
        .map(|(kind, secret, body)| {
            let s = Signer::from_secret(&secret);
            json!({
                "kind": kind as u8,
                "signer_secret": hex::encode(secret),
                "signer_public": hex::encode(s.public()),
                "body_hex": hex::encode(&body),
                "signature_hex": hex::encode(s.sign(kind, &body)),
                "envelope_hex": hex::encode(s.envelope(kind, &body)),
            })
        })
        .collect();

    let certificates: Vec<Value> = certificate_cases()
        .into_iter()
        .map(|(kind, secret, host, created)| {
            let pk = Signer::from_secret(&secret).public();
            let cert = KeyFile::certify(&key, kind, &pk, host, created).expect("certify");
            json!({
                "kind": kind_name(kind),
                "signing_public": hex::encode(pk),
                "host": host,
                "created": created,
                "body_hex": hex::encode(keyfile::certificate_body(kind, &pk, host, created)),
                "certificate_hex": hex::encode(cert),
            })
        })
        .collect();

    let argon2: Vec<Value> = argon2_cases()
        .into_iter()
        .map(|(label, pw, salt, p)| {
            let k = keyfile::derive_key(&pw, &salt, p).expect("derive");
            json!({
                "label": label,
                "password_utf8_hex": hex::encode(pw.as_bytes()),
                "salt_hex": hex::encode(&salt),
                "m_kib": p.m_kib, "t": p.t, "p": p.p,
                "key_hex": hex::encode(*k),
            })
        })
        .collect();

    let key_files: Vec<Value> = certificate_cases()
        .into_iter()
        .zip(["correct horse battery staple", "Ame\u{301}lie"])
        .map(|((kind, secret, host, created), pw)| {
            let master = match kind {
                KeyKind::Full => key.clone(),
                KeyKind::PutOnly => key.put_only(),
            };
            let payload = KeyPayload {
                master,
                signing_secret: secret,
            };
            let pk = payload.signer().public();
            let cert = KeyFile::certify(&key, kind, &pk, host, created).expect("certify");
            let kf = KeyFile::create(
                &payload,
                pw,
                KEYFILE_PARAMS,
                (host, "vector-user", created),
                cert,
            )
            .expect("key file");
            let bytes = kf.to_bytes();
            json!({
                "password_utf8_hex": hex::encode(pw.as_bytes()),
                "kind": kind_name(kind),
                "payload_json": serde_json::to_string(&payload).expect("json"),
                "stored": String::from_utf8(bytes.clone()).expect("utf-8"),
                "object_id": ObjectId::of(&bytes).to_hex(),
            })
        })
        .collect();

    let mut id_cases = Vec::new();
    for (label, input) in [
        ("empty", Vec::new()),
        ("abc", b"abc".to_vec()),
        ("splitmix64(1), 1 MiB", splitmix_bytes(1, 1 << 20)),
    ] {
        id_cases.push(json!({
            "label": label,
            "input_hex": if input.len() <= 64 { json!(hex::encode(&input)) } else { Value::Null },
            "object_id": ObjectId::of(&input).to_hex(),
            "blob_id": BlobId::of(&key.id_key, &input).to_hex(),
        }));
    }

    let tree = fixture_tree().encode();
    let index = fixture_index().encode();
    let header = pack::encode_header(&fixture_pack_header());
    let snap = snapshot_json(&fixture_snapshot());

    let marker = marker_json(&fixture_marker());
    let signer_pk = signer.public();
    let sealed: Vec<Value> = sealed_cases(&snap, &index, &header, &marker)
        .into_iter()
        .map(|(label, kind, plain)| {
            let by = kind.in_envelope().then_some(&signer_pk);
            let bytes = key.seal(kind, &plain, by).expect("seal");
            json!({
                "kind": label,
                "signer_public": by.map(hex::encode),
                "plaintext_hex": hex::encode(&plain),
                "aad_hex": hex::encode(spec_aad(&bytes, by)),
                "sealed_hex": hex::encode(&bytes),
            })
        })
        .collect();

    let snapshot_object = fixture_snapshot().seal(&key, &signer).expect("seal");
    let marker_object = fixture_marker().seal(&key, &signer).expect("seal");
    let index_object = fixture_index().to_object(&key, &signer).expect("seal");
    let revocation_object = fixture_revocation().to_object(&key.admin().expect("admin"));
    let dedup: Vec<Value> = fixture_index()
        .packs
        .iter()
        .flat_map(|p| &p.blobs)
        .map(|b| json!([blob_type_name(b.blob_type), b.id.to_hex()]))
        .collect();

    let mut packs = Vec::new();
    let data_blobs: Vec<_> = pack_blobs().into_iter().map(|b| (b.0, b.1, b.2)).collect();
    let tree_blobs = vec![("fixture-tree", BlobType::Tree, tree.clone())];
    for blobs in [data_blobs, tree_blobs] {
        let mut b = PackBuilder::new(3, 1 << 16)
            .expect("builder")
            .with_version(2);
        for (_, t, plain) in &blobs {
            b.add(*t, key.blob_id(plain), plain).expect("add");
        }
        let (bytes, header) = b.finish(&key).expect("finish");
        let list: Vec<Value> = blobs
            .iter()
            .zip(&header.blobs)
            .map(|((label, t, plain), e)| {
                let stored = &bytes[e.offset as usize..(e.offset + e.length) as usize];
                let aad = [&[t.byte()][..], &e.id.0].concat();
                let inner = xchacha_open(&header.data_key.0, &aad, stored).expect("decrypts");
                json!({
                    "label": label,
                    "type": blob_type_name(*t),
                    "id": e.id.to_hex(),
                    "plaintext_hex": hex::encode(plain),
                    "flag": inner[0],
                })
            })
            .collect();
        packs.push(json!({
            "pack_id": ObjectId::of(&bytes).to_hex(),
            "pack_hex": hex::encode(&bytes),
            "blobs": list,
        }));
    }

    let params = ChunkerParams::default();
    let input = splitmix_bytes(CHUNK_INPUT_SEED, CHUNK_INPUT_LEN);
    let chunk_cases: Vec<Value> = std::iter::once(key.chunker_key)
        .chain(OTHER_CHUNKER_KEYS)
        .map(|k| {
            json!({
                "chunker_key": hex::encode(k),
                "lengths": params.lengths(&input, &k),
                "prefix_lengths": params.lengths(&input[..CHUNK_PREFIX_LEN], &k),
            })
        })
        .collect();
    let (gear, gear_ls) = tresor_format::chunker::gear_table(&key.chunker_key);
    let padme: Vec<Value> = PADME_LENGTHS
        .iter()
        .map(|&l| {
            json!({
                "inner_len": l,
                "padme": blob::padme(l),
                "padded_len": blob::padded_len(l as usize),
            })
        })
        .collect();

    let records: Vec<Value> = fixture_records()
        .into_iter()
        .map(|(kind, rec)| {
            json!({
                "kind": kind,
                "encoded_hex": hex::encode(rec.encode()),
                "object_hex": hex::encode(rec.seal(&key, &signer).expect("seal")),
            })
        })
        .collect();

    let drills: Vec<Value> = fixture_drills()
        .iter()
        .map(|d| {
            json!({
                "json": String::from_utf8(serde_json::to_vec(d).expect("json")).expect("utf-8"),
                "object_hex": hex::encode(d.seal(&key, &signer).expect("seal")),
            })
        })
        .collect();

    let mut doc = json!({
        "about": "tresor repository format version 2 test vectors; see docs/format.md §15 and crates/tresor-format/tests/vectors.rs",
        "format_version": FORMAT_VERSION,
        "master_key": {
            "derive_keypair_ikm_utf8": std::str::from_utf8(MASTER_IKM).expect("ascii"),
            "secret_key": hex::encode(key.secret_key.expect("full")),
            "public_key": hex::encode(key.public_key),
            "id_key": hex::encode(key.id_key),
            "chunker_key": hex::encode(key.chunker_key),
            "admin_secret": hex::encode(ADMIN_SECRET),
            "admin_public": hex::encode(key.admin_public),
            "json": master_json,
        },
        "signatures": signatures,
        "certificates": certificates,
        "argon2id": argon2,
        "key_files": key_files,
        "ids": { "id_key": hex::encode(key.id_key), "cases": id_cases },
        "tree": { "encoded_hex": hex::encode(&tree), "blob_id": key.blob_id(&tree).to_hex() },
        "index": { "encoded_hex": hex::encode(&index) },
        "pack_header": { "encoded_hex": hex::encode(&header) },
        "snapshot": { "json": String::from_utf8(snap).expect("utf-8") },
        "marker": { "json": String::from_utf8(marker).expect("utf-8") },
        "config": { "stored": String::from_utf8(fixture_config().to_bytes()).expect("utf-8") },
        "sealed": sealed,
        "objects": {
            "signer_public": hex::encode(signer.public()),
            "snapshot_hex": hex::encode(&snapshot_object),
            "marker_hex": hex::encode(&marker_object),
            "index_hex": hex::encode(&index_object),
            "index_dedup_list": dedup,
            "index_dedup_key": hex::encode(tresor_format::index::dedup_key(&signer).0),
            "revocation_hex": hex::encode(&revocation_object),
        },
        "packs": packs,
        "packs_v3": generate_pack_v3(&key),
        "records": {
            "magic_utf8": std::str::from_utf8(RECORD_MAGIC).expect("ascii"),
            "signer_public": hex::encode(signer.public()),
            "cases": records,
        },
        "drills": { "signer_public": hex::encode(signer.public()), "cases": drills },
        "padme": padme,
        "gear_table": {
            "chunker_key": hex::encode(key.chunker_key),
            "input_utf8": std::str::from_utf8(tresor_format::chunker::GEAR_TABLE_INPUT).expect("ascii"),
            "first": [format!("{:016x}", gear[0]), format!("{:016x}", gear[1])],
            "last": format!("{:016x}", gear[255]),
            "first_ls": format!("{:016x}", gear_ls[0]),
            "last_ls": format!("{:016x}", gear_ls[255]),
            "table_blake3": blake3::hash(&gear.iter().flat_map(|g| g.to_le_bytes()).collect::<Vec<u8>>()).to_hex().to_string(),
        },
        "chunking": {
            "input": "splitmix64 little-endian byte stream, see splitmix_bytes in vectors.rs",
            "input_seed": CHUNK_INPUT_SEED,
            "input_len": CHUNK_INPUT_LEN,
            "input_blake3": blake3::hash(&input).to_hex().to_string(),
            "prefix_len": CHUNK_PREFIX_LEN,
            "min_size": params.min_size,
            "avg_size": params.avg_size,
            "max_size": params.max_size,
            "cases": chunk_cases,
        },
    });
    let path = vectors_path();
    // The vectors of a format version are made once: an entry the committed file holds is kept
    // as it is (made again, its randomised parts would differ). Only entries it lacks — those of
    // additions to the format, like `records` — are written.
    if let Ok(text) = std::fs::read_to_string(&path) {
        let committed: Value = serde_json::from_str(&text).expect("v2.json is JSON");
        for (k, v) in committed.as_object().expect("an object") {
            doc[k] = v.clone();
        }
    }
    std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
    let mut text = serde_json::to_string_pretty(&doc).expect("json");
    text.push('\n');
    std::fs::write(&path, text).expect("write v2.json");
}

// ---------------------------------------------------------------------------------------------
// Checks (read the committed file only).

#[test]
fn master_key_vector() {
    let v = load();
    let m = &v["master_key"];
    let key = master_key_from(m);
    assert_same_key(&key, &fixture_master_key());
    // The public key is X25519(secret key); the admin public key is Ed25519(admin secret).
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(&key.secret_key.expect("full")).unwrap();
    assert_eq!(Kem::sk_to_pk(&sk).to_bytes().as_slice(), key.public_key);
    assert_eq!(
        ed25519_dalek::SigningKey::from_bytes(&key.admin_secret.unwrap())
            .verifying_key()
            .to_bytes(),
        key.admin_public
    );
    // §3.1: the JSON form inside key files.
    assert_eq!(serde_json::to_string(&key).unwrap(), s(&m["json"]));
    let fields: Value = serde_json::from_str(s(&m["json"])).unwrap();
    assert_eq!(fields["chunker_key"], json!(hex::encode(CHUNKER_KEY)));
    assert!(fields.get("chunker_seed").is_none());
    let parsed: MasterKey = serde_json::from_str(s(&m["json"])).unwrap();
    assert_same_key(&parsed, &key);
    // A put-only key omits `secret_key` and `admin_secret`.
    let po = serde_json::to_value(key.put_only()).unwrap();
    assert!(po.get("secret_key").is_none() && po.get("admin_secret").is_none());
    assert!(!key.put_only().can_read());
    assert!(key.put_only().admin().is_err());
}

#[test]
fn signature_vectors() {
    let v = load();
    let cases = v["signatures"].as_array().unwrap();
    assert_eq!(cases.len(), signature_cases().len());
    for (c, (kind, secret, body)) in cases.iter().zip(signature_cases()) {
        assert_eq!(u(&c["kind"]), kind as u64);
        assert_eq!(unhex(&c["signer_secret"]), secret);
        assert_eq!(unhex(&c["body_hex"]), body);
        let signer = Signer::from_secret(&secret);
        let pk = signer.public();
        assert_eq!(hex::encode(pk), s(&c["signer_public"]));
        let sig = signer.sign(kind, &body);
        assert_eq!(
            hex::encode(sig),
            s(&c["signature_hex"]),
            "Ed25519 is deterministic"
        );
        let env = unhex(&c["envelope_hex"]);
        assert_eq!(signer.envelope(kind, &body), env);
        // §3.2 independently: envelope = "TSG2" || signer || body || signature, and the
        // signature is Ed25519 over "tresor signed v2" || kind || signer || body.
        assert_eq!(env, [&b"TSG2"[..], &pk, &body, &sig].concat());
        let msg = [&b"tresor signed v2"[..], &[kind as u8], &pk, &body].concat();
        ed25519_dalek::VerifyingKey::from_bytes(&pk)
            .unwrap()
            .verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&sig))
            .expect("plain Ed25519 verifies");
        assert!(sign::verify(&pk, kind, &body, &sig));
        let (who, b) = sign::open_envelope(kind, &env).unwrap();
        assert_eq!((who, b), (pk, &body[..]));
        let other = if kind == SignedKind::Index {
            SignedKind::Snapshot
        } else {
            SignedKind::Index
        };
        assert!(matches!(
            sign::open_envelope(other, &env),
            Err(FormatError::Authentication { .. })
        ));
        for i in 0..env.len() {
            let mut m = env.clone();
            m[i] ^= 0x01;
            match sign::open_envelope(kind, &m) {
                Err(FormatError::Malformed { .. }) if i < 4 => {}
                Err(FormatError::Authentication { .. }) if i >= 4 => {}
                r => panic!("flipping byte {i} gave {:?}", r.map(|x| x.0)),
            }
        }
    }
}

#[test]
fn certificate_vectors() {
    let v = load();
    let admin = master_key_from(&v["master_key"]);
    let cases = v["certificates"].as_array().unwrap();
    assert_eq!(cases.len(), certificate_cases().len());
    for (c, (kind, secret, host, created)) in cases.iter().zip(certificate_cases()) {
        let pk = Signer::from_secret(&secret).public();
        assert_eq!(
            (s(&c["kind"]), s(&c["host"]), s(&c["created"])),
            (kind_name(kind), host, created)
        );
        assert_eq!(hex::encode(pk), s(&c["signing_public"]));
        let body = keyfile::certificate_body(kind, &pk, host, created);
        assert_eq!(hex::encode(&body), s(&c["body_hex"]));
        // kind byte || signing public key || u32 LE host length || host || created.
        let kind_byte = if kind == KeyKind::Full { 1 } else { 2 };
        let expected = [
            &[kind_byte][..],
            &pk,
            &(host.len() as u32).to_le_bytes(),
            host.as_bytes(),
            created.as_bytes(),
        ]
        .concat();
        assert_eq!(body, expected);
        let cert = KeyFile::certify(&admin, kind, &pk, host, created).unwrap();
        assert_eq!(hex::encode(cert), s(&c["certificate_hex"]));
        assert!(sign::verify(
            &admin.admin_public,
            SignedKind::KeyCertificate,
            &body,
            &cert
        ));
        // Put-only keys cannot certify.
        assert!(KeyFile::certify(&admin.put_only(), kind, &pk, host, created).is_err());
    }
}

#[test]
fn argon2id_vectors() {
    let v = load();
    let cases = v["argon2id"].as_array().unwrap();
    assert_eq!(cases.len(), argon2_cases().len());
    for (c, (label, pw, salt, p)) in cases.iter().zip(argon2_cases()) {
        assert_eq!(s(&c["label"]), label);
        assert_eq!(unhex(&c["password_utf8_hex"]), pw.as_bytes(), "{label}");
        assert_eq!(unhex(&c["salt_hex"]), salt, "{label}");
        let params = KdfParams {
            m_kib: u(&c["m_kib"]) as u32,
            t: u(&c["t"]) as u32,
            p: u(&c["p"]) as u32,
        };
        assert_eq!(params, p, "{label}");
        let k = keyfile::derive_key(&pw, &salt, params).unwrap();
        assert_eq!(hex::encode(*k), s(&c["key_hex"]), "{label}");
    }
    // NFC normalisation: the NFD spelling derives the NFC spelling's key.
    let by = |l: &str| cases.iter().find(|c| s(&c["label"]) == l).unwrap();
    assert_ne!(
        by("nfc")["password_utf8_hex"],
        by("nfd")["password_utf8_hex"]
    );
    assert_eq!(by("nfc")["key_hex"], by("nfd")["key_hex"]);
    // Invalid cost parameters are refused, not clamped.
    let bad = KdfParams {
        m_kib: 4,
        t: 1,
        p: 1,
    };
    assert!(matches!(
        keyfile::derive_key("x", b"tresor-salt-0001", bad),
        Err(FormatError::Malformed { .. })
    ));
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn key_file_vectors() {
    let v = load();
    let files = v["key_files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    let full = master_key_from(&v["master_key"]);
    let certs = v["certificates"].as_array().unwrap();
    for ((f, cert), (kind, secret, host, created)) in
        files.iter().zip(certs).zip(certificate_cases())
    {
        let pw = String::from_utf8(unhex(&f["password_utf8_hex"])).unwrap();
        let bytes = s(&f["stored"]).as_bytes();
        assert_eq!(ObjectId::of(bytes).to_hex(), s(&f["object_id"]));
        let kf = KeyFile::from_bytes(bytes).unwrap();
        assert_eq!(s(&f["kind"]), kind_name(kind));
        assert_eq!(kf.kind, kind);
        assert_eq!((kf.version, kf.kdf.as_str()), (2, "argon2id"));
        assert_eq!(kf.params, KEYFILE_PARAMS);
        assert_eq!(
            (kf.host.as_str(), kf.username.as_str(), kf.created.as_str()),
            (host, "vector-user", created)
        );
        // The plaintext header carries the signing public key and the admin certificate.
        let pk = Signer::from_secret(&secret).public();
        assert_eq!(kf.signing_public().unwrap(), pk);
        assert_eq!(kf.certificate, s(&cert["certificate_hex"]));
        assert!(kf.certified_by(&full.admin_public));
        assert!(!kf.certified_by(&[0x01; 32]));
        let mut forged = kf.clone();
        forged.host = "elsewhere".into();
        assert!(
            !forged.certified_by(&full.admin_public),
            "host is certified"
        );

        let payload = kf.open(&pw).unwrap();
        let expected = if kind == KeyKind::PutOnly {
            full.put_only()
        } else {
            full.clone()
        };
        assert_same_key(&payload.master, &expected);
        assert_eq!(payload.signing_secret, secret);
        assert_eq!(payload.signer().public(), pk);
        // The NFC spelling of the password opens the key file made with its NFD spelling.
        let nfc: String = pw.replace("e\u{301}", "\u{e9}");
        assert_same_key(&kf.open(&nfc).unwrap().master, &expected);
        assert!(matches!(kf.open("wrong"), Err(FormatError::WrongPassword)));

        // §4 independently: Argon2id → XChaCha20-Poly1305 with AAD "tresor key v2" → JSON.
        let salt = B64.decode(&kf.salt).unwrap();
        let nonce = B64.decode(&kf.nonce).unwrap();
        let data = B64.decode(&kf.data).unwrap();
        assert_eq!((salt.len(), nonce.len()), (16, 24));
        let kek = keyfile::derive_key(&pw, &salt, kf.params).unwrap();
        let sealed = [nonce, data].concat();
        let plain = xchacha_open(&kek, b"tresor key v2", &sealed).expect("key file decrypts");
        assert_eq!(plain, s(&f["payload_json"]).as_bytes());
        assert!(xchacha_open(&kek, b"tresor key v1", &sealed).is_none());
        let payload_value: Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(payload_value["signing_secret"], json!(hex::encode(secret)));
        assert_eq!(
            payload_value["master"],
            serde_json::to_value(&expected).unwrap()
        );

        // A key file is JSON with exactly these fields.
        let obj: Value = serde_json::from_slice(bytes).unwrap();
        let mut fields: Vec<&str> = obj
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "certificate",
                "created",
                "data",
                "host",
                "kdf",
                "kind",
                "nonce",
                "params",
                "salt",
                "signing_public",
                "username",
                "version"
            ]
        );
    }
}

#[test]
fn id_vectors() {
    let v = load();
    let id_key = unhex32(&v["ids"]["id_key"]);
    let inputs: [Vec<u8>; 3] = [Vec::new(), b"abc".to_vec(), splitmix_bytes(1, 1 << 20)];
    let cases = v["ids"]["cases"].as_array().unwrap();
    assert_eq!(cases.len(), inputs.len());
    for (c, input) in cases.iter().zip(inputs) {
        if let Some(h) = c["input_hex"].as_str() {
            assert_eq!(hex::decode(h).unwrap(), input);
        }
        assert_eq!(ObjectId::of(&input).to_hex(), s(&c["object_id"]));
        assert_eq!(BlobId::of(&id_key, &input).to_hex(), s(&c["blob_id"]));
        assert_eq!(
            s(&c["blob_id"]).parse::<BlobId>().unwrap(),
            BlobId::of(&id_key, &input)
        );
    }
    // ObjectId is plain BLAKE3-256 (the well-known hash of the empty string).
    assert_eq!(
        s(&cases[0]["object_id"]),
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    );
}

#[test]
fn tree_vector() {
    let v = load();
    let t = &v["tree"];
    let fixture = fixture_tree();
    let encoded = fixture.encode();
    assert_eq!(hex::encode(&encoded), s(&t["encoded_hex"]));
    assert_eq!(Tree::decode(&encoded).unwrap(), fixture);
    assert_eq!(read_tree(&encoded), fixture, "spec-level decoding");
    let key = master_key_from(&v["master_key"]);
    assert_eq!(key.blob_id(&encoded).to_hex(), s(&t["blob_id"]));
    // Nodes are sorted by raw name bytes, so lookups work on non-UTF-8 names.
    assert!(fixture.nodes.windows(2).all(|w| w[0].name < w[1].name));
    assert_eq!(
        fixture.find(b"\xff\xfenon-utf8").unwrap().uid,
        4_294_967_294
    );
    // Other tree versions (version 1's byte above all) are refused with the documented message.
    for version in [1u8, 3] {
        let mut other = encoded.clone();
        other[0] = version;
        let err = Tree::decode(&other).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("unsupported tree version {version} (this tresor reads version 2)")
        );
    }
}

/// One node written by hand as format §10 describes it (independent of the crate's encoder):
/// every field zero or empty except the ones given.
struct HandNode<'a> {
    name: &'a [u8],
    kind: u64,
    mode: u64,
    nanos: u64,
    target: &'a [u8],
    xattrs: &'a [&'a [u8]],
    subtree: bool,
}

const FILE: HandNode<'static> = HandNode {
    name: b"a",
    kind: 0,
    mode: 0o644,
    nanos: 0,
    target: b"",
    xattrs: &[],
    subtree: false,
};

fn leb(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn hand_tree(nodes: &[HandNode<'_>]) -> Vec<u8> {
    let mut b = vec![2u8]; // the tree version byte of format version 2
    leb(nodes.len() as u64, &mut b);
    for n in nodes {
        leb(n.name.len() as u64, &mut b);
        b.extend_from_slice(n.name);
        leb(n.kind, &mut b);
        leb(n.mode, &mut b);
        b.extend_from_slice(&[0, 0, 0, 0]); // uid, gid, user None, group None
        b.extend_from_slice(&[0]); // mtime secs
        leb(n.nanos, &mut b); // mtime nanos
        b.extend_from_slice(&[0, 0, 0, 0]); // atime, ctime
        b.extend_from_slice(&[0, 0, 0, 0, 0]); // size, device, inode, links, rdev
        leb(n.target.len() as u64, &mut b);
        b.extend_from_slice(n.target);
        leb(n.xattrs.len() as u64, &mut b);
        for x in n.xattrs {
            leb(x.len() as u64, &mut b);
            b.extend_from_slice(x);
            b.push(0); // empty value
        }
        b.extend_from_slice(&[0, 0]); // sparse false, no content
        if n.subtree {
            b.push(1);
            b.extend_from_slice(&[0x5d; 32]);
        } else {
            b.push(0);
        }
    }
    b
}

/// Negative vectors (format §10 rules; not in v2.json, which stays as generated): trees
/// encoded by hand that break one rule each are refused with a message naming the node.
#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn invalid_tree_vectors() {
    let n = |name: &'static [u8]| HandNode { name, ..FILE };
    // The hand encoding is right: the same bytes with a good name decode.
    let good = Tree::decode(&hand_tree(&[n(b"a"), n(b"b")])).unwrap();
    assert_eq!(good.nodes.len(), 2);
    assert_eq!(
        (good.nodes[1].name.as_slice(), good.nodes[1].mode),
        (&b"b"[..], 0o644)
    );
    let dir = HandNode {
        kind: 1,
        subtree: true,
        ..n(b"d")
    };
    assert_eq!(
        Tree::decode(&hand_tree(&[dir])).unwrap().nodes[0].kind,
        NodeKind::Dir
    );
    let cases: Vec<(Vec<HandNode<'_>>, &str)> = vec![
        (vec![n(b"..")], r#""..": not a valid name"#),
        (vec![n(b".")], r#"".": not a valid name"#),
        (vec![n(b"")], r#""": not a valid name"#),
        (vec![n(b"../../x")], r#""../../x": not a valid name"#),
        (vec![n(b"a\0")], r#""a\x00": not a valid name"#),
        (vec![n(b"a"), n(b"a")], r#""a": duplicate name"#),
        (vec![n(b"b"), n(b"a")], r#""a": out of order (after "b")"#),
        (
            vec![HandNode {
                xattrs: &[b""],
                ..FILE
            }],
            r#""a": extended attribute name "" not valid"#,
        ),
        (
            vec![HandNode {
                xattrs: &[b"user.b", b"user.a"],
                ..FILE
            }],
            r#""a": extended attribute "user.a" duplicated or out of order"#,
        ),
        (
            vec![HandNode {
                kind: 2,
                target: b"/x\0",
                ..FILE
            }],
            r#""a": symlink target holds a NUL byte"#,
        ),
        (
            vec![HandNode {
                kind: 3,
                subtree: true,
                ..FILE
            }],
            r#""a": subtree on a node that is not a directory"#,
        ),
        (
            vec![HandNode { kind: 1, ..FILE }],
            r#""a": directory without a subtree"#,
        ),
        (
            vec![HandNode {
                target: b"x",
                ..FILE
            }],
            r#""a": symlink target on a node that is not a symlink"#,
        ),
        (
            vec![HandNode {
                mode: 0o100644,
                ..FILE
            }],
            r#""a": mode 100644 has bits beyond 7777"#,
        ),
        (
            vec![HandNode {
                nanos: 1_000_000_000,
                ..FILE
            }],
            r#""a": mtime nanoseconds 1000000000 not below 10^9"#,
        ),
    ];
    for (nodes, msg) in cases {
        let bytes = hand_tree(&nodes);
        let err = Tree::decode(&bytes).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("malformed tree: {msg}"),
            "{}",
            hex::encode(&bytes)
        );
    }
}

#[test]
fn index_and_pack_header_vectors() {
    let v = load();
    let index = fixture_index().encode();
    assert_eq!(hex::encode(&index), s(&v["index"]["encoded_hex"]));
    assert_eq!(read_index(&index), fixture_index(), "spec-level decoding");
    let header = pack::encode_header(&fixture_pack_header());
    assert_eq!(hex::encode(&header), s(&v["pack_header"]["encoded_hex"]));
    assert_eq!(read_pack_header(&header), fixture_pack_header());
}

#[test]
fn snapshot_and_config_vectors() {
    let v = load();
    let snap = snapshot_json(&fixture_snapshot());
    assert_eq!(
        std::str::from_utf8(&snap).unwrap(),
        s(&v["snapshot"]["json"])
    );
    let cfg = fixture_config();
    let stored = s(&v["config"]["stored"]);
    assert_eq!(std::str::from_utf8(&cfg.to_bytes()).unwrap(), stored);
    assert_eq!(Config::from_bytes(stored.as_bytes()).unwrap(), cfg);
    for version in [1, 4] {
        let other = stored.replacen("\"version\": 2", &format!("\"version\": {version}"), 1);
        assert_eq!(
            Config::from_bytes(other.as_bytes())
                .unwrap_err()
                .to_string(),
            format!(
                "unsupported repository version {version} (this tresor reads versions 2 and 3)"
            )
        );
    }
    // The algorithm name of version 2; version 1's name is not accepted under version 2.
    assert!(stored.contains("\"algorithm\": \"fastcdc-v2020-keyed-gear\""));
    let seeded = stored.replacen("fastcdc-v2020-keyed-gear", "fastcdc-v2020", 1);
    assert!(matches!(
        Config::from_bytes(seeded.as_bytes()),
        Err(FormatError::Malformed { .. })
    ));
    let m = marker_json(&fixture_marker());
    assert_eq!(std::str::from_utf8(&m).unwrap(), s(&v["marker"]["json"]));
    let odd = stored.replacen("262144", "262145", 1);
    assert!(matches!(
        Config::from_bytes(odd.as_bytes()),
        Err(FormatError::Malformed { .. })
    ));
}

#[test]
#[allow(
    clippy::cognitive_complexity,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn sealed_vectors() {
    let v = load();
    let key = master_key_from(&v["master_key"]);
    let secret = key.secret_key.unwrap();
    let signer_pk = full_signer().public();
    let cases = sealed_cases(
        &snapshot_json(&fixture_snapshot()),
        &fixture_index().encode(),
        &pack::encode_header(&fixture_pack_header()),
        &marker_json(&fixture_marker()),
    );
    let sealed = v["sealed"].as_array().unwrap();
    assert_eq!(sealed.len(), cases.len());
    let other = MasterKey::generate().unwrap();
    for (c, (label, kind, plain)) in sealed.iter().zip(cases) {
        assert_eq!(s(&c["kind"]), label);
        let bytes = unhex(&c["sealed_hex"]);
        assert_eq!(unhex(&c["plaintext_hex"]), plain, "{label}");
        // The signer is bound for every kind but pack headers (they are not signed).
        let by = c["signer_public"]
            .as_str()
            .map(|_| unhex32(&c["signer_public"]));
        assert_eq!(by.is_some(), kind != SealedKind::PackHeader, "{label}");
        assert_eq!(by.is_some(), kind.in_envelope(), "{label}");
        if let Some(pk) = by {
            assert_eq!(pk, signer_pk);
        }
        let by = by.as_ref();
        // Wire layout: "TRS2" || kind || enc (32) || ciphertext || tag (16).
        assert_eq!(&bytes[..4], b"TRS2");
        assert_eq!(bytes[4], kind as u8);
        assert_eq!(bytes.len(), plain.len() + 5 + 32 + 16);
        assert_eq!(key.open(kind, &bytes, by).unwrap(), plain, "{label}");
        // §3 independently: HPKE with info "tresor/v2/<label>" and AAD = header || signer.
        let aad = unhex(&c["aad_hex"]);
        assert_eq!(aad, spec_aad(&bytes, by), "{label}");
        assert_eq!(aad.len(), if by.is_some() { 37 } else { 5 });
        let info = format!("tresor/v2/{label}");
        assert_eq!(
            hpke_open(&secret, &info, &aad, &bytes).as_deref(),
            Some(&plain[..])
        );
        assert!(hpke_open(&secret, "tresor/v1/other", &aad, &bytes).is_none());
        assert!(hpke_open(&secret, &format!("tresor/v1/{label}"), &aad, &bytes).is_none());
        if by.is_some() {
            // Without the signer, or with another one, it does not open.
            assert!(hpke_open(&secret, &info, &bytes[..5], &bytes).is_none());
            assert!(matches!(
                key.open(kind, &bytes, Some(&[0x01; 32])),
                Err(FormatError::Authentication { .. })
            ));
        }
        check_sealed_plaintext(&key, kind, &bytes, &plain);
        assert_seal_is_tamper_evident(&key, kind, &bytes, by, label);
        assert!(key.open(kind, &bytes[..bytes.len() - 1], by).is_err());
        assert!(matches!(
            other.open(kind, &bytes, by),
            Err(FormatError::Authentication { .. })
        ));
        assert!(matches!(
            key.put_only().open(kind, &bytes, by),
            Err(FormatError::PutOnlyKey)
        ));
        let wrong = if kind == SealedKind::Index {
            SealedKind::Snapshot
        } else {
            SealedKind::Index
        };
        assert!(matches!(
            key.open(wrong, &bytes, Some(&signer_pk)),
            Err(FormatError::Malformed { .. })
        ));
    }
}

/// The plaintext of a sealed vector is the fixture it was made from.
fn check_sealed_plaintext(key: &MasterKey, kind: SealedKind, bytes: &[u8], plain: &[u8]) {
    let signer_pk = full_signer().public();
    match kind {
        SealedKind::Snapshot => {
            let snap: Snapshot = serde_json::from_slice(plain).unwrap();
            assert_eq!(snap, fixture_snapshot());
        }
        SealedKind::Index => {
            assert_eq!(
                IndexFile::open_sealed(key, bytes, &signer_pk).unwrap(),
                fixture_index()
            );
        }
        SealedKind::PackHeader => {
            assert_eq!(
                pack::open_header(key, bytes).unwrap(),
                fixture_pack_header()
            );
        }
        SealedKind::Marker => {
            let m: Marker = serde_json::from_slice(plain).unwrap();
            assert_eq!(m, fixture_marker());
        }
        SealedKind::Drill => {
            let d: DrillRecord = serde_json::from_slice(plain).unwrap();
            assert!(fixture_drills().contains(&d), "{d:?}");
        }
    }
}

/// Any changed byte is detected: the header bytes are checked first (malformed), every other
/// byte by authentication.
fn assert_seal_is_tamper_evident(
    key: &MasterKey,
    kind: SealedKind,
    bytes: &[u8],
    by: Option<&[u8; 32]>,
    label: &str,
) {
    for i in 0..bytes.len() {
        let mut m = bytes.to_vec();
        m[i] ^= 0x01;
        match key.open(kind, &m, by) {
            Err(FormatError::Malformed { .. }) if i < 5 => {}
            Err(FormatError::Authentication { .. }) if i >= 5 => {}
            r => panic!("{label}: flipping byte {i} gave {:?}", r.map(|p| p.len())),
        }
    }
}

/// Flip every byte of a signed object: the magic is malformed, every other byte fails.
fn assert_tamper_evident<T>(bytes: &[u8], open: impl Fn(&[u8]) -> Result<T, FormatError>) {
    for i in 0..bytes.len() {
        let mut m = bytes.to_vec();
        m[i] ^= 0x01;
        match open(&m) {
            Err(FormatError::Malformed { .. }) if i < 4 => {}
            Err(FormatError::Authentication { .. }) if i >= 4 => {}
            Err(e) => panic!("flipping byte {i} gave {e}"),
            Ok(_) => panic!("flipping byte {i} was not detected"),
        }
    }
}

#[test]
#[allow(
    clippy::cognitive_complexity,
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn object_vectors() {
    let v = load();
    let key = master_key_from(&v["master_key"]);
    let o = &v["objects"];
    let signer_pk = unhex32(&o["signer_public"]);
    assert_eq!(signer_pk, full_signer().public());

    // Snapshot object: envelope(Snapshot, sealed snapshot JSON bound to the signer).
    let snap = unhex(&o["snapshot_hex"]);
    assert_eq!(&snap[..4], b"TSG2");
    assert_eq!(&snap[4..36], &signer_pk);
    assert_eq!(&snap[36..40], b"TRS2");
    assert_eq!(snap[40], SealedKind::Snapshot as u8);
    let (who, body) = sign::open_envelope(SignedKind::Snapshot, &snap).unwrap();
    assert_eq!(who, signer_pk);
    assert_eq!(
        key.open(SealedKind::Snapshot, body, Some(&signer_pk))
            .unwrap(),
        snapshot_json(&fixture_snapshot())
    );
    // §3 independently: the envelope's signer is the tail of the associated data.
    let secret = key.secret_key.unwrap();
    assert_eq!(
        hpke_open(
            &secret,
            "tresor/v2/snapshot",
            &[&body[..5], &signer_pk].concat(),
            body
        ),
        Some(snapshot_json(&fixture_snapshot()))
    );
    // Re-signed by another key, the same ciphertext no longer opens.
    let forger = Signer::from_secret(&PUT_ONLY_SIGNING_SECRET);
    let rewrapped = forger.envelope(SignedKind::Snapshot, body);
    assert_eq!(Snapshot::signer_of(&rewrapped).unwrap(), forger.public());
    assert!(matches!(
        Snapshot::open(&key, &rewrapped),
        Err(FormatError::Authentication { what: "snapshot" })
    ));
    assert_eq!(
        Snapshot::open(&key, &snap).unwrap(),
        (signer_pk, fixture_snapshot())
    );
    // Any key holder (no secret needed) can verify who wrote it.
    assert_eq!(Snapshot::signer_of(&snap).unwrap(), signer_pk);
    assert!(matches!(
        Snapshot::open(&key.put_only(), &snap),
        Err(FormatError::PutOnlyKey)
    ));
    assert_tamper_evident(&snap, |b| Snapshot::open(&key, b));

    // Index object: envelope(Index, postcard { sealed: bytes, dedup: bytes }).
    let index = unhex(&o["index_hex"]);
    assert_eq!(&index[..4], b"TSG2");
    let (who, env) = IndexFile::envelope(&index).unwrap();
    assert_eq!(who, signer_pk);
    let (_, body) = sign::open_envelope(SignedKind::Index, &index).unwrap();
    let mut r = Reader::new(body);
    let (sealed, dedup) = (r.bytes(), r.bytes());
    r.end();
    assert_eq!((&sealed, &dedup), (&env.sealed, &env.dedup));
    assert_eq!(
        IndexFile::open(&key, &index).unwrap(),
        (signer_pk, fixture_index())
    );
    assert_eq!(
        IndexFile::open_sealed(&key, &sealed, &signer_pk).unwrap(),
        fixture_index()
    );
    assert!(matches!(
        IndexFile::open_sealed(&key, &sealed, &forger.public()),
        Err(FormatError::Authentication { what: "index" })
    ));
    let rewrapped = forger.envelope(SignedKind::Index, body);
    assert!(matches!(
        IndexFile::open(&key, &rewrapped),
        Err(FormatError::Authentication { what: "index" })
    ));
    // The dedup list: XChaCha20-Poly1305 under the writer's dedup key, BLAKE3
    // derive_key("tresor v2 dedup list", its signing secret), AAD "tresor dedup v2", postcard
    // list of (blob type, blob id); readable by its writer only.
    let dedup_key = blake3::derive_key("tresor v2 dedup list", &FULL_SIGNING_SECRET);
    assert_eq!(dedup_key, unhex32(&o["index_dedup_key"]));
    assert_eq!(tresor_format::index::dedup_key(&full_signer()).0, dedup_key);
    let plain = xchacha_open(&dedup_key, b"tresor dedup v2", &dedup).expect("decrypts");
    let mut r = Reader::new(&plain);
    let list: Vec<(BlobType, BlobId)> = (0..r.varint())
        .map(|_| {
            let t = if r.varint() == 0 {
                BlobType::Data
            } else {
                BlobType::Tree
            };
            (t, BlobId(r.id()))
        })
        .collect();
    r.end();
    let want: Vec<(BlobType, BlobId)> = o["index_dedup_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (blob_type_from(&p[0]), s(&p[1]).parse().unwrap()))
        .collect();
    assert_eq!(list, want);
    assert_eq!(IndexFile::dedup_list(&full_signer(), &env).unwrap(), want);
    let other = Signer::from_secret(&PUT_ONLY_SIGNING_SECRET);
    assert!(matches!(
        IndexFile::dedup_list(&other, &env),
        Err(FormatError::Authentication { .. })
    ));
    let v1_key = blake3::derive_key("tresor v1 dedup list", &key.id_key);
    assert!(xchacha_open(&v1_key, b"tresor dedup v1", &dedup).is_none());
    let all: Vec<(BlobType, BlobId)> = fixture_index()
        .packs
        .iter()
        .flat_map(|p| p.blobs.iter().map(|b| (b.blob_type, b.id)))
        .collect();
    assert_eq!(want, all);
    assert!(matches!(
        IndexFile::open(&key.put_only(), &index),
        Err(FormatError::PutOnlyKey)
    ));
    assert_tamper_evident(&index, |b| IndexFile::open(&key, b));

    // Marker object: envelope(Marker, sealed marker JSON bound to the signer).
    let marker = unhex(&o["marker_hex"]);
    assert_eq!(
        (&marker[..4], &marker[36..40]),
        (&b"TSG2"[..], &b"TRS2"[..])
    );
    assert_eq!(marker[40], SealedKind::Marker as u8);
    assert_eq!(
        Marker::open(&key, &marker).unwrap(),
        (signer_pk, fixture_marker())
    );
    let (_, body) = sign::open_envelope(SignedKind::Marker, &marker).unwrap();
    assert_eq!(
        hpke_open(
            &secret,
            "tresor/v2/marker",
            &[&body[..5], &signer_pk].concat(),
            body
        ),
        Some(marker_json(&fixture_marker()))
    );
    let rewrapped = forger.envelope(SignedKind::Marker, body);
    assert!(matches!(
        Marker::open(&key, &rewrapped),
        Err(FormatError::Authentication { what: "marker" })
    ));
    assert_tamper_evident(&marker, |b| Marker::open(&key, b));

    // Revocation: envelope(Revocation, JSON) signed by the admin key; deterministic.
    let rev = unhex(&o["revocation_hex"]);
    let admin = key.admin().unwrap();
    assert_eq!(fixture_revocation().to_object(&admin), rev);
    let (who, body) = sign::open_envelope(SignedKind::Revocation, &rev).unwrap();
    assert_eq!(who, key.admin_public);
    assert_eq!(body, serde_json::to_vec(&fixture_revocation()).unwrap());
    assert_eq!(
        Revocation::open(&key.admin_public, &rev).unwrap(),
        fixture_revocation()
    );
    assert!(matches!(
        Revocation::open(&[0x01; 32], &rev),
        Err(FormatError::Authentication { .. })
    ));
    // A revocation signed by anyone but the admin is refused.
    let forged = full_signer().envelope(SignedKind::Revocation, body);
    assert!(matches!(
        Revocation::open(&key.admin_public, &forged),
        Err(FormatError::Authentication { .. })
    ));
    assert_tamper_evident(&rev, |b| Revocation::open(&key.admin_public, b));
}

#[test]
fn record_vectors() {
    let v = load();
    let key = master_key_from(&v["master_key"]);
    let r = &v["records"];
    assert_eq!(s(&r["magic_utf8"]).as_bytes(), RECORD_MAGIC);
    let signer_pk = unhex32(&r["signer_public"]);
    assert_eq!(signer_pk, full_signer().public());
    let cases = r["cases"].as_array().unwrap();
    let fixtures = fixture_records();
    assert_eq!(cases.len(), fixtures.len());
    let secret = key.secret_key.unwrap();
    let forger = Signer::from_secret(&PUT_ONLY_SIGNING_SECRET);
    for (variant, (c, (kind, rec))) in cases.iter().zip(&fixtures).enumerate() {
        assert_eq!(s(&c["kind"]), *kind);
        let encoded = unhex(&c["encoded_hex"]);
        assert_eq!(rec.encode(), encoded, "{kind}");
        assert_eq!(encoded[4] as usize, variant, "{kind}: variant index");
        assert_eq!(read_record(&encoded), *rec, "{kind}: spec-level decoding");
        assert_eq!(Record::decode(&encoded).unwrap(), *rec, "{kind}");
        // §16 and §3 independently: envelope(Index, sealed(Index, plaintext) bound to the
        // signer).
        let object = unhex(&c["object_hex"]);
        assert_eq!(
            (&object[..4], &object[4..36], &object[36..40]),
            (&b"TSG2"[..], &signer_pk[..], &b"TRS2"[..])
        );
        assert_eq!(object[40], SealedKind::Index as u8);
        let (who, body) = sign::open_envelope(SignedKind::Index, &object).unwrap();
        assert_eq!(who, signer_pk);
        assert_eq!(
            hpke_open(
                &secret,
                "tresor/v2/index",
                &[&body[..5], &signer_pk].concat(),
                body
            ),
            Some(encoded.clone()),
            "{kind}"
        );
        assert_eq!(
            Record::open(&key, &object).unwrap(),
            (signer_pk, rec.clone())
        );
        // Not an index object; not openable without the secret key; not re-signable.
        assert!(IndexFile::open(&key, &object).is_err(), "{kind}");
        assert!(matches!(
            Record::open(&key.put_only(), &object),
            Err(FormatError::PutOnlyKey)
        ));
        let rewrapped = forger.envelope(SignedKind::Index, body);
        assert!(matches!(
            Record::open(&key, &rewrapped),
            Err(FormatError::Authentication { what: "index" })
        ));
        assert_tamper_evident(&object, |b| Record::open(&key, b));
    }
    // The magic: an index's sealed plaintext is no record, a record's is no index.
    let sealed = key
        .seal(
            SealedKind::Index,
            &fixture_index().encode(),
            Some(&signer_pk),
        )
        .unwrap();
    let disguised = full_signer().envelope(SignedKind::Index, &sealed);
    assert_eq!(
        Record::open(&key, &disguised).unwrap_err().to_string(),
        "malformed prune record: not a prune record"
    );
    let record = unhex(&cases[0]["object_hex"]);
    let (_, body) = sign::open_envelope(SignedKind::Index, &record).unwrap();
    assert!(IndexFile::open_sealed(&key, body, &signer_pk).is_err());
    // An index object is no record either.
    assert!(Record::open(&key, &unhex(&v["objects"]["index_hex"])).is_err());
}

/// §18: drill records are compact JSON with the documented fields, sealed (kind 5, info
/// `tresor/v2/drill`) bound to the signer, in a signed envelope (kind 7).
#[test]
#[allow(
    clippy::cognitive_complexity,
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn drill_vectors() {
    let v = load();
    let key = master_key_from(&v["master_key"]);
    let d = &v["drills"];
    let signer_pk = unhex32(&d["signer_public"]);
    assert_eq!(signer_pk, full_signer().public());
    let cases = d["cases"].as_array().unwrap();
    let fixtures = fixture_drills();
    assert_eq!(cases.len(), fixtures.len());
    let secret = key.secret_key.unwrap();
    let forger = Signer::from_secret(&PUT_ONLY_SIGNING_SECRET);
    for (c, rec) in cases.iter().zip(&fixtures) {
        let json = s(&c["json"]).as_bytes();
        assert_eq!(serde_json::to_vec(rec).unwrap(), json, "exact JSON");
        let parsed: Value = serde_json::from_slice(json).unwrap();
        let mut fields: Vec<&str> = parsed
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut want = [
            "version",
            "time",
            "hostname",
            "key",
            "snapshots",
            "packs",
            "files",
            "bytes",
            "result",
            "mismatches",
            "seconds",
            "bytes_per_sec",
            "files_per_sec",
            "nonce",
        ];
        want.sort_unstable();
        fields.sort_unstable();
        assert_eq!(fields, want, "the fields of §18");
        // Wire layout: "TSG2" || signer || sealed ("TRS2" || kind 5 || …) || signature.
        let object = unhex(&c["object_hex"]);
        assert_eq!(
            (&object[..4], &object[4..36], &object[36..40], object[40]),
            (&b"TSG2"[..], &signer_pk[..], &b"TRS2"[..], 5u8)
        );
        assert_eq!(SealedKind::Drill as u8, 5);
        assert_eq!(SignedKind::Drill as u8, 7);
        let (who, body) = sign::open_envelope(SignedKind::Drill, &object).unwrap();
        assert_eq!(who, signer_pk);
        assert!(sign::open_envelope(SignedKind::Snapshot, &object).is_err());
        // §3 independently: HPKE, info "tresor/v2/drill", AAD = the sealed header || signer.
        let aad = [&body[..5], &signer_pk].concat();
        assert_eq!(
            hpke_open(&secret, "tresor/v2/drill", &aad, body).as_deref(),
            Some(json)
        );
        assert!(hpke_open(&secret, "tresor/v2/drill", &body[..5], body).is_none());
        assert!(hpke_open(&secret, "tresor/v2/marker", &aad, body).is_none());
        check_sealed_plaintext(&key, SealedKind::Drill, body, json);
        assert_eq!(
            DrillRecord::open(&key, &object).unwrap(),
            (signer_pk, rec.clone())
        );
        assert!(matches!(
            DrillRecord::open(&key.put_only(), &object),
            Err(FormatError::PutOnlyKey)
        ));
        // Re-signed by another key, the body no longer opens (the seal binds the signer).
        let rewrapped = forger.envelope(SignedKind::Drill, body);
        assert!(matches!(
            DrillRecord::open(&key, &rewrapped),
            Err(FormatError::Authentication { .. })
        ));
        assert!(Snapshot::open(&key, &object).is_err());
        assert!(Marker::open(&key, &object).is_err());
        assert_tamper_evident(&object, |b| DrillRecord::open(&key, b));
    }
    // §14: versions other than 2 are refused, naming the object.
    for version in [1u32, 3] {
        let mut rec = fixtures[0].clone();
        rec.version = version;
        let object = rec.seal(&key, &full_signer()).unwrap();
        assert_eq!(
            DrillRecord::open(&key, &object).unwrap_err().to_string(),
            format!("unsupported drill record version {version} (this tresor reads version 2)")
        );
    }
}

#[test]
#[allow(
    clippy::cognitive_complexity,
    clippy::too_many_lines,
    reason = "one test scenario, read top to bottom; its steps share state"
)]
fn pack_and_blob_vectors() {
    let v = load();
    let key = master_key_from(&v["master_key"]);
    let packs = v["packs"].as_array().unwrap();
    assert_eq!(packs.len(), 2);
    // (plaintext, expected flag): the data blobs exercise both flags; the tree's is as stored.
    let mut expected: Vec<(Vec<u8>, Option<u8>)> =
        pack_blobs().into_iter().map(|b| (b.2, Some(b.3))).collect();
    expected.push((fixture_tree().encode(), None));
    let mut expected = expected.into_iter();
    for p in packs {
        let bytes = unhex(&p["pack_hex"]);
        assert_eq!(ObjectId::of(&bytes).to_hex(), s(&p["pack_id"]));
        // Trailer: sealed header length (u32 LE) || "TPK2".
        let n = bytes.len();
        assert_eq!(&bytes[n - 4..], b"TPK2");
        let hlen = pack::parse_trailer(&bytes[n - 8..]).unwrap() as usize;
        let header_start = n - 8 - hlen;
        let header = pack::read_header(&key, &bytes).unwrap();
        assert_eq!(
            pack::open_header(&key, &bytes[header_start..n - 8]).unwrap(),
            header
        );
        let plain_header = key
            .open(SealedKind::PackHeader, &bytes[header_start..n - 8], None)
            .unwrap();
        // §3 independently: a pack header's associated data is its 5-byte header alone.
        let sealed_header = &bytes[header_start..n - 8];
        assert_eq!(
            hpke_open(
                &key.secret_key.unwrap(),
                "tresor/v2/pack header",
                &sealed_header[..5],
                sealed_header
            ),
            Some(plain_header.clone())
        );
        assert_eq!(
            read_pack_header(&plain_header),
            header,
            "spec-level decoding"
        );
        assert_eq!(header.version, 2);
        let list = p["blobs"].as_array().unwrap();
        assert_eq!(header.blobs.len(), list.len());
        let mut offset = 0u64;
        for (e, b) in header.blobs.iter().zip(list) {
            let label = s(&b["label"]);
            let (plain, flag) = expected.next().unwrap();
            if let Some(f) = flag {
                assert_eq!(u64::from(f), u(&b["flag"]), "{label}: expected flag");
            }
            assert_eq!(unhex(&b["plaintext_hex"]), plain, "{label}");
            let t = blob_type_from(&b["type"]);
            assert_eq!(e.blob_type, t);
            assert_eq!(e.id.to_hex(), s(&b["id"]));
            assert_eq!(e.id, key.blob_id(&plain), "{label}: BlobId::of");
            assert_eq!((e.offset, e.raw_length), (offset, plain.len() as u64));
            let stored = &bytes[e.offset as usize..(e.offset + e.length) as usize];
            offset += e.length;
            assert_eq!(
                blob::decode(&header.data_key, &key.id_key, t, &e.id, stored).unwrap(),
                plain,
                "{label}"
            );
            // §7 independently: nonce || XChaCha20-Poly1305(inner, aad = type || id) || tag,
            // inner = flag || u32 LE body length || body || zeros to Padmé(5 + body length)
            // rounded up to a multiple of 64.
            let aad = [&[t.byte()][..], &e.id.0].concat();
            let inner = xchacha_open(&header.data_key.0, &aad, stored).expect("decrypts");
            assert_eq!(stored.len(), inner.len() + 40);
            assert_eq!(inner.len() % PAD_TO, 0);
            assert_eq!(u64::from(inner[0]), u(&b["flag"]), "{label}: flag");
            let body_len = u32::from_le_bytes(inner[1..5].try_into().unwrap()) as usize;
            let padded = spec_padme(5 + body_len as u64).div_ceil(64) * 64;
            assert_eq!(inner.len() as u64, padded, "{label}: Padmé");
            assert_eq!(stored.len(), blob::stored_len(body_len), "{label}");
            assert!(
                inner[5 + body_len..].iter().all(|&z| z == 0),
                "zero padding"
            );
            let body = &inner[5..5 + body_len];
            match inner[0] {
                0 => assert_eq!(body, &plain[..]),
                1 => assert_eq!(zstd::stream::decode_all(body).unwrap(), plain),
                f => panic!("flag {f}"),
            }
            // The blob type and id are bound as associated data.
            let other_type = if t == BlobType::Data {
                BlobType::Tree
            } else {
                BlobType::Data
            };
            assert!(matches!(
                blob::decode(&header.data_key, &key.id_key, other_type, &e.id, stored),
                Err(FormatError::Authentication { .. })
            ));
            let other_id = BlobId([0; 32]);
            assert!(matches!(
                blob::decode(&header.data_key, &key.id_key, t, &other_id, stored),
                Err(FormatError::Authentication { .. })
            ));
            let mut m = stored.to_vec();
            m[30] ^= 0x80;
            assert!(matches!(
                blob::decode(&header.data_key, &key.id_key, t, &e.id, &m),
                Err(FormatError::Authentication { .. })
            ));
            if t == BlobType::Tree {
                assert_eq!(Tree::decode(&plain).unwrap(), fixture_tree());
            }
        }
        assert_eq!(
            offset as usize, header_start,
            "blobs are followed by the header"
        );
    }
}

#[test]
fn padme_vectors() {
    let v = load();
    let cases = v["padme"].as_array().unwrap();
    assert_eq!(cases.len(), PADME_LENGTHS.len());
    for (c, &l) in cases.iter().zip(&PADME_LENGTHS) {
        assert_eq!(u(&c["inner_len"]), l);
        let want = u(&c["padme"]);
        assert_eq!(blob::padme(l), want, "L = {l}");
        assert_eq!(spec_padme(l), want, "L = {l}: from the text");
        assert_eq!(
            blob::padded_len(l as usize) as u64,
            u(&c["padded_len"]),
            "L = {l}"
        );
        assert_eq!(u(&c["padded_len"]), want.div_ceil(64) * 64, "L = {l}");
        assert!(
            want >= l && (want - l) * 8 < l.max(1),
            "L = {l}: overhead below 1/8"
        );
    }
    let by = |l: u64| u(&cases[PADME_LENGTHS.iter().position(|&x| x == l).unwrap()]["padme"]);
    // Worked examples of §7: the worst case, a 1 MiB chunk one byte over, the largest chunk.
    assert_eq!(by(129), 144);
    assert_eq!(by((1 << 20) + 5), (1 << 20) + (32 << 10));
    assert_eq!(by((4 << 20) + 5), (4 << 20) + (128 << 10));
    assert_eq!(by((16 << 20) + 5), (16 << 20) + (512 << 10));
}

#[test]
fn gear_table_vector() {
    let v = load();
    let g = &v["gear_table"];
    let key = unhex32(&g["chunker_key"]);
    assert_eq!(key, CHUNKER_KEY);
    assert_eq!(s(&g["input_utf8"]), "tresor v2 gear table");
    let hex64 = |x: &Value| u64::from_str_radix(s(x), 16).expect("hex u64");
    let (gear, gear_ls) = tresor_format::chunker::gear_table(&key);
    let spec = spec_gear(&key);
    assert_eq!(&gear[..], &spec[..], "the crate's table is the text's");
    assert_eq!(
        (gear[0], gear[1]),
        (hex64(&g["first"][0]), hex64(&g["first"][1]))
    );
    assert_eq!(gear[255], hex64(&g["last"]));
    assert_eq!(
        (gear_ls[0], gear_ls[255]),
        (hex64(&g["first_ls"]), hex64(&g["last_ls"]))
    );
    assert!(gear.iter().zip(gear_ls.iter()).all(|(g, gl)| *gl == g << 1));
    let le: Vec<u8> = spec.iter().flat_map(|x| x.to_le_bytes()).collect();
    assert_eq!(blake3::hash(&le).to_hex().as_str(), s(&g["table_blake3"]));
    // Other keys give unrelated tables; the all-zero key is an ordinary key, not "unkeyed".
    for other in OTHER_CHUNKER_KEYS {
        let t = spec_gear(&other);
        assert_eq!(t.iter().zip(&spec).filter(|(a, b)| a == b).count(), 0);
    }
}

#[test]
fn chunking_vectors() {
    let v = load();
    let c = &v["chunking"];
    let params = ChunkerParams::default();
    assert_eq!(
        (u(&c["min_size"]), u(&c["avg_size"]), u(&c["max_size"])),
        (262_144, 1_048_576, 4_194_304)
    );
    assert_eq!(u(&c["input_seed"]), CHUNK_INPUT_SEED);
    assert_eq!(u(&c["input_len"]) as usize, CHUNK_INPUT_LEN);
    let input = splitmix_bytes(CHUNK_INPUT_SEED, CHUNK_INPUT_LEN);
    assert_eq!(
        blake3::hash(&input).to_hex().as_str(),
        s(&c["input_blake3"]),
        "the PRNG itself"
    );
    let prefix = &input[..u(&c["prefix_len"]) as usize];
    let cases = c["cases"].as_array().unwrap();
    let keys: Vec<[u8; 32]> = std::iter::once(CHUNKER_KEY)
        .chain(OTHER_CHUNKER_KEYS)
        .collect();
    assert_eq!(cases.len(), keys.len());
    let mut all = Vec::new();
    for (case, key) in cases.iter().zip(keys) {
        assert_eq!(unhex32(&case["chunker_key"]), key);
        let want = lengths_json(&case["lengths"]);
        let want_prefix = lengths_json(&case["prefix_lengths"]);
        assert_eq!(want.iter().sum::<usize>(), input.len());
        assert_eq!(want_prefix.iter().sum::<usize>(), prefix.len());
        assert_eq!(
            params.lengths(&input, &key),
            want,
            "reference, key {key:x?}"
        );
        assert_eq!(params.lengths(prefix, &key), want_prefix, "prefix");
        let chunker = Chunker::new(&params, &key);
        for buf_len in [2 * chunker.max_size(), chunker.max_size()] {
            assert_eq!(
                stream_lengths(&chunker, &input, buf_len),
                want,
                "streaming next_cut, buffer {buf_len}"
            );
            assert_eq!(stream_lengths(&chunker, prefix, buf_len), want_prefix);
        }
        // Every chunk but the last is within [min, max].
        let (last, body) = want.split_last().unwrap();
        assert!(body.iter().all(|&l| (262_144..=4_194_304).contains(&l)));
        assert!(*last <= 4_194_304);
        all.push(want);
    }
    // The key changes the boundaries.
    assert_ne!(all[0], all[1]);
    assert_ne!(all[0], all[2]);
    assert_ne!(all[1], all[2]);
}

/// §14: every reader refuses another version — version 1 above all — with a clear message
/// naming it (not a decoding error).
#[test]
fn repository_versions_2_and_3_are_read() {
    let key = fixture_master_key();
    let signer = full_signer();
    let pk = signer.public();
    let msg = |e: FormatError| e.to_string();
    // Config, index and pack header: versions 2 and 3 are read, 1 and 4 refused.
    for version in [1u32, 4] {
        let want = |what: &str| {
            format!("unsupported {what} version {version} (this tresor reads versions 2 and 3)")
        };
        let mut index = fixture_index();
        index.version = version;
        let sealed = key
            .seal(SealedKind::Index, &index.encode(), Some(&pk))
            .unwrap();
        assert_eq!(
            msg(IndexFile::open_sealed(&key, &sealed, &pk).unwrap_err()),
            want("index")
        );
        assert_eq!(
            msg(IndexFile::open(&key, &index.to_object(&key, &signer).unwrap()).unwrap_err()),
            want("index")
        );
        // Even when the rest is not a version-2 layout.
        let sealed = key
            .seal(SealedKind::Index, &[version as u8, 0xff, 0xff], Some(&pk))
            .unwrap();
        assert!(matches!(
            IndexFile::open_sealed(&key, &sealed, &pk),
            Err(FormatError::UnsupportedVersions { found, .. }) if found == version
        ));

        let sealed = key
            .seal(SealedKind::PackHeader, &[version as u8, 0xff], None)
            .unwrap();
        assert_eq!(
            msg(pack::open_header(&key, &sealed).unwrap_err()),
            want("pack header")
        );
        let mut cfg = fixture_config();
        cfg.version = version;
        assert_eq!(
            msg(Config::from_bytes(&cfg.to_bytes()).unwrap_err()),
            want("repository")
        );
    }
    for version in [2u32, 3] {
        let mut index = fixture_index();
        index.version = version;
        index.packs[0].blobs[1].member = (version == 3).then_some(7);
        let (_, back) = IndexFile::open(&key, &index.to_object(&key, &signer).unwrap()).unwrap();
        assert_eq!(back, index);
        let mut h = fixture_pack_header();
        h.version = version;
        let sealed = key
            .seal(SealedKind::PackHeader, &pack::encode_header(&h), None)
            .unwrap();
        assert_eq!(pack::open_header(&key, &sealed).unwrap(), h);
        let mut cfg = fixture_config();
        cfg.version = version;
        assert_eq!(Config::from_bytes(&cfg.to_bytes()).unwrap(), cfg);
    }
}

#[test]
fn other_versions_are_refused() {
    let key = fixture_master_key();
    let signer = full_signer();
    let pk = signer.public();
    let msg = |e: FormatError| e.to_string();
    // The other structures: version 2 only.
    for version in [1u32, 3] {
        let want = |what: &str| {
            format!("unsupported {what} version {version} (this tresor reads version 2)")
        };

        let json = format!(r#"{{"version":{version},"new":"layout"}}"#);
        for (sealed_kind, signed_kind, what) in [
            (SealedKind::Snapshot, SignedKind::Snapshot, "snapshot"),
            (SealedKind::Marker, SignedKind::Marker, "marker"),
        ] {
            let sealed = key.seal(sealed_kind, json.as_bytes(), Some(&pk)).unwrap();
            let object = signer.envelope(signed_kind, &sealed);
            let e = if what == "snapshot" {
                Snapshot::open(&key, &object).map(|_| ()).unwrap_err()
            } else {
                Marker::open(&key, &object).map(|_| ()).unwrap_err()
            };
            assert_eq!(msg(e), want(what));
        }

        let kf = format!(r#"{{"version":{version},"kind":"quantum"}}"#);
        assert_eq!(
            msg(KeyFile::from_bytes(kf.as_bytes()).unwrap_err()),
            want("key file")
        );

        let mut forgotten = fixture_records().pop().unwrap().1;
        if let Record::Forgotten(f) = &mut forgotten {
            f.version = version;
        }
        assert_eq!(
            msg(Record::open(&key, &forgotten.seal(&key, &signer).unwrap()).unwrap_err()),
            want("prune record")
        );

        let rev = key
            .admin()
            .unwrap()
            .envelope(SignedKind::Revocation, json.as_bytes());
        assert_eq!(
            msg(Revocation::open(&key.admin_public, &rev).unwrap_err()),
            want("revocation")
        );
    }
}
