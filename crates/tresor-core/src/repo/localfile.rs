//! Files of the local cache directory written whole: the high-water marks and the snapshot
//! cache. A new temporary file beside the target (`O_EXCL`: no symbolic link followed, no file
//! already there reused; mode 0600), synced when asked, then renamed over the target.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Replace `path` with `bytes` through a new temporary file `NAME.tmp-PID-NANOS` beside it;
/// `sync`: the file's contents are made durable before the rename (not for a cache whose lost
/// write only costs work). On an error the temporary file is removed and `path` left as it was.
///
/// # Errors
/// I/O errors of the directory.
pub fn replace(path: &Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!("{name}.tmp-{}-{nanos}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            if sync { f.sync_all() } else { Ok(()) }
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_file_is_replaced_whole_private_and_nothing_is_left_beside_it() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"old contents").unwrap();
        replace(&p, b"new", true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        replace(&p, b"newer", false).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"newer");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_replacement_leaves_the_file_and_no_temporary_one() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"kept").unwrap();
        // The target is a non-empty directory: the rename fails.
        let dir_target = d.path().join("dir");
        std::fs::create_dir_all(dir_target.join("x")).unwrap();
        assert!(replace(&dir_target, b"bytes", false).is_err());
        assert!(replace(&d.path().join("missing/f"), b"bytes", false).is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"kept");
        let mut names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["dir", "f"]);
    }
}
