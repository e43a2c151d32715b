#!/usr/bin/env bash
# tresor vs restic on S3: backup and restore of the tree dataset of bench/run.sh (~1 GiB, 60,000
# files of /usr, selected the same way into bench/work/s3-data-*/) to SeaweedFS on loopback, with each tool's S3 backend; throughput both ways and
# PUT requests per GB stored.
#
#   bench/s3.sh                  full tree (1 GiB), RUNS=1
#   QUICK=1 bench/s3.sh          the 100 MiB tree of QUICK=1 bench/run.sh
#   RUNS=3 bench/s3.sh           repetitions (the median is reported)
#   SETTLE=0 bench/s3.sh         do not wait before restores after recent deletions of restored
#                                trees (default 360 s; see bench/README.md, "Restores and ext4")
#   KEEP=1 bench/s3.sh           leave the restored trees under bench/work/s3-run-*/
#   TRESOR_BIN=PATH bench/s3.sh  use this tresor binary (default: cargo build --release, copied)
#
# A dedicated SeaweedFS (scripts/s3-server.sh with its own run dir, S3 on 127.0.0.1:$BENCH_S3_PORT,
# default 18433, and Prometheus metrics on $BENCH_S3_PORT+6) is started for the run and stopped at
# the end; it shares the venv of the test server. Every tool and repetition gets a fresh bucket.
# Its volumes hold 1 GiB (TRESOR_S3_VOLUME_MB=1024; the tests' server has 128 MiB volumes): a
# bucket is a collection with volumes of its own, and a volume filling up mid-backup stalls the
# PUTs while the server grows another — 0.8–0.9 s, at random, a third of a backup's 3.7 s (tresor
# 3.68–3.89 s with 1 GiB volumes; 3.70–4.61 s with 128 MiB ones, bimodal). No real S3 service
# stalls so; the bench measures the tools.
# PUT requests are counted by SeaweedFS itself (SeaweedFS_s3_request_total{type="PUT"} of the
# bucket, any status), so no proxy sits in the data path; "stored" is the sum of the object sizes
# in the bucket after the backup (ListObjectsV2).
#
# Both tools use their defaults (tresor: 32 MiB packs, zstd 3; restic: compression auto, 16 MiB
# packs). Before each backup the dataset is read once (warm page cache); restores go to an empty
# directory on the same disk. The first repetition's restore is compared with the source
# (diff -r --no-dereference).
#
# Output: a Markdown table on stdout and in bench/work/s3-results-{full,quick}.md; raw numbers
# in bench/work/s3-raw-{full,quick}.tsv; logs under bench/work/s3-run-{full,quick}/.
set -euo pipefail

BENCH="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$BENCH")"
WORK="$BENCH/work"
HELPER="$BENCH/helper.py"
RUNS="${RUNS:-1}"
QUICK="${QUICK:-0}"
PORT="${BENCH_S3_PORT:-18433}"
METRICS_PORT=$((PORT + 6))
TIME=/usr/bin/time
PASSWORD="tresor-bench-password"

if [[ "$QUICK" == 1 ]]; then
    MODE=quick TREE_BYTES=$((100 * 1024 * 1024)) TREE_FILES=6000 SAMPLE=10
else
    MODE=full TREE_BYTES=$((1024 * 1024 * 1024)) TREE_FILES=60000 SAMPLE=1
fi
# A private copy of the dataset: bench/run.sh modifies its own copy in place while it runs.
DATA="$WORK/s3-data-$MODE"
RUN="$WORK/s3-run-$MODE"
RAW="$WORK/s3-raw-$MODE.tsv"
OUT="$WORK/s3-results-$MODE.md"
# The same tree as bench/run.sh (keep in step with TREE_ROOTS there).
TREE_ROOTS=(/usr/share /usr/include /usr/lib/gcc /usr/lib/python3.11 /usr/lib/postgresql
            /usr/lib/git-core /usr/lib/systemd /usr/lib/llvm-14 /usr/lib/python3
            /usr/lib/node_modules /usr/lib/x86_64-linux-gnu /usr/lib /usr/libexec /usr/bin)

