//! Frames (format §7–§8, version 3): small files of a backup share zstd frames; restore, check,
//! damage reports and prune's repacking handle members; a version-2 repository is written
//! without frames.

use super::*;
use std::collections::{BTreeSet, HashMap};
use tresor_core::repo::index::Index;
use tresor_format::BlobId;
use tresor_format::blob::BlobType;

/// A repository of `version` with default sizes (32 MiB packs, 1 MiB chunks).
fn env_of(version: u32) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let guarded = Arc::new(Guarded::new(LocalStorage::new(dir.path().join("repo"))));
    let owner = KeyOwner {
        host: "admin".into(),
        username: "test".into(),
        created: "2026-11-30T00:00:00Z".into(),
    };
    let mut config = Config::new().unwrap();
    config.version = version;
    let repo = Repository::init(guarded.clone(), PW, KDF, &owner, config).unwrap();
    assert_eq!(repo.config().version, version);
    Env { dir, guarded, repo }
}

/// 300 small files: every third random (1 000 to 12 000 bytes), the others text.
fn small_files() -> Files {
    (0..300u64)
        .map(|i| {
            let data = if i % 3 == 0 {
                bytes(1000 + i, 1000 + 37 * i as usize)
            } else {
                let line = format!("file {i}: a line of text that repeats with its number\n");
                line.repeat(20 + i as usize % 50).into_bytes()
            };
            (format!("d{}/f{i:03}", i % 4), data)
        })
        .collect()
}

/// [`small_files`] under `src`, backed up by host `h`: the source, the files, the snapshot and
/// the index after it.
fn backed_up(env: &Env) -> (PathBuf, Files, ObjectId, Index) {
    let src = env.src("src");
    let v = small_files();
    write_tree(&src, &v);
    let s = backup(&env.repo, &src, "h");
    (src, v, s, env.repo.load_index().unwrap())
}

/// The frames of the index: (pack position, offset) → member ids.
fn frames(index: &Index) -> HashMap<(u32, u64), Vec<BlobId>> {
    let mut f: HashMap<(u32, u64), Vec<BlobId>> = HashMap::new();
    for (id, loc) in index.blobs() {
        if loc.member().is_some() {
            f.entry((loc.pack, loc.offset)).or_default().push(*id);
        }
    }
    f
}

#[test]
fn small_files_share_frames_restore_and_check() {
    let env = env_of(3);
    let (src, v, s, index) = backed_up(&env);
    let f = frames(&index);
    let members: usize = f.values().map(Vec::len).sum();
    // Every file is a member (all are under 256 KiB and the frames compress); 300 files of
    // under 26 KiB each make a few frames of up to 1 MiB.
    assert_eq!(members, 300, "{} frames", f.len());
    assert!((2..=8).contains(&f.len()), "{} frames", f.len());
    // Members of one frame share its offset and length; their member offsets are distinct.
    for ((pack, offset), ids) in &f {
        let locs: Vec<_> = ids.iter().map(|id| *index.get(id).unwrap()).collect();
        assert!(locs.iter().all(|l| l.pack == *pack && l.offset == *offset));
        assert!(locs.iter().all(|l| l.length == locs[0].length));
        let at: BTreeSet<u64> = locs.iter().map(|l| l.member().unwrap()).collect();
        assert_eq!(at.len(), locs.len());
    }
    assert_restores(&env.repo, &s, &src, &v);
    let r = env.check(true);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    // The packs and index objects are version 3.
    for (name, _) in env.storage().list(Kind::Index).unwrap() {
        let bytes = env.storage().read(Kind::Index, &name).unwrap();
        assert_eq!(
            IndexFile::open(env.repo.key(), &bytes).unwrap().1.version,
            3
        );
    }
}

#[test]
fn a_damaged_frame_names_its_members_and_spares_the_other_files() {
    let env = env_of(3);
    let (src, v, s, index) = backed_up(&env);
    let f = frames(&index);
    let ((pack, offset), victims) = f.iter().max_by_key(|(_, v)| v.len()).unwrap();
    let pack_id = index.pack(*pack).id;
    let path = env
        .dir
        .path()
        .join("repo/data")
        .join(&pack_id.to_hex()[..2])
        .join(pack_id.to_hex());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[*offset as usize + 100] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    let errs = errors(&env, true);
    for id in victims {
        assert!(
            errs.iter().any(|e| e.contains(&id.to_hex())),
            "member {id} not named: {errs:#?}"
        );
    }
    // Files of other frames restore byte for byte; those of the damaged frame are damage.
    let target = tempfile::tempdir().unwrap();
    let snap = env.repo.load_snapshot(&s).unwrap();
    let opts = RestoreOptions::new(target.path().to_path_buf());
    let r = restorer::restore(&env.repo, &index, &snap, &opts, &NoProgress).unwrap();
    let damaged: BTreeSet<&str> = r.problems.iter().map(|p| p.path.as_str()).collect();
    assert!(r.problems.iter().all(|p| p.damage), "{:?}", r.problems);
    assert_eq!(damaged.len(), victims.len(), "{:?}", r.problems);
    let root = target.path().join(src.strip_prefix("/").unwrap());
    let mut intact = 0;
    for (name, data) in &v {
        let id = env.repo.key().blob_id(data);
        if victims.contains(&id) {
            continue;
        }
        assert_eq!(&std::fs::read(root.join(name)).unwrap(), data, "{name}");
        intact += 1;
    }
    assert_eq!(intact, 300 - victims.len());
}

