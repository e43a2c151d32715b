#!/usr/bin/env bash
# tresor vs bupstash vs restic: backup, incremental rerun, restore, memory and repository size.
#
#   bench/run.sh                 full run: ~1 GiB / ~60k-file tree and a 1 GiB mixed file, RUNS=3
#   QUICK=1 bench/run.sh         ~100 MiB datasets, for a smoke run
#   RUNS=5 bench/run.sh          repetitions per timed step (median reported)
#   TOOLS="tresor" bench/run.sh  only some tools (tresor bupstash restic; missing peers' floors show "–")
#   DATASETS="tree" bench/run.sh only some datasets (tree, mixed)
#   KEEP=1 bench/run.sh          leave the restored trees under bench/work/run-*/ at the end
#   TRESOR_KEYS=password bench/run.sh  tresor opens with its password instead of an unlocked key file
#   SETTLE=0 bench/run.sh        do not wait before restores after recent deletions (see below;
#                                default 360 s, 0 with QUICK=1)
#
# Datasets are built once under bench/work/data-{full,quick}/ and reused. Repositories, restore
# targets and logs live under bench/work/run-{full,quick}/ and are recreated on each run. Results:
# stdout, bench/work/results.md (and a copy in bench/work/results-{full,quick}.md), raw numbers in
# bench/work/raw-{full,quick}.tsv. See bench/README.md.
set -euo pipefail

BENCH="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$BENCH")"
WORK="$BENCH/work"
HELPER="$BENCH/helper.py"
RUNS="${RUNS:-3}"
QUICK="${QUICK:-0}"
TOOLS="${TOOLS:-tresor bupstash restic}"
BUPSTASH_VERSION="${BUPSTASH_VERSION:-^0.12}"
DATASETS="${DATASETS:-tree mixed}"
TIME=/usr/bin/time
PASSWORD="tresor-bench-password"
# How tresor opens its repository: "file" (default), an unlocked key file (`tresor key export
# --unlocked`, format §4.4) as bupstash's key file; "password", the password (Argon2id 32 MiB × 4
# at every command: ~0.1 s and ~32 MiB of peak RSS more per step).
TRESOR_KEYS="${TRESOR_KEYS:-file}"

if [[ "$QUICK" == 1 ]]; then
    MODE=quick
    TREE_BYTES=$((100 * 1024 * 1024)); TREE_FILES=6000; SAMPLE=10
    MIXED_BYTES=$((100 * 1024 * 1024))
else
    MODE=full
    TREE_BYTES=$((1024 * 1024 * 1024)); TREE_FILES=60000; SAMPLE=1
    MIXED_BYTES=$((1024 * 1024 * 1024))
fi
DATA="$WORK/data-$MODE"
RUN="$WORK/run-$MODE"
RAW="$WORK/raw-$MODE.tsv"
META="$WORK/meta-$MODE.tsv"
# Source directories for the tree, in this order, each walked in byte order (see helper.py select).
TREE_ROOTS=(/usr/share /usr/include /usr/lib/gcc /usr/lib/python3.11 /usr/lib/postgresql
            /usr/lib/git-core /usr/lib/systemd /usr/lib/llvm-14 /usr/lib/python3
            /usr/lib/node_modules /usr/lib/x86_64-linux-gnu /usr/lib /usr/libexec /usr/bin)

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---- prerequisites -----------------------------------------------------------------------------
need_apt() {  # need_apt COMMAND PACKAGE
    if ! command -v "$1" >/dev/null 2>&1 && [[ ! -x "$1" ]]; then
        log "installing Debian package $2"
        if [[ $(id -u) == 0 ]]; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
        else
            sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
        fi
    fi
}
need_apt /usr/bin/time time
need_apt openssl openssl
need_apt python3 python3
[[ " $TOOLS " == *" restic "* ]] && need_apt restic restic
mkdir -p "$WORK/bin" "$DATA"
# bupstash: `cargo install` into bench/work/tools/bupstash (its build directory is deleted after),
# linked against Debian's libsodium. BUPSTASH_BIN=PATH uses an existing binary.
BUPSTASH="${BUPSTASH_BIN:-$WORK/tools/bupstash/bin/bupstash}"
if [[ " $TOOLS " == *" bupstash "* && ! -x "$BUPSTASH" ]]; then
    need_apt pkg-config pkg-config
    need_apt /usr/include/sodium.h libsodium-dev
    log "installing bupstash $BUPSTASH_VERSION (cargo install, a few minutes)"
    CARGO_TARGET_DIR="$WORK/tools/bupstash-target" CARGO_INCREMENTAL=0 \
        cargo install bupstash --version "$BUPSTASH_VERSION" --locked --root "$WORK/tools/bupstash" >&2 \
        || { rm -rf "$WORK/tools/bupstash-target"; die "cargo install bupstash failed"; }
    rm -rf "$WORK/tools/bupstash-target"
