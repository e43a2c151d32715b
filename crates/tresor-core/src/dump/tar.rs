//! The tar writer: GNU headers (names and link targets as raw bytes, GNU long-name entries
//! when they do not fit, base-256 numbers when they are large) and a PAX extended header
//! before an entry when it has nanosecond times or extended attributes: `mtime`, `atime`
//! (`secs.nnnnnnnnn`) and `SCHILY.xattr.NAME` (the convention GNU tar and bsdtar read with
//! `--xattrs`). The `tar` crate writes the blocks and their padding.

use super::{Content, Dumped, io_error, shown, walk};
use crate::error::{CoreError, Result};
use crate::metapolicy::MetaPolicy;
use crate::repo::blobs::BlobReader;
use std::collections::HashMap;
use std::io::Write;
use tar::{Builder, EntryType, Header};
use tresor_format::BlobId;
use tresor_format::tree::{Node, NodeKind, Timestamp, Xattr};

/// Length of the name and link-name fields of a tar header.
const NAME_FIELD: usize = 100;

/// State of one tar dump.
struct Tar<'w, 'r> {
    b: Builder<&'w mut dyn Write>,
    reader: &'r BlobReader<'r>,
    policy: &'r MetaPolicy,
    /// (device, inode) of files with several links → the path written first.
    links: HashMap<(u64, u64), Vec<u8>>,
    d: Dumped,
}

/// Write the contents of `tree` to `out` as a tar archive.
///
/// # Errors
/// See [`super::dump`].
pub(super) fn write(
    reader: &BlobReader<'_>,
    tree: &BlobId,
    policy: &MetaPolicy,
    out: &mut dyn Write,
) -> Result<Dumped> {
    let mut t = Tar {
        b: Builder::new(out),
        reader,
        policy,
        links: HashMap::new(),
        d: Dumped::default(),
    };
    let walked = walk(reader, tree, &mut |path, node| t.entry(path, node));
    if let Err(e) = walked {
        // No end-of-archive blocks after a failure: the stream must not look complete.
        std::mem::forget(t.b);
        return Err(e);
    }
    t.b.finish().map_err(|e| io_error(e, "output"))?;
    Ok(t.d)
}

impl Tar<'_, '_> {
    /// Write one node at `path`.
    fn entry(&mut self, path: &[u8], node: &Node) -> Result<()> {
        let (mode, xattrs, withheld) = shown(self.policy, node);
        let device = matches!(node.kind, NodeKind::CharDevice | NodeKind::BlockDevice);
        if node.kind == NodeKind::Socket {
            self.d.skipped += 1;
            return Ok(());
        }
        if device && !self.policy.privileged {
            self.d.withheld += 1;
            return Ok(());
        }
        self.d.withheld += withheld;
        let mut h = header(node, mode, Header::new_gnu());
        if node.kind != NodeKind::File {
            self.pax(node, &xattrs, &[])?;
        }
        let mut name = path.to_vec();
        if let Some(first) = self.hard_link(path, node) {
            self.pax(node, &xattrs, &[])?;
            h.set_entry_type(EntryType::Link);
            self.d.hardlinks += 1;
            return self.append(&mut h, &name, Some(&first), None);
        }
        match node.kind {
            NodeKind::File => {
                self.d.files += 1;
                self.d.bytes += node.size;
                return self.file(&mut h, &name, node, &xattrs);
            }
            NodeKind::Dir => {
                name.push(b'/');
                self.d.dirs += 1;
                h.set_entry_type(EntryType::Directory);
            }
            NodeKind::Symlink => {
                h.set_entry_type(EntryType::Symlink);
                self.d.others += 1;
                return self.append(&mut h, &name, Some(&node.target), None);
            }
            _ => {
                h.set_entry_type(special_type(node.kind));
                set_device(&mut h, node.rdev)?;
                self.d.others += 1;
            }
        }
        self.append(&mut h, &name, None, None)
    }