log() { printf '[s3 bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v restic >/dev/null || die "restic is not installed (apt-get install restic)"
[[ -x $TIME ]] || die "$TIME is missing (apt-get install time)"

# ---- tresor binary -----------------------------------------------------------------------------
mkdir -p "$WORK/bin" "$DATA"
TRESOR="$WORK/bin/tresor-s3bench"
if [[ -n "${TRESOR_BIN:-}" ]]; then
    src_bin="$TRESOR_BIN"
else
    src_bin="${CARGO_TARGET_DIR:-$ROOT/target}/release/tresor"
    log "building tresor (cargo build --release --locked -p tresor)"
    (cd "$ROOT" && cargo build --release --locked -p tresor) >&2 || die "cargo build failed"
fi
[[ -x "$src_bin" ]] || die "no tresor binary at $src_bin"
cp -p "$src_bin" "$TRESOR.tmp" && mv "$TRESOR.tmp" "$TRESOR"

# ---- dataset (selected from /usr as bench/run.sh selects its tree, but a copy of its own) -------
if [[ ! -f "$DATA/tree.done" ]]; then
    log "building tree dataset: ≤ $TREE_BYTES bytes, ≤ $TREE_FILES files"
    rm -rf "$DATA/tree" "$DATA/tree.tmp"
    mkdir -p "$DATA/tree.tmp"
    python3 "$HELPER" select "$DATA/tree.list" "$TREE_BYTES" "$TREE_FILES" "$SAMPLE" "${TREE_ROOTS[@]}"
    tar -C / --null --verbatim-files-from --no-recursion -T "$DATA/tree.list" -cf - \
        | tar -C "$DATA/tree.tmp" -xpf -
    mv "$DATA/tree.tmp" "$DATA/tree"
    touch "$DATA/tree.done"
fi
SRC="$DATA/tree"
read -r FILES LINKS DIRS BYTES < <(python3 "$HELPER" stats "$SRC")
log "dataset: $FILES files, $LINKS symlinks, $DIRS dirs, $BYTES bytes"

# ---- the S3 server -----------------------------------------------------------------------------
# Restored trees are kept until the end of the run; restores wait for ext4 (bench/settle.sh).
SETTLE="${SETTLE:-360}"
source "$BENCH/settle.sh"
delete_trees "$RUN"/restore-*   # left by KEEP=1 or an interrupted run
rm -rf "$RUN"
mkdir -p "$RUN/logs"
export TRESOR_S3_RUN_DIR="$RUN/server" TRESOR_S3_PORT="$PORT" TRESOR_S3_METRICS_PORT="$METRICS_PORT" \
       TRESOR_S3_VOLUME_MB=1024
stop_server() { "$ROOT/scripts/s3-server.sh" stop >/dev/null 2>&1 || true; }
trap stop_server EXIT
eval "$("$ROOT/scripts/s3-server.sh" start)"
ENDPOINT="http://127.0.0.1:$PORT"
PY="$TRESOR_TEST_S3_PYTHON"

# s3py create BUCKET | size BUCKET: bucket helpers with boto3 from the server's venv.
s3py() {
    "$PY" - "$ENDPOINT" "$@" <<'PY'
import os, sys, boto3
from botocore.config import Config
endpoint, cmd, bucket = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}))
if cmd == "create":
    s3.create_bucket(Bucket=bucket)
elif cmd == "size":
    total = count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            total += o["Size"]; count += 1
    print(total, count)
PY
}

# puts BUCKET: PUT requests the server has counted for the bucket (any status).
puts() {
    curl -s "http://127.0.0.1:$METRICS_PORT/metrics" \
        | awk -v b="bucket=\"$1\"" '/^SeaweedFS_s3_request_total\{/ && index($0, b) && /type="PUT"/ {n += $NF} END {printf "%d\n", n}'
}

# ---- the benchmark -----------------------------------------------------------------------------
export TRESOR_PASSWORD="$PASSWORD" RESTIC_PASSWORD="$PASSWORD"
unset TRESOR_REPOSITORY TRESOR_PASSWORD_FILE TRESOR_PASSWORD_COMMAND RESTIC_REPOSITORY \
      RESTIC_PASSWORD_FILE RESTIC_PASSWORD_COMMAND RESTIC_COMPRESSION RESTIC_PACK_SIZE || true
printf 'tool\trep\tstep\twall_s\trss_kib\tuser_s\tsys_s\tputs\tstored_bytes\tobjects\tload1\n' > "$RAW"

warm() { find "$1" -type f -print0 | xargs -0 -r cat > /dev/null; }

# timed TOOL REP STEP -- CMD...: run under /usr/bin/time -v; sets WALL RSS USR SYS LOAD.
timed() {
    local tool=$1 rep=$2 step=$3; shift 4
    local base="$RUN/logs/$tool.$rep.$step"
    sync
    LOAD=$(cut -d' ' -f1 /proc/loadavg)
    if ! "$TIME" -v -o "$base.time" "$@" > "$base.log" 2>&1; then
        tail -n 20 "$base.log" >&2
        die "$tool $step (run $rep) failed; see $base.log"
    fi
    read -r WALL RSS USR SYS < <(python3 "$HELPER" parse-time "$base.time")
}