fi
# One run per mode at a time: runs modify the dataset in place and share the run directory.
exec 9> "$WORK/.lock-$MODE"
flock -n 9 || die "another bench/run.sh (${MODE}) is running (lock $WORK/.lock-$MODE)"
# The binary is copied to bench/work/bin so that a concurrent build cannot swap it mid-run.
# TRESOR_BIN=PATH uses an existing binary; SKIP_BUILD=1 uses target/release/tresor as it is.
TRESOR="$WORK/bin/tresor"
if [[ " $TOOLS " == *" tresor "* ]]; then
    if [[ -n "${TRESOR_BIN:-}" ]]; then
        src_bin="$TRESOR_BIN"
    else
        src_bin="$ROOT/target/release/tresor"
        if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
            log "building tresor (cargo build --release --locked -p tresor)"
            (cd "$ROOT" && cargo build --release --locked -p tresor) >&2 \
                || die "cargo build failed (SKIP_BUILD=1 or TRESOR_BIN=PATH use an existing binary)"
        fi
    fi
    [[ -x "$src_bin" ]] || die "no tresor binary at $src_bin"
    cp -p "$src_bin" "$TRESOR.tmp" && mv "$TRESOR.tmp" "$TRESOR"
    log "tresor binary: $src_bin ($(stat -c '%y' "$src_bin" | cut -d. -f1))"
fi

# ---- datasets ----------------------------------------------------------------------------------
# Undo a modification left behind by an interrupted run (re-entrancy).
python3 "$HELPER" revert "$DATA/modstate-tree"
python3 "$HELPER" revert "$DATA/modstate-mixed"

build_tree() {
    [[ -f "$DATA/tree.done" ]] && return
    log "building tree dataset: ≤ $TREE_BYTES bytes, ≤ $TREE_FILES files, 1/$SAMPLE sample of ${TREE_ROOTS[*]}"
    rm -rf "$DATA/tree" "$DATA/tree.tmp"
    mkdir -p "$DATA/tree.tmp"
    python3 "$HELPER" select "$DATA/tree.list" "$TREE_BYTES" "$TREE_FILES" "$SAMPLE" "${TREE_ROOTS[@]}"
    tar -C / --null --verbatim-files-from --no-recursion -T "$DATA/tree.list" -cf - \
        | tar -C "$DATA/tree.tmp" -xpf -
    mv "$DATA/tree.tmp" "$DATA/tree"
    touch "$DATA/tree.done"
}

build_mixed() {
    [[ -f "$DATA/mixed.done" ]] && return
    local text=$((MIXED_BYTES * 3 / 4)) rand=$((MIXED_BYTES - MIXED_BYTES * 3 / 4))
    log "building mixed dataset: $text bytes of a tar of the tree + $rand bytes of AES-CTR keystream"
    rm -rf "$DATA/mixed" "$DATA/mixed.tmp"
    mkdir -p "$DATA/mixed"
    # A reproducible tar (sorted names, fixed owner and times) of the tree dataset, repeated
    # when shorter (the quick tree's 6,000 files can weigh less than the text part), truncated.
    tar -C "$DATA/tree" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
        -cf "$DATA/mixed.tar" .
    [[ -s "$DATA/mixed.tar" ]] || die "tar of the tree is empty"
    : > "$DATA/mixed.tmp"
    while (( $(stat -c %s "$DATA/mixed.tmp") < text )); do cat "$DATA/mixed.tar" >> "$DATA/mixed.tmp"; done
    rm -f "$DATA/mixed.tar"
    truncate -s "$text" "$DATA/mixed.tmp"
    # Incompressible, reproducible: AES-256-CTR keystream of a fixed password (no salt).
    head -c "$rand" /dev/zero \
        | openssl enc -aes-256-ctr -nosalt -pbkdf2 -iter 1 -pass pass:tresor-bench-random >> "$DATA/mixed.tmp"
    (( $(stat -c %s "$DATA/mixed.tmp") == MIXED_BYTES )) || die "mixed file has the wrong size"
    touch -d @1700000000 "$DATA/mixed.tmp"
    mv "$DATA/mixed.tmp" "$DATA/mixed/mixed.bin"
    touch "$DATA/mixed.done"
}

