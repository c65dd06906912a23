// reader_bench FILE [format]: reads a whole file with one Reader and prints rows, seconds, rows/s
// and MB/s (of the file's bytes on disk), then the same figures as one JSON line.
#include <cstdio>
#include <string>

#include "data/reader.h"
#include "ps/base/env.h"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: reader_bench FILE [criteo|avazu|libffm|libsvm|auto]\n");
    return 2;
  }
  fmps::ReaderOptions options;
  options.format = fmps::DataFormat::kAuto;
  if (argc == 3) {
    fmps::Result<fmps::DataFormat> format = fmps::ParseDataFormat(argv[2]);
    if (!format.ok()) {
      std::fprintf(stderr, "%s\n", format.status().ToString().c_str());
      return 2;
    }
    options.format = *format;
  }
  fmps::DataPart part;
  part.path = argv[1];
  uint64_t file_bytes = 0;
  if (part.path != "-") {
    fmps::Result<uint64_t> size = fmps::FileSize(part.path);
    if (size.ok()) file_bytes = *size;
  }
  const double start = fmps::NowSeconds();
  fmps::Result<std::unique_ptr<fmps::Reader>> reader = fmps::Reader::Open(part, options);
  if (!reader.ok()) {
    std::fprintf(stderr, "%s\n", reader.status().ToString().c_str());
    return 1;
  }
  fmps::Minibatch batch;
  uint64_t rows = 0, entries = 0;
  for (;;) {
    batch.Clear();
    fmps::Result<size_t> n = (*reader)->Read(4096, &batch);
    if (!n.ok()) {
      std::fprintf(stderr, "%s\n", n.status().ToString().c_str());
      return 1;
    }
    if (*n == 0) break;
    rows += *n;
    entries += batch.entries();
  }
  const double seconds = fmps::NowSeconds() - start;
  const double rows_per_s = seconds > 0 ? static_cast<double>(rows) / seconds : 0;
  const double mb_per_s = seconds > 0 ? static_cast<double>(file_bytes) / 1e6 / seconds : 0;
  std::printf("rows %llu\n", static_cast<unsigned long long>(rows));
  std::printf("lines %llu\n", static_cast<unsigned long long>((*reader)->lines_read()));
  std::printf("bad_lines %llu\n", static_cast<unsigned long long>((*reader)->bad_lines()));
  std::printf("entries %llu\n", static_cast<unsigned long long>(entries));
  std::printf("seconds %.3f\n", seconds);
  std::printf("rows_per_s %.0f\n", rows_per_s);
  std::printf("mb_per_s %.1f\n", mb_per_s);
  std::printf(
      "{\"bench\":\"reader\",\"file\":\"%s\",\"rows\":%llu,\"lines\":%llu,\"bad_lines\":%llu,"
      "\"seconds\":%.3f,\"rows_per_s\":%.0f,\"mb_per_s\":%.1f}\n",
      part.path.c_str(), static_cast<unsigned long long>(rows),
      static_cast<unsigned long long>((*reader)->lines_read()),
      static_cast<unsigned long long>((*reader)->bad_lines()), seconds, rows_per_s, mb_per_s);
  return 0;
}
