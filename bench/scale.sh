#!/usr/bin/env bash
# Memory per host bounded by its own data, not by the repository (issue 19, floor 5).
#
# A synthetic repository of BLOBS tiny data blobs written by another host ("bench", through
# crates/tresor-core/examples/synth_repo.rs, 4 MiB packs), then a small host ("small") backs
# up SRC into it twice (first backup, unchanged rerun), and the same two backups run in an
# empty repository for comparison. Both repositories are opened with an unlocked key file
# (no KDF in the figures) and a cache directory of their own. Then `check` and
# `prune --dry-run` on the large repository, and a restore of the small host's snapshot from
# it (reported, no floor). Every step under /usr/bin/time -v: peak RSS (MiB)
# and wall time (s).
#
# Floors (issue 19): the small host's backups peak at <= 150 MiB in the large repository, its
# unchanged rerun takes <= 2x the same rerun in the empty repository; check and prune
# <= 1 GiB each.
#
# Usage: bench/scale.sh [BLOBS]        (default 20000000)
# Environment: WORK (scratch directory, default /tmp/tresor-scale-bench), SRC (default
#              /usr/share/doc), RUNS (reruns measured, median reported; default 3),
#              REUSE=1 (keep WORK/big if it holds a repository of BLOBS blobs), TRESOR_BIN,
#              SYNTH_BIN (prebuilt binaries; otherwise built in release), SKIP_CHECK=1.
set -euo pipefail
cd "$(dirname "$0")/.."
BLOBS=${1:-20000000}
WORK=${WORK:-/tmp/tresor-scale-bench}
SRC=${SRC:-/usr/share/doc}
RUNS=${RUNS:-3}
TARGET=${CARGO_TARGET_DIR:-target}
if [ -z "${TRESOR_BIN:-}" ] || [ -z "${SYNTH_BIN:-}" ]; then
    cargo build -q --release --locked -p tresor --bin tresor
    cargo build -q --release --locked -p tresor-core --example synth_repo
fi
BIN=${TRESOR_BIN:-$TARGET/release/tresor}
SYNTH=${SYNTH_BIN:-$TARGET/release/examples/synth_repo}
unset TRESOR_PASSWORD TRESOR_PASSWORD_FILE TRESOR_PASSWORD_COMMAND TRESOR_KEY_FILE TRESOR_REPOSITORY

# shellcheck source=bench/measure.sh
. bench/measure.sh

mkdir -p "$WORK"
: >"$WORK/results"
if [ "${REUSE:-}" = 1 ] && [ -f "$WORK/big.blobs" ] && [ "$(cat "$WORK/big.blobs")" = "$BLOBS" ]; then
    echo "reusing $WORK/big ($BLOBS blobs)"
else
    rm -rf "$WORK/big" "$WORK/big.blobs"
    echo "synthesising $BLOBS blobs in $WORK/big ..."
    measure synth "$SYNTH" "$WORK/big" bench "$BLOBS" 4
    echo "$BLOBS" >"$WORK/big.blobs"
fi
rm -rf "$WORK/empty" "$WORK/cache-big" "$WORK/cache-empty" "$WORK"/*.key
TRESOR_PASSWORD=bench "$BIN" -r "$WORK/big" key export --unlocked "$WORK/big.key" >/dev/null
TRESOR_PASSWORD=bench "$BIN" -r "$WORK/empty" init >/dev/null
TRESOR_PASSWORD=bench "$BIN" -r "$WORK/empty" key export --unlocked "$WORK/empty.key" >/dev/null
echo "repository: $(du -sh "$WORK/big" | cut -f1); source $SRC: $(du -sh "$SRC" | cut -f1)"

for repo in big empty; do
    run=("$BIN" -r "$WORK/$repo" --key-file "$WORK/$repo.key" --cache-dir "$WORK/cache-$repo")
    measure "$repo-first-backup" "${run[@]}" backup -q --host small "$SRC"
    for i in $(seq "$RUNS"); do
        measure "$repo-rerun-$i" "${run[@]}" backup -q --host small "$SRC"
    done
done

median() { # median of the wall times (column $2) of labels matching $1
    grep -E "^$1 " "$WORK/results" | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
max_rss() { grep -E "^$1 " "$WORK/results" | awk '{print $2}' | sort -n | tail -1; }
big=$(median 'big-rerun-[0-9]+')
empty=$(median 'empty-rerun-[0-9]+')
echo
printf 'first backup in the large repository: %.1f MiB (floor 150)\n' "$(max_rss big-first-backup)"
printf 'unchanged rerun: %.1f MiB (floor 150); median %s s vs %s s in an empty repository: %.2fx (floor 2x)\n' \
    "$(max_rss 'big-rerun-[0-9]+')" "$big" "$empty" "$(echo "$big / $empty" | bc -l)"

if [ "${SKIP_CHECK:-}" != 1 ]; then
    run=("$BIN" -r "$WORK/big" --key-file "$WORK/big.key" --cache-dir "$WORK/cache-big")
    measure big-check "${run[@]}" check
    measure big-prune-dry-run "${run[@]}" prune --dry-run
    rm -rf "$WORK/restored"
    measure big-restore "${run[@]}" restore latest --host small --target "$WORK/restored"
    rm -rf "$WORK/restored"
fi
