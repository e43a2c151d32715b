#!/usr/bin/env bash
# Peak memory (max RSS) of `tresor prune` on a repository with about 2 million blobs.
# Issue 4 asks for < 300 MiB.
#
# The repository is synthesised through the library (crates/tresor-core/examples/synth_repo.rs):
# BLOBS tiny data blobs, one file each, 1000 files per directory, 4 MiB packs, and three
# snapshots over overlapping halves. Snapshot "a" is then forgotten, so a quarter of the blobs
# become unused, and prune runs three times:
#   1. --dry-run (plan only),
#   2. phase 1 (--max-unused 0%): condemn unused packs, repack every partly used one,
#      consolidate the index,
#   3. after one more snapshot of host "bench": phase 2, deleting the condemned packs.
#
# Usage: bench/prune-memory.sh [BLOBS]        (default 2000000)
# Environment: WORK (scratch directory, default /tmp/tresor-prune-bench; deleted first),
#              PROFILE (release or dev, default release), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
BLOBS=${1:-2000000}
PROFILE=${PROFILE:-release}
TARGET=${CARGO_TARGET_DIR:-target}
WORK=${WORK:-/tmp/tresor-prune-bench}
if [ "$PROFILE" = release ]; then flag=--release; dir=release; else flag=; dir=debug; fi
cargo build -q $flag -p tresor --bin tresor
cargo build -q $flag -p tresor-core --example synth_repo
BIN="$TARGET/$dir/tresor"
SYNTH="$TARGET/$dir/examples/synth_repo"

rm -rf "$WORK"
mkdir -p "$WORK"
export TRESOR_REPOSITORY="$WORK/repo" TRESOR_PASSWORD=bench
unset TRESOR_PASSWORD_FILE TRESOR_PASSWORD_COMMAND

# shellcheck source=bench/measure.sh
. bench/measure.sh

echo "synthesising $BLOBS blobs in $WORK/repo ..."
measure synth "$SYNTH" "$WORK/repo" bench "$BLOBS" 4
cat "$WORK/synth.out"
a=$(awk '/^snapshot a / {print $3}' "$WORK/synth.out")
rm "$WORK/repo/snapshots/$a"
echo "forgot snapshot a ($a); repository: $(du -sh "$WORK/repo" | cut -f1)"

measure prune-dry-run "$BIN" prune --dry-run
measure prune-phase-1 "$BIN" prune --max-unused 0%
mkdir -p "$WORK/src" && echo new >"$WORK/src/file"
"$BIN" backup -q --host bench "$WORK/src"
measure prune-phase-2 "$BIN" prune
sed -n '1,20p' "$WORK/prune-phase-1.out"
sed -n '1,20p' "$WORK/prune-phase-2.out"
measure check "$BIN" check
echo "repository after prune: $(du -sh "$WORK/repo" | cut -f1)"