    /// A regular file: its content, or for a sparse file with all-zero blobs the PAX 1.0
    /// sparse map and its data regions ([`super::sparse`]).
    fn file(&mut self, h: &mut Header, name: &[u8], node: &Node, xattrs: &[&Xattr]) -> Result<()> {
        h.set_entry_type(EntryType::Regular);
        let sparse = match node.sparse {
            true => super::sparse::map(self.reader, node)?,
            false => None,
        };
        let Some(sp) = sparse else {
            self.pax(node, xattrs, &[])?;
            h.set_size(node.size);
            let mut c = Content::new(self.reader, node, name);
            return self.append(h, name, None, Some(&mut c));
        };
        let real = node.size.to_string();
        let records: [(&[u8], &[u8]); 4] = [
            (b"GNU.sparse.major", b"1"),
            (b"GNU.sparse.minor", b"0"),
            (b"GNU.sparse.name", name),
            (b"GNU.sparse.realsize", real.as_bytes()),
        ];
        self.pax(node, xattrs, &records)?;
        // GNU tar reads the PAX sparse records only before a POSIX (ustar) header.
        let mut u = header(node, h.mode().unwrap_or(0), Header::new_ustar());
        let h = &mut u;
        h.set_entry_type(EntryType::Regular);
        h.set_size(sp.size());
        // GNU tar's name for the entry itself; the real name is in GNU.sparse.name.
        let base = name.rsplit(|b| *b == b'/').next().unwrap_or(name);
        let shown = [&b"GNUSparseFile.0/"[..], base].concat();
        set_long(&mut self.b, h, &shown, b'L')?;
        h.set_cksum();
        let r = sp.reader(self.reader, name);
        self.b.append(h, r).map_err(|e| io_error(e, "output"))
    }

    /// For a node with several links seen before: the path it was first written at.
    /// Otherwise remembers this path for the node's inode.
    fn hard_link(&mut self, path: &[u8], node: &Node) -> Option<Vec<u8>> {
        if node.kind == NodeKind::Dir || node.links < 2 {
            return None;
        }
        match self.links.entry((node.device, node.inode)) {
            std::collections::hash_map::Entry::Occupied(e) => Some(e.get().clone()),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(path.to_vec());
                None
            }
        }
    }

    /// Append the header with `name` (and `link` as its link name) and the content.
    fn append(
        &mut self,
        h: &mut Header,
        name: &[u8],
        link: Option<&[u8]>,
        content: Option<&mut Content<'_>>,
    ) -> Result<()> {
        set_long(&mut self.b, h, name, b'L')?;
        if let Some(l) = link {
            set_long(&mut self.b, h, l, b'K')?;
        }
        h.set_cksum();
        let r = match content {
            Some(c) => self.b.append(h, c),
            None => self.b.append(h, std::io::empty()),
        };
        r.map_err(|e| io_error(e, "output"))
    }

    /// A PAX extended header with `extra`, the node's nanosecond times and attributes.
    fn pax(&mut self, node: &Node, xattrs: &[&Xattr], extra: &[(&[u8], &[u8])]) -> Result<()> {
        let mut data = Vec::new();
        for (k, v) in extra {
            record(&mut data, k, v);
        }
        record(&mut data, b"mtime", pax_time(node.mtime).as_bytes());
        record(&mut data, b"atime", pax_time(node.atime).as_bytes());
        for x in xattrs {
            record(
                &mut data,
                &[b"SCHILY.xattr.", &x.name[..]].concat(),
                &x.value,
            );
        }
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::XHeader);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        set_raw(&mut h.as_old_mut().name, b"././@PaxHeader");
        h.set_cksum();
        self.b
            .append(&h, &data[..])
            .map_err(|e| io_error(e, "output"))
    }
}

