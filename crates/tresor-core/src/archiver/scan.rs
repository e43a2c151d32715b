//! The estimate of a backup's work: a metadata-only walk of the sources by the backup's own
//! exclusion rules, run beside the backup so that progress has a total (restic does the same).

use super::BackupOptions;
use super::lister::Marker;
use crate::Progress;
use crate::exclude::{PatternSet, is_cachedir_tag};

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a growing estimate is reported ([`Progress::set_total`]).
const REPORT_EVERY: Duration = Duration::from_millis(100);

/// What to count: the paths and exclusion rules of a backup ([`BackupOptions`]).
#[derive(Debug, Clone)]
pub struct Estimate {
    paths: Vec<PathBuf>,
    excludes: PatternSet,
    exclude_if_present: Vec<String>,
    exclude_caches: bool,
    exclude_larger_than: Option<u64>,
    one_file_system: bool,
}

impl Estimate {
    /// The sources and rules of `opts` (nothing for a backup of standard input).
    pub fn of(opts: &BackupOptions) -> Estimate {
        Estimate {
            paths: if opts.stdin.is_some() {
                Vec::new()
            } else {
                opts.paths.clone()
            },
            excludes: opts.excludes.clone(),
            exclude_if_present: opts.exclude_if_present.clone(),
            exclude_caches: opts.exclude_caches,
            exclude_larger_than: opts.exclude_larger_than,
            one_file_system: opts.one_file_system,
        }
    }

    /// Count the non-directory entries and the sizes of the regular files the backup would
    /// look at, reporting the counts so far to `progress` ([`Progress::set_total`]) every
    /// 100 ms and at the end. Excluded entries are never looked at; entries that cannot be
    /// looked at are left out silently (the backup warns about them). Returns the final
    /// `(files, bytes)`, or the counts so far when `stop` is set.
    pub fn run(&self, progress: &dyn Progress, stop: &AtomicBool) -> (u64, u64) {
        let (mut files, mut bytes) = (0u64, 0u64);
        let mut last = Instant::now();
        // (path, device of the directory it is in: None for a source path)
        let mut stack: Vec<(PathBuf, Option<u64>)> =
            self.paths.iter().rev().map(|p| (p.clone(), None)).collect();
        while let Some((path, dev)) = stack.pop() {
            if stop.load(Ordering::Relaxed) {
                return (files, bytes);
            }
            if self.excludes.matches(&path) {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if super::walk::too_large(self.exclude_larger_than, &(&meta).into()) {
                continue;
            }
            if meta.is_dir() {
                if !dev.is_some_and(|d| self.one_file_system && d != meta.dev()) {
                    self.push_entries(&path, meta.dev(), &mut stack);
                }
            } else {
                files += 1;
                if meta.is_file() {
                    bytes += meta.size();
                }
            }
            if last.elapsed() >= REPORT_EVERY {
                last = Instant::now();
                progress.set_total(files, bytes);
            }
        }
        progress.set_total(files, bytes);
        (files, bytes)
    }

    /// The entries of directory `dir` onto `stack` (in reverse name order, so they are popped
    /// in the walker's order), unless a marker file excludes it.
    fn push_entries(
        &self,
        dir: &std::path::Path,
        dev: u64,
        stack: &mut Vec<(PathBuf, Option<u64>)>,
    ) {
        match self.marker(dir) {
            Marker::Exclude => return,
            Marker::Cache => {
                stack.push((dir.join("CACHEDIR.TAG"), Some(dev)));
                return;
            }
            Marker::None => {}
        }
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut names: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        names.sort_unstable_by(|a, b| b.as_os_str().cmp(a.as_os_str()));
        stack.extend(names.into_iter().map(|p| (p, Some(dev))));
    }

    /// The walker's rule: a file named by `--exclude-if-present` leaves the directory out; a
    /// valid `CACHEDIR.TAG` (a regular file, not followed) with `--exclude-caches` keeps only
    /// that file of it (as restic does).
    fn marker(&self, dir: &std::path::Path) -> Marker {
        if self
            .exclude_if_present
            .iter()
            .any(|n| std::fs::symlink_metadata(dir.join(n)).is_ok())
        {
            return Marker::Exclude;
        }
        if !self.exclude_caches {
            return Marker::None;
        }
        let tag = dir.join("CACHEDIR.TAG");
        let is_file = std::fs::symlink_metadata(&tag).is_ok_and(|m| m.is_file());
        let valid = is_file && std::fs::File::open(&tag).is_ok_and(|mut f| is_cachedir_tag(&mut f));
        if valid { Marker::Cache } else { Marker::None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exclude::CACHEDIR_TAG_SIGNATURE;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Totals(Mutex<Vec<(u64, u64)>>);
    impl Progress for Totals {
        fn set_total(&self, files: u64, bytes: u64) {
            self.0.lock().unwrap().push((files, bytes));
        }
    }

    fn estimate(paths: Vec<PathBuf>, excludes: &[&str], caches: bool) -> Estimate {
        let excludes: Vec<String> = excludes.iter().map(|s| s.to_string()).collect();
        Estimate {
            paths,
            excludes: PatternSet::new(&excludes).unwrap(),
            exclude_if_present: vec![".nobackup".into()],
            exclude_caches: caches,
            exclude_larger_than: None,
            one_file_system: false,
        }
    }

    #[test]
    fn counts_what_the_backup_would_look_at() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::create_dir_all(p.join("a/b")).unwrap();
        std::fs::write(p.join("a/one"), vec![1u8; 1000]).unwrap();
        std::fs::write(p.join("a/b/two"), vec![2u8; 234]).unwrap();
        std::os::unix::fs::symlink("one", p.join("a/link")).unwrap();
        std::fs::write(p.join("a/skip.tmp"), vec![3u8; 5000]).unwrap();
        std::fs::create_dir(p.join("marked")).unwrap();
        std::fs::write(p.join("marked/.nobackup"), b"").unwrap();
        std::fs::write(p.join("marked/big"), vec![4u8; 7000]).unwrap();
        std::fs::create_dir(p.join("cache")).unwrap();
        std::fs::write(p.join("cache/CACHEDIR.TAG"), CACHEDIR_TAG_SIGNATURE).unwrap();
        std::fs::write(p.join("cache/big"), vec![5u8; 9000]).unwrap();
        let seen = Totals::default();
        let e = estimate(vec![p.to_path_buf()], &["*.tmp"], true);
        let stop = AtomicBool::new(false);
        let tag = CACHEDIR_TAG_SIGNATURE.len() as u64;
        // one, two, link (a symlink counts as a file with no bytes), and the cache's tag file
        assert_eq!(e.run(&seen, &stop), (4, 1234 + tag));
        assert_eq!(seen.0.lock().unwrap().last(), Some(&(4, 1234 + tag)));
        // Without --exclude-caches the whole cache directory counts.
        let e = estimate(vec![p.to_path_buf()], &["*.tmp"], false);
        assert_eq!(e.run(&seen, &stop), (5, 1234 + 9000 + tag));
        // A stop request ends the count at once.
        stop.store(true, Ordering::Relaxed);
        assert_eq!(e.run(&seen, &stop), (0, 0));
    }
}
