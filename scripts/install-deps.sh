#!/usr/bin/env bash
# Install the Debian packages Cairn needs to build, test and run.
# Idempotent: installs only what is missing, and does nothing when all is there.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libuv1-dev libnng-dev liblmdb-dev lmdb-utils libyaml-dev libjansson-dev
  libssl-dev openssl libcurl4-openssl-dev libcmocka-dev
  runc tzdata python3 python3-sklearn python3-numpy
  valgrind hyperfine iproute2 procps curl systemd bc jq make nodejs
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root (or: sudo $0)" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
