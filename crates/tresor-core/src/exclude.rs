//! Exclude and include patterns, with restic's semantics (restic `doc/040_backup.rst`,
//! "Excluding Files"; checked against restic 0.14 by `tresor-cli/tests/cli/exclude_vs_restic.rs`):
//!
//! * A pattern is matched against the absolute path of an entry, one path component against one
//!   pattern component. Components use Go's `filepath.Match` syntax: `*` (any run of bytes but
//!   `/`, also empty), `?` (one character), `[abc]`, `[a-z]`, `[^a-z]` (a class; `^` negates),
//!   `\` escapes the next character. `**` as a whole component matches any number of
//!   components, none included.
//! * A pattern starting with `/` is anchored at the root: it matches when its components match
//!   the first components of the path (`/bin` matches `/bin/bash`, not `/usr/bin`). Any other
//!   pattern matches a run of consecutive components anywhere in the path (`foo` matches
//!   `/a/foo` and `/a/foo/b`, not `/a/foobar`). So a pattern matching a directory covers
//!   everything below it, and the walker never looks below an excluded directory.
//! * A pattern is cleaned first like a path: a trailing `/` is ignored (it does **not** restrict
//!   the pattern to directories: restic documents "A trailing / is ignored"), `//` is one `/`,
//!   `.` and `..` are resolved lexically.
//! * A pattern starting with `!` is a negation: a path that an earlier pattern excluded is
//!   included again when it matches it (the last matching pattern decides). As in restic (and
//!   gitignore), nothing below an excluded directory can be included again, since the directory
//!   is never listed.
//! * Empty patterns are ignored. Exclude files ([`PatternSet::read_file`]): blank lines and lines
//!   starting with `#` are ignored, lines are trimmed, and environment variables are expanded as
//!   Go's `os.ExpandEnv` does (`$NAME`, `${NAME}`; an unset variable is empty; `$$` is a `$`).
//!   Patterns given on the command line are taken as they are.
//!
//! Matching needs only the path: the walker decides before it looks at an entry at all.

pub mod files_from;

use crate::error::{CoreError, Result};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// One component of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Compared byte for byte (no `\`, `[`, `]`, `*` or `?` in it).
    Literal(Vec<u8>),
    /// A `filepath.Match` pattern for one component (checked to be well-formed).
    Glob(Vec<u8>),
    /// `**`: any number of components.
    AnyDepth,
}

/// A compiled pattern.
#[derive(Debug, Clone)]
struct Pattern {
    /// `!pattern`: includes again what earlier patterns excluded.
    negated: bool,
    /// Components; an anchored pattern starts with an empty literal (the root).
    parts: Vec<Part>,
}

/// A compiled set of patterns.
#[derive(Debug, Clone)]
pub struct PatternSet {
    compiled: Vec<Pattern>,
    patterns: Vec<String>,
    /// `--iexclude` patterns (lower-cased), matched against the lower-cased path as a set of
    /// their own: a path is excluded when either set excludes it (restic's rule).
    folded: Vec<Pattern>,
}

impl PatternSet {
    /// Compile patterns.
    ///
    /// # Errors
    /// [`CoreError::Invalid`] naming a malformed pattern (an unclosed `[`, a `\` at the end, an
    /// empty or reversed class range).
    pub fn new(patterns: &[String]) -> Result<Self> {
        let mut compiled = Vec::new();
        for p in patterns.iter().filter(|p| !p.is_empty()) {
            compiled.push(compile(p)?);
        }
        Ok(PatternSet {
            compiled,
            patterns: patterns.to_vec(),
            folded: Vec::new(),
        })
    }

    /// Add case-insensitive patterns (`--iexclude`, `--iexclude-file`): restic lower-cases
    /// them and the path (Unicode lower case; a path that is not UTF-8: its ASCII letters).
    ///
    /// # Errors
    /// As [`PatternSet::new`].
    pub fn with_insensitive(mut self, patterns: &[String]) -> Result<Self> {
        for p in patterns.iter().filter(|p| !p.is_empty()) {
            self.folded.push(compile(&p.to_lowercase())?);
            self.patterns.push(p.clone());
        }
        Ok(self)
    }

