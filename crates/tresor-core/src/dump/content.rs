//! A file's content as a [`Read`]: blob after blob, each loaded and verified when the previous
//! one is used up.

use crate::error::CoreError;
use crate::repo::blobs::BlobReader;
use std::io::Read;
use tresor_format::BlobId;
use tresor_format::blob::BlobType;
use tresor_format::tree::{Node, display_bytes};

/// The content of a file node (or the listed blobs of it), read blob by blob. Errors of the
/// repository (a blob missing or corrupt, content longer or shorter than expected) come as
/// [`std::io::Error`]s whose inner error is the [`CoreError`].
pub struct Content<'r> {
    reader: &'r BlobReader<'r>,
    /// The blobs, each with the length it must have (when known).
    ids: std::vec::IntoIter<(BlobId, Option<u64>)>,
    size: u64,
    buf: Vec<u8>,
    pos: usize,
    total: u64,
    name: String,
}

impl<'r> Content<'r> {
    /// The content of `node` (a regular file at `path`, named in errors) through `reader`.
    pub fn new(reader: &'r BlobReader<'r>, node: &Node, path: &[u8]) -> Self {
        let ids = node.content.iter().map(|id| (*id, None)).collect();
        Content::blobs(reader, ids, node.size, path)
    }

    /// The blobs `ids` in order, each of its given length, `size` bytes in all.
    pub(super) fn blobs(
        reader: &'r BlobReader<'r>,
        ids: Vec<(BlobId, Option<u64>)>,
        size: u64,
        path: &[u8],
    ) -> Self {
        Content {
            reader,
            ids: ids.into_iter(),
            size,
            buf: Vec::new(),
            pos: 0,
            total: 0,
            name: display_bytes(path),
        }
    }

    /// The error of content not of the expected size.
    fn wrong_size(&self) -> std::io::Error {
        std::io::Error::other(CoreError::Damaged(format!(
            "{}: content is not the {} bytes the snapshot says",
            self.name, self.size
        )))
    }

    /// Load the next blob; false at the end of the content.
    fn next_blob(&mut self) -> std::io::Result<bool> {
        let Some((id, len)) = self.ids.next() else {
            return if self.total == self.size {
                Ok(false)
            } else {
                Err(self.wrong_size())
            };
        };
        self.buf = self
            .reader
            .load(&id, BlobType::Data)
            .map_err(std::io::Error::other)?;
        self.pos = 0;
        self.total += self.buf.len() as u64;
        if self.total > self.size || len.is_some_and(|l| l != self.buf.len() as u64) {
            return Err(self.wrong_size());
        }
        Ok(true)
    }
}

impl Read for Content<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            if !self.next_blob()? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
