//! `tresor`: the command-line interface, a thin layer over `tresor-core`.
//!
//! Each command parses its flags (`args`), opens the repository (`context`; storage from a
//! location only through `location`), calls core, and hands what it got back as a typed outcome
//! to `render`, which prints it as text or JSON (`commands/*` hold the steps). Exit codes are
//! mapped in one place (`exit`) and documented in `docs/cli.md`.

mod args;
mod cmdline;
mod commands;
mod context;
mod diagnose;
mod exit;
mod help;
mod location;
mod metrics;
mod notify;
mod output;
mod password;
mod profile;
mod progress;
mod render;
mod schedule;
// Appended (cost and request counting):
mod prices;
mod probes;
mod reqlog;

fn main() {
    let words: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if let Some(text) = help::topic(&words) {
        print!("{text}");
        return;
    }
    drop_empty_options();
    let (mut args, matches) = cmdline::parse();
    let chosen = profile::merge::apply(&mut args, &matches).unwrap_or_else(|e| {
        crate::render::say(format!("tresor: {}", exit::message(&e)));
        std::process::exit(exit::code(&e))
    });
    help::require_backup_source(&args);
    render::summary_file(args.global.summary_file.clone());
    tune_allocator(match args.command {
        args::Command::Serve(_) => Allocation::Server,
        args::Command::Restore(_) => Allocation::Restore,
        _ => Allocation::Client,
    });
    end_quietly_when_stdout_closes();
    // Deep trees are walked recursively: run on a thread with a large stack.
    let handle = std::thread::Builder::new()
        .name("tresor".into())
        .stack_size(512 << 20)
        .spawn(move || profile::dispatch(args, &matches, chosen));
    let code = match handle.map(|h| h.join()) {
        Ok(Ok(Ok(code))) => code,
        Ok(Ok(Err(e))) => {
            crate::render::say(format!("tresor: {}", exit::message(&e)));
            exit::code(&e)
        }
        _ => {
            eprintln!("tresor: internal error");
            exit::ERROR
        }
    };
    std::process::exit(code);
}

/// An option variable set but empty (`TRESOR_PASSWORD_FILE=`) means "not given", as in a
/// shell profile that clears it; clap would call it a missing value of the flag. (An empty
/// TRESOR_PASSWORD is a password and is not read through clap.)
fn drop_empty_options() {
    for (k, v) in std::env::vars_os() {
        if v.is_empty()
            && k.to_str()
                .is_some_and(|k| k.starts_with("TRESOR_") && k != "TRESOR_PASSWORD")
        {
            // SAFETY: no other thread exists yet.
            unsafe { std::env::remove_var(&k) };
        }
    }
}

/// How a command uses memory, for glibc's allocator ([`tune_allocator`]).
enum Allocation {
    /// Client commands: pack buffers (up to a pack, 32 MiB by default) come and go all the
    /// time. With glibc's dynamic mmap threshold, freed buffers raise the threshold and later
    /// ones are carved from the heap, which is never returned: peak memory creeps up. A fixed
    /// threshold of 1 MiB keeps large buffers in mmap (the packer recycles the ones it uses
    /// most).
    Client,
    /// `restore`: every blob and frame (up to about 1 MiB, format §7) is decoded into a fresh
    /// buffer by several threads at once. Mapped and unmapped each time (a 1 MiB threshold),
    /// each `munmap` takes the process's `mmap_lock` for writing and stalls the other threads'
    /// page faults (`perf sched timehist` of a tree restore: 74 ms in `rwsem_down_*` of
    /// `__vm_munmap`, `vm_mmap_pgoff` and page faults), and a heap trimmed at every free
    /// faults its pages in again. Below 4 MiB they come from the heap, which keeps up to 256
    /// MiB it no longer uses: the bench's 1 GiB file restores in 0.66 s instead of 0.78 s
    /// (system time 0.25–0.34 s instead of 0.55 s), peak RSS 31 MiB instead of 22 MiB.
    Restore,
    /// The server: every upload's body (a pack, up to the body limit) would be a fresh mapping
    /// whose pages are faulted in and zeroed again; from the heap they are reused instead, and
    /// the heap keeps what the busiest moment needed (not trimmed below 256 MiB).
    Server,
}

/// Tune glibc's allocator for the command (see [`Allocation`]).
fn tune_allocator(how: Allocation) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any other thread exists
    // (argument parsing starts none).
    unsafe {
        match how {
            Allocation::Server => {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
            }
            Allocation::Restore => {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
            }
            Allocation::Client => {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
            }
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = how;
}

/// `tresor snapshots | head -1`: once the reader is gone, printing fails with EPIPE and
/// `println!` panics. End quietly, as a program killed by SIGPIPE would (128 + 13). SIGPIPE
/// itself stays ignored, so a dropped SSH pipe during a backup is an error, not a kill.
/// Other failures to print (`> /dev/full`) end with one line and exit 1.
fn end_quietly_when_stdout_closes() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if let Some(why) = msg.strip_prefix("failed printing to stdout: ") {
            if why.contains("Broken pipe") {
                std::process::exit(exit::BROKEN_PIPE);
            }
            // A full disk or a closed terminal: one line, not a panic.
            eprintln!("tresor: cannot write to standard output: {why}");
            std::process::exit(exit::ERROR);
        }
        default_hook(info);
    }));
}
