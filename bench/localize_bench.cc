// localize_bench FILE [BATCH=2000] [ROWS=400000] [SERVERS=2]: parses ROWS rows of FILE (any format
// the reader sniffs) into minibatches of BATCH rows, then times the worker's Localizer over them
// (dedupe, index, group by server) for at least a second. Prints ns per entry, entries and unique
// keys per minibatch, then a JSON line.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "data/reader.h"
#include "ps/base/env.h"
#include "ps/postoffice.h"
#include "worker/localizer.h"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 5) {
    std::fprintf(stderr, "usage: localize_bench FILE [BATCH=2000] [ROWS=400000] [SERVERS=2]\n");
    return 2;
  }
  const size_t batch_rows = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 2000;
  const size_t max_rows = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 400000;
  const int servers = argc > 4 ? std::atoi(argv[4]) : 2;
  if (batch_rows == 0 || max_rows == 0 || servers < 1) {
    std::fprintf(stderr, "BATCH, ROWS and SERVERS must be positive\n");
    return 2;
  }
  fmps::DataPart part;
  part.path = argv[1];
  fmps::ReaderOptions options;
  options.format = fmps::DataFormat::kAuto;
  fmps::Result<std::unique_ptr<fmps::Reader>> reader = fmps::Reader::Open(part, options);
  if (!reader.ok()) {
    std::fprintf(stderr, "%s\n", reader.status().ToString().c_str());
    return 1;
  }
  std::vector<fmps::Minibatch> batches;
  size_t rows = 0, entries = 0;
  while (rows < max_rows) {
    fmps::Minibatch batch;
    fmps::Result<size_t> n = (*reader)->Read(std::min(batch_rows, max_rows - rows), &batch);
    if (!n.ok()) {
      std::fprintf(stderr, "%s\n", n.status().ToString().c_str());
      return 1;
    }
    if (*n == 0) break;
    rows += *n;
    entries += batch.entries();
    batches.push_back(std::move(batch));
  }
  if (batches.empty()) {
    std::fprintf(stderr, "%s: no rows\n", argv[1]);
    return 1;
  }
  fmps::Localizer localizer{fmps::KeyPartition(servers)};
  fmps::LocalBatch local;
  size_t passes = 0, unique = 0;
  const double start = fmps::NowSeconds();
  double seconds = 0;
  do {
    for (const fmps::Minibatch& b : batches) {
      localizer.Localize(b, 256, &local);
      unique += local.keys.size();
    }
    ++passes;
    seconds = fmps::NowSeconds() - start;
  } while (seconds < 1.0);
  const double ns_per_entry = seconds * 1e9 / static_cast<double>(entries * passes);
  const double per_batch = static_cast<double>(entries) / static_cast<double>(batches.size());
  const double unique_per_batch =
      static_cast<double>(unique) / static_cast<double>(batches.size() * passes);
  std::printf("minibatches %zu of %zu rows, %.0f entries and %.0f unique keys each\n",
              batches.size(), batch_rows, per_batch, unique_per_batch);
  std::printf("localize %.2f ns per entry (%zu passes in %.2f s)\n", ns_per_entry, passes, seconds);
  std::printf(
      "{\"bench\":\"localize\",\"batch_rows\":%zu,\"servers\":%d,\"entries_per_batch\":%.0f,"
      "\"unique_per_batch\":%.0f,\"ns_per_entry\":%.3f}\n",
      batch_rows, servers, per_batch, unique_per_batch, ns_per_entry);
  return 0;
}
