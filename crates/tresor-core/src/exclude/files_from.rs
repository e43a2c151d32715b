//! Backup sources read from files, as restic 0.14 reads them:
//!
//! * `--files-from FILE`: one entry per line; lines are trimmed, blank lines and lines starting
//!   with `#` skipped, and each line is a glob expanded like Go's `filepath.Glob` (components
//!   matched with `filepath.Match`, entries of each directory in name order; a line without
//!   glob characters names itself when it exists). A line that matches nothing is a warning,
//!   not an error.
//! * `--files-from-verbatim FILE`: one path per line taken as it is (no trimming, no comments,
//!   no globs); only empty lines skipped.
//! * `--files-from-raw FILE`: paths separated (or ended) by NUL bytes, taken as they are.
//!
//! `FILE` `-` is standard input.

use super::{glob_is_valid, glob_match};
use crate::error::{CoreError, Result};
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How the lines of a file name sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilesFrom {
    /// `--files-from`: globs, `#` comments, trimmed lines.
    Globs,
    /// `--files-from-verbatim`: one path per line as it is.
    Verbatim,
    /// `--files-from-raw`: NUL-separated paths.
    Raw,
}

/// Read the sources `file` (`-`: standard input) names. Returns the paths and one warning per
/// glob that matched nothing.
///
/// # Errors
/// [`CoreError::Io`] when the file cannot be read; [`CoreError::Invalid`] for a malformed glob.
pub fn read(file: &Path, how: FilesFrom) -> Result<(Vec<PathBuf>, Vec<String>)> {
    let mut data = Vec::new();
    if file == Path::new("-") {
        std::io::stdin().read_to_end(&mut data)
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_end(&mut data))
    }
    .map_err(|e| CoreError::io(file, e))?;
    let path = |b: &[u8]| PathBuf::from(OsStr::from_bytes(b));
    match how {
        FilesFrom::Raw => Ok((
            data.split(|b| *b == 0)
                .filter(|p| !p.is_empty())
                .map(path)
                .collect(),
            vec![],
        )),
        FilesFrom::Verbatim => Ok((
            lines(&data).filter(|l| !l.is_empty()).map(path).collect(),
            vec![],
        )),
        FilesFrom::Globs => {
            let (mut out, mut warnings) = (Vec::new(), Vec::new());
            for l in lines(&data).map(<[u8]>::trim_ascii) {
                if l.is_empty() || l[0] == b'#' {
                    continue;
                }
                let found = glob(l)?;
                if found.is_empty() {
                    let shown = tresor_format::tree::display_bytes(l);
                    warnings.push(format!(
                        "pattern {shown:?} does not match any files, skipping"
                    ));
                }
                out.extend(found);
            }
            Ok((out, warnings))
        }
    }
}

/// Lines of `data` (`\n`, a `\r` before it removed, as Go's scanner does).
fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let data = data.strip_suffix(b"\n").unwrap_or(data);
    data.split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(move |_| !data.is_empty())
}

fn has_meta(b: &[u8]) -> bool {
    b.iter().any(|c| matches!(c, b'*' | b'?' | b'[' | b'\\'))
}

/// Go's `filepath.Glob` on bytes: the paths matching `pattern`, each directory's in name order.
///
/// # Errors
/// [`CoreError::Invalid`] for a malformed component.
pub fn glob(pattern: &[u8]) -> Result<Vec<PathBuf>> {
    let p = PathBuf::from(OsStr::from_bytes(pattern));
    if !has_meta(pattern) {
        return Ok(std::fs::symlink_metadata(&p)
            .map(|_| vec![p])
            .unwrap_or_default());
    }
    let (dir, name) = match pattern.iter().rposition(|b| *b == b'/') {
        Some(0) => (&b"/"[..], &pattern[1..]),
        Some(i) => (&pattern[..i], &pattern[i + 1..]),
        None => (&b"."[..], pattern),
    };
    if !glob_is_valid(name) {
        return Err(CoreError::Invalid(format!(
            "--files-from: malformed pattern {:?}",
            String::from_utf8_lossy(pattern)
        )));
    }
    let dirs = if has_meta(dir) {
        glob(dir)?
    } else {
        vec![PathBuf::from(OsStr::from_bytes(dir))]
    };
    let mut out = Vec::new();
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut names: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for n in names.into_iter().filter(|n| glob_match(name, n.as_bytes())) {
            out.push(if pattern.contains(&b'/') {
                d.join(&n)
            } else {
                PathBuf::from(n)
            });
        }
    }
    Ok(out)
}
