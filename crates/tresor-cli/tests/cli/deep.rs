//! Trees deeper than PATH_MAX: 5,000 nested directories back up and restore.

use rustix::fs::{AtFlags, CWD, Mode, OFlags};
use std::os::fd::OwnedFd;
use tresor_testkit::prelude::*;

const DEPTH: usize = 5_000;

fn open_dir(at: &OwnedFd, name: &str) -> OwnedFd {
    rustix::fs::openat(
        at,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .unwrap()
}

#[test]
fn five_thousand_levels_deep() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir(&src).unwrap();
    // Build d/d/d/… with a file at the bottom, relative to directory fds (the full path is
    // 10,000+ bytes, far beyond PATH_MAX).
    let mut fd =
        rustix::fs::openat(CWD, &src, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
    for _ in 0..DEPTH {
        rustix::fs::mkdirat(&fd, "d", Mode::from_bits_truncate(0o755)).unwrap();
        fd = open_dir(&fd, "d");
    }
    let f = rustix::fs::openat(
        &fd,
        "bottom",
        OFlags::WRONLY | OFlags::CREATE,
        Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    rustix::io::write(&f, b"deep").unwrap();
    drop((f, fd));
    let s = env.backup_json(&[&src], &[], 0);
    assert_eq!(s["errors"], 0, "{s}");
    assert_eq!(s["dirs_new"].as_u64().unwrap() as usize, DEPTH + 1, "{s}");
    let t = env.path("t");
    env.ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    let mut fd = rustix::fs::openat(
        CWD,
        t.join(src.strip_prefix("/").unwrap()),
        OFlags::RDONLY | OFlags::DIRECTORY,
        Mode::empty(),
    )
    .unwrap();
    for _ in 0..DEPTH {
        fd = open_dir(&fd, "d");
    }
    let st = rustix::fs::statat(&fd, "bottom", AtFlags::empty()).unwrap();
    assert_eq!(st.st_size, 4);
    env.ok(&["check"]);
    // Clean up without PATH_MAX trouble.
    for root in [&src, &t] {
        let _ = std::process::Command::new("rm")
            .arg("-rf")
            .arg(root)
            .status();
    }
}
