#!/usr/bin/env bash
# Backup throughput through `tresor serve` on loopback against a local directory repository.
# Issue 5 asks for the server path to be within 20 % of the direct one.
#
# SIZE MiB of incompressible data in 64 files (page-cached before timing) is backed up into a
# fresh repository RUNS times per path, with a full key (small Argon2 parameters):
#   local   -r $WORK/local-N
#   http    -r tresor+http://127.0.0.1:PORT/main   (tresor serve, plain HTTP/1.1, admin token)
#   stdio   -r ssh://bench/main with --server-command 'tresor serve --stdio …' (HTTP/2 on a pipe)
# and the best wall time of each path is reported (MiB/s and the ratio to local).
#
# Usage: bench/serve.sh [SIZE_MIB] [RUNS]       (default 1024 3)
# Environment: WORK (scratch directory, default /tmp/tresor-serve-bench; deleted first),
#              PROFILE (release or dev, default release), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-1024}
RUNS=${2:-3}
PROFILE=${PROFILE:-release}
TARGET=${CARGO_TARGET_DIR:-target}
WORK=${WORK:-/tmp/tresor-serve-bench}
if [ "$PROFILE" = release ]; then flag=--release; dir=release; else flag=; dir=debug; fi
cargo build -q $flag -p tresor --bin tresor
BIN=$(realpath "$TARGET/$dir/tresor")

rm -rf "$WORK"
mkdir -p "$WORK/src"
export TRESOR_PASSWORD=bench TRESOR_CACHE_DIR="$WORK/cache"
unset TRESOR_PASSWORD_FILE TRESOR_PASSWORD_COMMAND TRESOR_REPOSITORY TRESOR_SERVER_TOKEN_FILE
per_file=$((SIZE / 64))
for i in $(seq 1 64); do
    head -c "$((per_file << 20))" /dev/urandom >"$WORK/src/file$i"
done
cat "$WORK"/src/* >/dev/null
mib=$((per_file * 64))
echo "data: $mib MiB in 64 files; $RUNS runs per path; $(nproc) cores; $PROFILE build"

# The server: one repository, one admin token.
json=$("$BIN" serve hash-token bench --role admin --json)
TOKEN=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["token"])' "$json")
HASH=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["token_hash"])' "$json")

start_server() { # $1: repository directory; sets PORT and SERVER_PID
    cat >"$WORK/serve.toml" <<EOF
[repositories.main]
path = "$1"
[clients.bench]
repository = "main"
role = "admin"
token_hash = "$HASH"
EOF
    "$BIN" serve --listen 127.0.0.1:0 --config "$WORK/serve.toml" --log /dev/null \
        2>"$WORK/serve.err" &
    SERVER_PID=$!
    for _ in $(seq 100); do
        PORT=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\).*|\1|p' "$WORK/serve.err" | head -1)
        [ -n "$PORT" ] && return 0
        sleep 0.1
    done
    echo "server did not start: $(cat "$WORK/serve.err")" >&2
    exit 1
}

best() { sort -n | head -1; }

# One timed backup: prints seconds.
timed_backup() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" backup -q "$WORK/src"
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
}

declare -A times
# Runs are interleaved (local, http, stdio, local, …) so that load from elsewhere on the machine
# spreads over the three paths alike.
for run in $(seq 1 "$RUNS"); do
    for path in local http stdio; do
        repo="$WORK/$path-$run"
        rm -rf "$WORK/cache"
        case $path in
        local)
            "$BIN" -r "$repo" init -q --kdf-memory-kib 8192 --kdf-iterations 1
            t=$(timed_backup "$BIN" -r "$repo")
            ;;
        http)
            start_server "$repo"
            export TRESOR_SERVER_TOKEN=$TOKEN
            url="tresor+http://127.0.0.1:$PORT/main"
            "$BIN" -r "$url" init -q --kdf-memory-kib 8192 --kdf-iterations 1
            t=$(timed_backup "$BIN" -r "$url")
            kill "$SERVER_PID"
            wait "$SERVER_PID" 2>/dev/null || true
            unset TRESOR_SERVER_TOKEN
            ;;
        stdio)
            cmd="exec '$BIN' serve --stdio --repo '$repo' --role admin"
            "$BIN" -r "$repo" init -q --kdf-memory-kib 8192 --kdf-iterations 1
            t=$(timed_backup "$BIN" -r ssh://bench/main --server-command "$cmd")
            ;;
        esac
        times[$path]="${times[$path]:-} $t"
        "$BIN" -r "$repo" check -q >/dev/null
        rm -rf "$repo"
    done
done
declare -A secs
for path in local http stdio; do
    secs[$path]=$(printf '%s\n' ${times[$path]} | best)
    printf '%-6s runs:%s s\n' "$path" "${times[$path]}"
done

echo
printf '%-6s %8s %10s %8s\n' path "best s" "MiB/s" "vs local"
for path in local http stdio; do
    s=${secs[$path]}
    printf '%-6s %8.2f %10.1f %7.1f%%\n' "$path" "$s" "$(echo "$mib / $s" | bc -l)" \
        "$(echo "100 * ${secs[local]} / $s" | bc -l)"
done
rm -rf "$WORK"
