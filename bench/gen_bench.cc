// gen_bench: speed of the synthetic Criteo generator (datagen/) writing to /dev/null.
// Usage: gen_bench [rows=5000000] [planted=fm] [k=4]. Prints rows/s, MB/s and a JSON line.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "datagen/generator.h"

int main(int argc, char** argv) {
  fmps::datagen::GeneratorOptions options;
  options.rows = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 5000000;
  if (argc > 2) options.planted = argv[2];
  if (argc > 3) options.k = std::atoi(argv[3]);
  // Count bytes through a pipe would distort the figure; /dev/null plus a second, short run
  // into a temporary file gives the bytes per row.
  const int null_fd = ::open("/dev/null", O_WRONLY);
  if (null_fd < 0) {
    std::perror("open /dev/null");
    return 1;
  }
  auto result = fmps::datagen::GenerateCriteo(options, null_fd);
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
    if (sized.ok() && ::fstat(tmp_fd, &st) == 0) bytes_per_row = static_cast<double>(st.st_size) / sample.rows;
    ::close(tmp_fd);
    ::unlink(path);
  }
  const fmps::datagen::GeneratorResult& r = *result;
  const double rows_per_s = static_cast<double>(r.rows) / r.seconds;
  const double mb_per_s = rows_per_s * bytes_per_row / 1e6;
  std::printf("planted=%s k=%d rows=%llu seconds=%.3f\n", options.planted.c_str(), options.k,
              static_cast<unsigned long long>(r.rows), r.seconds);
  std::printf("rows/s %.0f\n", rows_per_s);
  std::printf("MB/s %.1f (%.1f bytes/row)\n", mb_per_s, bytes_per_row);
  std::printf("ctr %.4f oracle_logloss %.4f\n", static_cast<double>(r.positives) / r.rows, r.oracle_logloss);
  std::printf(
      "{\"bench\":\"gen\",\"planted\":\"%s\",\"k\":%d,\"rows\":%llu,\"seconds\":%.3f,\"rows_per_s\":%.0f,"
      "\"mb_per_s\":%.1f,\"ctr\":%.4f,\"oracle_logloss\":%.4f}\n",
      options.planted.c_str(), options.k, static_cast<unsigned long long>(r.rows), r.seconds, rows_per_s,
      mb_per_s, static_cast<double>(r.positives) / r.rows, r.oracle_logloss);
  return 0;
}
