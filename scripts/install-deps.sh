#!/usr/bin/env bash
# Install the Debian packages Cairn needs to build, test and run.
# Then the npm packages of tests/ui/ (the browser test's driver and the graph
# layout library the page embeds) and of tests/s3/ (s3rver, the S3-compatible
# server tests/integration/test_s3.sh runs), exactly as each folder's
# package-lock.json pins them. Idempotent: installs only what is missing, and does nothing when all
# is there.
set -euo pipefail

# nodejs brings npm with it; chromium is the browser tests/ui drives.
PKGS=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libuv1-dev libnng-dev liblmdb-dev lmdb-utils libyaml-dev libjansson-dev
  libssl-dev openssl libcurl4-openssl-dev libarchive-dev libcmocka-dev
  runc tzdata python3 python3-sklearn python3-numpy
  docker-registry umoci skopeo busybox-static apache2-utils
  valgrind gdb hyperfine iproute2 procps curl systemd bc jq make nodejs nginx prometheus chromium
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: run as root (or: sudo $0)" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm ci only when node_modules was not installed from this very lockfile
# (the copy npm ci leaves in node_modules/.cairn-lock says which one).
tests="$(cd "$(dirname "$0")/.." && pwd)/tests"
for dir in "$tests/ui" "$tests/s3"; do
  if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.cairn-lock"; then
    echo "install-deps: npm ci in tests/$(basename "$dir")"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$dir/node_modules/.cairn-lock"
  fi
done
