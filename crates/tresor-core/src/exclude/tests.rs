use super::*;

fn set(p: &[&str]) -> PatternSet {
    PatternSet::new(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
}

fn excluded(p: &[&str], path: &str) -> bool {
    set(p).matches(Path::new(path))
}

/// Go's `filepath.Match` cases (its `match_test.go`) for one path component: true, false, or
/// `None` for a malformed pattern.
#[test]
fn component_globs_match_as_go_filepath_match() {
    let cases: &[(&str, &str, Option<bool>)] = &[
        ("abc", "abc", Some(true)),
        ("*", "abc", Some(true)),
        ("*c", "abc", Some(true)),
        ("a*", "a", Some(true)),
        ("a*", "abc", Some(true)),
        ("a*b*c*d*e*", "axbxcxdxe", Some(true)),
        ("ab[c]", "abc", Some(true)),
        ("ab[b-d]", "abc", Some(true)),
        ("ab[e-g]", "abc", Some(false)),
        ("ab[^c]", "abc", Some(false)),
        ("ab[^b-d]", "abc", Some(false)),
        ("ab[^e-g]", "abc", Some(true)),
        ("a\\*b", "a*b", Some(true)),
        ("a\\*b", "ab", Some(false)),
        ("a?b", "a☺b", Some(true)),
        ("a[^a]b", "a☺b", Some(true)),
        ("a???b", "a☺b", Some(false)),
        ("a[^a][^a][^a]b", "a☺b", Some(false)),
        ("[a-ζ]*", "α", Some(true)),
        ("*[a-ζ]", "A", Some(false)),
        ("[\\]a]", "]", Some(true)),
        ("[\\-]", "-", Some(true)),
        ("[x\\-]", "x", Some(true)),
        ("[x\\-]", "-", Some(true)),
        ("[x\\-]", "z", Some(false)),
        ("[\\-x]", "a", Some(false)),
        ("*x", "xxx", Some(true)),
        ("*", "", Some(true)),
        ("?", "", Some(false)),
        ("[]a]", "]", None),
        ("[-]", "-", None),
        ("[x-]", "x", None),
        ("[-x]", "x", None),
        ("\\", "a", None),
        ("[a-b-c]", "a", None),
        ("[", "a", None),
        ("[^", "a", None),
        ("[^bc", "a", None),
        ("a[", "a", None),
        ("a[", "x", None),
    ];
    for (pattern, name, want) in cases {
        let p = pattern.as_bytes();
        let got = glob_is_valid(p).then(|| glob_match(p, name.as_bytes()));
        assert_eq!(got, *want, "{pattern:?} on {name:?}");
        assert_eq!(
            PatternSet::new(&[pattern.to_string()]).is_ok(),
            want.is_some(),
            "{pattern:?}"
        );
    }
}

/// The examples of restic's documentation ("Excluding Files").
#[test]
fn restic_documented_examples() {
    // "foo" matches /dir1/foo/dir2/file and /dir/foo, not /dir/foobar or barfoo.
    assert!(excluded(&["foo"], "/dir1/foo/dir2/file"));
    assert!(excluded(&["foo"], "/dir/foo"));
    assert!(!excluded(&["foo"], "/dir/foobar"));
    assert!(!excluded(&["foo"], "/barfoo"));
    // A trailing / is ignored, a leading / anchors.
    assert!(excluded(&["foo/"], "/dir/foo"));
    assert!(excluded(&["/bin"], "/bin/bash"));
    assert!(!excluded(&["/bin"], "/usr/bin/restic"));
    // Wildcards do not match over /.
    assert!(excluded(&["b*ash"], "/bin/bash"));
    assert!(!excluded(&["b*ash"], "/bin/ash"));
    // foo/**/bar
    for p in ["/dir1/foo/dir2/bar/file", "/foo/bar/file", "/tmp/foo/bar"] {
        assert!(excluded(&["foo/**/bar"], p), "{p}");
    }
    assert!(!excluded(&["foo/**/bar"], "/foo/baz"));
    // *.go, *.c
    assert!(excluded(&["*.go"], "/src/x/main.go"));
    assert!(excluded(&["*.go"], "/main.go/inside"));
    assert!(!excluded(&["*.go"], "/src/main.gox"));
}

#[test]
fn negation_and_order() {
    // The last matching pattern decides.
    assert!(!excluded(&["*.log", "!keep.log"], "/var/keep.log"));
    assert!(excluded(&["*.log", "!keep.log"], "/var/drop.log"));
    assert!(excluded(&["!keep.log", "*.log"], "/var/keep.log"));
    // A negation alone excludes nothing.
    assert!(!excluded(&["!x"], "/a/x"));
    // restic's documented selection: everything in $HOME but some directories.
    let p = &["/home/u/**/*", "!/home/u/Documents", "*~"];
    assert!(excluded(p, "/home/u/Music"));
    assert!(!excluded(p, "/home/u/Documents"));
    assert!(!excluded(p, "/home/u/Documents/a.txt"));
    assert!(excluded(p, "/home/u/Documents/a.txt~"));
    assert!(!excluded(p, "/home/u"));
}

#[test]
fn anchoring_cleaning_and_double_stars() {
    assert!(excluded(&["/home/*/cache"], "/home/bob/cache"));
    assert!(excluded(&["/home/*/cache"], "/home/bob/cache/x"));
    assert!(!excluded(&["/home/*/cache"], "/srv/home/bob/cache"));
    assert!(excluded(&["a/b"], "/x/a/b/c"));
    assert!(!excluded(&["a/b"], "/x/a/c/b"));
    assert!(excluded(&["//a//b//"], "/a/b"));
    assert!(excluded(&["/x/../a/./b"], "/a/b"));
    assert!(!excluded(&["/a"], "/ab"));
    assert!(excluded(&["/**/z"], "/q/r/z"));
    assert!(excluded(&["/**/z"], "/z"));
    assert!(excluded(&["a/**"], "/a/x"));
    assert!(excluded(&["**"], "/anything"));
    assert!(excluded(&["a/**/b/**/c"], "/a/1/2/b/c"));
    assert!(!excluded(&["a/**/b/**/c"], "/a/1/2/c/b"));
    // `*` matches every component, the root's empty one too.
    assert!(excluded(&["*"], "/a"));
    // Empty patterns are ignored; no pattern excludes nothing.
    assert!(!excluded(&[""], "/a"));
    assert!(!excluded(&[], "/a"));
    assert_eq!(clean("a/../../b"), "../b");
    assert_eq!(clean("/../a/"), "/a");
    assert_eq!(clean("./"), ".");
}

#[test]
fn non_utf8_names_match_bytewise() {
    use std::os::unix::ffi::OsStrExt;
    let s = set(&["a?b", "x*"]);
    let p = |b: &[u8]| std::path::PathBuf::from(std::ffi::OsStr::from_bytes(b));
    assert!(s.matches(&p(b"/d/a\xffb")));
    assert!(s.matches(&p(b"/d/x\xfe\xff")));
    assert!(!s.matches(&p(b"/d/a\xff\xfeb")));
}

#[test]
fn environment_expansion_as_go_os_expand() {
    let env = |n: &str| match n {
        "HOME" => "/home/bob".to_string(),
        "X_1" => "v".to_string(),
        "1" => "one".to_string(),
        _ => String::new(),
    };
    let cases = [
        ("$HOME/cache", "/home/bob/cache"),
        ("${HOME}/cache", "/home/bob/cache"),
        ("$X_1.tmp", "v.tmp"),
        ("a/$UNSET/b", "a//b"),
        ("$$lit", "$lit"),
        ("$$$$", "$$"),
        ("end$", "end$"),
        ("$/x", "$/x"),
        ("${}x", "x"),
        ("${HOME", "HOME"),
        ("$1x", "onex"),
        ("${1}", "one"),
        ("plain", "plain"),
        ("ü$HOME", "ü/home/bob"),
    ];
    for (input, want) in cases {
        assert_eq!(expand_env(input, env), want, "{input}");
    }
}

#[test]
fn exclude_files_expand_variables_and_skip_comments() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("excludes");
    std::fs::write(
        &f,
        "# comment\n\n  *.tmp  \n$$lit\n${TRESOR_EXCLUDE_TEST_UNSET_VAR}x\n",
    )
    .unwrap();
    assert_eq!(
        PatternSet::read_file(&f).unwrap(),
        vec!["*.tmp".to_string(), "$lit".to_string(), "x".to_string()]
    );
}
