#!/usr/bin/env bash
# Configures and builds fmps (Release, warnings are errors) into ${BUILD_DIR:-build}.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
bash scripts/cmake_configure.sh "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DFMPS_WERROR=ON "$@"
cmake --build "$BUILD_DIR" -j "$(nproc)"