/// `h` with the fields every entry has: mode, owner, size 0, mtime (whole seconds; before 1970:
/// 0, the PAX record has the time).
fn header(node: &Node, mode: u32, mut h: Header) -> Header {
    h.set_mode(mode);
    h.set_uid(u64::from(node.uid));
    h.set_gid(u64::from(node.gid));
    h.set_size(0);
    h.set_mtime(u64::try_from(node.mtime.secs).unwrap_or(0));
    if let Some(u) = &node.user {
        let _ = h.set_username(u);
    }
    if let Some(g) = &node.group {
        let _ = h.set_groupname(g);
    }
    h
}

/// The entry type of a fifo or device node.
fn special_type(kind: NodeKind) -> EntryType {
    match kind {
        NodeKind::CharDevice => EntryType::Char,
        NodeKind::BlockDevice => EntryType::Block,
        _ => EntryType::Fifo,
    }
}

/// Major and minor number of a Linux `dev_t`.
fn set_device(h: &mut Header, rdev: u64) -> Result<()> {
    let major = ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0000_0fff);
    let minor = ((rdev >> 12) & 0xffff_ff00) | (rdev & 0x0000_00ff);
    let bad = |e: std::io::Error| CoreError::Invalid(format!("device number {rdev}: {e}"));
    h.set_device_major(major as u32).map_err(bad)?;
    h.set_device_minor(minor as u32).map_err(bad)
}

/// Put `bytes` into the name (`kind` `L`) or link-name (`K`) field of `h`; when they do not
/// fit, first a GNU long-name entry holding them (the field keeps their first 100 bytes).
fn set_long(b: &mut Builder<&mut dyn Write>, h: &mut Header, bytes: &[u8], kind: u8) -> Result<()> {
    let old = h.as_old_mut();
    let field = if kind == b'L' {
        &mut old.name
    } else {
        &mut old.linkname
    };
    set_raw(field, &bytes[..bytes.len().min(NAME_FIELD)]);
    if bytes.len() < NAME_FIELD {
        return Ok(());
    }
    let mut l = Header::new_gnu();
    set_raw(&mut l.as_old_mut().name, b"././@LongLink");
    l.set_mode(0o644);
    l.set_entry_type(EntryType::new(kind));
    l.set_size(bytes.len() as u64 + 1);
    l.set_cksum();
    b.append(&l, std::io::Read::chain(bytes, &[0u8][..]))
        .map_err(|e| io_error(e, "output"))
}

/// Copy `bytes` into a header field, the rest zeros.
fn set_raw(field: &mut [u8], bytes: &[u8]) {
    field.fill(0);
    field[..bytes.len()].copy_from_slice(bytes);
}

/// Append the PAX record `LEN key=value\n` (LEN counts the whole record, itself included).
fn record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} ").as_bytes());
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// A time as PAX writes it: seconds since the epoch with 9 decimals (negative before 1970).
fn pax_time(t: Timestamp) -> String {
    let ns = i128::from(t.secs) * 1_000_000_000 + i128::from(t.nanos);
    let sign = if ns < 0 { "-" } else { "" };
    let a = ns.unsigned_abs();
    format!("{sign}{}.{:09}", a / 1_000_000_000, a % 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_and_times() {
        let mut v = Vec::new();
        record(&mut v, b"mtime", b"1.5");
        assert_eq!(v, b"13 mtime=1.5\n");
        let mut v = Vec::new();
        // 98 bytes of record, and "101 " makes 101 ("100 " would make 102).
        record(&mut v, b"k", &[b'x'; 94]);
        assert_eq!(v.len(), 101);
        assert!(v.starts_with(b"101 k="));
        let t = |secs, nanos| pax_time(Timestamp { secs, nanos });
        assert_eq!(t(1, 5), "1.000000005");
        assert_eq!(t(0, 0), "0.000000000");
        assert_eq!(t(-2, 500_000_000), "-1.500000000");
        assert_eq!(t(-1, 0), "-1.000000000");
    }
}
