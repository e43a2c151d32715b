#!/usr/bin/env bash
# The unchanged rerun alone: tresor vs bupstash, wall time, CPU time (user + system) and peak RSS,
# tools alternating.
#
#   bench/rerun.sh TREE          first backup of TREE (not timed), then RUNS unchanged reruns each
#   RUNS=5 bench/rerun.sh TREE   repetitions (default 5; medians and min–max reported)
#   TRESOR_BIN=PATH              tresor binary (default target/release/tresor, or
#                                $CARGO_TARGET_DIR/release/tresor when set)
#   BUPSTASH_BIN=PATH            bupstash binary (default bench/work/tools/bupstash/bin/bupstash)
#   TOOLS="tresor"               only some tools
#   WORKDIR=DIR                  repositories and keys (default: a fresh temporary directory,
#                                deleted at the end)
#
# Both tools are driven as in bench/run.sh: tresor with an unlocked key file (`--key-file`),
# bupstash with its key file, send log and stat cache on. TREE is only read: it must not change
# while this runs (bench/run.sh modifies its datasets in place; use a copy while one runs).
set -euo pipefail

BENCH="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$BENCH")"
TREE="$(realpath "${1:?usage: bench/rerun.sh TREE}")"
RUNS="${RUNS:-5}"
TOOLS="${TOOLS:-tresor bupstash}"
TRESOR="${TRESOR_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/tresor}"
BUPSTASH="${BUPSTASH_BIN:-$BENCH/work/tools/bupstash/bin/bupstash}"
OWN_WORK=0
if [[ -z "${WORKDIR:-}" ]]; then WORKDIR="$(mktemp -d)"; OWN_WORK=1; fi
trap '[[ $OWN_WORK == 1 ]] && rm -rf "$WORKDIR"' EXIT

export TRESOR_PASSWORD=tresor-bench-password
export BUPSTASH_KEY="$WORKDIR/bupstash.key" BUPSTASH_SEND_LOG="$WORKDIR/bupstash.sendlog" \
       BUPSTASH_QUERY_CACHE="$WORKDIR/bupstash.querycache"
unset TRESOR_REPOSITORY TRESOR_PASSWORD_FILE TRESOR_PASSWORD_COMMAND TRESOR_KEY_FILE \
      BUPSTASH_REPOSITORY BUPSTASH_REPOSITORY_COMMAND BUPSTASH_KEY_COMMAND || true

backup_cmd() {  # TOOL STEP
    case $1 in
        tresor)   CMD=("$TRESOR" -r "$WORKDIR/tresor" --key-file "$WORKDIR/tresor.key" backup "$TREE") ;;
        bupstash) CMD=("$BUPSTASH" put -r "$WORKDIR/bupstash" "bench_step=$2" "$TREE") ;;
    esac
}

for tool in $TOOLS; do
    case $tool in
        tresor)   "$TRESOR" -r "$WORKDIR/tresor" init > /dev/null 2>&1
                  "$TRESOR" -r "$WORKDIR/tresor" key export --unlocked "$WORKDIR/tresor.key" > /dev/null 2>&1 ;;
        bupstash) "$BUPSTASH" new-key -o "$BUPSTASH_KEY" && "$BUPSTASH" init -r "$WORKDIR/bupstash" ;;
    esac
    backup_cmd "$tool" first
    "${CMD[@]}" > "$WORKDIR/$tool.first.log" 2>&1
done

find "$TREE" -type f -print0 | xargs -0 -r cat > /dev/null   # warm page cache
declare -A WALL RSS CPU
for ((rep = 1; rep <= RUNS; rep++)); do
    order="$TOOLS"
    (( rep % 2 == 0 )) && order="$(echo $TOOLS | tr ' ' '\n' | tac | tr '\n' ' ')"
    for tool in $order; do
        backup_cmd "$tool" unchanged
        /usr/bin/time -f '%e %M %U %S' -o "$WORKDIR/time" "${CMD[@]}" > "$WORKDIR/$tool.log" 2>&1
        read -r wall rss user sys < "$WORKDIR/time"
        cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
        WALL[$tool]+="$wall "; RSS[$tool]+="$rss "; CPU[$tool]+="$cpu "
        printf '%s run %d: %s s, peak RSS %s KiB, CPU %s s (load %s)\n' "$tool" "$rep" "$wall" "$rss" \
            "$cpu" "$(cut -d' ' -f1 /proc/loadavg)" >&2
    done
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; printf "%s (%s–%s)", m, a[1], a[NR]}'; }
echo "unchanged rerun of $TREE, $RUNS runs: median (min–max)"
for tool in $TOOLS; do
    printf '%-9s wall %s s   CPU %s s   peak RSS %s KiB\n' "$tool" "$(echo "${WALL[$tool]}" | median)" \
        "$(echo "${CPU[$tool]}" | median)" "$(echo "${RSS[$tool]}" | median)"
done
