//! Trees and nodes (format §10).
//!
//! A tree is one directory listing, stored as a blob of type [`crate::blob::BlobType::Tree`]:
//! `version byte (1) || postcard(Tree)`. Nodes are sorted by their raw name bytes. Names, symlink
//! targets and xattrs are raw bytes, never assumed to be UTF-8.
//!
//! Trees are validated where they are decoded ([`Tree::decode`], [`EncodedTree::decode`]) and
//! before they are encoded ([`Tree::validate`], [`Tree::encode_checked`]): a tree written by a
//! hostile or broken writer never reaches a file system or a path. The rules are those of
//! format §10: every name passes [`valid_name`]; names strictly increase bytewise (no
//! duplicates); xattr names are not empty, hold no NUL and strictly increase; symlink targets,
//! user and group names hold no NUL; a directory has a subtree and nothing else does; only files
//! have content and only symlinks a target; modes fit in `0o7777`; nanoseconds are below 10⁹;
//! the plaintext is at most [`MAX_TREE_SIZE`] bytes.

use crate::BlobId;
use crate::error::{FormatError, Result};
use serde::{Deserialize, Serialize};

mod encoded;
pub use encoded::EncodedTree;

/// Tree encoding version.
pub const TREE_VERSION: u8 = 2;
const _: () = assert!(TREE_VERSION as u32 == crate::FORMAT_VERSION);

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

fn check_size(len: usize) -> Result<()> {
    if len > MAX_TREE_SIZE {
        return Err(FormatError::malformed(
            "tree",
            format!("{len} bytes, more than the largest tree ({MAX_TREE_SIZE} bytes)"),
        ));
    }
    Ok(())
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
    /// A node named `name` of `kind` with every other field zero or empty (mode 0, owner 0,
    /// no names, times at the Unix epoch, size 0, no content, no subtree): the base that
    /// fixtures and crafted trees fill in field by field,
    /// `Node { size: 5, ..Node::bare(b"f", NodeKind::File) }`. Not a valid file by itself.
    pub fn bare(name: &[u8], kind: NodeKind) -> Self {
        Node {
            name: name.to_vec(),
            kind,
            mode: 0,
            uid: 0,
            gid: 0,
            user: None,
            group: None,
            mtime: Timestamp::default(),
            atime: Timestamp::default(),
            ctime: Timestamp::default(),
            size: 0,
            device: 0,
            inode: 0,
            links: 0,
            rdev: 0,
            target: Vec::new(),
            xattrs: Vec::new(),
            sparse: false,
            content: Vec::new(),
            subtree: None,
        }
    }

    /// The name as text, with non-UTF-8 bytes replaced by U+FFFD (for matching patterns and
    /// for JSON, beside the exact bytes; people get [`Node::name_shown`]).
    pub fn name_lossy(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }

    /// The name for people, by the display rule of [`display_bytes`].
    pub fn name_shown(&self) -> String {
        display_bytes(&self.name)
    }
}

/// Bytes someone else chose (a file name, a path, a host name) as text for people, by one
/// reversible rule (docs/cli.md, "Names in output"): valid UTF-8 as it is, except `\` → `\\`;
/// `\n`, `\t`, `\r` as C escapes; other control characters (C0 and DEL) as `\xNN`; C1 controls
/// and the Unicode format characters that hide or reorder text (bidirectional controls,
/// zero-width characters, the byte order mark, line and paragraph separators) as `\u{XXXX}`;
/// every byte that is not part of valid UTF-8 as `\xNN`. Every backslash in the result starts
/// an escape, so the result has no control character and names one byte string only.
pub fn display_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_shown(&mut out, c, true);
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

/// Text for one line on a terminal: control and hiding characters escaped as by
/// [`display_bytes`], backslashes left as they are (the text may hold escapes already). The
/// last guard of every line the CLI prints. Borrows `s` when it has nothing to escape.
pub fn display_line(s: &str) -> std::borrow::Cow<'_, str> {
    let safe = |c: char| c >= ' ' && c != '\u{7f}' && !hides_text(c);
    if s.chars().all(safe) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_shown(&mut out, c, false);
    }
    std::borrow::Cow::Owned(out)
}

