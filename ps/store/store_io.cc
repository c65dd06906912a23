// Serialisation of a Store shard. Layout (little-endian):
//   "FMPSSHD1" | version u32 | max width u32 (options fingerprint) | rows u64
//   rows: key u64 | z f32 | n f32 | w f32 | count u32 | width u16 | V[width] f32 | acc[width] f32
//   XXH3-64 (Checksum64) of every preceding byte, u64
#include <glog/logging.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>

#include "ps/base/keys.h"
#include "ps/store/store_impl.h"

namespace fmps {
namespace {

static_assert(std::endian::native == std::endian::little, "the shard format is little-endian");

constexpr char kMagic[8] = {'F', 'M', 'P', 'S', 'S', 'H', 'D', '1'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 8 + 4 + 4 + 8;
constexpr size_t kRowFixedBytes = 8 + 4 + 4 + 4 + 4 + 2;
constexpr size_t kChecksumBytes = 8;

template <typename T>
void Put(std::string* out, const T& value) {
  out->append(reinterpret_cast<const char*>(&value), sizeof(value));
}

// Bounds-checked reads from [data, data + limit); every failure names the byte offset.
class Reader {
 public:
  Reader(std::string_view bytes, size_t limit) : bytes_(bytes), limit_(limit) {}
  size_t offset() const { return offset_; }
  bool Has(size_t n) const { return n <= limit_ - offset_; }
  template <typename T>
  T Get() {
    T value;
    std::memcpy(&value, bytes_.data() + offset_, sizeof(T));
    offset_ += sizeof(T);
    return value;
  }
  const char* Take(size_t n) {
    const char* p = bytes_.data() + offset_;
    offset_ += n;
    return p;
  }

 private:
  std::string_view bytes_;
  size_t limit_;
  size_t offset_ = 0;
};

}  // namespace

std::string Store::Impl::Serialize() const {
  std::string out;
  uint64_t total = kHeaderBytes + kChecksumBytes + map_.size() * kRowFixedBytes;
  total += embedding_floats_ * 2 * sizeof(float);
  out.reserve(total);
  out.append(kMagic, sizeof(kMagic));
  Put(&out, kVersion);
  Put(&out, options_.policy.MaxWidth());
  Put(&out, map_.size());
  for (RowMap::Position p = map_.Begin(); !map_.AtEnd(p); p = map_.Next(p)) {
    const RowState& row = map_.RowAt(p);
    Put(&out, map_.KeyAt(p));
    Put(&out, Z(row));
    Put(&out, row.n());
    Put(&out, W(row));
    Put(&out, static_cast<uint32_t>(row.count));
    const uint32_t width = WidthOf(row.ref());
    Put(&out, static_cast<uint16_t>(width));
    if (width > 0)  // V and accumulators follow z in the arena row
      out.append(reinterpret_cast<const char*>(EmbeddingOf(row.ref()) + 1),
                 2 * width * sizeof(float));
  }
  Put(&out, Checksum64(out.data(), out.size()));
  return out;
}

Status Store::ScanShard(std::string_view bytes, uint32_t max_width_expected,
                        const std::string& source_name,
                        const std::function<Status(const ShardRow& row)>& fn) {
  auto corrupt = [&](const std::string& what) {
    return Status::Corruption(source_name + ": " + what);
  };
  if (bytes.size() < kHeaderBytes + kChecksumBytes) {
    return corrupt("truncated at byte " + std::to_string(bytes.size()) + ": a shard has at least " +
                   std::to_string(kHeaderBytes + kChecksumBytes) + " bytes");
  }
  Reader in(bytes, bytes.size() - kChecksumBytes);
  if (std::memcmp(in.Take(sizeof(kMagic)), kMagic, sizeof(kMagic)) != 0) {
    return corrupt("bad magic at byte 0 (not a store shard)");
  }
  const auto version = in.Get<uint32_t>();
  if (version != kVersion) {
    return corrupt("unsupported version " + std::to_string(version) + " at byte 8");
  }
  const auto max_width = in.Get<uint32_t>();
  if (max_width != max_width_expected) {
    return corrupt("written for max width " + std::to_string(max_width) +
                   ", this store is configured for " + std::to_string(max_width_expected));
  }
  const auto num_rows = in.Get<uint64_t>();
  const uint64_t body = bytes.size() - kHeaderBytes - kChecksumBytes;
  if (num_rows > body / kRowFixedBytes) {
    return corrupt("header claims " + std::to_string(num_rows) + " rows but only " +
                   std::to_string(body) + " bytes follow: truncated at byte " +
                   std::to_string(bytes.size()));
  }
  ShardRow row;
  for (uint64_t i = 0; i < num_rows; ++i) {
    const size_t row_start = in.offset();
    if (!in.Has(kRowFixedBytes)) {
      return corrupt("truncated at byte " + std::to_string(bytes.size()) + " inside row " +
                     std::to_string(i) + " of " + std::to_string(num_rows) + " (starts at byte " +
                     std::to_string(row_start) + ")");
    }
    row.index = i;
    row.offset = row_start;
    row.key = in.Get<uint64_t>();
    row.z = in.Get<float>();
    row.n = in.Get<float>();
    row.w = in.Get<float>();
    row.count = in.Get<uint32_t>();
    row.width = in.Get<uint16_t>();
    if (row.width > max_width) {
      return corrupt("bad width " + std::to_string(row.width) + " (max " +
                     std::to_string(max_width) + ") in row " + std::to_string(i) + " at byte " +
                     std::to_string(row_start));
    }
    const size_t floats = size_t{row.width} * sizeof(float);
    if (!in.Has(2 * floats)) {
      return corrupt("truncated at byte " + std::to_string(bytes.size()) +
                     " inside the embedding of row " + std::to_string(i) + " (starts at byte " +
                     std::to_string(row_start) + ")");
    }
    row.v = in.Take(floats);  // V and accumulators follow the fixed part
    row.acc = in.Take(floats);
    FMPS_RETURN_IF_ERROR(fn(row));
  }
  if (in.offset() != bytes.size() - kChecksumBytes) {
    return corrupt(std::to_string(bytes.size() - kChecksumBytes - in.offset()) +
                   " unexpected bytes after the last row at byte " + std::to_string(in.offset()));
  }
  uint64_t stored;
  std::memcpy(&stored, bytes.data() + in.offset(), sizeof(stored));
  const uint64_t computed = Checksum64(bytes.data(), in.offset());
  if (stored != computed) {
    return corrupt("checksum mismatch at byte " + std::to_string(in.offset()) + " (stored " +
                   std::to_string(stored) + ", computed " + std::to_string(computed) + ")");
  }
  return Status::OK();
}

float Store::WeightOf(const ShardRow& row, const StoreOptions& options) {
  // A store keeps n without its sign (RowState::set_n), as Load below does.
  return FtrlWeight(row.z, std::fabs(row.n), options.ftrl);
}

Status Store::Impl::Load(std::string_view bytes, const std::string& source_name,
                         const std::function<bool(uint64_t key)>& keep) {
  uint64_t rows = 0;
  uint64_t recomputed_w = 0;  // rows whose stored w differs from FTRL's closed form here
  const uint64_t rows_before = map_.size();
  FMPS_RETURN_IF_ERROR(Store::ScanShard(
      bytes, options_.policy.MaxWidth(), source_name, [&](const ShardRow& r) -> Status {
        if (keep && !keep(r.key)) return Status::OK();
        bool inserted = false;
        RowState* row = map_.FindOrInsert(r.key, &inserted);
        if (!inserted) {
          return Status::Corruption(source_name + ": duplicate key " + std::to_string(r.key) +
                                    " in row " + std::to_string(r.index) + " at byte " +
                                    std::to_string(r.offset) +
                                    (rows_before > 0 ? " (or already in an earlier shard)" : ""));
        }
        row->set_n(r.n);  // a negative n (never written by a store) loses its sign
        row->count = static_cast<uint16_t>(std::min<uint32_t>(r.count, RowState::kMaxCount));
        row->stamp = epoch_;  // a loaded row starts its eviction clock now
        row->set_inline_z(r.z);
        if (r.width > 0) {
          const uint32_t ref = AllocateRef(r.width);
          if (ref == 0) {
            return Status::Corruption(source_name +
                                      ": too many distinct embedding widths or rows of width " +
                                      std::to_string(r.width) + " (row " + std::to_string(r.index) +
                                      " at byte " + std::to_string(r.offset) + ")");
          }
          float* embedding = EmbeddingOf(ref);
          embedding[0] = r.z;
          // V then the accumulators: contiguous in the shard as in the arena row.
          std::memcpy(embedding + 1, r.v, size_t{r.width} * 2 * sizeof(float));
          row->z_or_ref = ref;
          row->n_bits |= RowState::kEmbeddedBit;
          ++embeddings_;
          embedding_floats_ += r.width;
        }
        const float w_here = W(*row);
        recomputed_w += std::bit_cast<uint32_t>(w_here) != std::bit_cast<uint32_t>(r.w);
        nonzero_w_ += w_here != 0.0f;
        ++rows;
        return Status::OK();
      }));
  if (recomputed_w > 0) {
    // The store keeps z and n and derives w; a shard written under other FTRL parameters (or
    // with a NaN w) gets the w of this store's parameters.
    LOG(WARNING) << source_name << ": " << recomputed_w << " of " << rows
                 << " rows store a w other than FTRL's closed form of their (z, n) under this "
                    "store's parameters (written with other ftrl_* options?); w is recomputed";
  }
  return Status::OK();
}

}  // namespace fmps
