//! `tresor mount` on a cold tier (moto, a real FUSE mount): directories list (tree packs are
//! hot), a file whose data pack is in DEEP_ARCHIVE and not thawed reads as EIO at once, and
//! the mount says once which file it is, that it is in cold storage and how to thaw it.

use super::Cold;
use crate::mount::{Mount, fuse_available};
use tresor_testkit::prelude::*;

#[test]
fn mount_reads_of_cold_data_fail_with_eio_and_say_how_to_thaw() {
    let _serial = exclusive(); // see tresor_testkit::serial
    if !fuse_available() {
        return;
    }
    let Some(c) = Cold::new() else {
        return;
    };
    let src = c.env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("frozen"), tresor_testkit::repo::data(4, 200_000)).unwrap();
    let snap = c.init_and_backup(&src);
    let mnt = c.env.path("mnt");
    let m = Mount::start_with(c.cmd(), &mnt, &[]);
    let dir = mnt
        .join("snapshots/latest")
        .join(src.strip_prefix("/").unwrap());
    let names: Vec<_> = (std::fs::read_dir(&dir).unwrap())
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["frozen"], "directories list from hot tree packs");
    assert_eq!(
        std::fs::metadata(dir.join("frozen")).unwrap().len(),
        200_000
    );
    let started = std::time::Instant::now();
    let err = std::fs::read(dir.join("frozen")).unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(rustix::io::Errno::IO.raw_os_error()),
        "{err}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the read waited {:?}",
        started.elapsed()
    );
    let (code, stderr) = m.interrupt();
    assert_eq!(code, Some(0), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one line: {stderr}");
    let e = errors[0];
    let inside = format!("{}/frozen", src.display());
    assert!(
        e.contains(&format!(
            "{inside}: its data is in cold storage (DEEP_ARCHIVE, pack "
        )),
        "{e}"
    );
    assert!(
        e.contains(", not thawed; thaw it with `tresor restore "),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "{}:{inside} --target DIR --thaw-tier bulk|standard|expedited`",
            &snap[..8]
        )),
        "{e}"
    );
}
