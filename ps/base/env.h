// Env: the one door to the operating system (files, clock, memory readings), so that tests can
// reason about and inject faults at a single place.
#ifndef FMPS_PS_BASE_ENV_H_
#define FMPS_PS_BASE_ENV_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ps/base/status.h"

namespace fmps {

// Writes `contents` to `path` via a temporary file in the same directory: write, fsync, rename,
// fsync the directory. Readers see the old file or the new one, never a torn one.
Status WriteFileAtomic(const std::string& path, std::string_view contents);

// Reads a whole file.
Result<std::string> ReadFile(const std::string& path);

// Creates a directory and its parents if missing.
Status MakeDirs(const std::string& path);

// Expands a data specification: a comma list of files, globs and directories (a directory
// stands for its regular files, sorted) and "-" for stdin. Errors name what matched nothing.
Result<std::vector<std::string>> ExpandPaths(const std::string& spec);

// Size of a regular file in bytes.
Result<uint64_t> FileSize(const std::string& path);

// Monotonic seconds.
double NowSeconds();

// Resident set size of this process now and at its peak (bytes), from /proc/self/status.
int64_t CurrentRssBytes();
int64_t PeakRssBytes();

}  // namespace fmps

#endif  // FMPS_PS_BASE_ENV_H_