    /// Read patterns from a file: one per line, trimmed; blank lines and `#` comments ignored;
    /// environment variables expanded (see the module documentation).
    ///
    /// # Errors
    /// [`CoreError::Io`] when the file cannot be read; [`CoreError::Invalid`] naming the file
    /// and the line (`FILE:LINE`, from 1) for the first line that is not UTF-8 (patterns are
    /// text; a name that is not UTF-8 is matched with `?` or `*`).
    pub fn read_file(path: &Path) -> Result<Vec<String>> {
        let data = std::fs::read(path).map_err(|e| CoreError::io(path, e))?;
        let mut out = Vec::new();
        for (i, line) in data.split(|&b| b == b'\n').enumerate() {
            let Ok(l) = std::str::from_utf8(line) else {
                return Err(CoreError::Invalid(format!(
                    "{}:{}: exclude patterns must be UTF-8 text; match a name that is not UTF-8 with ? or *",
                    tresor_format::tree::display_bytes(path.as_os_str().as_bytes()),
                    i + 1
                )));
            };
            let l = l.trim();
            if !l.is_empty() && !l.starts_with('#') {
                out.push(expand_env(l, |name| {
                    std::env::var(name).unwrap_or_default()
                }));
            }
        }
        Ok(out)
    }

    /// Whether no pattern was given.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns as given.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether `path` (absolute) is excluded: the last pattern that matches it is not a
    /// negation. Since a pattern that matches a directory matches everything below it, this
    /// also says whether an ancestor is excluded (negations aside).
    pub fn matches(&self, path: &Path) -> bool {
        let bytes = path.as_os_str().as_bytes();
        if !self.folded.is_empty() {
            let lower = match std::str::from_utf8(bytes) {
                Ok(s) => s.to_lowercase().into_bytes(),
                Err(_) => bytes.to_ascii_lowercase(),
            };
            if set_matches(&self.folded, &lower) {
                return true;
            }
        }
        set_matches(&self.compiled, bytes)
    }

    /// Whether `path` or one of its ancestors matches a pattern.
    pub fn matches_or_ancestor(&self, path: &Path) -> bool {
        !self.is_empty() && path.ancestors().any(|p| self.matches(p))
    }
}

/// Whether the last pattern of `set` that matches `path` is not a negation.
fn set_matches(set: &[Pattern], path: &[u8]) -> bool {
    if set.is_empty() {
        return false;
    }
    let comps: Vec<&[u8]> = path.split(|b| *b == b'/').collect();
    let mut excluded = false;
    for p in set {
        if p.negated {
            excluded = excluded && !match_parts(&p.parts, &comps);
        } else {
            excluded = excluded || match_parts(&p.parts, &comps);
        }
    }
    excluded
}

/// Compile one non-empty pattern.
fn compile(pattern: &str) -> Result<Pattern> {
    let (negated, body) = match pattern.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let mut parts = Vec::new();
    for c in clean(body).split('/') {
        let c = c.as_bytes();
        parts.push(if c == b"**" {
            Part::AnyDepth
        } else if c.iter().any(|b| b"\\[]*?".contains(b)) {
            if !glob_is_valid(c) {
                return Err(CoreError::Invalid(format!(
                    "pattern {pattern:?}: malformed (an unclosed [, a \\ at the end, or a bad range)"
                )));
            }
            Part::Glob(c.to_vec())
        } else {
            Part::Literal(c.to_vec())
        });
    }
    Ok(Pattern { negated, parts })
}

/// A path cleaned lexically as Go's `filepath.Clean`: no empty components, no `.`, `..`
/// resolved where it can be, no trailing `/`; `/` for the root and `.` for nothing.
fn clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." if out.last().is_some_and(|l| *l != "..") => {
                out.pop();
            }
            ".." if rooted => {}
            c => out.push(c),
        }
    }
    match (rooted, out.is_empty()) {
        (true, _) => format!("/{}", out.join("/")),
        (false, true) => ".".to_string(),
        (false, false) => out.join("/"),
    }
}

