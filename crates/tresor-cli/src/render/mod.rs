//! Typed outcomes and their two renderings.
//!
//! A command returns what it did as an outcome type (one per command, or per phase of a command
//! that reports before it goes on, such as prune's plan). Each outcome has one text renderer and
//! one JSON renderer ([`Outcome`]); the JSON forms are the contract documented in `docs/cli.md`
//! ("JSON output", a table per command) and checked by `tests/cli/json_contract.rs`. Renderers are
//! pure: they append lines to a [`Text`], which [`emit`] prints. Nothing here opens a
//! repository or decides an exit code.

pub mod backup;
pub mod cat;
pub mod check;
pub mod copy;
pub mod diff;
pub mod drill;
pub mod dump;
pub mod find;
pub mod forget;
pub mod init;
pub mod key;
pub mod ls;
pub mod overdue;
pub mod protect;
pub mod prune;
pub mod repair;
pub mod restore;
pub mod rewrite;
pub mod s3_policy;
pub mod serve;
pub mod snapshots;
pub mod spool;
pub mod stats;
pub mod table;
pub mod tag;
// Appended (cost and request counting):
pub mod cost;
pub mod requests;

use anyhow::Result;
use serde::Serialize;
use std::fmt;
use zeroize::Zeroizing;

/// How results are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// `--json`: the JSON renderer instead of the text renderer.
    pub json: bool,
    /// `--quiet`: no informational text (results, warnings and errors stay).
    pub quiet: bool,
}

/// The level of a diagnostic line on standard error: the word it starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `warning: …`: something is not as it should be; the command went on.
    Warning,
    /// `error: …`: damage or a failure of one item; the command went on.
    Error,
    /// `note: …`: worth knowing, not a problem.
    Note,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Note => "note",
        })
    }
}

/// Where a line goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output: results.
    Out,
    /// Standard error: diagnostics and progress.
    Err,
}

/// Rendered output: lines in order, each for one stream. Lines are wiped from memory when
/// dropped (a paper key passes through here).
#[derive(Debug)]
pub struct Text {
    quiet: bool,
    lines: Vec<(Stream, Zeroizing<String>)>,
}

impl Text {
    /// Empty output; `quiet` drops [`Text::info`] lines.
    pub fn new(quiet: bool) -> Text {
        Text {
            quiet,
            lines: Vec::new(),
        }
    }

    /// Whether informational lines are left out.
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// A result line on standard output (also with `--quiet`).
    pub fn out(&mut self, line: impl Into<String>) {
        self.lines.push((Stream::Out, guarded(line.into())));
    }

    /// Every line of `text` on standard output (a final line break adds no empty line).
    pub fn out_lines(&mut self, text: &str) {
        for l in text.lines() {
            self.out(l);
        }
    }

    /// An informational line on standard output, left out with `--quiet`.
    pub fn info(&mut self, line: impl Into<String>) {
        if !self.quiet {
            self.out(line);
        }
    }

    /// A diagnostic on standard error: `LEVEL: message`.
    pub fn diag(&mut self, level: Level, message: impl fmt::Display) {
        self.err(format!("{level}: {message}"));
    }

    /// A line on standard error as it is.
    pub fn err(&mut self, line: impl Into<String>) {
        self.lines.push((Stream::Err, guarded(line.into())));
    }

    /// One JSON document on one line.
    ///
    /// # Errors
    /// A value serde cannot serialise (none of the outcomes).
    pub fn json_line<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let doc = json_safe(serde_json::to_string(value)?);
        self.lines.push((Stream::Out, doc));
        Ok(())
    }

    /// One JSON document, indented over several lines.
    ///
    /// # Errors
    /// As [`Text::json_line`].
    pub fn json_pretty<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        // Its line breaks are its layout.
        let doc = json_safe(serde_json::to_string_pretty(value)?);
        self.lines.push((Stream::Out, doc));
        Ok(())
    }

    /// The lines, in order.
    pub fn lines(&self) -> impl Iterator<Item = (Stream, &str)> {
        self.lines.iter().map(|(s, l)| (*s, l.as_str()))
    }

    /// The lines of one stream, each ended by a line break.
    #[cfg(test)]
    pub fn stream(&self, which: Stream) -> String {
        self.lines()
            .filter(|(s, _)| *s == which)
            .map(|(_, l)| format!("{l}\n"))
            .collect()
    }

    /// Print the lines: standard output with `println!` (a reader gone ends the process, see
    /// `main`), standard error with `eprintln!`.
    pub fn print(&self) {
        for (s, l) in self.lines() {
            match s {
                Stream::Out => println!("{l}"),
                Stream::Err => eprintln!("{l}"),
            }
        }
    }
}

/// One line on standard error outside an outcome (errors that end the command, progress
/// notices, mount messages), through the same last guard as [`Text`]'s lines.
pub fn say(line: String) {
    eprintln!("{}", tresor_format::tree::display_line(&line));
}

/// The last guard of every line printed: no control character reaches the terminal, whatever
/// text a message embeds (docs/cli.md, "Names in output"). Lines without any keep their memory.
fn guarded(line: String) -> Zeroizing<String> {
    let line = Zeroizing::new(line);
    let shown = match tresor_format::tree::display_line(&line) {
        std::borrow::Cow::Owned(shown) => Some(shown),
        std::borrow::Cow::Borrowed(_) => None,
    };
    shown.map_or(line, Zeroizing::new)
}

