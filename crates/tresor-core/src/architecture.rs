//! The module dependency graph of this crate, built from its own source, and the rules it
//! keeps (`docs/architecture.md`, "Inside tresor-core"):
//!
//! 1. **No cycle at any level.** At every folder of the module tree (the crate root included),
//!    the modules in it — each taken together with everything below it — depend on each other
//!    without a cycle. A module's use of its own parent or children does not count; everything
//!    else does, tests and re-exports included (a path through a re-export counts for the module
//!    that defines the item).
//! 2. **Layers.** The repository layer (`repo`) and the local helpers (`fsmeta`, `exclude`,
//!    `waiting`, `time`, `metapolicy`) use nothing but `error` and the crate root's own items (`repo` also
//!    `time`); `error` uses nothing.
//! 3. **Operations stand apart.** An operation uses another one only where [`OPERATION_USES`]
//!    says so.
//!
//! A dependency is a path that names a module of this crate: `use` declarations (with their
//! `{…}` groups and `as` renames), and `crate::…`, `super::…` and `self::…` paths in code.
//! Comments, string and character literals are blanked out first, so a path in a doc comment or
//! a message is no dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A module path below the crate root (`[]` is the root).
type ModPath = Vec<String>;

/// Modules that use nothing of this crate but the listed ones (and the crate root's items).
const LOWER_LAYERS: &[(&str, &[&str])] = &[
    ("error", &[]),
    ("fsmeta", &["error"]),
    ("exclude", &["error"]),
    ("waiting", &[]),
    ("time", &[]),
    ("metapolicy", &["error"]),
    ("repo", &["error", "time"]),
];

/// The only uses of one operation by another: `forget` applies a retention policy to the
/// snapshots a filter selects; `edit` (tag, rewrite) deletes the snapshots it replaces by
/// `forget`'s one delete path; `overdue` takes its maximum age in `retention`'s duration;
/// `drill` restores its sample with the restorer and selects snapshots with `snapshots`' filter.
const OPERATION_USES: &[(&str, &[&str])] = &[
    ("forget", &["retention", "snapshots"]),
    ("edit", &["forget"]),
    ("overdue", &["retention"]),
    ("drill", &["restorer", "snapshots"]),
];

/// Top-level modules that are no operation: the lower layers, and this test.
fn is_operation(top: &str) -> bool {
    top != "architecture" && !LOWER_LAYERS.iter().any(|(m, _)| *m == top)
}

/// One source file: its module and its text with comments and literals blanked out.
struct Source {
    file: String,
    module: ModPath,
    text: String,
}

/// A dependency: the module whose file holds the path, the module it names, and where.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    from: ModPath,
    to: ModPath,
    /// `file:line: path`.
    at: String,
}

/// The module of a file path relative to `src/`: `lib.rs` → root, `a/mod.rs` and `a.rs` →
/// `a`, `a/b.rs` → `a::b`.
fn module_of(rel: &str) -> ModPath {
    let rel = rel.strip_suffix(".rs").unwrap_or(rel);
    let mut parts: Vec<String> = rel.split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
        parts.pop();
    }
    parts
}

