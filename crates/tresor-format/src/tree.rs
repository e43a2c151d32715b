//! Trees and nodes (format §10).
//!
//! A tree is one directory listing, stored as a blob of type [`crate::blob::BlobType::Tree`]:
//! `version byte (1) || postcard(Tree)`. Nodes are sorted by their raw name bytes. Names, symlink
//! targets and xattrs are raw bytes, never assumed to be UTF-8.

use crate::BlobId;
use crate::error::{FormatError, Result};
use serde::{Deserialize, Serialize};

/// Tree encoding version.
pub const TREE_VERSION: u8 = 1;

/// Deepest nesting of directories (tree blobs below the root tree) that writers produce and
/// readers follow; a deeper tree is damage. Bounds the recursion of every tree walk.
pub const MAX_TREE_DEPTH: usize = 16_384;

/// Largest plaintext of a tree blob, bytes (256 MiB: about two million small files in one
/// directory). A tree blob that decompresses to more is damage; a writer refuses to store a
/// larger tree (the directory is reported as an error, the rest of the backup goes on).
pub const MAX_TREE_SIZE: usize = 256 << 20;

/// Whether `name` may be a node name (format §10): not empty, not `.` or `..`, and without
/// `/` or NUL bytes. Every reader checks it before a name reaches a file system or a path.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.iter().any(|b| *b == b'/' || *b == 0)
}

/// A point in time: seconds since 1970-01-01 UTC (may be negative) plus nanoseconds (0..1e9).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Timestamp {
    /// Whole seconds since the Unix epoch, UTC.
    pub secs: i64,
    /// Nanoseconds, 0 ≤ nanos < 1 000 000 000.
    pub nanos: u32,
}

/// File type of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeKind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Named pipe.
    Fifo,
    /// Unix domain socket.
    Socket,
    /// Character device.
    CharDevice,
    /// Block device.
    BlockDevice,
}

/// One extended attribute (including `system.posix_acl_*` and `security.capability`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xattr {
    /// Attribute name, raw bytes.
    #[serde(with = "serde_bytes")]
    pub name: Vec<u8>,
    /// Attribute value, raw bytes.
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
}

/// One directory entry with everything restore needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// File name, raw bytes (no `/`, not empty).
    #[serde(with = "serde_bytes")]
    pub name: Vec<u8>,
    /// File type.
    pub kind: NodeKind,
    /// Permission bits including setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Owner user name, when known.
    pub user: Option<String>,
    /// Owner group name, when known.
    pub group: Option<String>,
    /// Modification time.
    pub mtime: Timestamp,
    /// Access time.
    pub atime: Timestamp,
    /// Status change time (not restorable; used to detect changes).
    pub ctime: Timestamp,
    /// Size in bytes (files: content length; symlinks: target length).
    pub size: u64,
    /// Device id of the containing file system (`st_dev`).
    pub device: u64,
    /// Inode number.
    pub inode: u64,
    /// Hard link count.
    pub links: u64,
    /// Device number for character and block devices (`st_rdev`).
    pub rdev: u64,
    /// Symlink target, raw bytes.
    #[serde(with = "serde_bytes")]
    pub target: Vec<u8>,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<Xattr>,
    /// Whether the file had holes (allocated less than its size); restore keeps zero runs as holes.
    pub sparse: bool,
    /// File content blobs, in order.
    pub content: Vec<BlobId>,
    /// Directory: its tree blob.
    pub subtree: Option<BlobId>,
}

impl Node {
    /// The name as text, with non-UTF-8 bytes replaced (for display only).
    pub fn name_lossy(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// A directory listing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tree {
    /// Entries sorted by name bytes.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// Plaintext blob bytes: version byte then postcard.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![TREE_VERSION];
        out.extend(postcard::to_stdvec(self).expect("tree serializes"));
        out
    }

    /// Decode plaintext blob bytes.
    ///
    /// # Errors
    /// [`FormatError::UnsupportedVersion`], [`FormatError::Malformed`].
    pub fn decode(b: &[u8]) -> Result<Self> {
        match b.first() {
            Some(&TREE_VERSION) => {}
            Some(&v) => {
                return Err(FormatError::UnsupportedVersion {
                    what: "tree",
                    found: v.into(),
                    supported: TREE_VERSION.into(),
                });
            }
            None => return Err(FormatError::malformed("tree", "empty")),
        }
        postcard::from_bytes(&b[1..]).map_err(|e| FormatError::malformed("tree", e))
    }

    /// The node called `name`, by binary search.
    pub fn find(&self, name: &[u8]) -> Option<&Node> {
        self.nodes
            .binary_search_by(|n| n.name.as_slice().cmp(name))
            .ok()
            .map(|i| &self.nodes[i])
    }
}
