//! The walker between `lstat` and open: an entry of the source swapped in that window
//! (deterministically, through the test hook) — for a FIFO, a new file renamed over it, a file
//! in a directory's place — is looked at again and backed up as it is now, the backup never
//! blocking; one that is swapped again at every look is skipped with a warning.

use super::open::tests::BEFORE_OPEN;
use super::walk::tests::{options, repository};
use crate::archiver::backup;
use crate::repo::Repository;
use crate::repo::blobs::BlobReader;
use rustix::fs::{FileType, Mode};

/// Names and kinds in the snapshot's tree at `path`.
fn listing(repo: &Repository, id: &tresor_format::ObjectId, path: &std::path::Path) -> Vec<String> {
    let index = repo.load_index().unwrap();
    let reader = BlobReader::new(repo, &index);
    let mut tree = reader
        .load_tree(&repo.load_snapshot(id).unwrap().tree)
        .unwrap();
    for c in path.iter().skip(1) {
        let n = tree
            .find(std::os::unix::ffi::OsStrExt::as_bytes(c))
            .unwrap();
        tree = reader.load_tree(&n.subtree.unwrap()).unwrap();
    }
    let names = tree.nodes.iter();
    names
        .map(|n| format!("{} {:?}", String::from_utf8_lossy(&n.name), n.kind))
        .collect()
}

/// Back up `src` on a thread whose opens run `hook` first (and whose walks list every
/// directory themselves with `own_listing`); the result and the names in `src`'s tree.
fn backup_with_hook(
    src: &std::path::Path,
    own_listing: bool,
    hook: impl Fn(&[u8]) + Send + 'static,
) -> (
    crate::archiver::BackupResult,
    Vec<String>,
    Vec<std::path::PathBuf>,
) {
    let src = src.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        BEFORE_OPEN.set(Some(Box::new(hook)));
        crate::archiver::walk::tests::NO_LISTER.set(own_listing);
        let repo = repository();
        let r = backup(&repo, options(vec![src.clone()], &[]), &crate::NoProgress).unwrap();
        let names = listing(&repo, &r.snapshot_id.unwrap(), &src);
        let again = crate::archiver::lister::probe::LOOKED_AGAIN.take();
        tx.send((r, names, again)).unwrap();
    });
    rx.recv_timeout(std::time::Duration::from_secs(20))
        .expect("the backup ended (it blocked on the FIFO)")
}

/// A hook that runs `swap` at the first open of `name` (and never again).
fn at_first_open_of(
    name: &'static [u8],
    swap: impl FnOnce() + Send + 'static,
) -> impl Fn(&[u8]) + Send + 'static {
    let swap = std::sync::Mutex::new(Some(swap));
    move |opened: &[u8]| {
        if opened == name
            && let Some(f) = swap.lock().unwrap().take()
        {
            f()
        }
    }
}

/// Save `name` in `dir` anew as an editor does: a new file with `content` renamed over it.
fn save_anew(dir: &std::path::Path, name: &str, content: &[u8]) {
    let new = dir.join(format!("{name}.new"));
    std::fs::write(&new, content).unwrap();
    std::fs::rename(&new, dir.join(name)).unwrap();
}

/// A source with the files `a` and `b`.
fn source() -> (tempfile::TempDir, std::path::PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a"), b"swapped").unwrap();
    std::fs::write(src.join("b"), b"stays").unwrap();
    (t, src)
}

#[test]
fn a_file_swapped_for_a_fifo_while_walking_is_a_fifo_and_nothing_blocks() {
    let (_t, src) = source();
    let a = src.join("a");
    let hook = at_first_open_of(b"a", move || {
        std::fs::remove_file(&a).unwrap();
        let mode = Mode::from_bits_truncate(0o644);
        rustix::fs::mknodat(rustix::fs::CWD, &a, FileType::Fifo, mode, 0).unwrap();
    });
    let (r, names, again) = backup_with_hook(&src, false, hook);
    assert_eq!(r.warnings, Vec::<String>::new());
    assert_eq!(names, ["a Fifo", "b File"]);
    assert_eq!(again, [src.join("a")]);
}

/// An editor's save after the listing (a new file renamed over the old): the new file is
/// backed up, with its size.
#[test]
fn a_file_replaced_after_its_listing_is_backed_up_as_it_is_now() {
    let (_t, src) = source();
    let dir = src.clone();
    let hook = at_first_open_of(b"a", move || save_anew(&dir, "a", b"saved anew"));
    let (r, names, again) = backup_with_hook(&src, false, hook);
    assert_eq!(r.warnings, Vec::<String>::new());
    assert_eq!(names, ["a File", "b File"]);
    assert_eq!(again, [src.join("a")]);
    assert_eq!(r.summary.total_bytes_processed, 10 + 5);
}

/// A file replaced again at every look (after the fresh `lstat` too) is skipped with a
/// warning: it is looked at again once, not forever.
#[test]
fn a_file_replaced_at_every_look_is_skipped_with_a_warning() {
    let (_t, src) = source();
    let dir = src.clone();
    let (r, names, again) = backup_with_hook(&src, false, move |name: &[u8]| {
        if name == b"a" {
            save_anew(&dir, "a", b"again");
        }
    });
    let a = src.join("a").display().to_string();
    let want = format!("{a}: changed while being backed up (now another file), skipped");
    assert_eq!(r.warnings, [want]);
    assert_eq!(names, ["b File"]);
    assert_eq!(again, [src.join("a")]);
}

/// A directory replaced by a file between its listing and its opening is backed up as the
/// file.
#[test]
fn a_directory_replaced_after_its_listing_is_backed_up_as_it_is_now() {
    let (_t, src) = source();
    std::fs::create_dir(src.join("d")).unwrap();
    std::fs::write(src.join("d/inner"), b"inner").unwrap();
    let d = src.join("d");
    let hook = at_first_open_of(b"d", move || {
        std::fs::remove_dir_all(&d).unwrap();
        std::fs::write(&d, b"now a file").unwrap();
    });
    let (r, names, again) = backup_with_hook(&src, true, hook);
    assert_eq!(r.warnings, Vec::<String>::new());
    assert_eq!(names, ["a File", "b File", "d File"]);
    assert_eq!(again, [src.join("d")]);
}
