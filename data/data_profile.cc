#include "data/data_profile.h"

#include <cstdio>
#include <memory>
#include <unordered_set>

#include "data/byte_source.h"

namespace fmps {
namespace {

// 1234567 -> "1,234,567"
std::string Grouped(uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace

Result<DataProfile> ProfileData(const std::vector<std::string>& paths,
                                const DataProfileOptions& options) {
  DataProfile profile;
  std::unordered_set<uint64_t> keys;
  uint64_t bytes_sampled = 0, total_bytes = 0;
  bool sizes_known = true;
  profile.whole = true;
  for (const std::string& path : paths) {
    if (IsStream(path, options.env)) {
      return Status::InvalidArgument((path == "-" ? std::string("stdin") : path) +
                                     " is a stream: it cannot be sampled before training");
    }
    Result<uint64_t> size = FileSize(path, options.env);
    sizes_known = sizes_known && size.ok();
    if (size.ok()) total_bytes += size.value();
    if (!profile.whole) continue;  // only the sizes of the files after the sample
    ReaderOptions ro;
    ro.format = options.format;
    ro.num_fields = options.num_fields;
    ro.holdout = options.holdout;
    ro.holdout_rows = options.holdout > 0 ? HoldoutRows::kSkipHoldout : HoldoutRows::kAll;
    ro.on_bad_line = [](const std::string&) {};  // training reports them
    ro.env = options.env;
    Result<std::unique_ptr<Reader>> reader = Reader::Open(DataPart{path}, ro);
    if (!reader.ok()) return reader.status();
    Minibatch batch;
    for (;;) {
      if (profile.rows >= options.max_rows ||
          bytes_sampled + reader.value()->offset() >= options.max_bytes) {
        profile.whole = false;
        break;
      }
      batch.Clear();
      const size_t want =
          static_cast<size_t>(std::min<uint64_t>(1000, options.max_rows - profile.rows));
      Result<size_t> n = reader.value()->Read(want, &batch);
      if (!n.ok()) return n.status();
      if (n.value() == 0) break;
      profile.rows += batch.rows();
      profile.entries += batch.entries();
      keys.insert(batch.keys.begin(), batch.keys.end());
    }
    bytes_sampled += reader.value()->offset();
  }
  profile.distinct_features = keys.size();
  if (profile.whole) {
    profile.estimated_rows = profile.rows;
  } else if (sizes_known && bytes_sampled > 0) {
    profile.estimated_rows =
        static_cast<uint64_t>(static_cast<double>(profile.rows) * total_bytes / bytes_sampled);
  } else {
    profile.estimated_rows = profile.rows;
  }
  return profile;
}

std::string DescribeProfile(const DataProfile& p) {
  char buf[160];
  std::snprintf(buf, sizeof(buf),
                "%s rows sampled%s, %.1f fields per row, %s features, %.1f per feature",
                Grouped(p.rows).c_str(), p.whole ? " (all)" : "", p.fields_per_row(),
                Grouped(p.distinct_features).c_str(), p.per_feature());
  std::string out = buf;
  if (!p.whole) out += ", about " + Grouped(p.estimated_rows) + " rows in all";
  return out;
}

}  // namespace fmps
