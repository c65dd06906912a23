#include "worker/part_cache.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>

#include "ps/base/keys.h"

namespace fmps {
namespace {
// Appends n items of T at *at (kept 4-byte aligned: every array holds 4- or 8-byte items, and the
// 8-byte keys come first at the start of an 8-aligned batch).
template <typename T>
std::byte* Put(std::byte* at, const T* items, size_t n) {
  std::memcpy(at, items, n * sizeof(T));
  return at + n * sizeof(T);
}
template <typename T>
const T* View(const std::byte** at, size_t n) {
  const T* items = reinterpret_cast<const T*>(*at);
  *at += n * sizeof(T);
  return items;
}
}  // namespace

std::string PartCacheName(const std::string& path, uint64_t begin, uint64_t end) {
  return path + "@" + std::to_string(begin) + "-" + std::to_string(end);
}

PartCache::~PartCache() {
  for (size_t i = 0; i < blocks_.size(); ++i) FreeBlock(i);
}

bool PartCache::Start(const std::string& name) {
  if (max_bytes_ == 0 || full_) return false;
  Release(name);
  entries_[name];
  return true;
}

std::byte* PartCache::Allocate(Entry* entry, uint64_t bytes) {
  bytes = (bytes + 7) & ~uint64_t{7};
  if (open_block_ != SIZE_MAX) {
    Block& open = blocks_[open_block_];
    if (open.used + bytes <= open.size) {
      if (entry->blocks.empty() || entry->blocks.back() != open_block_) {
        entry->blocks.push_back(open_block_);
        ++open.users;
      }
      std::byte* at = open.base + open.used;
      open.used += bytes;
      return at;
    }
  }
  const uint64_t size = std::max(std::min(kBlockBytes, max_bytes_), bytes);
  if (bytes_ + size > max_bytes_) return nullptr;
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return nullptr;
  // No MADV_HUGEPAGE: each fault would clear 2 MB at once, which slowed the first epoch and did not
  // speed up the replayed ones (docs/performance-log.md).
  size_t index;
  if (!free_slots_.empty()) {
    index = free_slots_.back();
    free_slots_.pop_back();
  } else {
    index = blocks_.size();
    blocks_.emplace_back();
  }
  blocks_[index] = Block{static_cast<std::byte*>(base), size, bytes, 1};
  bytes_ += size;
  open_block_ = index;
  entry->blocks.push_back(index);
  return blocks_[index].base;
}

void PartCache::FreeBlock(size_t index) {
  Block& block = blocks_[index];
  if (block.base == nullptr) return;
  ::munmap(block.base, block.size);
  bytes_ -= block.size;
  block = Block{};
  free_slots_.push_back(index);
  if (open_block_ == index) open_block_ = SIZE_MAX;
}

bool PartCache::Add(const std::string& name, const LocalBatch& batch) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return false;
  Batch c;
  c.rows = static_cast<uint32_t>(batch.rows());
  c.entries = static_cast<uint32_t>(batch.index.size());
  c.keys = static_cast<uint32_t>(batch.keys.size());
  c.wide_index = batch.keys.size() > (size_t{1} << 16);
  c.has_values =
      std::any_of(batch.values.begin(), batch.values.end(), [](float v) { return v != 1.0f; });
  const uint64_t bytes = c.keys * sizeof(uint64_t) + c.rows * sizeof(float) +
                         (c.rows + 1) * sizeof(uint32_t) +
                         c.entries * (c.wide_index ? sizeof(uint32_t) : sizeof(uint16_t)) +
                         (c.has_values ? c.entries * sizeof(float) : 0);
  std::byte* at = Allocate(&it->second, bytes);
  if (at == nullptr) {
    full_ = true;
    Release(name);
    return false;
  }
  c.data = at;
  at = Put(at, batch.keys.data(), c.keys);
  at = Put(at, batch.labels.data(), c.rows);
  at = Put(at, batch.offsets.data(), c.rows + 1);
  if (c.wide_index) {
    at = Put(at, batch.index.data(), c.entries);
  } else {
    uint16_t* index = reinterpret_cast<uint16_t*>(at);
    for (uint32_t e = 0; e < c.entries; ++e) index[e] = static_cast<uint16_t>(batch.index[e]);
    at += c.entries * sizeof(uint16_t);
  }
  if (c.has_values) Put(at, batch.values.data(), c.entries);
  it->second.batches.push_back(c);
  return true;
}

void PartCache::Finish(const std::string& name, uint64_t lines, uint64_t bad_lines,
                       uint64_t held_out) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return;
  it->second.lines = lines;
  it->second.bad_lines = bad_lines;
  it->second.held_out = held_out;
  it->second.complete = true;
}

const PartCache::Entry* PartCache::Find(const std::string& name) const {
  auto it = entries_.find(name);
  return it != entries_.end() && it->second.complete ? &it->second : nullptr;
}

void PartCache::Release(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return;
  for (size_t index : it->second.blocks) {
    if (--blocks_[index].users == 0) FreeBlock(index);
  }
  entries_.erase(it);
}

void PartCache::DropIncomplete() {
  std::vector<std::string> names;
  for (const auto& [name, entry] : entries_) {
    if (!entry.complete) names.push_back(name);
  }
  for (const std::string& name : names) Release(name);
}

void PartCache::Expand(const Batch& cached, LocalBatch* out) {
  const std::byte* at = cached.data;
  const uint64_t* keys = View<uint64_t>(&at, cached.keys);
  const float* labels = View<float>(&at, cached.rows);
  const uint32_t* offsets = View<uint32_t>(&at, cached.rows + 1);
  out->keys.assign(keys, keys + cached.keys);
  out->labels.assign(labels, labels + cached.rows);
  out->offsets.assign(offsets, offsets + cached.rows + 1);
  out->mixed.resize(cached.keys);
  for (uint32_t i = 0; i < cached.keys; ++i) out->mixed[i] = Mix64(keys[i]);
  const size_t n = cached.entries;
  if (cached.wide_index) {
    const uint32_t* index = View<uint32_t>(&at, n);
    out->index.assign(index, index + n);
  } else {
    const uint16_t* index = View<uint16_t>(&at, n);
    out->index.assign(index, index + n);
  }
  if (cached.has_values) {
    const float* values = View<float>(&at, n);
    out->values.assign(values, values + n);
  } else {
    out->values.assign(n, 1.0f);
  }
  out->counts.assign(cached.keys, 0);
  out->fields.resize(n);
  const uint32_t* index = out->index.data();
  uint32_t* counts = out->counts.data();
  uint8_t* fields = out->fields.data();
  for (size_t e = 0; e < n; ++e) {
    const uint32_t id = index[e];
    ++counts[id];
    fields[e] = static_cast<uint8_t>(KeyField(keys[id]));
  }
}

}  // namespace fmps
