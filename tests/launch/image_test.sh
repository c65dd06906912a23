#!/usr/bin/env bash
# The runtime stage of launch/k8s/Dockerfile without a container engine: a minimal Debian 12
# (debootstrap --variant=minbase, what debian:12-slim is made of) gets the Dockerfile's
# RUNTIME_PACKAGES with --no-install-recommends, the binary and k8s.sh where the Dockerfile copies
# them; then, chrooted there, every library resolves, `fmps gen` and a local-cluster `fmps train`
# run, and k8s.sh finds fmps on PATH (it refuses a pod index beyond the job, so it got that far).
# Usage: image_test.sh FMPS_BINARY. Needs root and debootstrap (exit 77 = skipped otherwise, and
# when the Debian mirror cannot be reached, unless FMPS_REQUIRE_IMAGE=1). ~40 s, most of it fetching.
set -uo pipefail
FMPS=$(readlink -f "${1:?usage: image_test.sh FMPS_BINARY}")
REPO=$(cd "$(dirname "$0")/../.." && pwd)
DOCKERFILE=$REPO/launch/k8s/Dockerfile
skip() {
  echo "SKIP: $*"
  [ "${FMPS_REQUIRE_IMAGE:-0}" = 1 ] && exit 1
  exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot)"
command -v debootstrap >/dev/null || skip "debootstrap is not installed"
packages=$(sed -n 's/^ARG RUNTIME_PACKAGES="\(.*\)"/\1/p' "$DOCKERFILE")
[ -n "$packages" ] || { echo "FAIL: no ARG RUNTIME_PACKAGES=\"...\" in $DOCKERFILE"; exit 1; }
dest_fmps=$(sed -n 's|^COPY --from=build /build/launch/fmps \(.*\)|\1|p' "$DOCKERFILE")
dest_entry=$(sed -n 's|^COPY launch/k8s.sh \(.*\)|\1|p' "$DOCKERFILE")
[ -n "$dest_fmps" ] && [ -n "$dest_entry" ] || { echo "FAIL: the Dockerfile's COPY lines changed"; exit 1; }
# The mirror apt uses here (deb.debian.org unless the machine says otherwise).
mirror=$(grep -hE '^[[:space:]]*(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null |
  grep -oE 'https?://[^ ]+/debian/?([[:space:]]|$)' | head -1 | tr -d '[:space:]')
mirror=${mirror:-http://deb.debian.org/debian}

ROOT=$(mktemp -d /tmp/fmps-image.XXXXXX)
cleanup() {
  umount "$ROOT/proc" 2>/dev/null
  # --one-file-system: were the unmount to fail, rm must not descend into the mounted /proc.
  rm -rf --one-file-system "$ROOT"
}
trap cleanup EXIT
debootstrap --variant=minbase bookworm "$ROOT" "$mirror" > "$ROOT.log" 2>&1 ||
  { tail -3 "$ROOT.log"; rm -f "$ROOT.log"; skip "debootstrap from $mirror failed (no mirror?)"; }
rm -f "$ROOT.log"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
chroot "$ROOT" apt-get update -q > "$ROOT/apt.log" 2>&1 ||
  { tail -3 "$ROOT/apt.log"; skip "apt-get update in the new root failed (no mirror?)"; }
if ! chroot "$ROOT" bash -c "DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
     --no-install-recommends $packages" >> "$ROOT/apt.log" 2>&1; then
  tail -5 "$ROOT/apt.log"
  # A name Debian 12 does not have is the Dockerfile's fault; a failed download is the network's.
  grep -qE "Unable to locate package|has no installation candidate" "$ROOT/apt.log" &&
    { echo "FAIL: RUNTIME_PACKAGES ($packages) names a package Debian 12 does not have"; exit 1; }
  skip "apt-get install in the new root failed (network?)"
fi
mkdir -p "$ROOT$(dirname "$dest_fmps")" "$ROOT$(dirname "$dest_entry")"
cp "$FMPS" "$ROOT$dest_fmps"
cp "$REPO/launch/k8s.sh" "$ROOT$dest_entry"
# A proc of its own (fmps reads /proc/self); debootstrap made the device nodes of its /dev.
mount -t proc proc "$ROOT/proc" || { echo "FAIL: mounting proc in $ROOT"; exit 1; }
[ -c "$ROOT/dev/null" ] || { echo "FAIL: no /dev/null in the debootstrapped root"; exit 1; }

FAILED=0
fail() { echo "FAIL: $*"; FAILED=1; }
missing=$(chroot "$ROOT" ldd "$dest_fmps" | grep "not found")
[ -z "$missing" ] || fail "libraries missing from the image: $missing"
json=$(chroot "$ROOT" bash -c "cd /tmp && $dest_fmps gen --rows=100000 --seed=1 > train.txt 2>/dev/null &&
  $dest_fmps train --data=train.txt --num_servers=2 --num_workers=2 2>/dev/null | tail -1")
echo "in the image: $json"
grep -q '"rows":100000,' <<<"$json" || fail "fmps train in the image: '$json'"
out=$(chroot "$ROOT" env -i PATH=/usr/local/bin:/usr/bin:/bin JOB_COMPLETION_INDEX=9 HOSTNAME=fmps-9 \
  "$dest_entry" --num_servers=2 --num_workers=2 2>&1)
grep -q "completions and parallelism to 5" <<<"$out" || fail "k8s.sh in the image: '$out'"
for tool in bash getent awk hostname sleep; do  # what k8s.sh runs
  chroot "$ROOT" sh -c "command -v $tool" >/dev/null || fail "the image has no $tool, which k8s.sh needs"
done
[ $FAILED = 0 ] && echo "PASS: the Dockerfile's runtime stage runs fmps"
exit $FAILED
