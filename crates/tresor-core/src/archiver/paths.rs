//! Paths of the entries a backup looks at: a listing's name joined to its directory, and a
//! path as messages show it.

use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// A source path for messages, by the display rule (docs/cli.md, "Names in output").
pub(super) fn shown(path: &Path) -> String {
    tresor_format::tree::display_bytes(path.as_os_str().as_bytes())
}

/// `dir.join(name)` for a name of a directory listing (never absolute, no `/`), allocated once
/// at its final size.
pub(super) fn child_path(dir: &Path, name: &[u8]) -> PathBuf {
    let dir = dir.as_os_str().as_bytes();
    let mut path = Vec::with_capacity(dir.len() + 1 + name.len());
    path.extend_from_slice(dir);
    if !dir.ends_with(b"/") {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    PathBuf::from(std::ffi::OsString::from_vec(path))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// `child_path` is `Path::join` for listing names: below `/`, below a directory, with
    /// bytes that are not UTF-8.
    #[test]
    fn child_path_joins_like_path_join() {
        for (dir, name) in [("/", &b"etc"[..]), ("/a/b", b"c d"), ("/x", b"\xff\n")] {
            let want = Path::new(dir)
                .join(std::os::unix::ffi::OsStrExt::from_bytes(name) as &std::ffi::OsStr);
            assert_eq!(super::child_path(Path::new(dir), name), want);
        }
    }
}
