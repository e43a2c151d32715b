//! Human-readable renderings of core results.

pub mod prune;
