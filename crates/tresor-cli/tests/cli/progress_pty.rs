//! The progress bar as a person sees it: `tresor backup` with its standard error on a
//! pseudo-terminal (POSIX `posix_openpt`), the screen parsed with `vt100` while it runs. The bar
//! must advance and its ETA fall. The source is 3 GiB of sparse files under /var/tmp (no disk
//! used; all zeros, so the repository stays small): reading and chunking them takes seconds,
//! and the assertions compare the first and last of at least three distinct samples, so they
//! hold whatever the machine's load.

use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tresor_testkit::prelude::Env;

const ROWS: u16 = 24;
const COLS: u16 = 100;

/// A pseudo-terminal of ROWS × COLS: (master, slave).
fn open_pty() -> (File, File) {
    // SAFETY: plain libc calls on file descriptors this function owns; checked for errors.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(
            master >= 0,
            "posix_openpt: {}",
            std::io::Error::last_os_error()
        );
        let master = OwnedFd::from_raw_fd(master);
        let m = std::os::fd::AsRawFd::as_raw_fd(&master);
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
        let path = std::ffi::CStr::from_ptr(name.as_ptr())
            .to_str()
            .unwrap()
            .to_string();
        let size = libc::winsize {
            ws_row: ROWS,
            ws_col: COLS,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        assert_eq!(libc::ioctl(m, libc::TIOCSWINSZ, &size), 0);
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&path)
            .unwrap();
        (File::from(master), slave)
    }
}

/// One reading of the bar's first line: `backup [m:ss] [###---]  12.34%  ETA m:ss`.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    percent: f64,
    eta: Option<u64>,
}

fn seconds(clock: &str) -> Option<u64> {
    let mut s = 0;
    for part in clock.split(':') {
        s = s * 60 + part.parse::<u64>().ok()?;
    }
    Some(s)
}

/// The bar's first line on `screen`, parsed.
fn sample(screen: &str) -> Option<Sample> {
    let line = screen.lines().find(|l| l.starts_with("backup ["))?;
    let (_, after_bar) = line.rsplit_once("] ")?;
    let mut words = after_bar.split_whitespace();
    let percent = words.next()?.strip_suffix('%')?.parse().ok()?;
    (words.next()? == "ETA").then_some(())?;
    Some(Sample {
        percent,
        eta: seconds(words.next()?),
    })
}

/// Sparse files of zeros, `count` × `size` bytes, in a new directory under /var/tmp.
fn sparse_source(count: usize, size: u64) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("tresor-pty-")
        .tempdir_in("/var/tmp")
        .unwrap();
    for i in 0..count {
        File::create(dir.path().join(format!("zeros{i}")))
            .unwrap()
            .set_len(size)
            .unwrap();
    }
    dir
}

/// Run a backup on the terminal; the distinct bar samples seen, in order, and the last screen.
fn samples_of_backup(env: &Env, flags: &[&str], src: &std::path::Path) -> (Vec<Sample>, String) {
    let (master, slave) = open_pty();
    let mut child = env
        .cmd()
        .env("TERM", "xterm")
        .env("TRESOR_PROGRESS_FPS", "20")
        .args(flags)
        .arg("backup")
        .arg(src)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let mut reader = master;
    let pump = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // Ends with EIO when the child, the last holder of the slave, exits.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut parser = vt100::Parser::new(ROWS.try_into().unwrap(), COLS.try_into().unwrap(), 0);
    let mut seen: Vec<Sample> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        assert!(
            Instant::now() < deadline,
            "backup on a terminal did not end"
        );
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(bytes) => parser.process(&bytes),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if let Some(s) = sample(&parser.screen().contents())
            && seen.last() != Some(&s)
        {
            seen.push(s);
        }
    }
    pump.join().unwrap();
    assert!(child.wait().unwrap().success());
    (seen, parser.screen().contents())
}

#[test]
fn the_bar_advances_and_its_eta_falls() {
    let env = Env::new();
    env.init();
    let src = sparse_source(6, 512 << 20);
    let (seen, last_screen) = samples_of_backup(&env, &[], src.path());
    let timed: Vec<&Sample> = seen.iter().filter(|s| s.eta.is_some()).collect();
    assert!(
        timed.len() >= 3,
        "fewer than 3 distinct samples with an ETA: {seen:?}"
    );
    let (first, last) = (timed[0], timed[timed.len() - 1]);
    assert!(last.percent > first.percent, "{seen:?}");
    assert!(last.eta < first.eta, "the ETA did not fall: {seen:?}");
    for w in seen.windows(2) {
        assert!(w[1].percent >= w[0].percent, "the bar went back: {seen:?}");
    }
    // The bar is cleared at the end, not left behind.
    assert_eq!(last_screen.trim(), "", "{last_screen}");
}

#[test]
fn quiet_draws_nothing_on_a_terminal() {
    let env = Env::new();
    env.init();
    let src = sparse_source(1, 256 << 20);
    let (seen, last_screen) = samples_of_backup(&env, &["--quiet"], src.path());
    assert_eq!(seen, []);
    assert_eq!(last_screen.trim(), "", "{last_screen}");
}
