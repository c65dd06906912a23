// field_scan_bench FORMAT FILE...: the field scan a job runs before it starts (data/field_scan.h)
// over whole files; prints fields, where the largest first appears, lines, MB, seconds and MB/s
// (decoded bytes), then the same figures as one JSON line.
#include <cstdio>
#include <string>
#include <vector>

#include "data/field_scan.h"
#include "ps/base/env.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: field_scan_bench libffm|libsvm FILE...\n");
    return 2;
  }
  fmps::Result<fmps::DataFormat> format = fmps::ParseDataFormat(argv[1]);
  if (!format.ok()) {
    std::fprintf(stderr, "%s\n", format.status().ToString().c_str());
    return 2;
  }
  const std::vector<std::string> paths(argv + 2, argv + argc);
  const double start = fmps::NowSeconds();
  fmps::Result<fmps::FieldScan> scan = fmps::ScanFields(paths, *format);
  const double seconds = fmps::NowSeconds() - start;
  if (!scan.ok()) {
    std::fprintf(stderr, "%s\n", scan.status().ToString().c_str());
    return 1;
  }
  const double mb = static_cast<double>(scan->bytes) / 1e6;
  const double mb_per_s = seconds > 0 ? mb / seconds : 0;
  std::printf("fields %d\nfirst_seen %s\nlines %llu\nmb %.1f\nseconds %.3f\nmb_per_s %.1f\n",
              scan->num_fields, scan->first_seen.c_str(),
              static_cast<unsigned long long>(scan->lines), mb, seconds, mb_per_s);
  std::printf(
      "{\"bench\":\"field_scan\",\"fields\":%d,\"lines\":%llu,\"mb\":%.1f,\"seconds\":%.3f,"
      "\"mb_per_s\":%.1f}\n",
      scan->num_fields, static_cast<unsigned long long>(scan->lines), mb, seconds, mb_per_s);
  return 0;
}