/// Whether the components of a pattern match the components of a path (`["", "home", …]` for
/// `/home/…`): an anchored pattern from the first component, any other at any position; `**`
/// stands for zero or more components (tried from none up).
fn match_parts(parts: &[Part], strs: &[&[u8]]) -> bool {
    if let Some(pos) = parts.iter().position(|p| *p == Part::AnyDepth) {
        let max = (strs.len() + 1).saturating_sub(parts.len());
        if strs.len() + 1 < parts.len() {
            return false;
        }
        return (0..=max).any(|k| {
            let mut expanded = parts[..pos].to_vec();
            expanded.extend(std::iter::repeat_n(Part::Glob(b"*".to_vec()), k));
            expanded.extend_from_slice(&parts[pos + 1..]);
            match_parts(&expanded, strs)
        });
    }
    if parts.is_empty() {
        return true;
    }
    if parts.len() > strs.len() {
        return false;
    }
    let anchored = parts[0] == Part::Literal(Vec::new());
    let max_offset = if anchored {
        0
    } else {
        strs.len() - parts.len()
    };
    (0..=max_offset).rev().any(|off| {
        parts.iter().zip(&strs[off..]).all(|(p, s)| match p {
            Part::Literal(l) => l == s,
            Part::Glob(g) => glob_match(g, s),
            Part::AnyDepth => unreachable!("expanded above"),
        })
    })
}

/// The next character of `s`: its code point and length; an invalid byte is U+FFFD of length
/// one (as Go's `utf8.DecodeRune`).
fn next_char(s: &[u8]) -> (u32, usize) {
    let head = &s[..s.len().min(4)];
    let valid = match std::str::from_utf8(head) {
        Ok(v) => v,
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default(),
    };
    match valid.chars().next() {
        Some(c) => (c as u32, c.len_utf8()),
        None => (0xFFFD, 1),
    }
}

/// Split off the next chunk of a glob: leading `*`s (whether there were any), then everything up
/// to the next `*` outside a class (Go's `scanChunk`).
fn scan_chunk(pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let stars = pattern.iter().take_while(|b| **b == b'*').count();
    let pattern = &pattern[stars..];
    let (mut i, mut in_class) = (0, false);
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_class = true,
            b']' => in_class = false,
            b'*' if !in_class => break,
            _ => {}
        }
        i += 1;
    }
    (stars > 0, &pattern[..i], &pattern[i..])
}

/// One character of a class, with `\` escaping: (code point, rest). `None`: malformed.
fn class_char(chunk: &[u8]) -> Option<(u32, &[u8])> {
    let chunk = match chunk.first()? {
        b'-' | b']' => return None,
        b'\\' => &chunk[1..],
        _ => chunk,
    };
    if chunk.is_empty() {
        return None;
    }
    // Patterns are UTF-8 (Rust strings): no invalid character to refuse here.
    let (c, n) = next_char(chunk);
    let rest = &chunk[n..];
    (!rest.is_empty()).then_some((c, rest))
}

/// Match a class at the start of `chunk` (after its `[`) against character `c`: (matched, rest
/// of the chunk after the `]`). `None`: malformed.
fn match_class(chunk: &[u8], c: Option<u32>) -> Option<(bool, &[u8])> {
    let (negated, mut chunk) = match chunk.first() {
        Some(b'^') => (true, &chunk[1..]),
        _ => (false, chunk),
    };
    let (mut matched, mut ranges) = (false, 0);
    loop {
        if chunk.first() == Some(&b']') && ranges > 0 {
            return Some((matched != negated, &chunk[1..]));
        }
        let (lo, rest) = class_char(chunk)?;
        chunk = rest;
        let mut hi = lo;
        if chunk.first() == Some(&b'-') {
            (hi, chunk) = class_char(&chunk[1..])?;
        }
        matched |= c.is_some_and(|c| lo <= c && c <= hi);
        ranges += 1;
    }
}

