//! What restore (and dump) may apply or write: ownership, privilege bits, special files, extended attributes.
//!
//! Pure decisions, no I/O. Three rules meet here:
//! * the **xattr allow-list** ([`XattrFilter`]): by default `user.*`,
//!   `system.posix_acl_access`, `system.posix_acl_default` and `security.capability`; other
//!   names (`trusted.*`, `security.selinux`, …) only when named by `--include-xattr`;
//! * **privileged metadata** (device nodes, setuid/setgid bits of files, `security.*` and
//!   `trusted.*` attributes) is applied only when [`MetaPolicy::privileged`] — the snapshot was
//!   written by a full key, or the admin passed `--trust-privileged`; otherwise it is *withheld*
//!   and counted;
//! * **privilege follows ownership**: a file's setuid bit is kept only when the file is owned by
//!   the snapshot's uid, its setgid bit only when its group is the snapshot's gid, and
//!   `security.capability` is written only when restore set the owner; otherwise they are
//!   *dropped* and the file is named in a warning.

use crate::error::{CoreError, Result};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use tresor_format::tree::{Node, NodeKind, Xattr};

/// The attributes restored when no `--include-xattr` is given.
pub const DEFAULT_XATTRS: [&str; 4] = [
    "user.*",
    "system.posix_acl_access",
    "system.posix_acl_default",
    "security.capability",
];

/// The file capability attribute: applied only with the owner (a chown clears it anyway).
const CAPABILITY: &[u8] = b"security.capability";

/// Which extended attributes restore writes, by glob on the attribute name (restic 0.17's
/// `--include-xattr` / `--exclude-xattr`): the include patterns (or [`DEFAULT_XATTRS`] when none
/// are given) minus the exclude patterns.
#[derive(Debug, Clone)]
pub struct XattrFilter {
    include: GlobSet,
    exclude: GlobSet,
}

fn glob_set(patterns: &[&str]) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let g = GlobBuilder::new(p)
            .backslash_escape(true)
            .build()
            .map_err(|e| CoreError::Invalid(format!("xattr pattern {p:?}: {e}")))?;
        b.add(g);
    }
    b.build()
        .map_err(|e| CoreError::Invalid(format!("xattr patterns: {e}")))
}

impl XattrFilter {
    /// Compile `include` (empty: [`DEFAULT_XATTRS`]) and `exclude` globs (`*`, `?`, `[…]`).
    ///
    /// # Errors
    /// [`CoreError::Invalid`] naming a bad pattern.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self> {
        let include: Vec<&str> = if include.is_empty() {
            DEFAULT_XATTRS.to_vec()
        } else {
            include.iter().map(String::as_str).collect()
        };
        let exclude: Vec<&str> = exclude.iter().map(String::as_str).collect();
        Ok(XattrFilter {
            include: glob_set(&include)?,
            exclude: glob_set(&exclude)?,
        })
    }

    /// Whether the attribute `name` passes the lists.
    pub fn allows(&self, name: &[u8]) -> bool {
        let n = OsStr::from_bytes(name);
        self.include.is_match(n) && !self.exclude.is_match(n)
    }
}

impl Default for XattrFilter {
    fn default() -> Self {
        XattrFilter::new(&[], &[]).expect("the default xattr patterns compile")
    }
}

/// The metadata rules of one restore.
#[derive(Debug, Clone)]
pub struct MetaPolicy {
    /// Set owners (running as root and not `--no-owner`).
    pub owner: bool,
    /// Apply privileged metadata (see the module documentation).
    pub privileged: bool,
    /// Which attributes to write.
    pub xattrs: XattrFilter,
}

/// What becomes of one piece of metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Applied.
    Apply,
    /// Not on the xattr allow-list.
    Filtered,
    /// Privileged, and the snapshot's writer is not trusted with it.
    Withheld,
    /// Setuid/setgid or a capability whose owner is not restored.
    Dropped,
}

/// Whether `name` is a privileged attribute namespace (`security.*`, `trusted.*`).
fn privileged_xattr(name: &[u8]) -> bool {
    name.starts_with(b"security.") || name.starts_with(b"trusted.")
}

impl MetaPolicy {
    /// The fate of attribute `x`; `owner_set`: the entry's owner was set by this restore.
    pub fn xattr_fate(&self, x: &Xattr, owner_set: bool) -> Fate {
        if !self.xattrs.allows(&x.name) {
            Fate::Filtered
        } else if privileged_xattr(&x.name) && !self.privileged {
            Fate::Withheld
        } else if x.name == CAPABILITY && !owner_set {
            Fate::Dropped
        } else {
            Fate::Apply
        }
    }

    /// The mode to apply to `node` whose entry is now owned by `uid`:`gid`, and the fate of its
    /// setuid/setgid bits (only for regular files; [`Fate::Apply`] when it has none).
    pub fn mode(&self, node: &Node, uid: u32, gid: u32) -> (u32, Fate) {
        let mut mode = node.mode & 0o7777;
        if node.kind != NodeKind::File || mode & 0o6000 == 0 {
            return (mode, Fate::Apply);
        }
        if !self.privileged {
            return (mode & !0o6000, Fate::Withheld);
        }
        let mut fate = Fate::Apply;
        if mode & 0o4000 != 0 && uid != node.uid {
            mode &= !0o4000;
            fate = Fate::Dropped;
        }
        if mode & 0o2000 != 0 && gid != node.gid {
            mode &= !0o2000;
            fate = Fate::Dropped;
        }
        (mode, fate)
    }

