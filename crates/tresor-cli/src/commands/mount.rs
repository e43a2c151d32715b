//! `tresor mount`: the FUSE adapter over [`tresor_core::vfs::Vfs`].
//!
//! Every kernel request becomes one call of the view; the view does the work. The mount is
//! read-only (`ro`, `nosuid`, `nodev`) and answers as long as the command runs. Ctrl-C or
//! SIGTERM unmounts it; while files in it are open that fails (busy) and the command says so
//! and keeps serving; a second Ctrl-C detaches it at once. An external `umount` /
//! `fusermount3 -u` ends the command too.

use crate::args::MountArgs;
use crate::context::Context;
use crate::exit;
use crate::progress::{Bar, Show};
use anyhow::{Context as _, Result, bail};
use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    LockOwner, MountOption, OpenAccMode, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory,
    ReplyEntry, ReplyOpen, ReplyXattr, Request, SessionACL,
};
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tresor_core::CoreError;
use tresor_core::snapshots::SnapshotFilter;
use tresor_core::vfs::{Attr, Vfs};
use tresor_format::tree::{NodeKind, Timestamp};

/// How long the kernel may cache entries and attributes: the view never changes.
const TTL: Duration = Duration::from_secs(3600);

/// Refuse mount points that cannot work or would hide something: missing, not a directory, a
/// stale mount left by a killed `tresor mount`, or the repository's own directory or one above
/// it (every read of the repository would go through the mount itself). Returns the mount
/// point resolved now: it is mounted and later unmounted by that path, so a symlink re-pointed
/// meanwhile cannot redirect the unmount.
fn check_mountpoint(ctx: &Context, dir: &Path) -> Result<PathBuf> {
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => bail!("{shown}: not a directory (mount on an empty directory)"),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTCONN.raw_os_error()) => bail!(
            "{shown}: a stale mount (left by a `tresor mount` that was killed?): run `umount {shown}` first"
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{shown}: no such directory (the mount point must exist)")
        }
        Err(e) => return Err(e).with_context(|| format!("{shown}: mount point")),
    }
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    let mnt = canonical(dir).with_context(|| format!("{shown}: mount point"))?;
    if let Some(repo) = ctx.local_path().as_deref().and_then(canonical)
        && (repo.starts_with(&mnt) || mnt.starts_with(&repo))
    {
        bail!(
            "{shown}: the repository {} is there: mount somewhere outside it",
            repo.display()
        );
    }
    if std::fs::read_dir(dir)?.next().is_some() {
        crate::render::say(format!(
            "warning: {shown} is not empty: its files are hidden while mounted"
        ));
    }
    Ok(mnt)
}

pub fn run(ctx: &Context, a: &MountArgs) -> Result<i32> {
    let target = check_mountpoint(ctx, &a.mountpoint)?;
    crate::diagnose::fuse_device(Path::new("/dev/fuse"))?;
    let (session, count) = mount(ctx, a, &target)?;
    let presses = Arc::new(AtomicUsize::new(0));
    let p = presses.clone();
    let _ = ctrlc::set_handler(move || {
        p.fetch_add(1, Ordering::Relaxed);
    });
    // Our mount's device: whatever is on top of `target` when asked to end must be this one,
    // or unmounting would remove something mounted over ours.
    let ours = rustix::fs::stat(&target)
        .with_context(|| format!("{}: mount point", a.mountpoint.display()))?
        .st_dev;
    let dir = a.mountpoint.display();
    if !ctx.quiet {
        crate::render::say(format!(
            "{count} snapshot(s) mounted at {dir} (read-only); Ctrl-C or `umount {dir}` to end"
        ));
    }
    serve(session, &target, &a.mountpoint, ours, &presses)?;
    Ok(exit::OK)
}

/// Mount the view of the snapshots the filter selects at `target`; returns the session and
/// how many snapshots it shows.
fn mount(ctx: &Context, a: &MountArgs, target: &Path) -> Result<(fuser::BackgroundSession, usize)> {
    let repo = ctx.open()?;
    repo.require_read("mount")?;
    let show = Show::bar_if(ctx.progress_enabled());
    let bar = Bar::new(show, "mount: loading snapshots");
    let loaded = repo.load_snapshots();
    bar.finish();
    let (mut list, skipped) = loaded?;
    for s in &skipped {
        crate::render::say(format!(
            "warning: snapshot {}: {} (not shown)",
            s.id.short(),
            s.error
        ));
    }
    let filter: SnapshotFilter = (&a.filter).into();
    list.retain(|(_, s)| filter.matches(s));
    let count = list.len();
    let owner = (
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw(),
    );
    let bar = Bar::new(show, "mount: loading the index");
    let vfs = repo
        .load_index()
        .and_then(|index| Vfs::new(repo, index, &list, owner));
    bar.finish();
    let vfs = vfs?;

    let mut cfg = Config::default();
    cfg.mount_options = vec![
        MountOption::RO,
        MountOption::NoSuid,
        MountOption::NoDev,
        MountOption::FSName("tresor".into()),
        MountOption::Subtype("tresor".into()),
        MountOption::DefaultPermissions,
    ];
    if a.allow_other {
        cfg.acl = SessionACL::All;
    }
    cfg.n_threads = Some(super::workers().max(2));
    let session = fuser::spawn_mount(Fs { vfs }, target, &cfg)
        .with_context(|| format!("{}: cannot mount", a.mountpoint.display()))?;
    Ok((session, count))
}