/// Match `chunk` (no `*` outside classes) at the start of `s` (Go's `matchChunk`): the rest of
/// `s` when it matches. The outer `None`: the chunk is malformed (checked whether `s` matches
/// or not).
fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> Option<Option<&'a [u8]>> {
    let mut failed = false;
    while let Some(&b) = chunk.first() {
        failed |= s.is_empty();
        match b {
            b'[' => {
                let c = (!failed).then(|| next_char(s));
                if let Some((_, n)) = c {
                    s = &s[n..];
                }
                let (ok, rest) = match_class(&chunk[1..], c.map(|(c, _)| c))?;
                failed |= !ok;
                chunk = rest;
            }
            b'?' => {
                if !failed {
                    s = &s[next_char(s).1..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                let lit = match b {
                    b'\\' => *chunk.get(1)?,
                    _ => b,
                };
                chunk = &chunk[if b == b'\\' { 2 } else { 1 }..];
                if !failed {
                    failed = s[0] != lit;
                    s = &s[1..];
                }
            }
        }
    }
    Some((!failed).then_some(s))
}

/// Whether the glob `pattern` matches the whole component `name` (Go's `filepath.Match`, on
/// bytes; `pattern` is well-formed).
fn glob_match(mut pattern: &[u8], mut name: &[u8]) -> bool {
    'chunks: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            return true;
        }
        if let Some(Some(t)) = match_chunk(chunk, name)
            && (t.is_empty() || !pattern.is_empty())
        {
            name = t;
            continue;
        }
        if star {
            for i in 0..name.len() {
                if let Some(Some(t)) = match_chunk(chunk, &name[i + 1..]) {
                    if pattern.is_empty() && !t.is_empty() {
                        continue;
                    }
                    name = t;
                    continue 'chunks;
                }
            }
        }
        return false;
    }
    name.is_empty()
}

/// Whether a one-component glob is well-formed: every chunk parses (Go checks this before it
/// reports a mismatch).
fn glob_is_valid(mut pattern: &[u8]) -> bool {
    while !pattern.is_empty() {
        let (_, chunk, rest) = scan_chunk(pattern);
        if match_chunk(chunk, b"").is_none() {
            return false;
        }
        pattern = rest;
    }
    true
}

/// Expand environment variables as Go's `os.Expand` does, with `$$` giving `$` (restic's
/// exclude files): `$NAME` (letters, digits, `_`), `${NAME}`, `$` and one of `*#$@!?-0…9`; a
/// `$` followed by nothing of that is kept; a bad `${` is dropped.
pub fn expand_env(s: &str, lookup: impl Fn(&str) -> String) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let (mut i, mut j) = (0, 0);
    while j < b.len() {
        if b[j] == b'$' && j + 1 < b.len() {
            out.push_str(&s[i..j]);
            let (name, width) = shell_name(&s[j + 1..]);
            match (name, width) {
                ("", 0) => out.push('$'),
                ("", _) => {}
                ("$", _) => out.push('$'),
                (n, _) => out.push_str(&lookup(n)),
            }
            j += width;
            i = j + 1;
        }
        j += 1;
    }
    out.push_str(&s[i.min(s.len())..]);
    out
}

/// The variable name after a `$` and the bytes it takes (Go's `getShellName`).
fn shell_name(s: &str) -> (&str, usize) {
    let b = s.as_bytes();
    let special = |c: u8| b"*#$@!?-0123456789".contains(&c);
    if b[0] == b'{' {
        if b.len() > 2 && special(b[1]) && b[2] == b'}' {
            return (&s[1..2], 3);
        }
        return match b.iter().position(|c| *c == b'}') {
            Some(1) => ("", 2),
            Some(end) => (&s[1..end], end + 1),
            None => ("", 1),
        };
    }
    if special(b[0]) {
        return (&s[..1], 1);
    }
    let n = b
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    (&s[..n], n)
}

/// Content of a `CACHEDIR.TAG` file must start with this (bford.info/cachedir).
pub const CACHEDIR_TAG_SIGNATURE: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55";

/// Whether `tag` (an open `CACHEDIR.TAG`) starts with [`CACHEDIR_TAG_SIGNATURE`]; reads at most
/// the signature's 43 bytes. A read error counts as no.
pub fn is_cachedir_tag(tag: &mut impl std::io::Read) -> bool {
    let mut head = [0u8; CACHEDIR_TAG_SIGNATURE.len()];
    tag.read_exact(&mut head).is_ok() && head == CACHEDIR_TAG_SIGNATURE
}

#[cfg(test)]
mod tests;