    /// Whether applying `node`'s metadata would grant privileges (a setuid/setgid bit or a
    /// file capability): such an existing file counts as already correct only when its owner
    /// already matches and its content is verified.
    pub fn grants_privilege(&self, node: &Node) -> bool {
        self.privileged
            && node.kind == NodeKind::File
            && (node.mode & 0o6000 != 0
                || node
                    .xattrs
                    .iter()
                    .any(|x| x.name == CAPABILITY && self.xattrs.allows(&x.name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(kind: NodeKind, mode: u32, xattrs: &[&str]) -> Node {
        Node {
            mode,
            links: 1,
            xattrs: xattrs
                .iter()
                .map(|n| Xattr {
                    name: n.as_bytes().to_vec(),
                    value: b"v".to_vec(),
                })
                .collect(),
            ..Node::bare(b"f", kind)
        }
    }

    fn policy(privileged: bool, include: &[&str], exclude: &[&str]) -> MetaPolicy {
        let s = |v: &[&str]| v.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        MetaPolicy {
            owner: true,
            privileged,
            xattrs: XattrFilter::new(&s(include), &s(exclude)).unwrap(),
        }
    }

    #[test]
    fn default_xattr_list() {
        let f = XattrFilter::default();
        for yes in [
            "user.a",
            "user.",
            "system.posix_acl_access",
            "system.posix_acl_default",
            "security.capability",
        ] {
            assert!(f.allows(yes.as_bytes()), "{yes}");
        }
        for no in [
            "trusted.overlay.opaque",
            "security.selinux",
            "security.ima",
            "system.nfs4_acl",
            "users.x",
            "xuser.a",
        ] {
            assert!(!f.allows(no.as_bytes()), "{no}");
        }
        // Non-UTF-8 attribute names are matched as bytes.
        assert!(f.allows(b"user.\xff"));
    }

    #[test]
    fn include_replaces_the_default_and_exclude_wins() {
        let p = policy(true, &["trusted.*", "user.keep*"], &["user.keep.not"]);
        let x = |n: &str| Xattr {
            name: n.as_bytes().to_vec(),
            value: vec![],
        };
        assert_eq!(p.xattr_fate(&x("trusted.a"), true), Fate::Apply);
        assert_eq!(p.xattr_fate(&x("user.keepme"), true), Fate::Apply);
        assert_eq!(p.xattr_fate(&x("user.keep.not"), true), Fate::Filtered);
        assert_eq!(p.xattr_fate(&x("user.other"), true), Fate::Filtered);
        assert_eq!(
            p.xattr_fate(&x("security.capability"), true),
            Fate::Filtered
        );
        // Untrusted writer: privileged namespaces are withheld even when included.
        let p = policy(false, &["*"], &[]);
        assert_eq!(p.xattr_fate(&x("trusted.a"), true), Fate::Withheld);
        assert_eq!(p.xattr_fate(&x("security.selinux"), true), Fate::Withheld);
        assert_eq!(p.xattr_fate(&x("user.a"), true), Fate::Apply);
        // A capability needs the owner.
        let p = policy(true, &[], &[]);
        assert_eq!(
            p.xattr_fate(&x("security.capability"), false),
            Fate::Dropped
        );
        assert_eq!(p.xattr_fate(&x("security.capability"), true), Fate::Apply);
        assert!(XattrFilter::new(&["[".into()], &[]).is_err());
    }

    #[test]
    fn setid_bits_follow_owner_and_trust() {
        let p = policy(true, &[], &[]);
        let f = node(NodeKind::File, 0o6755, &[]);
        assert_eq!(p.mode(&f, 0, 0), (0o6755, Fate::Apply));
        assert_eq!(p.mode(&f, 1000, 0), (0o2755, Fate::Dropped));
        assert_eq!(p.mode(&f, 0, 1000), (0o4755, Fate::Dropped));
        assert_eq!(p.mode(&f, 1000, 1000), (0o0755, Fate::Dropped));
        let untrusted = policy(false, &[], &[]);
        assert_eq!(untrusted.mode(&f, 0, 0), (0o0755, Fate::Withheld));
        // Sticky bits and directories' setgid are not privileges.
        let d = node(NodeKind::Dir, 0o3775, &[]);
        assert_eq!(untrusted.mode(&d, 1000, 1000), (0o3775, Fate::Apply));
        let plain = node(NodeKind::File, 0o1644, &[]);
        assert_eq!(untrusted.mode(&plain, 5, 5), (0o1644, Fate::Apply));
    }

    #[test]
    fn what_grants_privilege() {
        let p = policy(true, &[], &[]);
        assert!(p.grants_privilege(&node(NodeKind::File, 0o4755, &[])));
        assert!(p.grants_privilege(&node(NodeKind::File, 0o755, &["security.capability"])));
        assert!(!p.grants_privilege(&node(NodeKind::File, 0o755, &["user.x"])));
        assert!(!p.grants_privilege(&node(NodeKind::Dir, 0o2755, &[])));
        assert!(!policy(false, &[], &[]).grants_privilege(&node(NodeKind::File, 0o4755, &[])));
        assert!(!policy(true, &["user.*"], &[]).grants_privilege(&node(
            NodeKind::File,
            0o755,
            &["security.capability"]
        )));
    }
}
