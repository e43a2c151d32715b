//! `stats`: sizes of snapshots and of the data they reference (restic's `stats`, its four
//! modes at once, plus ratios and per-host totals).
//!
//! Every snapshot's tree is walked whole ([`crate::repo::tree::walk`]: iterative, bounded by
//! `MAX_TREE_DEPTH`); what the modes need is gathered in the same walk:
//!
//! * restore size (restic's `restore-size`): the sizes of the regular files, a hard-linked
//!   file (same device and inode, inode not 0) counted once per snapshot; every entry counted
//!   as a file, directories included, as restic does.
//! * unique contents (`files-by-contents`): regular files counted once per content (the list of
//!   data blobs), with their size.
//! * blobs per file (`blobs-per-file`): per unique content, its distinct data blobs and their
//!   plaintext bytes.
//! * raw data (`raw-data`): the distinct blobs, data and tree, the snapshots reference, with
//!   their stored bytes (encrypted, compressed, padded: what the index records) and plaintext
//!   bytes.

use crate::error::{CoreError, Result};
use crate::repo::blobs::BlobReader;
use crate::repo::index::{IdSet, Index};
use std::collections::{BTreeMap, HashSet};
use tresor_format::BlobId;
use tresor_format::snapshot::Snapshot;
use tresor_format::tree::{Node, NodeKind};

/// The totals of one host's snapshots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostTotals {
    /// Snapshots counted.
    pub snapshots: u64,
    /// The sum of their restore sizes, bytes.
    pub restore_size: u64,
}

/// Everything `stats` reports, for all modes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    /// Snapshots counted.
    pub snapshots: u64,
    /// Restore size: regular files' sizes summed over the snapshots (hard links once per
    /// snapshot), bytes.
    pub restore_size: u64,
    /// Entries of all snapshots (files, directories, others; each snapshot's counted).
    pub restore_files: u64,
    /// Regular files with distinct content.
    pub unique_files: u64,
    /// Their sizes, bytes.
    pub unique_files_size: u64,
    /// Data blobs of the unique contents, counted once per content.
    pub file_blobs: u64,
    /// Their plaintext bytes.
    pub file_blobs_size: u64,
    /// Distinct blobs referenced, data and tree.
    pub blobs: u64,
    /// Their stored bytes as the index records them (a frame's once, however many of its
    /// members are referenced).
    pub stored_size: u64,
    /// Their plaintext bytes.
    pub uncompressed_size: u64,
    /// Per host name.
    pub hosts: BTreeMap<String, HostTotals>,
}

impl Totals {
    /// Restore size over plaintext of the distinct blobs: how much deduplication saves
    /// (`None` without data).
    pub fn deduplication_ratio(&self) -> Option<f64> {
        ratio(self.restore_size, self.uncompressed_size)
    }

    /// Plaintext over stored bytes of the distinct blobs (`None` without data); below 1 when
    /// encryption and padding outweigh compression.
    pub fn compression_ratio(&self) -> Option<f64> {
        ratio(self.uncompressed_size, self.stored_size)
    }

    /// `(1 - stored / plaintext) × 100`: the share of the plaintext compression saved, percent
    /// (negative when the overhead outweighs it).
    pub fn compression_space_saving(&self) -> Option<f64> {
        ratio(self.stored_size, self.uncompressed_size).map(|r| (1.0 - r) * 100.0)
    }
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Gathers [`Totals`] snapshot by snapshot.
pub struct Counter<'i> {
    index: &'i Index,
    totals: Totals,
    contents: HashSet<Vec<BlobId>>,
    blobs: IdSet<BlobId>,
    /// Frames counted in `stored_size`: pack position and offset.
    frames: HashSet<(u32, u64)>,
}

impl<'i> Counter<'i> {
    /// A counter that looks blob sizes up in `index`.
    pub fn new(index: &'i Index) -> Self {
        Counter {
            index,
            totals: Totals::default(),
            contents: HashSet::new(),
            blobs: IdSet::default(),
            frames: HashSet::new(),
        }
    }

    /// Count the snapshot `snap`, read with `reader`.
    ///
    /// # Errors
    /// Damage: a tree that cannot be loaded, trees nested too deep, or a blob the index does
    /// not know (naming it).
    pub fn add(&mut self, reader: &BlobReader<'_>, snap: &Snapshot) -> Result<()> {
        let mut links: HashSet<(u64, u64)> = HashSet::new();
        let (mut size, mut files) = (0u64, 0u64);
        let mut failed = None;
        self.blob(&snap.tree, &mut failed);
        crate::repo::tree::walk(reader, &snap.tree, "/", &mut |_, n| {
            files += 1;
            // Only regular files have a size to restore (a symlink records its target's
            // length, which restic does not count).
            if n.kind == NodeKind::File && (n.inode == 0 || links.insert((n.device, n.inode))) {
                size += n.size;
            }
            if let Some(t) = &n.subtree {
                self.blob(t, &mut failed);
            }
            if n.kind == NodeKind::File {
                self.file(n, &mut failed);
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        let t = &mut self.totals;
        t.snapshots += 1;
        t.restore_size += size;
        t.restore_files += files;
        let host = t.hosts.entry(snap.hostname.clone()).or_default();
        host.snapshots += 1;
        host.restore_size += size;
        Ok(())
    }

    /// The totals so far.
    pub fn finish(self) -> Totals {
        self.totals
    }

    /// Count a blob the first time it is seen (raw data).
    fn blob(&mut self, id: &BlobId, failed: &mut Option<CoreError>) {
        if !self.blobs.insert(*id) {
            return;
        }
        match self.index.get(id) {
            Some(loc) => {
                self.totals.blobs += 1;
                if loc.member().is_none() || self.frames.insert((loc.pack, loc.offset)) {
                    self.totals.stored_size += u64::from(loc.length);
                }
                self.totals.uncompressed_size += u64::from(loc.raw_length);
            }
            None => {
                failed.get_or_insert_with(|| {
                    CoreError::Damaged(format!("blob {}: referenced but not indexed", id.short()))
                });
            }
        }
    }

    /// Count a regular file: its blobs, and its content the first time it is seen.
    fn file(&mut self, n: &Node, failed: &mut Option<CoreError>) {
        for id in &n.content {
            self.blob(id, failed);
        }
        if self.contents.contains(&n.content) {
            return;
        }
        self.contents.insert(n.content.clone());
        let t = &mut self.totals;
        t.unique_files += 1;
        t.unique_files_size += n.size;
        let distinct: HashSet<&BlobId> = n.content.iter().collect();
        for id in distinct {
            t.file_blobs += 1;
            t.file_blobs_size += self.index.get(id).map_or(0, |l| u64::from(l.raw_length));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios() {
        let t = Totals {
            restore_size: 300,
            uncompressed_size: 100,
            stored_size: 80,
            ..Totals::default()
        };
        assert_eq!(t.deduplication_ratio(), Some(3.0));
        assert_eq!(t.compression_ratio(), Some(1.25));
        let saving = t.compression_space_saving().unwrap();
        assert!((saving - 20.0).abs() < 1e-9, "{saving}");
        let empty = Totals::default();
        assert_eq!(empty.deduplication_ratio(), None);
        assert_eq!(empty.compression_ratio(), None);
        assert_eq!(empty.compression_space_saving(), None);
    }
}
