// Serialisation of a Store shard. Layout (little-endian):
//   "FMPSSHD1" | version u32 | max width u32 (options fingerprint) | rows u64
//   rows: key u64 | z f32 | n f32 | w f32 | count u32 | width u16 | V[width] f32 | acc[width] f32
//   XXH3-64 (Checksum64) of every preceding byte, u64
#include <algorithm>
#include <bit>
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
  uint64_t total = kHeaderBytes + kChecksumBytes + rows_.size() * kRowFixedBytes;
  total += embedding_floats_ * 2 * sizeof(float);
  out.reserve(total);
  out.append(kMagic, sizeof(kMagic));
  Put(&out, kVersion);
  Put(&out, options_.policy.MaxWidth());
  Put(&out, rows_.size());
  for (uint64_t r = 0; r < rows_.size(); ++r) {
    const BaseRow& row = rows_[static_cast<uint32_t>(r)];
    Put(&out, row.key());
    Put(&out, row.z);
    Put(&out, row.n);
    Put(&out, row.w);
    Put(&out, static_cast<uint32_t>(row.count));
    const uint32_t width = WidthOf(row.embedding);
    Put(&out, static_cast<uint16_t>(width));
    if (width > 0)
      out.append(reinterpret_cast<const char*>(EmbeddingOf(row.embedding)),
                 2 * width * sizeof(float));
  }
  Put(&out, Checksum64(out.data(), out.size()));
  return out;
}

Status Store::Impl::Load(std::string_view bytes, const std::string& source_name) {
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
  if (max_width != options_.policy.MaxWidth()) {
    return corrupt("written for max width " + std::to_string(max_width) +
                   ", this store is configured for " + std::to_string(options_.policy.MaxWidth()));
  }
  const auto num_rows = in.Get<uint64_t>();
  const uint64_t body = bytes.size() - kHeaderBytes - kChecksumBytes;
  if (num_rows > body / kRowFixedBytes) {
    return corrupt("header claims " + std::to_string(num_rows) + " rows but only " +
                   std::to_string(body) + " bytes follow: truncated at byte " +
                   std::to_string(bytes.size()));
  }
  index_.Reset(num_rows);
  const KeyOf key_of{&rows_};
  for (uint64_t i = 0; i < num_rows; ++i) {
    const size_t row_start = in.offset();
    if (!in.Has(kRowFixedBytes)) {
      return corrupt("truncated at byte " + std::to_string(bytes.size()) + " inside row " +
                     std::to_string(i) + " of " + std::to_string(num_rows) + " (starts at byte " +
                     std::to_string(row_start) + ")");
    }
    const auto key = in.Get<uint64_t>();
    BaseRow row{static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32), 0, 0, 0, 0, 0, 0};
    row.z = in.Get<float>();
    row.n = in.Get<float>();
    row.w = in.Get<float>();
    row.count = static_cast<uint16_t>(std::min<uint32_t>(in.Get<uint32_t>(), BaseRow::kMaxCount));
    row.stamp = epoch_;  // a loaded row starts its eviction clock now
    const uint32_t width = in.Get<uint16_t>();
    if (width > max_width) {
      return corrupt("bad width " + std::to_string(width) + " (max " + std::to_string(max_width) +
                     ") in row " + std::to_string(i) + " at byte " + std::to_string(row_start));
    }
    if (!in.Has(size_t{width} * 2 * sizeof(float))) {
      return corrupt("truncated at byte " + std::to_string(bytes.size()) +
                     " inside the embedding of row " + std::to_string(i) + " (starts at byte " +
                     std::to_string(row_start) + ")");
    }
    if (width > 0) {
      const uint32_t ref = AllocateRef(width);
      if (ref == 0) {
        return corrupt("too many distinct embedding widths or rows of width " +
                       std::to_string(width) + " (row " + std::to_string(i) + " at byte " +
                       std::to_string(row_start) + ")");
      }
      std::memcpy(EmbeddingOf(ref), in.Take(size_t{width} * 2 * sizeof(float)),
                  size_t{width} * 2 * sizeof(float));
      row.embedding = ref;
      ++embeddings_;
      embedding_floats_ += width;
    }
    bool inserted = false;
    index_.FindOrInsert(key, static_cast<uint32_t>(rows_.size()), key_of, &inserted);
    if (!inserted) {
      return corrupt("duplicate key " + std::to_string(key) + " in row " + std::to_string(i) +
                     " at byte " + std::to_string(row_start));
    }
    rows_.Append(row);
    nonzero_w_ += row.w != 0.0f;
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

}  // namespace fmps
