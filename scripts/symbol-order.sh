#!/usr/bin/env bash
# Writes crates/tresor-cli/symbols.order: the functions of the tresor binary that everyday
# commands run, in the order they should sit at the front of its code, for the linker
# (lld's --symbol-ordering-file, passed by crates/tresor-cli/build.rs).
#
#   scripts/symbol-order.sh            (needs valgrind and python3; takes about a minute)
#
# Why: the kernel maps a binary's code in blocks of 64–128 KiB around each page a run touches
# (fault-around, large page-cache folios). Spread over 15 MB of code, the 1.7 MB a one-file
# unchanged backup runs made it map 7.2 MiB; packed together at the front, about 2 MiB.
#
# How: a release build runs each command below under callgrind (valgrind), which lists every
# function that ran. Commands come in priority order — the unchanged reruns first (their code
# then lies together at the very front), then a first backup, a restore and the other everyday
# commands — and each adds the functions none before it ran. Names are the linker's (mangled);
# they stay valid while the code changes (they carry no hash of the code, and the release
# profile's single code unit per crate leaves no `.llvm.` suffixes), and names that no longer
# exist are ignored, so a stale file costs only compactness. Rerun after large changes. Only
# the release profile's names of tresor's own functions match (cargo's symbol hashes include
# the profile); the standard library's and C code's match in every build.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
OUT="$ROOT/crates/tresor-cli/symbols.order"
command -v valgrind >/dev/null || { echo "symbol-order.sh: needs valgrind (apt-get install valgrind)" >&2; exit 1; }

cargo build --release --locked -p tresor
T="$(realpath "${CARGO_TARGET_DIR:-$ROOT/target}/release/tresor")"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export HOME="$WORK/home" XDG_CACHE_HOME="$WORK/cache" XDG_CONFIG_HOME="$WORK/config"
# Profiles go to logs/: a file made in $WORK would change the backed-up paths' parent folder,
# and the reruns would store new trees (and write the tree cache anew) instead of none.
mkdir -p "$HOME" "$WORK/tree/a/b" "$WORK/file" "$WORK/new" "$WORK/logs"
cd "$WORK"

# The data: one 32 MiB file (the bench's single-file case), a small tree, a new folder.
head -c $((32 << 20)) /dev/urandom > file/big
for i in $(seq 1 200); do head -c $((i * 97)) /dev/urandom > "tree/a/f$i"; done
for i in $(seq 1 50); do printf 'text %d\n' "$i" > "tree/a/b/t$i"; done
ln -s f1 tree/a/link
cp -r tree/a new/a

# A repository and an unlocked key file (no Argon2id under valgrind), the first backups native.
TRESOR_PASSWORD=order "$T" -r repo init >/dev/null
TRESOR_PASSWORD=order "$T" -r repo key export --unlocked key >/dev/null
R=(-r repo --key-file key)
"$T" "${R[@]}" backup file/big >/dev/null
"$T" "${R[@]}" backup tree >/dev/null
FIRST_TREE="$("$T" "${R[@]}" snapshots --json | python3 -c 'import json, sys; print(json.load(sys.stdin)[-1]["id"])')"

n=0
profile() {
    n=$((n + 1))
    # valgrind's own temporary files go to logs/ too (in /tmp they change an ancestor).
    TMPDIR="$WORK/logs" valgrind --tool=callgrind --vgdb=no --demangle=no \
        --callgrind-out-file="$WORK/logs/cg.$n" \
        "$T" "${R[@]}" "$@" >/dev/null 2>"$WORK/logs/vg.$n" || {
        echo "symbol-order.sh: tresor $* failed under valgrind:" >&2
        tail -5 "$WORK/logs/vg.$n" >&2
        exit 1
    }
}
profile backup file/big                 # unchanged rerun, one file
profile backup tree                     # unchanged rerun, a tree
echo changed >> tree/a/f7
profile backup tree                     # rerun, one file changed
profile backup new                      # a first backup
profile restore latest --target out     # a restore
profile snapshots
profile ls latest
profile diff "$FIRST_TREE" latest
profile check
profile forget --keep-last 2 --prune

python3 - "$T" "$OUT" "$WORK" "$n" <<'EOF'
import re, subprocess, sys
binary, out, work, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
# Functions the binary defines (the linker's names), with their sizes in bytes.
size = {}
for line in subprocess.run(["nm", "-S", binary], capture_output=True, text=True, check=True).stdout.splitlines():
    parts = line.split()
    if len(parts) == 4 and parts[2] in "tTwW":
        size[parts[3]] = int(parts[1], 16)
    elif len(parts) == 3 and parts[1] in "tTwW":  # assembly without a .size: 0 bytes here
        size.setdefault(parts[2], 0)
# Code the first run takes natively but not under valgrind, after the first run's functions:
# the variants a CPU with AVX-512 and SHA extensions picks (valgrind's CPU has neither).
native = sorted(n for n in size if re.search(r"blake3.*avx512|x86_sha", n))
order, seen = [], set()
def add(sym):
    if sym in size and sym not in seen:
        seen.add(sym)
        order.append(sym)
for k in range(1, runs + 1):
    count, total = len(order), sum(size[s] for s in order)
    names, obj, exe = {}, {}, None
    for line in open(f"{work}/logs/cg.{k}", errors="replace"):
        m = re.match(r"^(c?ob|c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if not m:
            continue
        kind, ident, name = m.groups()
        table = obj if kind.endswith("ob") else names
        if name:
            table[ident] = name
        if kind == "ob":
            exe = obj[ident]
        elif kind == "fn" and exe == binary:
            add(re.sub(r"'\d+$", "", names[ident]))  # without callgrind's recursion mark
    if k == 1:
        for sym in native:
            add(sym)
    print(f"run {k}: +{len(order) - count} functions, +{sum(size[s] for s in order) - total} bytes")
with open(out, "w") as f:
    f.write("\n".join(order) + "\n")
print(f"symbol-order.sh: {len(order)} functions, {sum(size[s] for s in order)} bytes, in {out}")
EOF