fn push_shown(out: &mut String, c: char, escape_backslash: bool) {
    match c {
        '\\' if escape_backslash => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if hides_text(c) => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
        c => out.push(c),
    }
}

/// Whether `c` is a C1 control or a format character that hides or reorder text on a terminal
/// (bidirectional controls, zero-width characters, U+FEFF, U+2028/U+2029): escaped as
/// `\u{XXXX}` by [`display_bytes`].
pub fn hides_text(c: char) -> bool {
    matches!(c as u32,
        0x80..=0x9f
        | 0x061c
        | 0x180e
        | 0x200b..=0x200f
        | 0x2028..=0x202e
        | 0x2060..=0x2064
        | 0x2066..=0x206f
        | 0xfeff
        | 0xfff9..=0xfffb)
}

/// A directory listing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tree {
    /// Entries sorted by name bytes.
    pub nodes: Vec<Node>,
}

/// A name (or other raw bytes) for messages: in double quotes, shown by the rule of
/// [`display_bytes`] (control and hiding characters, backslashes and bytes that are not UTF-8
/// escaped: `\n`, `\x1b`, `\xff`, `\u{202e}`) with `"` escaped as `\"`; other characters,
/// `müller` or `日本`, as they are. So a hostile name cannot move the cursor of a terminal,
/// fake another line, or end the quotes early.
pub fn escape_name(name: &[u8]) -> String {
    format!("\"{}\"", display_bytes(name).replace('"', "\\\""))
}

fn bad_tree(name: &[u8], problem: &str) -> FormatError {
    FormatError::malformed("tree", format!("{}: {problem}", escape_name(name)))
}

/// The postcard bytes of a tree blob's plaintext `b`, after its version byte, once its size
/// and version are checked.
fn body(b: &[u8]) -> Result<&[u8]> {
    check_size(b.len())?;
    match b.split_first() {
        Some((&TREE_VERSION, body)) => Ok(body),
        Some((&v, _)) => Err(FormatError::UnsupportedVersion {
            what: "tree",
            found: v.into(),
            supported: TREE_VERSION.into(),
        }),
        None => Err(FormatError::malformed("tree", "empty")),
    }
}

/// Names strictly increase bytewise: `name` after `prev` (the name before it, if any).
fn check_order(prev: Option<&[u8]>, name: &[u8]) -> Result<()> {
    match prev {
        Some(p) if p == name => Err(bad_tree(name, "duplicate name")),
        Some(p) if p > name => Err(bad_tree(
            name,
            &format!("out of order (after {})", escape_name(p)),
        )),
        _ => Ok(()),
    }
}

fn check_timestamps(n: &Node) -> Result<()> {
    for (what, t) in [("mtime", n.mtime), ("atime", n.atime), ("ctime", n.ctime)] {
        if t.nanos >= 1_000_000_000 {
            return Err(bad_tree(
                &n.name,
                &format!("{what} nanoseconds {} not below 10^9", t.nanos),
            ));
        }
    }
    Ok(())
}

fn check_xattrs(n: &Node) -> Result<()> {
    let mut prev: Option<&[u8]> = None;
    for x in &n.xattrs {
        if x.name.is_empty() || x.name.contains(&0) {
            return Err(bad_tree(
                &n.name,
                &format!("extended attribute name {} not valid", escape_name(&x.name)),
            ));
        }
        if prev.is_some_and(|p| p >= x.name.as_slice()) {
            return Err(bad_tree(
                &n.name,
                &format!(
                    "extended attribute {} duplicated or out of order",
                    escape_name(&x.name)
                ),
            ));
        }
        prev = Some(&x.name);
    }
    Ok(())
}