build_tree   # the mixed file is made from the tree, so the tree is always built
[[ " $DATASETS " == *" mixed "* ]] && build_mixed

# ---- restore targets and ext4 (see bench/settle.sh) ------------------------------------------------
if [[ $MODE == quick ]]; then SETTLE="${SETTLE:-0}"; else SETTLE="${SETTLE:-360}"; fi
source "$BENCH/settle.sh"
delete_trees "$RUN"/restore-*   # left by KEEP=1 or an interrupted run
rm -rf "$RUN"
mkdir -p "$RUN/logs"
# Space: every repetition keeps its restored dataset until the end (repositories are removed).
need_kib=0
for ds in $DATASETS; do
    need_kib=$(( need_kib + $(du -sk "$DATA/$ds" | cut -f1) * 2 * (RUNS + 1) ))
done
avail_kib=$(df -Pk "$WORK" | awk 'NR==2 {print $4}')
(( avail_kib > need_kib )) || die "need about $((need_kib / 1048576 + 1)) GiB free under $WORK for restored trees and repositories, $((avail_kib / 1048576)) GiB available (lower RUNS)"

# ---- metadata ----------------------------------------------------------------------------------
: > "$META"
meta() { printf '%s\t%s\n' "$1" "$2" >> "$META"; }
meta mode "$MODE"
meta runs "$RUNS"
meta tresor_keys "$TRESOR_KEYS"
meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta nproc "$(nproc)"
meta cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
meta mem "$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
meta kernel "$(uname -r)"
meta fs "$(df -T "$WORK" | awk 'NR==2 {print $2}')"
meta load_start "$(cut -d' ' -f1-3 /proc/loadavg)"
meta git "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- crates 2>/dev/null || echo '+uncommitted changes in crates/')"
[[ -x "$TRESOR" ]] && meta tresor_version "$("$TRESOR" --version), binary built $(stat -c '%y' "$TRESOR" | cut -d. -f1)"
command -v restic >/dev/null && meta restic_version "$(restic version)"
[[ -x "$BUPSTASH" ]] && meta bupstash_version "$("$BUPSTASH" version)"
for ds in $DATASETS; do
    src="$DATA/$ds"
    read -r files links dirs bytes < <(python3 "$HELPER" stats "$src")
    meta "${ds}_files" "$files"; meta "${ds}_links" "$links"; meta "${ds}_dirs" "$dirs"; meta "${ds}_bytes" "$bytes"
    if [[ $ds == tree ]]; then
        meta tree_what "copy of parts of /usr (share, include, lib/…), $( [[ $SAMPLE == 1 ]] && echo 'byte order' || echo "1/$SAMPLE CRC32 sample" ), until the byte or file budget"
    else
        meta mixed_what "one file: 75 % a tar of the tree dataset (text, headers, binaries), 25 % AES-CTR keystream (incompressible)"
    fi
    log "dataset $ds: $files files, $links symlinks, $dirs dirs, $bytes bytes"
done

printf 'dataset\tstep\ttool\trep\twall_s\trss_kib\tuser_s\tsys_s\tbytes\tload1\n' > "$RAW"

# ---- tools -------------------------------------------------------------------------------------
export TRESOR_PASSWORD="$PASSWORD" RESTIC_PASSWORD="$PASSWORD"
unset TRESOR_REPOSITORY TRESOR_PASSWORD_FILE TRESOR_PASSWORD_COMMAND RESTIC_REPOSITORY \
      RESTIC_PASSWORD_FILE RESTIC_PASSWORD_COMMAND RESTIC_COMPRESSION RESTIC_PACK_SIZE \
      BUPSTASH_REPOSITORY BUPSTASH_REPOSITORY_COMMAND BUPSTASH_KEY BUPSTASH_KEY_COMMAND \
      BUPSTASH_SEND_LOG BUPSTASH_QUERY_CACHE || true