one_run() {  # TOOL REP
    local tool=$1 rep=$2
    local bucket="bench-$tool-$rep-$RANDOM$RANDOM"
    local url target="$RUN/restore-$tool-$rep"
    rm -rf "$RUN/cache"
    mkdir -p "$target"
    s3py create "$bucket"
    if [[ $tool == tresor ]]; then
        url="s3:$ENDPOINT/$bucket"
        export TRESOR_CACHE_DIR="$RUN/cache"
        "$TRESOR" -r "$url" init > "$RUN/logs/$tool.$rep.init.log" 2>&1 || die "tresor init failed"
        backup=("$TRESOR" -r "$url" backup "$SRC")
        restore=("$TRESOR" -r "$url" restore latest --target "$target")
    else
        url="s3:$ENDPOINT/$bucket"
        export RESTIC_CACHE_DIR="$RUN/cache"
        restic -r "$url" init > "$RUN/logs/$tool.$rep.init.log" 2>&1 || die "restic init failed"
        backup=(restic -r "$url" backup "$SRC")
        restore=(restic -r "$url" restore latest --target "$target")
    fi
    local puts_before puts_after
    puts_before=$(puts "$bucket")
    warm "$SRC"
    timed "$tool" "$rep" backup -- "${backup[@]}"
    puts_after=$(puts "$bucket")
    local stored objects
    read -r stored objects < <(s3py size "$bucket")
    local n=$((puts_after - puts_before))
    printf '%s\t%s\tbackup\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$rep" "$WALL" "$RSS" "$USR" "$SYS" "$n" "$stored" "$objects" "$LOAD" >> "$RAW"
    log "$tool run $rep: backup ${WALL}s ($(python3 -c "print(round($BYTES/1048576/$WALL,1))") MiB/s), $n PUTs, $stored bytes in $objects objects, peak RSS $((RSS / 1024)) MiB, load before $LOAD"

    rm -rf "$RUN/cache"   # restore without a local cache of the repository
    settle
    timed "$tool" "$rep" restore -- "${restore[@]}"
    printf '%s\t%s\trestore\t%s\t%s\t%s\t%s\t0\t0\t0\t%s\n' "$tool" "$rep" "$WALL" "$RSS" "$USR" "$SYS" "$LOAD" >> "$RAW"
    log "$tool run $rep: restore ${WALL}s ($(python3 -c "print(round($BYTES/1048576/$WALL,1))") MiB/s), peak RSS $((RSS / 1024)) MiB"
    if [[ $rep == 1 ]]; then
        diff -r --no-dereference "$SRC" "$target$SRC" > "$RUN/logs/$tool.diff" 2>&1 \
            || die "$tool: the restore differs from the source; see $RUN/logs/$tool.diff"
        log "$tool: restored tree equals the source"
    fi
}

for ((rep = 1; rep <= RUNS; rep++)); do
    if (( rep % 2 == 1 )); then order="tresor restic"; else order="restic tresor"; fi
    for tool in $order; do
        log "=== $tool, run $rep of $RUNS"
        one_run "$tool" "$rep"
    done
done

if [[ "${KEEP:-0}" != 1 ]]; then
    delete_trees "$RUN"/restore-*
fi

# ---- report ------------------------------------------------------------------------------------
python3 - "$RAW" "$BYTES" "$FILES" "$MODE" "$RUNS" "$("$TRESOR" --version)" "$(restic version)" \
    "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" > "$OUT" <<'PY'
import csv, statistics, sys
raw, nbytes, files, mode, runs, tv, rv, nproc, load = sys.argv[1:10]
nbytes = int(nbytes)
rows = list(csv.DictReader(open(raw), delimiter="\t"))
def med(tool, step, key):
    v = [float(r[key]) for r in rows if r["tool"] == tool and r["step"] == step]
    return statistics.median(v) if v else float("nan")
mib = nbytes / 1048576
print(f"# tresor vs restic on S3 (SeaweedFS on loopback), {mode} tree\n")
print(f"* dataset: {files} files, {nbytes} bytes ({mib:.0f} MiB) of regular files")
print(f"* {tv}; {rv}")
print(f"* {nproc} cores; load average at the end {load}; runs: {runs} (median)\n")
print("| tool | backup s | backup MiB/s | restore s | restore MiB/s | PUTs (backup) | stored bytes | objects | PUTs per GB stored | peak RSS backup/restore MiB |")
print("|---|---|---|---|---|---|---|---|---|---|")
res = {}
for t in ("tresor", "restic"):
    b, r = med(t, "backup", "wall_s"), med(t, "restore", "wall_s")
    puts, stored = med(t, "backup", "puts"), med(t, "backup", "stored_bytes")
    objs = med(t, "backup", "objects")
    res[t] = (mib / b, mib / r)
    print(f"| {t} | {b:.1f} | {mib/b:.1f} | {r:.1f} | {mib/r:.1f} | {puts:.0f} | {stored:.0f} | {objs:.0f} | "
          f"{puts / (stored / 1e9):.1f} | {med(t,'backup','rss_kib')/1024:.0f} / {med(t,'restore','rss_kib')/1024:.0f} |")
bt, rt = res["tresor"][0] / res["restic"][0], res["tresor"][1] / res["restic"][1]
print()
# Floors of issue 19 (floor 6): each throughput >= 2x restic's, PUTs per GB stored <= restic's.
per_gb = {t: med(t, "backup", "puts") / (med(t, "backup", "stored_bytes") / 1e9) for t in res}
print(f"* backup throughput tresor/restic: {bt:.2f}× ({'PASS' if bt >= 2 else 'FAIL'} against the 2× floor)")
print(f"* restore throughput tresor/restic: {rt:.2f}× ({'PASS' if rt >= 2 else 'FAIL'} against the 2× floor)")
pg = per_gb["tresor"] / per_gb["restic"]
print(f"* PUTs per GB stored tresor/restic: {pg:.3f}× ({'PASS' if pg <= 1 else 'FAIL'} against the 1× ceiling)")
PY
cat "$OUT"