impl Node {
    /// Check this node against the rules of format §10 (everything but the order of names in
    /// its tree).
    ///
    /// # Errors
    /// [`FormatError::Malformed`] (`"tree"`) naming the node (escaped) and the problem.
    pub fn validate(&self) -> Result<()> {
        let bad = |problem: &str| Err(bad_tree(&self.name, problem));
        if !valid_name(&self.name) {
            return bad("not a valid name");
        }
        if self.mode > 0o7777 {
            return bad(&format!("mode {:o} has bits beyond 7777", self.mode));
        }
        match (self.kind, self.subtree.is_some()) {
            (NodeKind::Dir, false) => return bad("directory without a subtree"),
            (NodeKind::Dir, true) | (_, false) => {}
            (_, true) => return bad("subtree on a node that is not a directory"),
        }
        if self.kind != NodeKind::File && !self.content.is_empty() {
            return bad("content on a node that is not a file");
        }
        if self.kind != NodeKind::Symlink && !self.target.is_empty() {
            return bad("symlink target on a node that is not a symlink");
        }
        if self.target.contains(&0) {
            return bad("symlink target holds a NUL byte");
        }
        if [&self.user, &self.group]
            .into_iter()
            .any(|s| s.as_ref().is_some_and(|s| s.contains('\0')))
        {
            return bad("user or group name holds a NUL byte");
        }
        check_timestamps(self)?;
        check_xattrs(self)
    }
}

impl Tree {
    /// Plaintext blob bytes: version byte then postcard. Writers call [`Tree::validate`] first
    /// (or use [`Tree::encode_checked`]): readers refuse a tree that breaks the rules.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![TREE_VERSION];
        out.extend(postcard::to_stdvec(self).expect("tree serializes"));
        out
    }

    /// [`Tree::validate`], then [`Tree::encode`], refusing a plaintext over [`MAX_TREE_SIZE`]:
    /// the bytes every reader accepts.
    ///
    /// # Errors
    /// [`FormatError::Malformed`] as [`Tree::validate`], or for a tree too large.
    pub fn encode_checked(&self) -> Result<Vec<u8>> {
        self.validate()?;
        let out = self.encode();
        check_size(out.len())?;
        Ok(out)
    }

    /// Check every node ([`Node::validate`]) and that names strictly increase bytewise (sorted,
    /// no duplicates): the rules readers enforce in [`Tree::decode`].
    ///
    /// # Errors
    /// [`FormatError::Malformed`] (`"tree"`) naming the first offending node (escaped) and the
    /// problem, e.g. `malformed tree: "..": not a valid name`.
    pub fn validate(&self) -> Result<()> {
        let mut prev: Option<&[u8]> = None;
        for n in &self.nodes {
            n.validate()?;
            check_order(prev, &n.name)?;
            prev = Some(&n.name);
        }
        Ok(())
    }

    /// Decode plaintext blob bytes and [validate](Tree::validate) the tree.
    ///
    /// # Errors
    /// [`FormatError::UnsupportedVersion`]; [`FormatError::Malformed`] for bytes that are not a
    /// tree, a plaintext over [`MAX_TREE_SIZE`], or a tree that breaks a rule of
    /// [`Tree::validate`].
    pub fn decode(b: &[u8]) -> Result<Self> {
        let body = body(b)?;
        let tree: Tree =
            postcard::from_bytes(body).map_err(|e| FormatError::malformed("tree", e))?;
        tree.validate()?;
        Ok(tree)
    }

    /// The node called `name`, by binary search.
    pub fn find(&self, name: &[u8]) -> Option<&Node> {
        self.nodes
            .binary_search_by(|n| n.name.as_slice().cmp(name))
            .ok()
            .map(|i| &self.nodes[i])
    }
}

#[cfg(test)]
mod tests {

    /// Quoted names keep printable non-ASCII text (`müller`, `日本`) and escape what could
    /// move the cursor, hide text, end the quotes or is not UTF-8.
    #[test]
    fn escape_name_keeps_text_and_escapes_the_rest() {
        assert_eq!(escape_name("müller-日本".as_bytes()), "\"müller-日本\"");
        assert_eq!(
            escape_name(b"a\"b\\c\n\x1b]0;x\x07\xff"),
            "\"a\\\"b\\\\c\\n\\x1b]0;x\\x07\\xff\""
        );
        assert_eq!(escape_name("\u{202e}".as_bytes()), "\"\\u{202e}\"");
    }