/// Blank out comments, string literals and character literals (newlines kept, so line
/// numbers stay right).
fn blank(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = c.clone();
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    let wipe = |out: &mut Vec<char>, from: usize, to: usize| {
        for x in out.iter_mut().take(to.min(c.len())).skip(from) {
            if *x != '\n' {
                *x = ' ';
            }
        }
    };
    while i < c.len() {
        // A `b` or `br` prefix of a byte literal is no identifier before it.
        let byte_prefix = i > 0 && c[i - 1] == 'b' && (i < 2 || !ident(c[i - 2]));
        let prev_ident = i > 0 && ident(c[i - 1]) && !byte_prefix;
        if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            let end = (i..c.len()).find(|&j| c[j] == '\n').unwrap_or(c.len());
            wipe(&mut out, i, end);
            i = end;
        } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            let (mut depth, mut j) = (1, i + 2);
            while j < c.len() && depth > 0 {
                if c[j] == '/' && c.get(j + 1) == Some(&'*') {
                    (depth, j) = (depth + 1, j + 2);
                } else if c[j] == '*' && c.get(j + 1) == Some(&'/') {
                    (depth, j) = (depth - 1, j + 2);
                } else {
                    j += 1;
                }
            }
            wipe(&mut out, i, j);
            i = j;
        } else if c[i] == 'r' && !prev_ident && matches!(c.get(i + 1), Some('"' | '#')) {
            let hashes = c[i + 1..].iter().take_while(|&&x| x == '#').count();
            if c.get(i + 1 + hashes) != Some(&'"') {
                i += 1;
                continue;
            }
            let mut j = i + 2 + hashes;
            while j < c.len() && !(c[j] == '"' && c[j + 1..].iter().take(hashes).all(|&x| x == '#'))
            {
                j += 1;
            }
            let end = (j + 1 + hashes).min(c.len());
            wipe(&mut out, i, end);
            i = end;
        } else if c[i] == '"' {
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                j += if c[j] == '\\' { 2 } else { 1 };
            }
            wipe(&mut out, i, j + 1);
            i = j + 1;
        } else if c[i] == '\'' && !prev_ident {
            // A character literal (`'x'`, `'\n'`, `'\u{1F600}'`), or a lifetime (left alone).
            let end = if c.get(i + 1) == Some(&'\\') {
                (i + 3..c.len()).find(|&j| c[j] == '\'').map(|j| j + 1)
            } else if c.get(i + 2) == Some(&'\'') {
                Some(i + 3)
            } else {
                None
            };
            match end {
                Some(e) => {
                    wipe(&mut out, i, e);
                    i = e;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// A token of blanked source: an identifier, `::`, or one other character; with its line.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Path,
    Punct(char),
}

fn tokens(text: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = text.chars().collect();
    let (mut out, mut i, mut line) = (Vec::new(), 0, 1);
    while i < c.len() {
        if c[i] == '\n' {
            line += 1;
            i += 1;
        } else if c[i].is_whitespace() {
            i += 1;
        } else if c[i].is_alphabetic() || c[i] == '_' {
            let j = (i..c.len())
                .find(|&j| !(c[j].is_alphanumeric() || c[j] == '_'))
                .unwrap_or(c.len());
            out.push((Tok::Ident(c[i..j].iter().collect()), line));
            i = j;
        } else if c[i] == ':' && c.get(i + 1) == Some(&':') {
            out.push((Tok::Path, line));
            i += 2;
        } else {
            out.push((Tok::Punct(c[i]), line));
            i += 1;
        }
    }
    out
}

/// A path as written (`crate::a::B`), the module it was written in, and its line.
#[derive(Debug, Clone)]
struct Written {
    segs: Vec<String>,
    context: ModPath,
    line: usize,
}

/// What one file says: the paths it writes and the names its `use` declarations bind (per
/// module: the file's own, or an inline `mod name { … }` in it).
#[derive(Default)]
struct Parsed {
    paths: Vec<Written>,
    bindings: Vec<(ModPath, String, Written)>,
    inline_modules: Vec<ModPath>,
}

/// Expand one `use` tree starting at `toks[*i]` with `prefix` already read; pushes
/// `(binding, path)` pairs (binding `None` for a glob).
fn use_tree(
    toks: &[(Tok, usize)],
    i: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<(Option<String>, Vec<String>)>,
) {
    let mut segs = prefix;
    loop {
        match toks.get(*i).map(|t| &t.0) {
            Some(Tok::Punct('{')) => {
                *i += 1;
                while !matches!(toks.get(*i).map(|t| &t.0), Some(Tok::Punct('}')) | None) {
                    use_tree(toks, i, segs.clone(), out);
                    if matches!(toks.get(*i).map(|t| &t.0), Some(Tok::Punct(','))) {
                        *i += 1;
                    }
                }
                *i += 1;
                return;
            }
            Some(Tok::Punct('*')) => {
                *i += 1;
                out.push((None, segs));
                return;
            }
            Some(Tok::Ident(name)) => {
                segs.push(name.clone());
                *i += 1;
                if matches!(toks.get(*i).map(|t| &t.0), Some(Tok::Path)) {
                    *i += 1;
                    continue;
                }
                let mut binding = name.clone();
                if matches!(toks.get(*i).map(|t| &t.0), Some(Tok::Ident(a)) if a == "as") {
                    if let Some(Tok::Ident(alias)) = toks.get(*i + 1).map(|t| &t.0) {
                        binding = alias.clone();
                    }
                    *i += 2;
                }
                if segs.last().is_some_and(|s| s == "self") {
                    segs.pop();
                    if binding == "self" {
                        binding = segs.last().cloned().unwrap_or_default();
                    }
                }
                out.push((Some(binding), segs));
                return;
            }
            _ => return,
        }
    }
}

/// Read the `use` declarations, paths and inline modules of one file of module `module`.
fn parse(text: &str, module: &ModPath) -> Parsed {
    let toks = tokens(text);
    let mut p = Parsed::default();
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let current = |inline: &[(String, usize)]| {
        let mut m = module.clone();
        m.extend(inline.iter().map(|(n, _)| n.clone()));
        m
    };
    let mut i = 0;
    while i < toks.len() {
        let line = toks[i].1;
        match &toks[i].0 {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Tok::Ident(k) if k == "mod" => {
                if let (Some(Tok::Ident(name)), Some(Tok::Punct('{'))) =
                    (toks.get(i + 1).map(|t| &t.0), toks.get(i + 2).map(|t| &t.0))
                {
                    inline.push((name.clone(), depth + 1));
                    p.inline_modules.push(current(&inline));
                }
            }
            Tok::Ident(k) if k == "use" && (i == 0 || toks[i - 1].0 != Tok::Path) => {
                let context = current(&inline);
                let mut j = i + 1;
                if toks.get(j).map(|t| &t.0) == Some(&Tok::Path) {
                    // `use ::name`: another crate.
                    i = j;
                    continue;
                }
                let mut found = Vec::new();
                use_tree(&toks, &mut j, Vec::new(), &mut found);
                for (binding, segs) in found {
                    let w = Written {
                        segs,
                        context: context.clone(),
                        line,
                    };
                    if let Some(b) = binding {
                        p.bindings.push((context.clone(), b, w.clone()));
                    }
                    p.paths.push(w);
                }
                i = j;
                continue;
            }
            Tok::Ident(k)
                if matches!(k.as_str(), "crate" | "super" | "self")
                    && toks.get(i + 1).map(|t| &t.0) == Some(&Tok::Path)
                    && (i == 0 || toks[i - 1].0 != Tok::Path) =>
            {
                let mut segs = vec![k.clone()];
                let mut j = i + 1;
                while toks.get(j).map(|t| &t.0) == Some(&Tok::Path) {
                    match toks.get(j + 1).map(|t| &t.0) {
                        Some(Tok::Ident(s)) => segs.push(s.clone()),
                        _ => break,
                    }
                    j += 2;
                }
                p.paths.push(Written {
                    segs,
                    context: current(&inline),
                    line,
                });
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    p
}

/// The crate as a whole: its modules and the names bound in each.
struct Crate {
    modules: BTreeSet<ModPath>,
    bindings: BTreeMap<(ModPath, String), Written>,
}

impl Crate {
    /// The module a path names (the one that defines the item it ends in), or `None` for a
    /// path into another crate. Names bound by `use` are followed (at most 8 times).
    fn resolve(&self, w: &Written, hops: usize) -> Option<ModPath> {
        if hops > 8 {
            return None;
        }
        let mut segs = w.segs.iter().peekable();
        let mut cur: ModPath = match segs.peek()?.as_str() {
            "crate" => Vec::new(),
            "super" | "self" => w.context.clone(),
            first => {
                let mut child = w.context.clone();
                child.push(first.to_string());
                if self.modules.contains(&child) {
                    segs.next();
                    child
                } else if let Some(b) = self.bindings.get(&(w.context.clone(), first.to_string())) {
                    let target = self.resolve(b, hops + 1)?;
                    segs.next();
                    return self.descend(target, segs.cloned().collect(), hops);
                } else {
                    return None;
                }
            }
        };
        if segs.peek().is_some_and(|s| *s == "crate") {
            segs.next();
        }
        while let Some(s) = segs.peek() {
            match s.as_str() {
                "super" => {
                    cur.pop();
                }
                "self" => {}
                _ => break,
            }
            segs.next();
        }
        self.descend(cur, segs.cloned().collect(), hops)
    }

    /// Follow `rest` from module `cur`: into child modules, then through one bound name.
    fn descend(&self, mut cur: ModPath, rest: Vec<String>, hops: usize) -> Option<ModPath> {
        let mut rest = rest.into_iter();
        while let Some(s) = rest.next() {
            let mut child = cur.clone();
            child.push(s.clone());
            if self.modules.contains(&child) {
                cur = child;
                continue;
            }
            if let Some(b) = self.bindings.get(&(cur.clone(), s)) {
                let target = self.resolve(b, hops + 1)?;
                return self.descend(target, rest.collect(), hops + 1);
            }
            return Some(cur);
        }
        Some(cur)
    }
}

/// The dependencies between the modules of the files `(path relative to src/, text)`.
fn edges(files: &[(String, String)]) -> Vec<Edge> {
    let sources: Vec<Source> = files
        .iter()
        .map(|(f, t)| Source {
            file: f.clone(),
            module: module_of(f),
            text: blank(t),
        })
        .collect();
    let parsed: Vec<Parsed> = sources.iter().map(|s| parse(&s.text, &s.module)).collect();
    let mut krate = Crate {
        modules: sources.iter().map(|s| s.module.clone()).collect(),
        bindings: BTreeMap::new(),
    };
    for p in &parsed {
        krate.modules.extend(p.inline_modules.iter().cloned());
        for (m, name, w) in &p.bindings {
            krate.bindings.insert((m.clone(), name.clone()), w.clone());
        }
    }
    let mut out = BTreeSet::new();
    for (s, p) in sources.iter().zip(&parsed) {
        for w in &p.paths {
            if let Some(to) = krate.resolve(w, 0)
                && to != s.module
            {
                out.insert(Edge {
                    from: s.module.clone(),
                    to,
                    at: format!("{}:{}: {}", s.file, w.line, w.segs.join("::")),
                });
            }
        }
    }
    out.into_iter().collect()
}

fn name(m: &[String]) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

/// Rule 1: the cycles among sibling modules, one message each, naming the paths that make it.
fn cycles(edges: &[Edge]) -> Vec<String> {
    // Per folder: the edges between its children.
    let mut levels: BTreeMap<ModPath, Vec<(ModPath, ModPath, &Edge)>> = BTreeMap::new();
    for e in edges {
        let k = e.from.iter().zip(&e.to).take_while(|(a, b)| a == b).count();
        if k == e.from.len() || k == e.to.len() {
            continue; // parent and child
        }
        let parent = e.from[..k].to_vec();
        levels
            .entry(parent)
            .or_default()
            .push((e.from[..=k].to_vec(), e.to[..=k].to_vec(), e));
    }
    let mut out = Vec::new();
    for (parent, level) in levels {
        let mut graph: BTreeMap<&ModPath, BTreeSet<&ModPath>> = BTreeMap::new();
        for (a, b, _) in &level {
            graph.entry(a).or_default().insert(b);
        }
        for scc in strongly_connected(&graph) {
            let members: BTreeSet<&ModPath> = scc.iter().copied().collect();
            let mut why: Vec<String> = level
                .iter()
                .filter(|(a, b, _)| members.contains(a) && members.contains(b))
                .map(|(a, b, e)| format!("{} → {} ({})", name(a), name(b), e.at))
                .collect();
            why.sort();
            out.push(format!("cycle in {}: {}", name(&parent), why.join("; ")));
        }
    }
    out
}

/// The strongly connected components of more than one node (Tarjan's algorithm).
fn strongly_connected<'a>(
    graph: &BTreeMap<&'a ModPath, BTreeSet<&'a ModPath>>,
) -> Vec<Vec<&'a ModPath>> {
    struct State<'a> {
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        out: Vec<Vec<&'a ModPath>>,
    }
    fn visit<'a>(
        v: &'a ModPath,
        graph: &BTreeMap<&'a ModPath, BTreeSet<&'a ModPath>>,
        s: &mut State<'a>,
    ) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        for &w in graph.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(w, graph, s);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.stack.contains(&w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let at = s.stack.iter().rposition(|x| *x == v).expect("on the stack");
            let scc = s.stack.split_off(at);
            if scc.len() > 1 {
                s.out.push(scc);
            }
        }
    }
    let mut s = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for &v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(v, graph, &mut s);
        }
    }
    s.out
}