RESTIC="$(command -v restic || echo restic)"
# cmd_for TOOL ACTION REPO [ARG] [STEP]: fill the array CMD with the command line.
# bupstash (no "latest"): each put is tagged bench_step=STEP, the restore takes the changed rerun's,
# which is the latest; its key, send log and query cache sit beside the repository (BUPSTASH_*
# set in one_run), like restic's cache; `put` defaults (send log and stat cache on, zstd).
cmd_for() {
    local tool=$1 action=$2 repo=$3 arg=${4:-} step=${5:-}
    if [[ $tool == bupstash ]]; then
        case $action in
            init)    CMD=(sh -c '"$1" new-key -o "$BUPSTASH_KEY" && "$1" init -r "$2"' sh "$BUPSTASH" "$repo") ;;
            backup)  CMD=("$BUPSTASH" put -r "$repo" "bench_step=$step" "$arg") ;;
            restore) CMD=("$BUPSTASH" restore -r "$repo" --into "$arg" "bench_step=changed") ;;
        esac
        return
    fi
    local exe=$TRESOR opts=() keyfile=0
    if [[ $tool == restic ]]; then exe=$RESTIC; fi
    # tresor opens with an unlocked key file like bupstash's (TRESOR_KEYS=password: the password).
    if [[ $tool == tresor && $TRESOR_KEYS == file ]]; then
        keyfile=1
        opts=(--key-file "$TRESOR_KEY_PATH")
    fi
    case $action in
        init)    CMD=("$exe" -r "$repo" init)
                 if ((keyfile)); then
                     CMD=(sh -c '"$1" -r "$2" init && "$1" -r "$2" key export --unlocked "$3"' \
                          sh "$exe" "$repo" "$TRESOR_KEY_PATH")
                 fi ;;
        backup)  CMD=("$exe" -r "$repo" "${opts[@]}" backup "$arg") ;;
        restore) CMD=("$exe" -r "$repo" "${opts[@]}" restore latest --target "$arg") ;;
    esac
}

# Read every file once so that each tool starts from the same (warm) page cache.
warm() { find "$1" -type f -print0 | xargs -0 -r cat > /dev/null; }

# measure DATASET STEP TOOL REP -- COMMAND...: time COMMAND with /usr/bin/time -v, append to RAW.
measure() {
    local ds=$1 step=$2 tool=$3 rep=$4; shift 5
    local base="$RUN/logs/$ds.$tool.$rep.$step"
    sync
    local load; load=$(cut -d' ' -f1 /proc/loadavg)   # 1-minute load average just before the step
    # Wall time from bash's clock (microseconds) around the step: /usr/bin/time's is in steps of
    # 10 ms, too coarse for the unchanged rerun of one file (0.00 or 0.01 s for every tool).
    local t0=$EPOCHREALTIME
    if ! "$TIME" -v -o "$base.time" "$@" > "$base.log" 2>&1; then
        tail -n 20 "$base.log" >&2
        die "$tool $step on $ds (run $rep) failed; see $base.log"
    fi
    local t1=$EPOCHREALTIME
    local wall rss user sys
    read -r wall rss user sys < <(python3 "$HELPER" parse-time "$base.time")
    wall=$(python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.4f}")' "$t0" "$t1")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$ds" "$step" "$tool" "$rep" "$wall" "$rss" "$user" "$sys" 0 "$load" >> "$RAW"
    log "$ds $tool run $rep: $step ${wall}s, peak RSS $((rss / 1024)) MiB, CPU ${user}+${sys}s, load before $load"
}

record_size() {  # DATASET STEP TOOL REP REPO
    local bytes
    bytes=$(du -sb "$5" | cut -f1)
    printf '%s\t%s\t%s\t%s\t0\t0\t0\t0\t%s\t\n' "$1" "$2" "$3" "$4" "$bytes" >> "$RAW"
    log "$1 $3 run $4: $2 = $bytes bytes"
}

