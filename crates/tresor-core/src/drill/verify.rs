//! Checking a restored file against its snapshot node, independently of the restorer's own
//! read-back: every content byte (cut at the index's blob lengths, each piece's keyed BLAKE3
//! equal to the blob id), the size, the permission bits, the mtime, the owner (as root) and a
//! symlink's target. Extended attributes are compared by the restorer's read-back
//! ([`crate::restorer::Difference`]).

use crate::repo::index::Index;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use tresor_format::crypto::MasterKey;
use tresor_format::tree::{Node, NodeKind};

/// What `path` (the restored entry) gets wrong against `node`; empty when it matches.
/// `setid_kept`: whether restore applies setuid/setgid bits (the writer is trusted and the owner
/// restored); `owner`: whether owners are compared (running as root).
pub fn check(
    key: &MasterKey,
    index: &Index,
    node: &Node,
    path: &Path,
    setid_kept: bool,
    owner: bool,
) -> Vec<String> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) => return vec![format!("not restored: {e}")],
    };
    let mut bad = Vec::new();
    if node.kind == NodeKind::Symlink {
        match std::fs::read_link(path) {
            Ok(t) if t.as_os_str().as_encoded_bytes() == node.target.as_slice() => {}
            Ok(t) => bad.push(format!("symlink target {}", t.display())),
            Err(e) => bad.push(format!("not a symlink: {e}")),
        }
    } else {
        if let Err(e) = content(key, index, node, path) {
            bad.push(e);
        }
        let want = if setid_kept {
            node.mode
        } else {
            node.mode & !0o6000
        };
        if meta.mode() & 0o7777 != want {
            bad.push(format!(
                "mode {:o}, snapshot {want:o}",
                meta.mode() & 0o7777
            ));
        }
        let (s, n) = (meta.mtime(), meta.mtime_nsec());
        if (s, n) != (node.mtime.secs, i64::from(node.mtime.nanos)) {
            bad.push(format!("mtime {s}.{n:09}, snapshot {}", show(node)));
        }
    }
    if owner && (meta.uid(), meta.gid()) != (node.uid, node.gid) {
        bad.push(format!(
            "owner {}:{}, snapshot {}:{}",
            meta.uid(),
            meta.gid(),
            node.uid,
            node.gid
        ));
    }
    bad
}

fn show(node: &Node) -> String {
    format!("{}.{:09}", node.mtime.secs, node.mtime.nanos)
}

/// Every byte of the file at `path` against the node's blobs.
fn content(key: &MasterKey, index: &Index, node: &Node, path: &Path) -> Result<(), String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("reading back: {e}"))?;
    let mut buf = Vec::new();
    let mut off = 0u64;
    for id in &node.content {
        let len = index
            .get(id)
            .map(|l| l.raw_length)
            .ok_or_else(|| format!("blob {id} is not in the index"))?;
        buf.resize(len as usize, 0);
        f.read_exact(&mut buf)
            .map_err(|e| format!("content ends early at byte {off}: {e}"))?;
        if key.blob_id(&buf) != *id {
            return Err(format!(
                "content differs at bytes {off}..{}",
                off + u64::from(len)
            ));
        }
        off += u64::from(len);
    }
    let mut rest = [0u8; 1];
    if f.read(&mut rest).map_err(|e| e.to_string())? > 0 || off != node.size {
        return Err(format!("size differs: snapshot {} bytes", node.size));
    }
    Ok(())
}

/// Whether the files at `a` and `b` hold the same bytes.
///
/// # Errors
/// I/O errors reading either.
pub fn same_content(a: &Path, b: &Path) -> std::io::Result<bool> {
    let (mut fa, mut fb) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = fill(&mut fa, &mut ba)?;
        let m = fill(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn fill(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::index::Lister;
    use std::os::unix::fs::PermissionsExt;
    use tresor_format::ObjectId;
    use tresor_format::blob::BlobType;
    use tresor_format::crypto::DataKey;
    use tresor_format::index::IndexPack;
    use tresor_format::pack::BlobEntry;
    use tresor_format::tree::Timestamp;

    /// A restored file `f` (content "drill", mode 0640, mtime 1 700 000 000.5) owned by
    /// `uid`:`gid`, and the node the snapshot holds for it (owner 1234:1234).
    fn restored(dir: &Path, key: &MasterKey, index: &mut Index, uid: u32, gid: u32) -> Node {
        let path = dir.join("f");
        std::fs::write(&path, b"drill").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let mtime = std::time::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 5);
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(mtime).unwrap();
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
        let id = key.blob_id(b"drill");
        let entry = BlobEntry {
            blob_type: BlobType::Data,
            id,
            offset: 0,
            length: 64,
            raw_length: 5,
            member: None,
        };
        let pack = IndexPack {
            id: ObjectId([1; 32]),
            data_key: DataKey([2; 32]),
            blobs: vec![entry],
        };
        index.add_pack(ObjectId([3; 32]), Lister::Full, &pack);
        let mut node = Node::bare(b"f", NodeKind::File);
        (node.mode, node.uid, node.gid, node.size) = (0o640, 1234, 1234, 5);
        node.mtime = Timestamp {
            secs: 1_700_000_000,
            nanos: 5,
        };
        node.content = vec![id];
        node
    }

    /// As root the owner is compared: 1234:1234 on both sides matches; a restored uid or gid
    /// that differs from the node's is named with both values. Without `owner` (not root) an
    /// owner difference is not reported.
    #[test]
    fn owner_is_compared_as_root() {
        if !crate::fsmeta::is_root() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs the tests as root: the owner check needs chown"
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate().unwrap();
        let mut index = Index::default();
        let node = restored(dir.path(), &key, &mut index, 1234, 1234);
        let path = dir.path().join("f");
        assert_eq!(
            check(&key, &index, &node, &path, false, true),
            Vec::<String>::new()
        );
        std::os::unix::fs::chown(&path, Some(1235), None).unwrap();
        assert_eq!(
            check(&key, &index, &node, &path, false, true),
            ["owner 1235:1234, snapshot 1234:1234"]
        );
        std::os::unix::fs::chown(&path, Some(1234), Some(0)).unwrap();
        assert_eq!(
            check(&key, &index, &node, &path, false, true),
            ["owner 1234:0, snapshot 1234:1234"]
        );
        assert_eq!(
            check(&key, &index, &node, &path, false, false),
            Vec::<String>::new()
        );
        // A content change of the same length is found too, and named.
        std::fs::write(&path, b"DRILL").unwrap();
        let bad = check(&key, &index, &node, &path, false, false);
        assert_eq!(bad[0], "content differs at bytes 0..5");
    }
}