#[test]
fn a_version_2_repository_is_written_without_frames() {
    let env = env_of(2);
    let (src, v, s, index) = backed_up(&env);
    assert!(frames(&index).is_empty());
    assert_eq!(
        index
            .blobs()
            .filter(|(_, l)| l.blob_type == BlobType::Data)
            .count(),
        300
    );
    for (name, _) in env.storage().list(Kind::Index).unwrap() {
        let bytes = env.storage().read(Kind::Index, &name).unwrap();
        assert_eq!(
            IndexFile::open(env.repo.key(), &bytes).unwrap().1.version,
            2
        );
    }
    for (name, size) in env.storage().list(Kind::Pack).unwrap() {
        let id: ObjectId = name.parse().unwrap();
        let h = tresor_core::repo::packs::read_pack_header(&env.repo, &id, size).unwrap();
        assert_eq!(h.version, 2);
    }
    // Reopened by this tresor: it reads and checks, and keeps writing version 2.
    let again = Repository::open(env.repo.storage().clone(), PW).unwrap();
    assert_eq!(again.config().version, 2);
    assert_restores(&again, &s, &src, &v);
    env.check(true);
}

#[test]
fn prune_repacks_partly_used_frames_keeping_the_used_members() {
    let env = env_of(3);
    let src = env.src("src");
    let v1 = small_files();
    write_tree(&src, &v1);
    let s1 = backup(&env.repo, &src, "h");
    // v2 keeps every other file: every frame is partly used.
    let v2: Files = v1
        .iter()
        .step_by(2)
        .map(|(k, d)| (k.clone(), d.clone()))
        .collect();
    write_tree(&src, &v2);
    let s2 = backup(&env.repo, &src, "h");
    env.forget(&s1);
    let opts = PruneOptions {
        max_unused: MaxUnused::Percent(0.0),
        ..PruneOptions::default()
    };
    let (plan, stats) = prune_with(&env.repo, &opts);
    assert!(!plan.repack.is_empty(), "{plan:?}");
    assert_eq!(stats.blobs_repacked, 150);
    env.check(true);
    assert_restores(&env.repo, &s2, &src, &v2);
    // The next backup approves the generation; the old packs go, the repacked frames stay.
    let s3 = backup(&env.repo, &src, "h");
    let (_, stats) = prune_with(&env.repo, &opts);
    assert!(stats.packs_deleted > 0);
    let index = env.repo.load_index().unwrap();
    let members: usize = frames(&index).values().map(Vec::len).sum();
    assert_eq!(members, 150);
    env.check(true);
    assert_restores(&env.repo, &s3, &src, &v2);
}

/// A pack of tiny members holds at most `pack_size / 104` blobs (`pack::max_entries`): frames
/// let 25,000 two-byte blobs fit in a few kilobytes, which would otherwise be one pack whose
/// index listing outgrows the size limit index objects are read with.
#[test]
fn a_pack_of_tiny_members_closes_at_its_entry_bound() {
    let env = env_of(3);
    let pack_size = 1u64 << 20;
    let bound = tresor_format::pack::max_entries(pack_size);
    assert_eq!(bound, 10_082);
    let packer = tresor_core::repo::packer::Packer::new(
        env.guarded.clone(),
        env.repo.key().clone(),
        env.repo.signer_copy(),
        pack_size,
        3,
        1,
        false,
    );
    for i in 0..25_000u32 {
        let data = i.to_le_bytes()[..3].to_vec();
        let id = env.repo.key().blob_id(&data);
        packer.add(BlobType::Data, id, data).unwrap();
    }
    let stats = packer.finish().unwrap();
    let index = env.repo.load_index().unwrap();
    let mut per_pack: HashMap<u32, usize> = HashMap::new();
    for (_, loc) in index.blobs() {
        assert!(loc.member().is_some());
        *per_pack.entry(loc.pack).or_default() += 1;
    }
    let mut counts: Vec<usize> = per_pack.into_values().collect();
    counts.sort_unstable();
    assert_eq!(counts.iter().sum::<usize>(), 25_000);
    assert_eq!(counts, vec![25_000 - 2 * bound, bound, bound]);
    assert_eq!(stats.packs, 3);
}
