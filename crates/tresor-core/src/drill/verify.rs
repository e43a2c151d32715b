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
