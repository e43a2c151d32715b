//! Index objects written in parts: prune and repair list many packs at once.

use super::handle::Repository;
use crate::error::Result;
use tresor_format::ObjectId;
use tresor_format::index::{IndexFile, IndexPack};
use tresor_storage::Kind;

/// Most blobs listed by one index object or prune record that prune and repair write.
pub const PART_BLOBS: usize = 65_536;

/// Streams index packs into index objects of about [`PART_BLOBS`] blobs each.
pub struct IndexWriter<'a> {
    repo: &'a Repository,
    buf: Vec<IndexPack>,
    blobs: usize,
    dry_run: bool,
    /// Objects written.
    pub written: Vec<ObjectId>,
    /// Bytes written.
    pub bytes: u64,
}

impl<'a> IndexWriter<'a> {
    /// A writer for `repo`; with `dry_run` it only computes the objects' ids and sizes.
    pub fn new(repo: &'a Repository, dry_run: bool) -> Self {
        IndexWriter {
            repo,
            buf: Vec::new(),
            blobs: 0,
            dry_run,
            written: Vec::new(),
            bytes: 0,
        }
    }
    /// Add a pack's listing; writes an index object when about [`PART_BLOBS`] blobs are
    /// buffered.
    ///
    /// # Errors
    /// Sealing and storage errors.
    pub fn push(&mut self, p: IndexPack) -> Result<()> {
        self.blobs += p.blobs.len();
        self.buf.push(p);
        if self.blobs >= PART_BLOBS {
            self.flush(Vec::new())?;
        }
        Ok(())
    }
    fn flush(&mut self, supersedes: Vec<ObjectId>) -> Result<()> {
        let file = IndexFile {
            version: self.repo.config().version,
            supersedes,
            packs: std::mem::take(&mut self.buf),
        };
        self.blobs = 0;
        let bytes = file.to_object(self.repo.key(), self.repo.signer())?;
        let id = if self.dry_run {
            ObjectId::of(&bytes)
        } else {
            self.repo.write_object(Kind::Index, &bytes)?
        };
        self.bytes += bytes.len() as u64;
        self.written.push(id);
        Ok(())
    }
    /// Write what is buffered; the last object carries `supersedes` (written even when empty
    /// if `supersedes` is not).
    ///
    /// # Errors
    /// Sealing and storage errors.
    pub fn finish(&mut self, supersedes: Vec<ObjectId>) -> Result<()> {
        if !self.buf.is_empty() || !supersedes.is_empty() {
            self.flush(supersedes)?;
        }
        Ok(())
    }
}
