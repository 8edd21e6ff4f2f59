#!/usr/bin/env bash
# The test suite on AArch64 under qemu-user, from an x86-64 Linux machine (not part of
# .ci/run: it installs a cross toolchain and an emulator, and takes ~10 minutes).
#
#   bash .ci/aarch64.sh [cargo test args...]     (needs root for apt-get and binfmt_misc)
#
# Tests that qemu-user cannot emulate fail under it and are expected to (docs/architecture.md,
# "Architectures"): the greenlet stack overflow report (qemu does not deliver the guard
# page's SIGSEGV on the alternate stack; the same before greenhub had its own switch),
# thread and fd counts (qemu's own threads and fds), RLIMIT_AS (qemu reserves the guest's
# address space up front) and a few timing-sensitive tests when everything runs at once;
# --no-fail-fast, so that those expected failures do not hide the other test binaries.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export DEBIAN_FRONTEND=noninteractive
command -v qemu-aarch64 >/dev/null && command -v aarch64-linux-gnu-gcc >/dev/null ||
  apt-get install -y -q qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross
rustup target add aarch64-unknown-linux-gnu
# Child-process tests re-run the test binary: let the kernel hand aarch64 ELFs to qemu
# (in a container binfmt_misc may need mounting first; without it those tests exit 127).
[ -e /proc/sys/fs/binfmt_misc/register ] ||
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
if [ -w /proc/sys/fs/binfmt_misc/register ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  printf '%s' ':qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64:OC' \
    > /proc/sys/fs/binfmt_misc/register
fi
export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64"
cd "$root"
# greenhub-c-libs links the system's libpq and libcurl, which are x86-64 here.
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}/aarch64 \
  cargo test --workspace --all-features --exclude greenhub-c-libs --no-fail-fast --target aarch64-unknown-linux-gnu "$@"