/// Rules 2 and 3: uses across layers, and of one operation by another, that are not allowed.
fn layer_violations(edges: &[Edge]) -> Vec<String> {
    let top = |m: &ModPath| m.first().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for e in edges {
        let (from, to) = (top(&e.from), top(&e.to));
        if from == to || e.from.is_empty() || e.to.is_empty() {
            continue;
        }
        let lower = LOWER_LAYERS.iter().find(|(m, _)| *m == from);
        let allowed = match lower {
            Some((_, may)) => may.contains(&to.as_str()),
            None if is_operation(&from) && is_operation(&to) => OPERATION_USES
                .iter()
                .any(|(m, may)| *m == from && may.contains(&to.as_str())),
            None => true,
        };
        if !allowed {
            out.push(format!(
                "{} uses {} ({}): not allowed by the layers",
                name(&e.from),
                name(&e.to),
                e.at
            ));
        }
    }
    out
}

/// Every `.rs` file below `dir`, as (path relative to `dir`, text), sorted.
fn read_tree(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("source folder is readable") {
            let p = entry.expect("directory entry").path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let rel = p.strip_prefix(dir).expect("below src").to_string_lossy();
                let text = std::fs::read_to_string(&p).expect("source is UTF-8");
                out.push((rel.replace('\\', "/"), text));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_module_graph_has_no_cycles_and_keeps_its_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = read_tree(&src);
    let edges = edges(&files);
    let mut problems = cycles(&edges);
    problems.extend(layer_violations(&edges));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The graph is real: the operations use the repository layer.
    let uses = |from: &str, to: &str| {
        edges.iter().any(|e| {
            e.from.first().is_some_and(|f| f == from) && e.to.first().is_some_and(|t| t == to)
        })
    };
    for op in [
        "archiver", "restorer", "check", "forget", "prune", "repair", "keys", "vfs",
    ] {
        assert!(uses(op, "repo"), "{op} does not use repo?");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(f, t)| (f.to_string(), t.to_string()))
            .collect()
    }

    fn pairs(edges: &[Edge]) -> Vec<(String, String)> {
        let set: BTreeSet<_> = edges.iter().map(|e| (name(&e.from), name(&e.to))).collect();
        set.into_iter().collect()
    }

    #[test]
    fn paths_in_use_trees_code_and_tests_are_dependencies_comments_and_strings_are_not() {
        let f = files(&[
            ("lib.rs", "pub mod a; pub mod b; pub mod c; pub mod d;"),
            (
                "a.rs",
                "use crate::{b::{self, X as Y}};\n\
                 // use crate::c::Z;\n\
                 /* crate::c::Z /* nested */ crate::c::Z */\n\
                 const S: &str = \"crate::c::Z\"; const R: &str = r#\"crate::c::\"Z\"#;\n\
                 const Q: char = '\"'; const E: char = '\\''; const B: u8 = b'{';\n\
                 fn f<'a>(x: &'a u8) { crate::d::g(); }\n\
                 #[cfg(test)] mod tests { use super::super::c::T; }",
            ),
            ("b.rs", ""),
            ("c.rs", ""),
            ("d.rs", ""),
        ]);
        assert_eq!(
            pairs(&edges(&f)),
            [("a", "b"), ("a", "c"), ("a", "d")].map(|(a, b)| (a.into(), b.into()))
        );
    }

    #[test]
    fn a_cycle_is_found_also_through_a_re_export() {
        let f = files(&[
            ("lib.rs", "pub mod repo; pub use repo::Repo;"),
            (
                "repo/mod.rs",
                "mod handle; mod records; pub use handle::Repo;",
            ),
            (
                "repo/handle.rs",
                "pub struct Repo; fn f() { super::records::load(); }",
            ),
            ("repo/records.rs", "use crate::Repo; pub fn load() {}"),
        ]);
        let e = edges(&f);
        assert_eq!(
            cycles(&e),
            [
                "cycle in repo: repo::handle → repo::records (repo/handle.rs:1: super::records::load); \
              repo::records → repo::handle (repo/records.rs:1: crate::Repo)"
            ]
        );
        // Parent and child may use each other.
        let f = files(&[
            ("lib.rs", "pub mod p;"),
            ("p/mod.rs", "mod c; pub struct T; fn f() { c::g(); }"),
            ("p/c.rs", "use super::T; pub fn g() {}"),
        ]);
        assert!(cycles(&edges(&f)).is_empty());
    }

    #[test]
    fn a_cycle_between_folders_counts_at_the_level_of_the_folders() {
        let f = files(&[
            ("lib.rs", "mod x; mod y;"),
            ("x/mod.rs", "mod deep;"),
            ("x/deep.rs", "use crate::y::Thing;"),
            ("y.rs", "pub struct Thing; fn f() { crate::x::deep::g(); }"),
        ]);
        let c = cycles(&edges(&f));
        assert_eq!(c.len(), 1);
        assert!(c[0].starts_with("cycle in crate: x → y (x/deep.rs:1: crate::y::Thing); y → x"));
    }

    #[test]
    fn the_lower_layers_use_no_operation() {
        let f = files(&[
            (
                "lib.rs",
                "pub mod repo; pub mod prune; pub mod check; pub mod error;",
            ),
            ("repo/mod.rs", "pub mod records;"),
            (
                "repo/records.rs",
                "use crate::error::Result; fn f() { crate::prune::too_deep(); }",
            ),
            ("prune.rs", "use crate::repo::records;"),
            ("check.rs", "use crate::prune::plan; use crate::repo;"),
            ("error.rs", ""),
        ]);
        assert_eq!(
            layer_violations(&edges(&f)),
            [
                "check uses prune (check.rs:1: crate::prune::plan): not allowed by the layers",
                "repo::records uses prune (repo/records.rs:1: crate::prune::too_deep): not \
                 allowed by the layers",
            ]
        );
    }
}