/// A JSON document with the characters JSON leaves raw but a terminal acts on (C1 controls,
/// bidirectional and zero-width characters: only inside strings) as `\uXXXX` escapes; the
/// same value for a JSON reader.
fn json_safe(doc: String) -> Zeroizing<String> {
    let doc = Zeroizing::new(doc);
    if !doc.chars().any(tresor_format::tree::hides_text) {
        return doc;
    }
    let mut out = String::with_capacity(doc.len() + 16);
    for c in doc.chars() {
        if tresor_format::tree::hides_text(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Zeroizing::new(out)
}

/// What a command did, with its two renderings.
pub trait Outcome {
    /// The text for people (no `--json`).
    fn text(&self, t: &mut Text);

    /// The JSON form (`--json`): the documents on standard output that `docs/cli.md` lists
    /// for the command, and any diagnostics that go to standard error also in JSON mode.
    ///
    /// # Errors
    /// Serialisation failures (none expected).
    fn json(&self, t: &mut Text) -> Result<()>;
}

/// Diagnostics on standard error, the same with and without `--json` (e.g. a snapshot the
/// storage hides, a snapshot left in place under Object Lock).
#[derive(Debug, Default)]
pub struct Diagnostics(pub Vec<(Level, String)>);

impl Outcome for Diagnostics {
    fn text(&self, t: &mut Text) {
        for (level, message) in &self.0 {
            t.diag(*level, message);
        }
    }

    fn json(&self, t: &mut Text) -> Result<()> {
        self.text(t);
        Ok(())
    }
}

/// Render an outcome as `mode` says.
///
/// # Errors
/// As [`Outcome::json`].
pub fn render(o: &(impl Outcome + ?Sized), mode: Mode) -> Result<Text> {
    let mut t = Text::new(mode.quiet);
    if mode.json {
        o.json(&mut t)?;
    } else {
        o.text(&mut t);
    }
    Ok(t)
}

/// Render an outcome and print it.
///
/// # Errors
/// As [`Outcome::json`].
pub fn emit(o: &(impl Outcome + ?Sized), mode: Mode) -> Result<()> {
    render(o, mode)?.print();
    write_summary(o)
}

/// The file `--summary-file` names, set once by `main`.
static SUMMARY_FILE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Remember `--summary-file FILE`: every [`emit`] then also writes its JSON there (the last
/// one stays: the command's final result).
pub fn summary_file(path: Option<std::path::PathBuf>) {
    if let Some(p) = path {
        let _ = SUMMARY_FILE.set(p);
    }
}

/// Write `o`'s JSON to the summary file, if there is one (created mode 600, replaced).
fn write_summary(o: &(impl Outcome + ?Sized)) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let Some(path) = SUMMARY_FILE.get() else {
        return Ok(());
    };
    let json = render(
        o,
        Mode {
            json: true,
            quiet: true,
        },
    )?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    for (s, l) in json.lines() {
        if s == Stream::Out {
            writeln!(f, "{l}")?;
        }
    }
    Ok(())
}

/// `serialize_with` for durations: seconds as a floating-point number.
pub fn seconds<S: serde::Serializer>(
    d: &std::time::Duration,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Text someone else chose (host names, paths, times of a signer): quoted, control and
/// non-ASCII bytes escaped, so it cannot move the cursor or fake another line.
pub fn quoted(s: &str) -> String {
    tresor_format::tree::escape_name(s.as_bytes())
}

/// Text someone else chose, shown by the display rule (docs/cli.md, "Names in output"):
/// control and hiding characters and backslashes escaped, the rest as it is.
pub fn escape_controls(s: &str) -> String {
    tresor_format::tree::display_bytes(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Demo;
    impl Outcome for Demo {
        fn text(&self, t: &mut Text) {
            t.out("result");
            t.info("chatter");
            t.diag(Level::Warning, "careful");
        }
        fn json(&self, t: &mut Text) -> Result<()> {
            t.diag(Level::Note, "also in JSON");
            t.json_line(&serde_json::json!({"a": 1}))
        }
    }

    #[test]
    fn text_json_and_quiet() {
        let text = render(
            &Demo,
            Mode {
                json: false,
                quiet: false,
            },
        )
        .unwrap();
        assert_eq!(text.stream(Stream::Out), "result\nchatter\n");
        assert_eq!(text.stream(Stream::Err), "warning: careful\n");
        let quiet = render(
            &Demo,
            Mode {
                json: false,
                quiet: true,
            },
        )
        .unwrap();
        assert_eq!(quiet.stream(Stream::Out), "result\n");
        assert_eq!(quiet.stream(Stream::Err), "warning: careful\n");
        let json = render(
            &Demo,
            Mode {
                json: true,
                quiet: false,
            },
        )
        .unwrap();
        assert_eq!(json.stream(Stream::Out), "{\"a\":1}\n");
        assert_eq!(json.stream(Stream::Err), "note: also in JSON\n");
    }

    #[test]
    fn escapes() {
        assert_eq!(escape_controls("a\nb\u{1b}[2J\\"), "a\\nb\\x1b[2J\\\\");
        let mut t = Text::new(false);
        t.out("name\u{1b}]0;x\u{7}\u{202e}");
        t.err("warning: a\nb");
        assert_eq!(t.stream(Stream::Out), "name\\x1b]0;x\\x07\\u{202e}\n");
        assert_eq!(t.stream(Stream::Err), "warning: a\\nb\n");
        assert_eq!(quoted("h\nx"), tresor_format::tree::escape_name(b"h\nx"));
    }
}
