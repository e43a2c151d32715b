#!/usr/bin/env bash
# The main job, end to end: build tresor, create a local-directory repository, back up a real
# folder of this machine, list snapshots, back it up again (incremental), restore it, compare the
# restored tree with the original byte for byte (and symlinks as links), and check the repository.
#
#   scripts/demo.sh [SOURCE_DIR]      (default: /usr/share/doc)
#
# Everything happens in a fresh temporary directory, removed at the end unless KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC="${1:-/usr/share/doc}"
cargo build --release --locked -p tresor
T="${CARGO_TARGET_DIR:-$PWD/target}/release/tresor"
WORK="$(mktemp -d)"
[[ "${KEEP:-0}" == 1 ]] || trap 'rm -rf "$WORK"' EXIT
export TRESOR_REPOSITORY="$WORK/repo"
# A password file readable only by us (the demo's password is not a secret).
umask 077
printf 'demo password\n' > "$WORK/password"
export TRESOR_PASSWORD_FILE="$WORK/password"

set -x
"$T" init
"$T" backup "$SRC"
"$T" backup "$SRC"
"$T" snapshots
"$T" restore latest --target "$WORK/restore" --verify
"$T" check --read-data
set +x
diff -r --no-dereference "$SRC" "$WORK/restore$SRC"
echo "demo: restored tree is identical to $SRC"
