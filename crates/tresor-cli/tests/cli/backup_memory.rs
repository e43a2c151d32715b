//! A backup's peak memory: open packs are spooled to a file as they fill (`repo/packer/spool.rs`),
//! so two workers backing up 96 MiB of incompressible data into packs of the default size (16 MiB
//! when this was measured, 32 MiB now) stay well under what holding the packs took (two open packs, a finished one waiting for the uploader
//! and the one being written: about 92 MiB peak on a 100 MiB file before, 45 MiB after).

use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tresor_testkit::cli::Env;
use tresor_testkit::repo::noise;

/// Peak resident memory a backup of [`SOURCE_MIB`] may reach, KiB (64 MiB).
const MAX_RSS_KIB: i64 = 64 << 10;
/// The source: one incompressible file of this many MiB.
const SOURCE_MIB: usize = 96;

/// The peak resident memory of a running process, KiB (`VmHWM`; none once it has exited).
fn peak_kib(pid: u32) -> Option<i64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_backup_holds_no_whole_pack_in_memory() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("big"), noise(5, SOURCE_MIB << 20)).unwrap();
    let mut cmd = env.cmd();
    cmd.args(["backup", src.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Two workers whatever the machine (one on a single core): each adds its own buffers.
    // SAFETY: only an async-signal-safe system call between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut set);
            libc::CPU_SET(1, &mut set);
            libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut peak = 0;
    let status = loop {
        if let Some(k) = peak_kib(child.id()) {
            peak = peak.max(k);
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "backup still running");
        std::thread::sleep(Duration::from_millis(1));
    };
    assert!(status.success(), "{status:?}");
    assert!(peak > 8 << 10, "{peak} KiB: not sampled");
    assert!(peak < MAX_RSS_KIB, "peak RSS {} MiB", peak >> 10);
    let spooled: Vec<_> = std::fs::read_dir(env.repo.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".tmp-spool-"))
        .collect();
    assert!(spooled.is_empty(), "{spooled:?}");
}
