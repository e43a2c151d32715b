//! Exclude and include patterns, with restic's semantics: a pattern is a glob (`*`, `?`,
//! `[..]`, `**`) matched against the absolute path; a pattern not starting with `/` matches at
//! any depth (as if prefixed with `**/`). A pattern that matches a directory covers everything
//! below it. Lines of an exclude file that are empty or start with `#` are ignored.

use crate::error::{CoreError, Result};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::path::Path;

/// A compiled set of patterns.
#[derive(Debug, Clone)]
pub struct PatternSet {
    set: GlobSet,
    patterns: Vec<String>,
}

impl PatternSet {
    /// Compile patterns.
    ///
    /// # Errors
    /// [`CoreError::Invalid`] naming the bad pattern.
    pub fn new(patterns: &[String]) -> Result<Self> {
        let mut b = GlobSetBuilder::new();
        for p in patterns {
            let full = if p.starts_with('/') {
                p.clone()
            } else {
                format!("**/{p}")
            };
            let g = GlobBuilder::new(&full)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| CoreError::Invalid(format!("pattern {p:?}: {e}")))?;
            b.add(g);
        }
        let set = b
            .build()
            .map_err(|e| CoreError::Invalid(format!("patterns: {e}")))?;
        Ok(PatternSet {
            set,
            patterns: patterns.to_vec(),
        })
    }

    /// Read patterns from a file (one per line; blank lines and `#` comments ignored).
    ///
    /// # Errors
    /// [`CoreError::Io`] when the file cannot be read.
    pub fn read_file(path: &Path) -> Result<Vec<String>> {
        let text = std::fs::read_to_string(path).map_err(|e| CoreError::io(path, e))?;
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect())
    }

    /// Whether no pattern was given.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns as given.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether `path` (absolute) itself matches a pattern.
    pub fn matches(&self, path: &Path) -> bool {
        !self.patterns.is_empty() && self.set.is_match(path)
    }

    /// Whether `path` or one of its ancestors matches a pattern.
    pub fn matches_or_ancestor(&self, path: &Path) -> bool {
        !self.patterns.is_empty() && path.ancestors().any(|p| self.set.is_match(p))
    }
}

/// Content of a `CACHEDIR.TAG` file must start with this (bford.info/cachedir).
pub const CACHEDIR_TAG_SIGNATURE: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restic_style_matching() {
        let s = PatternSet::new(&[
            "*.tmp".into(),
            "/home/*/cache".into(),
            "node_modules".into(),
            "a/**/z".into(),
        ])
        .unwrap();
        assert!(s.matches(Path::new("/x/y/file.tmp")));
        assert!(s.matches(Path::new("/file.tmp")));
        assert!(!s.matches(Path::new("/x/file.tmpx")));
        assert!(s.matches(Path::new("/home/bob/cache")));
        assert!(!s.matches(Path::new("/srv/home/bob/cache")));
        assert!(s.matches(Path::new("/p/node_modules")));
        assert!(s.matches(Path::new("/q/a/b/c/z")));
        assert!(s.matches_or_ancestor(Path::new("/p/node_modules/left-pad/index.js")));
        assert!(!s.matches_or_ancestor(Path::new("/p/src/index.js")));
        assert!(PatternSet::new(&["[".into()]).is_err());
    }
}
