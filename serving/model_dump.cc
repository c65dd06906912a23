#include "serving/model_dump.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "data/byte_source.h"
#include "data/line_parser.h"
#include "data/reader.h"
#include "ps/base/env.h"
#include "ps/base/keys.h"
#include "serving/model_export.h"

namespace fmps {
namespace {

std::vector<std::string_view> Split(std::string_view line, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t at = line.find(sep, start);
    out.push_back(line.substr(start, at == std::string_view::npos ? line.npos : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

std::vector<std::string_view> Tokens(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

// The (field, text) pairs the reader of `format` makes keys of, from one line; lines it would
// refuse give what they can (a name is only a label).
std::vector<std::pair<uint32_t, std::string>> FieldTexts(DataFormat format, std::string_view line) {
  std::vector<std::pair<uint32_t, std::string>> out;
  if (format == DataFormat::kCriteo) {
    const auto cols = Split(line, '\t');
    for (size_t c = 1; c < cols.size() && c <= kCriteoFields; ++c) {
      if (!cols[c].empty()) out.emplace_back(static_cast<uint32_t>(c - 1), std::string(cols[c]));
    }
  } else if (format == DataFormat::kAvazu) {
    const auto cols = Split(line, ',');
    if (cols.size() != kAvazuColumns || cols[2].size() != 8) return out;
    const std::string hour(cols[2]);
    if (hour.find_first_not_of("0123456789") != std::string::npos) return out;
    const int yy = std::stoi(hour.substr(0, 2)), mm = std::stoi(hour.substr(2, 2)),
              dd = std::stoi(hour.substr(4, 2)), hh = std::stoi(hour.substr(6, 2));
    out.emplace_back(0, std::to_string(hh));
    out.emplace_back(1, std::to_string(DayOfWeek(2000 + yy, mm, dd)));
    for (size_t c = 3; c < cols.size(); ++c) {
      if (!cols[c].empty()) out.emplace_back(static_cast<uint32_t>(c - 1), std::string(cols[c]));
    }
  } else {
    const auto tokens = Tokens(line);
    for (size_t t = 1; t < tokens.size(); ++t) {
      const auto parts = Split(tokens[t], ':');
      if (format == DataFormat::kLibffm && parts.size() == 3) {
        int64_t field;
        if (ParseInt(parts[0], &field) && field >= 0 && field < kMaxFields)
          out.emplace_back(static_cast<uint32_t>(field), std::string(parts[1]));
      } else if (format == DataFormat::kLibsvm && parts.size() == 2) {
        out.emplace_back(static_cast<uint32_t>(t - 1), std::string(parts[0]));
      }
    }
  }
  return out;
}

// Token text of every key in `keys` (sorted) that the data file holds: the first text seen.
Result<std::unordered_map<uint64_t, std::string>> NamesFrom(const std::string& path,
                                                            DataFormat format,
                                                            const std::vector<uint64_t>& keys) {
  Result<OpenedSource> opened = OpenByteSource(path, 0);
  if (!opened.ok()) return opened.status();
  std::unordered_map<uint64_t, std::string> names;
  std::string pending;
  std::vector<char> buffer(1 << 20);
  auto line_done = [&](std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    for (auto& [field, text] : FieldTexts(format, line)) {
      Result<uint64_t> key = FieldKey(format, field, text, 0);
      if (!key.ok() || !std::binary_search(keys.begin(), keys.end(), key.value())) continue;
      names.try_emplace(key.value(), std::move(text));
    }
  };
  while (true) {
    Result<size_t> n = opened->source->Read(buffer.data(), buffer.size());
    if (!n.ok()) return n.status();
    if (n.value() == 0) break;
    pending.append(buffer.data(), n.value());
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1)
      line_done(std::string_view(pending).substr(start, nl - start));
    pending.erase(0, start);
  }
  if (!pending.empty()) line_done(pending);
  return names;
}

}  // namespace

Result<DumpSummary> DumpModel(const DumpOptions& options, std::FILE* out) {
  if (options.by != "w" && options.by != "v")
    return Status::InvalidArgument("--by=" + options.by + ": expected w or v");
  Result<std::string> bytes = ReadFile(options.file);
  if (!bytes.ok()) return bytes.status();
  struct Row {
    uint64_t key;
    float w;
    std::vector<float> v;
    double norm;
  };
  std::vector<Row> rows;
  ExportHeader header;
  std::vector<float> dense;
  FMPS_RETURN_IF_ERROR(
      ReadExport(bytes.value(), options.file, &header, &dense, [&](const ExportRow& r) {
        Row row{r.key, r.w, std::vector<float>(r.rank), 0.0};
        if (r.rank > 0) std::memcpy(row.v.data(), r.v, size_t{r.rank} * sizeof(float));
        for (float x : row.v) row.norm += double(x) * x;
        row.norm = std::sqrt(row.norm);
        rows.push_back(std::move(row));
        return Status::OK();
      }));
  std::unordered_map<uint64_t, std::string> names;
  if (!options.names.empty()) {
    Result<DataFormat> format = ParseDataFormat(header.manifest.config().format());
    if (!format.ok()) return format.status();
    std::vector<uint64_t> keys;
    keys.reserve(rows.size());
    for (const Row& r : rows) keys.push_back(r.key);  // sorted: the file keeps key order
    Result<std::unordered_map<uint64_t, std::string>> found =
        NamesFrom(options.names, format.value(), keys);
    if (!found.ok()) return found.status();
    names = std::move(found.value());
  }
  if (options.top > 0) {
    const bool by_w = options.by == "w";
    const size_t n = std::min<size_t>(options.top, rows.size());
    std::partial_sort(rows.begin(), rows.begin() + n, rows.end(), [by_w](const Row& a, const Row& b) {
      const double x = by_w ? std::fabs(a.w) : a.norm, y = by_w ? std::fabs(b.w) : b.norm;
      return x != y ? x > y : a.key < b.key;
    });
    rows.resize(n);
  }
  std::fprintf(out, "# fmps export %s: model %s, %d fields, k %d, checkpoint %lld, %llu rows\n",
               options.file.c_str(), header.manifest.config().model().c_str(),
               header.manifest.config().num_fields(), header.manifest.config().k(),
               static_cast<long long>(header.manifest.version()),
               static_cast<unsigned long long>(header.rows));
  std::fprintf(out, "# header %s\n# dense %zu:", header.json.c_str(), dense.size());
  for (float x : dense) std::fprintf(out, " %.9g", x);
  std::fprintf(out, "\n# key field w rank v[rank]%s\n", options.names.empty() ? "" : " [token]");
  DumpSummary summary;
  for (const Row& r : rows) {
    std::fprintf(out, "%llu %u %.9g %zu", static_cast<unsigned long long>(r.key), KeyField(r.key),
                 r.w, r.v.size());
    for (float x : r.v) std::fprintf(out, " %.9g", x);
    if (auto it = names.find(r.key); it != names.end()) {
      std::fprintf(out, " %s", it->second.c_str());
      ++summary.named;
    }
    std::fputc('\n', out);
    ++summary.rows;
  }
  if (std::fflush(out) != 0) return Status::IOError("cannot write the dump");
  return summary;
}

}  // namespace fmps
