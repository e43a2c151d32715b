//! Hostile local trees during backup (issue 10 item 5): FIFOs where the walker might open a
//! file never block it. (The race of a file swapped for a FIFO between `lstat` and open is
//! tested deterministically in `tresor-core`'s `archiver::open` unit tests.)

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};
use tresor_testkit::prelude::*;

fn mkfifo(p: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_bits_truncate(0o640),
        0,
    )
    .unwrap();
}

/// Run tresor with `args`; fail (after killing it) if it does not end within 20 s.
fn run_bounded(env: &Env, args: &[&str]) -> Output {
    let mut child = env
        .cmd()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let o = child.wait_with_output().unwrap();
            panic!(
                "tresor {args:?} blocked for 20 s; stderr: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// `ls --json latest` as (path, type) pairs below `root`.
fn listing(env: &Env, root: &Path) -> Vec<(String, String)> {
    let o = env.ok(&[
        "ls",
        "--json",
        "--recursive",
        "latest",
        root.to_str().unwrap(),
    ]);
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| {
            let p = v["path"].as_str().unwrap().to_string();
            (p, v["type"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn a_fifo_in_the_source_is_stored_as_a_fifo_and_never_opened() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir(&src).unwrap();
    mkfifo(&src.join("pipe"));
    std::fs::write(src.join("file"), b"regular").unwrap();
    let o = run_bounded(&env, &["backup", "--json", src.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = src.display().to_string();
    assert_eq!(
        listing(&env, &src),
        vec![
            (s.clone(), "dir".to_string()),
            (format!("{s}/file"), "file".to_string()),
            (format!("{s}/pipe"), "fifo".to_string()),
        ]
    );
    let t = env.path("t");
    env.ok(&["restore", "latest", "--target", t.to_str().unwrap()]);
    let back = t.join(src.strip_prefix("/").unwrap());
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let m = std::fs::symlink_metadata(back.join("pipe")).unwrap();
    assert!(m.file_type().is_fifo());
    assert_eq!(m.permissions().mode() & 0o7777, 0o640);
    assert_eq!(std::fs::read(back.join("file")).unwrap(), b"regular");
}

/// `--exclude-caches` reads `CACHEDIR.TAG` files: one that is a FIFO must not block the backup
/// (it is no valid tag), and one that is a symlink is not followed (a symlink to a device, say
/// `/dev/watchdog`, must not be opened by a root backup).
#[test]
fn cachedir_tags_that_are_fifos_or_symlinks_are_not_opened() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    for d in ["fifo-tag", "real-cache", "link-tag"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
        std::fs::write(src.join(d).join("data"), d).unwrap();
    }
    mkfifo(&src.join("fifo-tag/CACHEDIR.TAG"));
    let tag = b"Signature: 8a477f597d28d172789f06886806bc55\n# a cache\n";
    std::fs::write(src.join("real-cache/CACHEDIR.TAG"), tag).unwrap();
    std::os::unix::fs::symlink(
        "../real-cache/CACHEDIR.TAG",
        src.join("link-tag/CACHEDIR.TAG"),
    )
    .unwrap();
    let o = run_bounded(
        &env,
        &[
            "backup",
            "--json",
            "--exclude-caches",
            src.to_str().unwrap(),
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = src.display().to_string();
    let entry = |p: &str, t: &str| (format!("{s}{p}"), t.to_string());
    assert_eq!(
        listing(&env, &src),
        vec![
            entry("", "dir"),
            entry("/fifo-tag", "dir"),
            entry("/fifo-tag/CACHEDIR.TAG", "fifo"),
            entry("/fifo-tag/data", "file"),
            entry("/link-tag", "dir"),
            entry("/link-tag/CACHEDIR.TAG", "symlink"),
            entry("/link-tag/data", "file"),
            // The real cache: the directory and its tag stay, as with restic.
            entry("/real-cache", "dir"),
            entry("/real-cache/CACHEDIR.TAG", "file"),
        ]
    );
}
