// gen_bench: speed of the synthetic Criteo generator (datagen/) writing to /dev/null.
// Usage: gen_bench [rows=5000000] [planted=fm] [k=4] [table_tokens=default] [vocab_scale=1].
// Prints rows/s, MB/s and a JSON line.
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "datagen/generator.h"

namespace {
// CPU seconds of this process: on a shared machine wall time also counts other people's work.
double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}
}  // namespace

int main(int argc, char** argv) {
  fmps::datagen::GeneratorOptions options;
  options.rows = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 5000000;
  if (argc > 2) options.planted = argv[2];
  if (argc > 3) options.k = std::atoi(argv[3]);
  if (argc > 4) options.table_tokens = std::strtoull(argv[4], nullptr, 10);
  if (argc > 5) options.vocab_scale = std::strtod(argv[5], nullptr);
  // Count bytes through a pipe would distort the figure; /dev/null plus a second, short run
  // into a temporary file gives the bytes per row.
  const int null_fd = ::open("/dev/null", O_WRONLY);
  if (null_fd < 0) {
    std::perror("open /dev/null");
    return 1;
  }
  const double cpu_start = CpuSeconds();
  auto result = fmps::datagen::GenerateCriteo(options, null_fd);
  const double cpu_seconds = CpuSeconds() - cpu_start;
  ::close(null_fd);
  if (!result.ok()) {
    std::fprintf(stderr, "gen_bench: %s\n", result.status().ToString().c_str());
    return 1;
  }
  char path[] = "/tmp/gen_bench_XXXXXX";
  const int tmp_fd = ::mkstemp(path);
  double bytes_per_row = 0;
  if (tmp_fd >= 0) {
    fmps::datagen::GeneratorOptions sample = options;
    sample.rows = 100000;
    auto sized = fmps::datagen::GenerateCriteo(sample, tmp_fd);
    struct stat st {};
    if (sized.ok() && ::fstat(tmp_fd, &st) == 0)
      bytes_per_row = static_cast<double>(st.st_size) / sample.rows;
    ::close(tmp_fd);
    ::unlink(path);
  }
  const fmps::datagen::GeneratorResult& r = *result;
  const double rows_per_s = static_cast<double>(r.rows) / r.seconds;
  const double mb_per_s = rows_per_s * bytes_per_row / 1e6;
  std::printf("planted=%s k=%d rows=%llu seconds=%.3f\n", options.planted.c_str(), options.k,
              static_cast<unsigned long long>(r.rows), r.seconds);
  const double rows_per_cpu_s = static_cast<double>(r.rows) / cpu_seconds;
  std::printf("rows/s %.0f (wall), %.0f per CPU second\n", rows_per_s, rows_per_cpu_s);
  std::printf("MB/s %.1f (%.1f bytes/row)\n", mb_per_s, bytes_per_row);
  std::printf("ctr %.4f oracle_logloss %.4f\n", static_cast<double>(r.positives) / r.rows,
              r.oracle_logloss);
  std::printf(
      "{\"bench\":\"gen\",\"planted\":\"%s\",\"k\":%d,\"rows\":%llu,\"seconds\":%.3f,\"rows_per_"
      "s\":%.0f,\"rows_per_cpu_s\":%.0f,"
      "\"mb_per_s\":%.1f,\"ctr\":%.4f,\"oracle_logloss\":%.4f}\n",
      options.planted.c_str(), options.k, static_cast<unsigned long long>(r.rows), r.seconds,
      rows_per_s, rows_per_cpu_s, mb_per_s, static_cast<double>(r.positives) / r.rows,
      r.oracle_logloss);
  return 0;
}