# ---- the benchmark -----------------------------------------------------------------------------
one_run() {  # DATASET TOOL REP
    local ds=$1 tool=$2 rep=$3
    local src="$DATA/$ds" repo="$RUN/repo-$ds-$tool-$rep" target="$RUN/restore-$ds-$tool-$rep"
    local state="$DATA/modstate-$ds"
    export RESTIC_CACHE_DIR="$RUN/restic-cache-$ds-$rep"
    TRESOR_KEY_PATH="$RUN/tresor-$ds-$rep.key"; rm -f "$TRESOR_KEY_PATH"
    export BUPSTASH_KEY="$RUN/bupstash-$ds-$rep.key" BUPSTASH_SEND_LOG="$RUN/bupstash-$ds-$rep.sendlog" \
           BUPSTASH_QUERY_CACHE="$RUN/bupstash-$ds-$rep.querycache"

    cmd_for "$tool" init "$repo"
    "${CMD[@]}" > "$RUN/logs/$ds.$tool.$rep.init.log" 2>&1 \
        || die "$tool init failed; see $RUN/logs/$ds.$tool.$rep.init.log"

    warm "$src"
    cmd_for "$tool" backup "$repo" "$src" first
    measure "$ds" first "$tool" "$rep" -- "${CMD[@]}"
    record_size "$ds" size_first "$tool" "$rep" "$repo"

    warm "$src"
    cmd_for "$tool" backup "$repo" "$src" unchanged
    measure "$ds" unchanged "$tool" "$rep" -- "${CMD[@]}"

    if [[ $ds == tree ]]; then
        python3 "$HELPER" modify-tree "$src" "$state"
    else
        python3 "$HELPER" modify-file "$src/mixed.bin" "$state"
    fi
    warm "$src"
    cmd_for "$tool" backup "$repo" "$src" changed
    measure "$ds" changed "$tool" "$rep" -- "${CMD[@]}"

    mkdir -p "$target"
    warm "$repo"
    settle
    cmd_for "$tool" restore "$repo" "$target"
    measure "$ds" restore "$tool" "$rep" -- "${CMD[@]}"
    record_size "$ds" size_final "$tool" "$rep" "$repo"

    if [[ $rep == 1 ]]; then   # outside the timed section: the restore equals the (modified) source
        local restored="$target$src"   # tresor and restic restore full paths, bupstash the contents
        [[ $tool == bupstash ]] && restored="$target"
        diff -r --no-dereference "$src" "$restored" > "$RUN/logs/$ds.$tool.diff" 2>&1 \
            || die "$tool: restored $ds differs from the source; see $RUN/logs/$ds.$tool.diff"
        log "$ds $tool: restored tree equals the source (diff -r --no-dereference)"
    fi
    python3 "$HELPER" revert "$state"
    # The repository and cache hold few files; the restored tree stays until the run is over.
    rm -rf "$repo" "$RESTIC_CACHE_DIR" "$BUPSTASH_KEY" "$BUPSTASH_SEND_LOG" "$BUPSTASH_QUERY_CACHE"
}

trap 'python3 "$HELPER" revert "$DATA/modstate-tree" 2>/dev/null || true; python3 "$HELPER" revert "$DATA/modstate-mixed" 2>/dev/null || true' EXIT

for ds in $DATASETS; do
    for ((rep = 1; rep <= RUNS; rep++)); do
        # alternate the order of the tools between repetitions
        if (( rep % 2 == 1 )); then order="$TOOLS"; else order="$(echo $TOOLS | tr ' ' '\n' | tac | tr '\n' ' ')"; fi
        for tool in $order; do
            log "=== $ds, $tool, run $rep of $RUNS"
            one_run "$ds" "$tool" "$rep"
        done
    done
done

meta load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
if [[ "${KEEP:-0}" == 1 ]]; then
    log "KEEP=1: restored trees left under $RUN"
else
    delete_trees "$RUN"/restore-*
fi
python3 "$HELPER" report "$RAW" "$META" > "$WORK/results-$MODE.md"
cp "$WORK/results-$MODE.md" "$WORK/results.md"
cat "$WORK/results-$MODE.md"