/// Serve until the mount is gone: unmounted from outside, or by us after a Ctrl-C (`presses`
/// counts them; the second detaches). A mount over ours (another device `ours`) is never
/// unmounted.
fn serve(
    session: fuser::BackgroundSession,
    target: &Path,
    shown: &Path,
    ours: u64,
    presses: &AtomicUsize,
) -> Result<()> {
    let dir = shown.display();
    let mut handled = 0;
    while !session.guard.is_finished() {
        let now = presses.load(Ordering::Relaxed);
        if now > handled {
            handled = now;
            let detach = now >= 2;
            let on_top = rustix::fs::stat(target).map(|st| st.st_dev);
            if on_top.is_ok_and(|d| d != ours) {
                crate::render::say(format!(
                    "warning: something else is mounted over {dir}: unmount that first \
                     (tresor only ever unmounts its own mount)"
                ));
                continue;
            }
            match unmount(target, detach) {
                // Detached: open files keep the connection; end now, which aborts it.
                Ok(()) if detach => {
                    end_without_unmounting(session);
                    return Ok(());
                }
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) => {
                    crate::render::say(format!(
                        "warning: {dir} is busy (files or directories in it are open): close them, \
                         or press Ctrl-C again to detach it now (what is open then fails)"
                    ));
                }
                Err(e) => return Err(e).with_context(|| format!("{dir}: cannot unmount")),
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Unmounted (by us or from outside): the session has ended.
    end_without_unmounting(session);
    Ok(())
}

/// Let go of a session whose file system is already unmounted (or detached). Dropping or
/// joining it would make `fuser` unmount the mount point once more — and that would unmount
/// whatever is mounted there below ours (a disk, a tmpfs, another `tresor mount`). The session
/// thread has ended (or ends when the kernel closes the connection); the process exits next.
fn end_without_unmounting(session: fuser::BackgroundSession) {
    std::mem::forget(session);
}

/// Unmount `dir` (lazily when `detach`): directly when allowed (root), else through the setuid
/// `fusermount3 -u` (or `fusermount`) as FUSE does for users.
fn unmount(dir: &Path, detach: bool) -> std::io::Result<()> {
    use rustix::mount::UnmountFlags;
    let flags = if detach {
        UnmountFlags::DETACH
    } else {
        UnmountFlags::empty()
    };
    match rustix::mount::unmount(dir, flags) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::PERM) => {
            let mut last = std::io::Error::other("neither fusermount3 nor fusermount found");
            for tool in ["fusermount3", "fusermount"] {
                let mut cmd = std::process::Command::new(tool);
                cmd.arg(if detach { "-uz" } else { "-u" }).arg(dir);
                match cmd.output() {
                    Ok(o) if o.status.success() => return Ok(()),
                    Ok(o) => {
                        let msg = String::from_utf8_lossy(&o.stderr);
                        let busy = msg.contains("busy");
                        last = if busy {
                            rustix::io::Errno::BUSY.into()
                        } else {
                            std::io::Error::other(format!("{tool}: {}", msg.trim()))
                        };
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(last)
        }
        Err(e) => Err(e.into()),
    }
}

struct Fs {
    vfs: Vfs,
}

fn system_time(t: Timestamp) -> SystemTime {
    if t.secs >= 0 {
        UNIX_EPOCH + Duration::new(t.secs as u64, t.nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(t.secs.unsigned_abs())
            + Duration::from_nanos(t.nanos.into())
    }
}

fn file_type(k: NodeKind) -> FileType {
    match k {
        NodeKind::File => FileType::RegularFile,
        NodeKind::Dir => FileType::Directory,
        NodeKind::Symlink => FileType::Symlink,
        NodeKind::Fifo => FileType::NamedPipe,
        NodeKind::Socket => FileType::Socket,
        NodeKind::CharDevice => FileType::CharDevice,
        NodeKind::BlockDevice => FileType::BlockDevice,
    }
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: system_time(a.atime),
        mtime: system_time(a.mtime),
        ctime: system_time(a.ctime),
        crtime: system_time(a.mtime),
        kind: file_type(a.kind),
        perm: (a.mode & 0o7777) as u16,
        nlink: u32::try_from(a.links).unwrap_or(u32::MAX),
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev as u32,
        blksize: 4096,
        flags: 0,
    }
}

/// The errno for an error of the view; damage is also reported on stderr (each message once),
/// naming what is damaged, since the reader only sees EIO.
fn errno(e: &CoreError) -> Errno {
    match e {
        CoreError::Invalid(_) => Errno::ENOENT,
        CoreError::PutOnly(_) => Errno::EACCES,
        other => {
            // The kernel retries a failed read several times: say each problem once.
            static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
            let msg = crate::exit::with_advice(other);
            let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
            if !said.contains(&msg) {
                crate::render::say(format!("error: {msg}"));
                said.push(msg);
            }
            Errno::EIO
        }
    }
}

impl Filesystem for Fs {
    /// Ask the kernel to enforce POSIX ACLs (`system.posix_acl_access` from getxattr) besides
    /// the mode bits, as the source file system did; without it, a file readable by its mode but
    /// denied to a user by an ACL would be readable through `--allow-other`.
    fn init(&mut self, _req: &Request, config: &mut fuser::KernelConfig) -> io::Result<()> {
        config
            .add_capabilities(fuser::InitFlags::FUSE_POSIX_ACL)
            .map_err(|_| {
                io::Error::other("the kernel's FUSE has no POSIX ACL support: refusing to mount")
            })
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.vfs.lookup(parent.0, name.as_bytes()) {
            Ok(Some(a)) => reply.entry(&TTL, &file_attr(&a), Generation(0)),
            Ok(None) => reply.error(Errno::ENOENT),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.vfs.getattr(ino.0) {
            Ok(a) => reply.attr(&TTL, &file_attr(&a)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.vfs.readlink(ino.0) {
            Ok(t) => reply.data(&t),
            Err(CoreError::Invalid(_)) => reply.error(Errno::EINVAL),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.acc_mode() != OpenAccMode::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        match self.vfs.getattr(ino.0) {
            Ok(a) if a.kind == NodeKind::Dir => reply.error(Errno::EISDIR),
            // Contents never change: the kernel may keep its page cache across opens.
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.vfs.read(ino.0, offset, size as usize) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.vfs.getattr(ino.0) {
            Ok(a) if a.kind == NodeKind::Dir => reply.opened(FileHandle(0), FopenFlags::empty()),
            Ok(_) => reply.error(Errno::ENOTDIR),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let entries = match self.vfs.readdir(ino.0) {
            Ok(e) => e,
            Err(e) => return reply.error(errno(&e)),
        };
        // `offset` is the position after the last entry already returned: ".", "..", then the
        // entries. ".." of any directory is given as itself; the kernel fills in the real parent.
        let dots = [
            (ino.0, FileType::Directory, &b"."[..]),
            (ino.0, FileType::Directory, b".."),
        ];
        let all = dots.into_iter().chain(
            entries
                .iter()
                .map(|e| (e.ino, file_type(e.kind), e.name.as_slice())),
        );
        for (i, (child, kind, name)) in all.enumerate().skip(offset as usize) {
            if reply.add(
                INodeNo(child),
                (i + 1) as u64,
                kind,
                OsStr::from_bytes(name),
            ) {
                break;
            }
        }
        reply.ok();
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let xattrs = match self.vfs.xattrs(ino.0) {
            Ok(x) => x,
            Err(e) => return reply.error(errno(&e)),
        };
        match xattrs.iter().find(|x| x.name == name.as_bytes()) {
            None => reply.error(Errno::NO_XATTR),
            Some(x) => reply_xattr(reply, &x.value, size),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let xattrs = match self.vfs.xattrs(ino.0) {
            Ok(x) => x,
            Err(e) => return reply.error(errno(&e)),
        };
        let mut names = Vec::new();
        for x in &xattrs {
            names.extend_from_slice(&x.name);
            names.push(0);
        }
        reply_xattr(reply, &names, size);
    }
}

/// Answer getxattr/listxattr: the length when asked with `size` 0, else the bytes if they fit
/// in `size`, else ERANGE.
fn reply_xattr(reply: ReplyXattr, data: &[u8], size: u32) {
    if size == 0 {
        reply.size(data.len() as u32);
    } else if data.len() > size as usize {
        reply.error(Errno::ERANGE);
    } else {
        reply.data(data);
    }
}
