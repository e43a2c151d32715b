//! Build script: the commit the binary is built from, for `tresor --version`
//! (`TRESOR_COMMIT`: `git rev-parse --short=12 HEAD`, or `unknown` outside a git checkout or
//! without git); and, on Linux with glibc, the binary's relative relocations packed
//! (`-z pack-relative-relocs`, DT_RELR) and, linking with lld, its everyday functions at the
//! front of its code (`symbols.order`).

use std::process::Command;

fn main() {
    pack_relative_relocations();
    order_symbols();
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=TRESOR_COMMIT={commit}");
    println!("cargo:rerun-if-changed=build.rs");
    // Rebuild when HEAD moves: HEAD itself, the branch it names, and packed refs. Only files
    // that exist (a missing one would rerun this script on every build).
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", &name])
            && std::path::Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

/// Link the binary with its relative relocations packed (DT_RELR, glibc 2.36 and GNU ld 2.38 or
/// lld): the 34,000 relocations of a position-independent tresor otherwise fill an 820 KB
/// `.rela.dyn` that the loader reads at every start — 1.2 MiB of the peak RSS of a one-file
/// backup (15.1 → 13.5 MiB measured; `tresor --version` 8.5 → 7.3 MiB). ld leaves it out by
/// itself when the C library cannot load it (no `GLIBC_ABI_DT_RELR`); an older ld warns and
/// ignores it. A binary linked with it needs glibc 2.36 or later where it runs: to build one
/// for older systems on a newer one, set `TRESOR_PACKED_RELOCS=0`.
fn pack_relative_relocations() {
    println!("cargo:rerun-if-env-changed=TRESOR_PACKED_RELOCS");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let wanted = var("TRESOR_PACKED_RELOCS") != "0";
    if wanted && var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Link the functions that everyday commands run at the front of the binary's code, in the order
/// of `symbols.order` (written by `scripts/symbol-order.sh`; lld's `--symbol-ordering-file`).
/// The kernel maps code in blocks of 64–128 KiB around each page a run touches: spread over the
/// 15 MB of code, the 1.7 MB a one-file unchanged backup runs mapped 7.2 MiB of it; packed
/// together, 2.0 MiB (peak RSS of that backup 13.2 → 7.4 MiB). Only with lld, Rust's own
/// linker on x86-64 Linux (`rust-lld`, the default since Rust 1.90), so not when a linker is
/// configured (`RUSTC_LINKER`, or `-C linker…`/`link-self-contained` in the flags); names the
/// file has and the binary lacks are ignored. `TRESOR_SYMBOL_ORDER=0` leaves the linker's order.
fn order_symbols() {
    println!("cargo:rerun-if-env-changed=TRESOR_SYMBOL_ORDER");
    println!("cargo:rerun-if-changed=symbols.order");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let file = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join("symbols.order");
    let rust_lld = var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && var("RUSTC_LINKER").is_empty()
        && !["linker", "link-self-contained"]
            .iter()
            .any(|flag| var("CARGO_ENCODED_RUSTFLAGS").contains(flag));
    if var("TRESOR_SYMBOL_ORDER") != "0" && rust_lld && file.is_file() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            file.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// The first line of `git ARGS` run in this crate's directory, if git ran and succeeded.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let line = text.lines().next()?.trim().to_string();
    (!line.is_empty()).then_some(line)
}
