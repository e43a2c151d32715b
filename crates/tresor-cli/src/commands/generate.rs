//! `tresor generate`: shell completions (clap_complete) and man pages (clap_mangen), made from
//! the same clap command tresor parses with ([`crate::help::command`]). Needs no repository.

use crate::args::GenerateArgs;
use anyhow::{Context as _, Result};
use clap_complete::Shell;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

/// Write every file `a` asks for; returns the exit code (0).
pub fn run(a: &GenerateArgs) -> Result<i32> {
    let shells = [
        (Shell::Bash, &a.bash_completion),
        (Shell::Zsh, &a.zsh_completion),
        (Shell::Fish, &a.fish_completion),
    ];
    for (shell, target) in shells {
        if let Some(target) = target {
            completion(shell, target)?;
        }
    }
    if let Some(dir) = &a.man {
        man_pages(dir)?;
    }
    Ok(crate::exit::OK)
}

/// Write the completion script of `shell` to `target` (`-`: standard output).
fn completion(shell: Shell, target: &Path) -> Result<()> {
    let mut cmd = crate::help::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "tresor", &mut script);
    if target == Path::new("-") {
        // Through print!, so a closed pipe ends as every command's output does (exit 141).
        print!("{}", String::from_utf8_lossy(&script));
        Ok(())
    } else {
        std::fs::write(target, &script).with_context(|| format!("cannot write {}", shown(target)))
    }
}

/// Write one man page per command and subcommand into `dir` (created if missing), named by the
/// command's words joined with `-` (`tresor-key-add.1`); no page for `help`. Every page's
/// `.TH` names its page and gives `tresor VERSION` as the source.
fn man_pages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", shown(dir)))?;
    let mut cmd = crate::help::command().disable_help_subcommand(true);
    cmd.build();
    let source = format!("tresor {}", crate::help::version());
    man_page(&cmd, dir, &source)
}

/// Write the page of `cmd` (built, so subcommands have their display names) and of each of
/// its visible subcommands into `dir`.
fn man_page(cmd: &clap::Command, dir: &Path, source: &str) -> Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_page(sub, dir, source)?;
    }
    let page = clap_mangen::Man::new(cmd.clone()).source(source);
    let path = dir.join(page.get_filename());
    let mut text = Vec::new();
    page.render(&mut text)?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", shown(&path)))
}

/// A path in a message, by the display rule (docs/cli.md, "Names in output").
fn shown(p: &Path) -> String {
    tresor_format::tree::display_bytes(p.as_os_str().as_bytes())
}
