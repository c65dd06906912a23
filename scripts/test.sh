#!/usr/bin/env bash
# README command 2: install what is missing, build (warnings are errors) and run the whole test suite.
# Then builds the unit tests under AddressSanitizer + UBSan and runs them (FMPS_SANITIZE=0 skips it),
# and runs each libFuzzer harness for FMPS_FUZZ_SECONDS (default 15; 0 skips; installs clang-14).
set -euo pipefail
cd "$(dirname "$0")/.."
# Everything the suite needs in one apt-get run: the build, sshd and Slurm for the launcher tests, clang for
# the fuzzers.
FUZZ=0
[ "${FMPS_FUZZ_SECONDS:-15}" != "0" ] && FUZZ=1
FMPS_TEST=1 FMPS_FUZZ=$FUZZ bash scripts/deps.sh
bash scripts/build.sh
(cd build && FMPS_REQUIRE_SSHD=1 FMPS_REQUIRE_SLURM=1 FMPS_REQUIRE_PROMETHEUS=1 ctest --output-on-failure -j 2 --timeout 600)
if [ "${FMPS_SANITIZE:-1}" = "1" ]; then
  # Portable (FMPS_NATIVE=OFF) as well: the code paths of builds for other machines (the image's)
  # compile with -Werror and pass the tests too.
  BUILD_DIR=build-asan bash scripts/build.sh -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFMPS_SANITIZE=ON -DFMPS_NATIVE=OFF
  (cd build-asan && ctest --output-on-failure -j 2 --timeout 900 -LE "slow|netns|launch")
fi
if [ "${FMPS_FUZZ_SECONDS:-15}" != "0" ]; then
  bash scripts/fuzz.sh "${FMPS_FUZZ_SECONDS:-15}"
fi
