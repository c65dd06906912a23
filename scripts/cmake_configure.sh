#!/usr/bin/env bash
# Usage: scripts/cmake_configure.sh BUILD_DIR [cmake args...]
# Configures the checkout this script lives in into BUILD_DIR. A build directory whose cache was made
# from another checkout (a copied work tree, a reused /tmp directory) is removed first: cmake refuses
# such a cache ("does not match the source ... used to generate cache").
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$1
shift
cache="$dir/CMakeCache.txt"
if [ -f "$cache" ] && ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$(pwd)" "$cache"; then
  echo "fmps: $dir was configured from another checkout; configuring it afresh" >&2
  rm -rf "$dir"
fi
cmake -S . -B "$dir" "$@" >/dev/null
