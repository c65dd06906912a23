#!/usr/bin/env bash
# Installs the Debian packages fmps builds with, if any is missing (apt-get update once, then install).
set -euo pipefail
PACKAGES=(cmake g++ make pkg-config libzmq3-dev cppzmq-dev libprotobuf-dev protobuf-compiler libboost-dev
          libgoogle-glog-dev libgflags-dev libgtest-dev zlib1g-dev libzstd-dev libxxhash-dev zstd gzip python3)
# OPTIONAL, fuzz build only (scripts/fuzz.sh sets FMPS_FUZZ=1): clang with libFuzzer. The normal build never needs it.
if [ "${FMPS_FUZZ:-0}" = 1 ]; then PACKAGES+=(clang-14 libclang-rt-14-dev llvm-14); fi
# OPTIONAL, test suite only (scripts/test.sh sets FMPS_TEST=1): sshd and Slurm for the launcher tests,
# python3-yaml and debootstrap for the Kubernetes manifest's and image's, prometheus for the /metrics test.
if [ "${FMPS_TEST:-0}" = 1 ]; then
  PACKAGES+=(openssh-server openssh-client slurmctld slurmd slurm-client munge python3-yaml debootstrap
             prometheus)
fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing: ${missing[*]}" >&2
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi
