//! Synthesise a large repository quickly, for `bench/prune-memory.sh`: `BLOBS` tiny data blobs
//! (one file each, 1000 files per directory) written through the library's packer, and three
//! snapshots over overlapping ranges of directories: `a` (the first half), `b` (the middle) and
//! `c` (the second half). Forgetting `a` then leaves about a quarter of the blobs unused.
//!
//! Usage: `synth_repo REPO_DIR PASSWORD BLOBS [PACK_SIZE_MIB]` (password of a new repository).

use std::sync::Arc;
use tresor_core::Repository;
use tresor_core::repo::KeyOwner;
use tresor_core::repo::packer::Packer;
use tresor_format::blob::BlobType;
use tresor_format::config::Config;
use tresor_format::keyfile::KdfParams;
use tresor_format::snapshot::Snapshot;
use tresor_format::tree::{Node, NodeKind, Timestamp, Tree};
use tresor_format::{BlobId, ObjectId};
use tresor_storage::Storage;
use tresor_storage::local::LocalStorage;

const PER_DIR: u64 = 1000;

fn node(
    name: String,
    kind: NodeKind,
    content: Vec<BlobId>,
    subtree: Option<BlobId>,
    n: u64,
) -> Node {
    let t = Timestamp {
        secs: 1_700_000_000,
        nanos: 0,
    };
    Node {
        name: name.into_bytes(),
        kind,
        mode: if kind == NodeKind::Dir { 0o755 } else { 0o644 },
        uid: 0,
        gid: 0,
        user: None,
        group: None,
        mtime: t,
        atime: t,
        ctime: t,
        size: if kind == NodeKind::Dir { 0 } else { 40 },
        device: 1,
        inode: n,
        links: 1,
        rdev: 0,
        target: Vec::new(),
        xattrs: Vec::new(),
        sparse: false,
        content,
        subtree,
    }
}

#[allow(
    clippy::too_many_lines,
    reason = "an example program written as one linear script"
)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: synth_repo REPO_DIR PASSWORD BLOBS [PACK_SIZE_MIB]");
        std::process::exit(2);
    }
    let blobs: u64 = args[3].parse().expect("BLOBS");
    let pack_mib: u64 = args.get(4).map_or(4, |s| s.parse().expect("PACK_SIZE_MIB"));
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(&args[1]));
    let mut config = Config::new().unwrap();
    config.pack_size = pack_mib << 20;
    let owner = KeyOwner {
        host: "bench".into(),
        username: "bench".into(),
        created: "2026-11-30T00:00:00Z".into(),
    };
    let kdf = KdfParams {
        m_kib: 8192,
        t: 1,
        p: 1,
    };
    let repo = Repository::init(storage.clone(), &args[2], kdf, &owner, config).unwrap();
    let packer = Packer::new(
        storage,
        repo.key().clone(),
        repo.signer_copy(),
        repo.config().pack_size,
        repo.config().compression_level,
        2,
        false,
    );
    let dirs = blobs.div_ceil(PER_DIR);
    let mut dir_trees = Vec::with_capacity(dirs as usize);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for d in 0..dirs {
        let mut nodes = Vec::with_capacity(PER_DIR as usize);
        for f in 0..PER_DIR.min(blobs - d * PER_DIR) {
            let n = d * PER_DIR + f;
            let mut plain = Vec::with_capacity(40);
            plain.extend_from_slice(&n.to_le_bytes());
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                plain.extend_from_slice(&seed.to_le_bytes());
            }
            let id = repo.key().blob_id(&plain);
            packer.add(BlobType::Data, id, plain).unwrap();
            nodes.push(node(format!("f{f:04}"), NodeKind::File, vec![id], None, n));
        }
        let bytes = Tree { nodes }.encode();
        let id = repo.key().blob_id(&bytes);
        packer.add(BlobType::Tree, id, bytes).unwrap();
        dir_trees.push(id);
    }
    // Snapshots over ranges of directories: a = [0, 1/2), b = [1/4, 3/4), c = [1/2, 1).
    let ranges = [
        ("a", 0, dirs / 2),
        ("b", dirs / 4, dirs * 3 / 4),
        ("c", dirs / 2, dirs),
    ];
    let mut roots = Vec::new();
    for (name, lo, hi) in ranges {
        let nodes = (lo..hi)
            .map(|d| {
                node(
                    format!("d{d:06}"),
                    NodeKind::Dir,
                    vec![],
                    Some(dir_trees[d as usize]),
                    d,
                )
            })
            .collect();
        let bench = Tree { nodes }.encode();
        let bench_id = repo.key().blob_id(&bench);
        packer.add(BlobType::Tree, bench_id, bench).unwrap();
        let root = Tree {
            nodes: vec![node(
                "bench".into(),
                NodeKind::Dir,
                vec![],
                Some(bench_id),
                0,
            )],
        }
        .encode();
        let root_id = repo.key().blob_id(&root);
        packer.add(BlobType::Tree, root_id, root).unwrap();
        roots.push((name, root_id));
    }
    let stats = packer.finish().unwrap();
    for (name, root) in roots {
        let snap = Snapshot {
            version: tresor_format::FORMAT_VERSION,
            time: "2026-11-30T00:00:00Z".into(),
            tree: root,
            paths: vec!["/bench".into()],
            hostname: "bench".into(),
            username: "bench".into(),
            uid: 0,
            gid: 0,
            tags: vec![name.into()],
            excludes: vec![],
            parent: None,
            summary: None,
            program_version: tresor_core::PROGRAM_VERSION.into(),
            markers: vec![],
            original: None,
        };
        let id: ObjectId = repo.save_snapshot(&snap).unwrap();
        println!("snapshot {name} {id}");
    }
    println!(
        "{} data blobs, {} packs, {} index objects, {} bytes",
        blobs,
        stats.packs,
        stats.index_objects.len(),
        stats.bytes_written
    );
}
