//! What operations tell a [`Progress`]: backup's current files and bytes (read, or skipped as
//! unchanged), check's phases and steps.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tresor_core::Progress;
use tresor_core::archiver;
use tresor_core::check::{ReadData, check_with};
use tresor_testkit::repo::{backup_options, data, setup};

/// Everything reported, in order.
#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);

#[derive(Debug, Clone, PartialEq)]
enum Event {
    FileDone,
    Read(u64),
    Skipped(u64),
    Current(PathBuf),
    Phase(String, u64),
}

impl Recorder {
    fn events(&self) -> Vec<Event> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Progress for Recorder {
    fn file_done(&self, _bytes: u64) {
        self.0.lock().unwrap().push(Event::FileDone);
    }
    fn bytes_read(&self, bytes: u64) {
        self.0.lock().unwrap().push(Event::Read(bytes));
    }
    fn bytes_skipped(&self, bytes: u64) {
        self.0.lock().unwrap().push(Event::Skipped(bytes));
    }
    fn current_file(&self, path: &Path) {
        self.0
            .lock()
            .unwrap()
            .push(Event::Current(path.to_path_buf()));
    }
    fn phase(&self, name: &str, unit: &str, total: u64) {
        self.0
            .lock()
            .unwrap()
            .push(Event::Phase(format!("{name} ({unit})"), total));
    }
}

fn sum(events: &[Event], f: fn(&Event) -> Option<u64>) -> u64 {
    events.iter().filter_map(f).sum()
}

#[test]
fn backup_reports_files_read_and_unchanged_bytes_and_check_its_phases() {
    let dir = tempfile::tempdir().unwrap();
    let (_, repo) = setup(dir.path());
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a"), data(1, 70_000)).unwrap();
    std::fs::write(src.join("b"), data(2, 5_000)).unwrap();
    let rec = Recorder::default();
    archiver::backup(&repo, backup_options(&src, "h"), &rec).unwrap();
    let ev = rec.events();
    let current: Vec<&Event> = ev
        .iter()
        .filter(|e| matches!(e, Event::Current(_)))
        .collect();
    assert_eq!(
        current,
        [
            &Event::Current(src.join("a")),
            &Event::Current(src.join("b"))
        ]
    );
    assert_eq!(
        sum(&ev, |e| if let Event::Read(n) = e {
            Some(*n)
        } else {
            None
        }),
        75_000
    );
    assert_eq!(ev.iter().filter(|e| **e == Event::FileDone).count(), 2);
    // Unchanged: nothing read, the sizes count as skipped.
    archiver::backup(&repo, backup_options(&src, "h"), &rec).unwrap();
    let ev = rec.events();
    assert!(
        !ev.iter()
            .any(|e| matches!(e, Event::Current(_) | Event::Read(_))),
        "{ev:?}"
    );
    assert_eq!(
        sum(&ev, |e| if let Event::Skipped(n) = e {
            Some(*n)
        } else {
            None
        }),
        75_000
    );
    assert_eq!(ev.iter().filter(|e| **e == Event::FileDone).count(), 2);

    let report = check_with(&repo, ReadData::All, &rec).unwrap();
    let ev = rec.events();
    let phases: Vec<&Event> = ev
        .iter()
        .filter(|e| matches!(e, Event::Phase(..)))
        .collect();
    let packs = report.packs_selected as u64;
    assert!(packs >= 1);
    assert_eq!(
        phases,
        [
            &Event::Phase("loading index (index objects)".into(), 0),
            &Event::Phase("checking snapshots (snapshots)".into(), 2),
            &Event::Phase("reading packs (packs)".into(), packs),
        ]
    );
    assert_eq!(
        ev.iter().filter(|e| **e == Event::FileDone).count() as u64,
        2 + packs
    );
    let read = sum(&ev, |e| {
        if let Event::Read(n) = e {
            Some(*n)
        } else {
            None
        }
    });
    assert_eq!(read, report.bytes_read);
}