    #[test]
    fn display_rule() {
        let cases: &[(&[u8], &str)] = &[
            (b"plain name.txt", "plain name.txt"),
            (
                "caf\u{e9} \u{65e5}\u{672c}".as_bytes(),
                "caf\u{e9} \u{65e5}\u{672c}",
            ),
            (b"new\nline\ttab\rcr", r"new\nline\ttab\rcr"),
            (b"\x1b[31mred\x07\x7f", r"\x1b[31mred\x07\x7f"),
            (b"back\\slash \\x41", r"back\\slash \\x41"),
            (b"bad\xff\xfe", r"bad\xff\xfe"),
            ("evil\u{202e}txt.exe".as_bytes(), r"evil\u{202e}txt.exe"),
            (
                "c1\u{9b}zw\u{200b}bom\u{feff}".as_bytes(),
                r"c1\u{009b}zw\u{200b}bom\u{feff}",
            ),
        ];
        for (raw, shown) in cases {
            assert_eq!(display_bytes(raw), *shown, "{raw:?}");
            assert!(!display_bytes(raw).chars().any(char::is_control));
        }
        // Lines keep escapes they already hold, and lose their control characters.
        assert_eq!(display_line("a\\x41\nb\u{1b}"), r"a\x41\nb\x1b");
    }

    use super::*;

    fn node(name: &[u8], kind: NodeKind) -> Node {
        Node {
            name: name.to_vec(),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            user: Some("root".into()),
            group: None,
            mtime: Timestamp::default(),
            atime: Timestamp::default(),
            ctime: Timestamp::default(),
            size: 0,
            device: 0,
            inode: 0,
            links: 1,
            rdev: 0,
            target: Vec::new(),
            xattrs: Vec::new(),
            sparse: false,
            content: Vec::new(),
            subtree: (kind == NodeKind::Dir).then_some(BlobId([7; 32])),
        }
    }

    fn xattr(name: &[u8]) -> Xattr {
        Xattr {
            name: name.to_vec(),
            value: b"v".to_vec(),
        }
    }

    /// The message `Tree::decode` gives for the bytes `encode` (which does not validate) makes
    /// of `nodes`; `validate` gives the same one.
    fn refused(nodes: Vec<Node>) -> String {
        let t = Tree { nodes };
        let e = Tree::decode(&t.encode()).expect_err("decode refuses it");
        assert!(
            matches!(&e, FormatError::Malformed { what: "tree", .. }),
            "{e:?}"
        );
        assert_eq!(t.validate().unwrap_err().to_string(), e.to_string());
        assert_eq!(t.encode_checked().unwrap_err().to_string(), e.to_string());
        e.to_string()
    }

    #[test]
    fn valid_tree_round_trips() {
        let mut file = node(b"a\xff", NodeKind::File);
        file.content = vec![BlobId([1; 32])];
        file.xattrs = vec![xattr(b"security.capability"), xattr(b"user.x")];
        file.mode = 0o7777;
        file.mtime.nanos = 999_999_999;
        let mut link = node(b"link", NodeKind::Symlink);
        link.target = b"../../etc/passwd".to_vec();
        let t = Tree {
            nodes: vec![
                node(b"-", NodeKind::Dir),
                node(b"A", NodeKind::Fifo),
                file,
                link,
            ],
        };
        let b = t.encode_checked().unwrap();
        assert_eq!(b, t.encode());
        assert_eq!(Tree::decode(&b).unwrap(), t);
        assert_eq!(
            Tree::decode(&Tree::default().encode()).unwrap(),
            Tree::default()
        );
    }

