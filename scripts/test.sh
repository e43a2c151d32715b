#!/usr/bin/env bash
# The whole test suite. Installs and starts what the tests need, then runs them:
#   - restic (Debian package), for the retention comparison test;
#   - SeaweedFS on 127.0.0.1 (scripts/s3-server.sh), for the S3 tests;
#   - moto on 127.0.0.1 with IAM enforced (scripts/s3-server.sh moto-start, same venv), for the
#     test of the append-only policy from `tresor s3-policy`.
#   - /dev/fuse for the `tresor mount` tests (a real FUSE mount; as root no fusermount is
#     needed). Without /dev/fuse those tests say "skipped" and pass on a developer machine, and
#     fail in CI (CI=true): every test that needs something from the machine goes through
#     tresor_testkit::require (crates/tresor-testkit).
# Works on a fresh machine (as root, or with sudo for apt-get).
# First of all, the guard rails: clippy over every target, warnings are errors (the workspace
# lints in Cargo.toml: no function over 80 lines, no tangled function, no #[allow] without a
# reason).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo clippy --workspace --all-targets --locked -- -D warnings

SUDO=""
[[ "$(id -u)" == 0 ]] || SUDO="sudo"
need_apt=()
command -v restic >/dev/null || need_apt+=(restic)
# sshd for the SSH forced-command test (started by the test itself on 127.0.0.1 only).
[[ -x /usr/sbin/sshd ]] || need_apt+=(openssh-server)
# systemd-analyze verifies the units of `tresor schedule install` (schedule tests).
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
if ((${#need_apt[@]})); then
    echo "test.sh: installing ${need_apt[*]}" >&2
    # Keep package scripts from starting services (sshd) while installing.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod +x /usr/sbin/policy-rc.d
    fi
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >&2
fi

[[ -e /dev/fuse ]] || echo "test.sh: no /dev/fuse here: the mount tests will be skipped (and fail when CI=true)" >&2

eval "$(scripts/s3-server.sh start)"
trap 'scripts/s3-server.sh stop || true' EXIT
eval "$(scripts/s3-server.sh moto-start)"
trap 'scripts/s3-server.sh moto-stop || true; scripts/s3-server.sh stop || true' EXIT

cargo test --workspace --locked