    #[test]
    fn bad_names_are_refused_and_named() {
        let cases: [(&[u8], &str); 6] = [
            (b"..", r#""..": not a valid name"#),
            (b".", r#"".": not a valid name"#),
            (b"", r#""": not a valid name"#),
            (b"../../etc/x", r#""../../etc/x": not a valid name"#),
            (b"a\0b", r#""a\x00b": not a valid name"#),
            (b"/", r#""/": not a valid name"#),
        ];
        for (name, msg) in cases {
            let got = refused(vec![node(name, NodeKind::File)]);
            assert_eq!(got, format!("malformed tree: {msg}"));
        }
        // Escaped: a name cannot write control characters to a terminal.
        let got = refused(vec![
            node(b"ok", NodeKind::File),
            node(b"x/\x1b[2J\n", NodeKind::File),
        ]);
        assert_eq!(got, r#"malformed tree: "x/\x1b[2J\n": not a valid name"#);
    }

    #[test]
    fn names_must_strictly_increase() {
        let got = refused(vec![
            node(b"d", NodeKind::Dir),
            node(b"d", NodeKind::Symlink),
        ]);
        assert_eq!(got, r#"malformed tree: "d": duplicate name"#);
        let got = refused(vec![node(b"b", NodeKind::File), node(b"a", NodeKind::File)]);
        assert_eq!(got, r#"malformed tree: "a": out of order (after "b")"#);
        // Bytewise, not by text: "B" (0x42) sorts before "a" (0x61), "\xff" after everything.
        let got = refused(vec![
            node(b"\xff", NodeKind::File),
            node(b"a", NodeKind::File),
        ]);
        assert_eq!(got, r#"malformed tree: "a": out of order (after "\xff")"#);
    }

    #[test]
    fn xattr_names_are_checked() {
        let with = |names: &[&[u8]]| {
            let mut n = node(b"f", NodeKind::File);
            n.xattrs = names.iter().map(|x| xattr(x)).collect();
            refused(vec![n])
        };
        assert_eq!(
            with(&[b""]),
            r#"malformed tree: "f": extended attribute name "" not valid"#
        );
        assert_eq!(
            with(&[b"user.a\0b"]),
            r#"malformed tree: "f": extended attribute name "user.a\x00b" not valid"#
        );
        assert_eq!(
            with(&[b"user.a", b"user.a"]),
            r#"malformed tree: "f": extended attribute "user.a" duplicated or out of order"#
        );
        assert_eq!(
            with(&[b"user.b", b"user.a"]),
            r#"malformed tree: "f": extended attribute "user.a" duplicated or out of order"#
        );
    }

    #[test]
    fn fields_that_do_not_fit_the_kind_are_refused() {
        let mut link = node(b"l", NodeKind::Symlink);
        link.target = b"/etc/\0shadow".to_vec();
        assert_eq!(
            refused(vec![link]),
            r#"malformed tree: "l": symlink target holds a NUL byte"#
        );
        let mut d = node(b"d", NodeKind::Dir);
        d.subtree = None;
        assert_eq!(
            refused(vec![d]),
            r#"malformed tree: "d": directory without a subtree"#
        );
        let mut f = node(b"f", NodeKind::Fifo);
        f.subtree = Some(BlobId([1; 32]));
        assert_eq!(
            refused(vec![f]),
            r#"malformed tree: "f": subtree on a node that is not a directory"#
        );
        let mut d = node(b"d", NodeKind::Dir);
        d.content = vec![BlobId([1; 32])];
        assert_eq!(
            refused(vec![d]),
            r#"malformed tree: "d": content on a node that is not a file"#
        );
        let mut f = node(b"f", NodeKind::File);
        f.target = b"x".to_vec();
        assert_eq!(
            refused(vec![f]),
            r#"malformed tree: "f": symlink target on a node that is not a symlink"#
        );
        let mut f = node(b"f", NodeKind::File);
        f.mode = 0o100644;
        assert_eq!(
            refused(vec![f]),
            r#"malformed tree: "f": mode 100644 has bits beyond 7777"#
        );
        let mut f = node(b"f", NodeKind::File);
        f.ctime.nanos = 1_000_000_000;
        assert_eq!(
            refused(vec![f]),
            r#"malformed tree: "f": ctime nanoseconds 1000000000 not below 10^9"#
        );
        let mut f = node(b"f", NodeKind::File);
        f.group = Some("wheel\0".into());
        assert_eq!(
            refused(vec![f]),
            r#"malformed tree: "f": user or group name holds a NUL byte"#
        );
    }

    #[test]
    fn size_is_capped_before_decoding() {
        let mut big = vec![TREE_VERSION];
        big.resize(MAX_TREE_SIZE + 1, 0);
        let e = Tree::decode(&big).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "malformed tree: {} bytes, more than the largest tree ({MAX_TREE_SIZE} bytes)",
                MAX_TREE_SIZE + 1
            )
        );
        // Exactly MAX_TREE_SIZE is not refused for its size: an empty tree, then zeros that the
        // reader ignores (format, conventions: trailing bytes).
        big.truncate(MAX_TREE_SIZE);
        assert_eq!(Tree::decode(&big).unwrap(), Tree::default());
    }
}
