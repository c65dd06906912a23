#include "datagen/planted_model.h"

#include <glog/logging.h>
#include <sys/mman.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

namespace fmps::datagen {
namespace {

// Buckets per integer column: all small, like real Criteo after ln^2 bucketing.
constexpr uint64_t kIntVocab[kIntFields] = {12, 40, 60, 25, 100, 50, 30, 45, 70, 5, 20, 15, 35};
// Categorical vocabularies: tiny (2-50), medium (1e2-1e5) and a few large (1e5-1e6), in the
// spirit of Criteo's C1..C26.
constexpr uint64_t kCatVocab[kCatFields] = {
    1400, 550,   1000000, 200000, 300,  24,   12000, 630,    3,  90000, 5600,   800000, 3200,
    27,   14000, 500000,  10,     5600, 2200, 4,     600000, 18, 15,    150000, 105,    40000};
// Integer buckets the model knows; bucket 99 holds values up to e^10 ~ 22026.
constexpr uint64_t kMaxIntVocab = 100;
static_assert(*std::max_element(std::begin(kIntVocab), std::end(kIntVocab)) == kMaxIntVocab);
constexpr uint64_t kTinyVocab = 50;  // vocab_scale leaves vocabularies this small alone
constexpr uint64_t kMaxVocab = uint64_t{1} << 31;
constexpr int kMaxK = 64;
constexpr int kMaxDplrRank = 16;

uint64_t ScaledCatVocab(int c, double scale) {
  const uint64_t base = kCatVocab[c];
  if (base <= kTinyVocab) return base;
  const double scaled = std::round(static_cast<double>(base) * scale);
  return std::clamp<uint64_t>(static_cast<uint64_t>(std::max(scaled, 0.0)), kTinyVocab, kMaxVocab);
}

// sum_{f<g} <v_f,v_g> = (|sum_f v_f|^2 - sum_f |v_f|^2) / 2, in O(fields * k). K = 0: runtime k.
template <int K>
double FmPairs(const float* const* params, int runtime_k, double* linear) {
  constexpr int kCap = K > 0 ? K : kMaxK;
  const int k = K > 0 ? K : runtime_k;
  float sum[kCap] = {};
  float squares[kCap] = {};
  float w = 0;
  for (int f = 0; f < kFields; ++f) {
    const float* p = params[f];
    w += p[0];
    for (int c = 0; c < k; ++c) {
      sum[c] += p[1 + c];
      squares[c] += p[1 + c] * p[1 + c];
    }
  }
  *linear += w;
  double pairs = 0;
  for (int c = 0; c < k; ++c) pairs += static_cast<double>(sum[c]) * sum[c] - squares[c];
  return 0.5 * pairs;
}

double Sigmoid(double z) { return 1 / (1 + std::exp(-z)); }

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<PlantedKind> ParsePlantedKind(const std::string& name) {
  if (name == "fm") return PlantedKind::kFm;
  if (name == "fwfm") return PlantedKind::kFwfm;
  if (name == "dplr") return PlantedKind::kDplr;
  return Status::InvalidArgument("planted: unknown interaction structure '" + name +
                                 "' (expected fm, fwfm or dplr)");
}

int64_t CriteoIntBucket(int64_t x) {
  if (x <= 2) return x;
  const double l = std::log(static_cast<double>(x));
  return static_cast<int64_t>(std::floor(l * l));
}

Result<std::unique_ptr<PlantedModel>> PlantedModel::Create(const GeneratorOptions& options) {
  FMPS_RETURN_IF_ERROR(ValidateOptions(options));
  auto kind = ParsePlantedKind(options.planted);
  if (!kind.ok()) return kind.status();
  auto m = std::make_unique<PlantedModel>(PassKey());
  m->kind_ = *kind;
  m->k_ = options.k;
  // Row: w, v[k], then (categorical fields) the token's 8 hex chars in two floats' space, so one
  // cache line serves both the logit and the text; rounded up to 16 bytes.
  m->stride_ = (static_cast<size_t>(options.k) + 3 + 3) / 4 * 4;
  m->active_fields_ = options.active_fields;
  const double active = options.active_fields;
  const double active_pairs = std::max(active * (active - 1) / 2, 1.0);
  m->sigma_w_ = options.linear_std / std::sqrt(active);
  m->sigma_v_ = std::pow(
      options.interaction_std * options.interaction_std / (active_pairs * options.k), 0.25);

  const uint64_t head = std::max<uint64_t>(options.table_tokens, 1);
  m->samplers_.reserve(kFields);
  for (int f = 0; f < kFields; ++f) {
    uint64_t vocab =
        IsIntField(f) ? kIntVocab[f] : ScaledCatVocab(f - kIntFields, options.vocab_scale);
    if (options.field_vocab > 0)
      vocab = IsIntField(f) ? std::min(options.field_vocab, kMaxIntVocab) : options.field_vocab;
    if (m->active(f)) {
      m->samplers_.emplace_back(vocab, options.zipf_s, head, options.missing);
      m->empty_outcome_[f] = m->samplers_.back().empty_index();
    } else {
      m->samplers_.emplace_back(1, options.zipf_s, 1, 0.0);  // one outcome, read as empty
      m->empty_outcome_[f] = 0;
    }
    m->field_seed_[f] = Mix64(options.model_seed * 0x9e3779b97f4a7c15ULL + 2 * f + 1);
    m->string_salt_[f] = static_cast<uint32_t>(Mix64(m->field_seed_[f] ^ 0x5851f42d4c957f2dULL));
  }

  // Integer buckets up to the largest integer vocabulary. Values 1 and 2 are their own buckets
  // but share them with 3,4 and 5 (the reader's rule), so they are kept as extras.
  const uint64_t max_bucket = kMaxIntVocab;
  m->int_buckets_.resize(max_bucket);
  m->int_buckets_[0] = {0, 1, -1};
  for (int64_t x = 3;; ++x) {
    const int64_t b = CriteoIntBucket(x);
    if (b >= static_cast<int64_t>(max_bucket)) break;
    IntBucket& bucket = m->int_buckets_[b];
    if (bucket.count == 0) bucket.lo = x;
    ++bucket.count;
  }
  m->int_buckets_[1].extra = 1;
  m->int_buckets_[2].extra = 2;
  for (const IntBucket& b : m->int_buckets_) CHECK_GT(b.count, 0u);

  uint64_t total = 0;
  for (int f = 0; f < kFields; ++f) {
    m->table_offset_[f] = total;
    m->table_size_[f] = m->samplers_[f].head();
    total += m->table_size_[f] * m->stride_;
  }
  m->zero_params_.assign(m->stride_, 0.0f);
  FMPS_RETURN_IF_ERROR(m->AllocateTable(total));
  for (int f = 0; f < kFields; ++f) {
    for (uint64_t t = 0; t < m->table_size_[f]; ++t) {
      float* row = &m->table_[m->table_offset_[f] + t * m->stride_];
      m->ComputeParams(f, t, row);
      if (!IsIntField(f)) {
        char hex[8];
        m->TokenHex(f, t, hex);
        std::memcpy(row + 1 + m->k_, hex, 8);
      }
    }
  }
  m->BuildPairWeights(Mix64(options.model_seed ^ 0x27d4eb2f165667c5ULL), options.fwfm_strong_pairs,
                      options.fwfm_weak_std, options.dplr_rank);
  m->bias_ = m->SolveBias(options.bias_pilot_rows, options.target_ctr);
  return m;
}

void UnmapFloats::operator()(float* p) const {
  if (p != nullptr) munmap(p, bytes);
}

Status PlantedModel::AllocateTable(size_t floats) {
  constexpr size_t kHugePage = size_t{2} << 20;
  const size_t bytes =
      std::max<size_t>((floats * sizeof(float) + kHugePage - 1) / kHugePage * kHugePage, kHugePage);
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    return Status::IOError("planted model: cannot map " + std::to_string(bytes) +
                           " bytes of parameter table");
  }
  madvise(p, bytes, MADV_HUGEPAGE);  // advice only: fine if refused
  table_ = std::unique_ptr<float[], UnmapFloats>(static_cast<float*>(p), UnmapFloats{bytes});
  return Status::OK();
}

void PlantedModel::ComputeParams(int field, uint64_t token, float* out) const {
  // One mix of the key seeds a short wyrand stream: 1 + k values for the price of ~2 mixes.
  WyRand stream(field_seed_[field] + token * 0xd6e8feb86659fd93ULL);
  out[0] = static_cast<float>(sigma_w_) * NormalFromHash(stream.Next());
  for (int c = 0; c < k_; ++c)
    out[1 + c] = static_cast<float>(sigma_v_) * NormalFromHash(stream.Next());
}

float PlantedModel::Weight(int field, uint64_t token) const {
  float p[1 + kMaxK];
  ComputeParams(field, token, p);
  return p[0];
}

void PlantedModel::Embedding(int field, uint64_t token, float* v) const {
  float p[1 + kMaxK];
  ComputeParams(field, token, p);
  std::copy(p + 1, p + 1 + k_, v);
}

void PlantedModel::BuildPairWeights(uint64_t seed, double strong_fraction, double weak_std,
                                    int dplr_rank) {
  WyRand rng(seed);
  pair_weight_.assign(kFields * kFields, 0.0);
  auto set = [&](int f, int g, double r) {
    pair_weight_[f * kFields + g] = pair_weight_[g * kFields + f] = r;
  };
  if (kind_ == PlantedKind::kFm) {
    for (int f = 0; f < kFields; ++f)
      for (int g = f + 1; g < kFields; ++g) set(f, g, 1.0);
    return;
  }
  if (kind_ == PlantedKind::kFwfm) {
    // A few strong pairs of either sign, the rest near 0.
    for (int f = 0; f < kFields; ++f) {
      for (int g = f + 1; g < kFields; ++g) {
        const bool strong = rng.Uniform() < strong_fraction;
        const double sign = (rng.Next() & 1) ? 1.0 : -1.0;
        set(f, g, strong ? sign * (1.0 + rng.Uniform()) : weak_std * NormalFromHash(rng.Next()));
      }
    }
  } else {
    rank_ = dplr_rank;
    dplr_u_.resize(static_cast<size_t>(rank_) * kFields);
    dplr_e_.resize(rank_);
    for (double& u : dplr_u_) u = NormalFromHash(rng.Next());
    for (double& e : dplr_e_) e = (rng.Next() & 1) ? 1.0 : -1.0;
    for (int f = 0; f < kFields; ++f) {
      for (int g = f + 1; g < kFields; ++g) {
        double r = 0;
        for (int i = 0; i < rank_; ++i)
          r += dplr_e_[i] * dplr_u_[i * kFields + f] * dplr_u_[i * kFields + g];
        set(f, g, r);
      }
    }
  }
  // Same pair energy as FM over the active fields (sum of R^2 = number of pairs), so
  // interaction_std means the same; pairs with an inactive field never occur and are zeroed.
  double energy = 0, pairs = 0;
  for (int f = 0; f < kFields; ++f) {
    for (int g = f + 1; g < kFields; ++g) {
      if (!active(g)) {
        set(f, g, 0.0);
        continue;
      }
      energy += pair_weight_[f * kFields + g] * pair_weight_[f * kFields + g];
      pairs += 1;
    }
  }
  const double scale = energy > 0 ? std::sqrt(pairs / energy) : 0.0;
  for (double& r : pair_weight_) r *= scale;
  if (kind_ == PlantedKind::kDplr) {
    for (double& e : dplr_e_) e *= scale;
    dplr_d_.assign(kFields, 0.0);
    for (int f = 0; f < kFields; ++f) {
      for (int i = 0; i < rank_; ++i)
        dplr_d_[f] -= dplr_e_[i] * dplr_u_[i * kFields + f] * dplr_u_[i * kFields + f];
    }
  }
}

void PlantedModel::SampleRow(WyRand& rng, RowTokens* row) const {
  // Empty columns are drawn by the samplers (ZipfSampler::kEmpty == kMissingToken).
  for (int f = 0; f < kFields; ++f) {
    const uint64_t token = samplers_[f].Sample(rng);
    (*row)[f] = active(f) ? token : kMissingToken;
  }
}

double PlantedModel::LogitFromParams(const float* const* params) const {
  double linear = bias_;
  double pairs = 0;
  switch (kind_) {
    case PlantedKind::kFm:
      // Compile-time k lets the common ranks keep their sums in one vector register.
      switch (k_) {
        case 4:
          pairs = FmPairs<4>(params, k_, &linear);
          break;
        case 8:
          pairs = FmPairs<8>(params, k_, &linear);
          break;
        default:
          pairs = FmPairs<0>(params, k_, &linear);
          break;
      }
      break;
    case PlantedKind::kDplr: {
      double acc[kMaxDplrRank][kMaxK] = {};
      double diagonal = 0;
      for (int f = 0; f < kFields; ++f) {
        const float* p = params[f];
        linear += p[0];
        double norm = 0;
        for (int c = 0; c < k_; ++c) norm += static_cast<double>(p[1 + c]) * p[1 + c];
        diagonal += dplr_d_[f] * norm;
        for (int i = 0; i < rank_; ++i) {
          const double u = dplr_u_[i * kFields + f];
          for (int c = 0; c < k_; ++c) acc[i][c] += u * p[1 + c];
        }
      }
      double low_rank = 0;
      for (int i = 0; i < rank_; ++i) {
        double norm = 0;
        for (int c = 0; c < k_; ++c) norm += acc[i][c] * acc[i][c];
        low_rank += dplr_e_[i] * norm;
      }
      pairs = 0.5 * (low_rank + diagonal);
      break;
    }
    case PlantedKind::kFwfm: {
      // Empty fields are zero rows: their dots vanish, and no branch decides that.
      int present[kFields];
      int n = 0;
      for (int f = 0; f < kFields; ++f) {
        linear += params[f][0];
        present[n++] = f;
      }
      for (int a = 0; a < n; ++a) {
        const float* va = params[present[a]] + 1;
        const double* r = &pair_weight_[present[a] * kFields];
        for (int b = a + 1; b < n; ++b) {
          const float* vb = params[present[b]] + 1;
          float dot = 0;
          for (int c = 0; c < k_; ++c) dot += va[c] * vb[c];
          pairs += r[present[b]] * dot;
        }
      }
      break;
    }
  }
  return linear + pairs;
}

double PlantedModel::Logit(const RowTokens& row) const {
  std::vector<float> scratch(kFields * stride_);
  const float* params[kFields];
  for (int f = 0; f < kFields; ++f) {
    params[f] = row[f] == kMissingToken ? ZeroParams() : Params(f, row[f], &scratch[f * stride_]);
  }
  return LogitFromParams(params);
}

double PlantedModel::SolveBias(uint64_t pilot_rows, double target_ctr) {
  // The pilot stream comes from the model seed, so train and test files get the same bias.
  bias_ = 0;
  WyRand rng(field_seed_[0] ^ 0x94d049bb133111ebULL);
  std::vector<double> logits(std::max<uint64_t>(pilot_rows, 1));
  RowTokens row;
  for (double& z : logits) {
    SampleRow(rng, &row);
    z = Logit(row);
  }
  double lo = -40, hi = 40;  // mean sigmoid(b + z) increases with b: bisect
  for (int it = 0; it < 60; ++it) {
    const double mid = 0.5 * (lo + hi);
    double mean = 0;
    for (double z : logits) mean += Sigmoid(mid + z);
    mean /= static_cast<double>(logits.size());
    (mean < target_ctr ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

void PlantedModel::TokenHex(int field, uint64_t token, char out[8]) const {
  // Two hex digits per table entry: rare tokens get their text on the fly, per row.
  static const std::array<char, 512> kHexPairs = [] {
    std::array<char, 512> t{};
    constexpr char kDigits[] = "0123456789abcdef";
    for (int i = 0; i < 256; ++i) {
      t[2 * i] = kDigits[i >> 4];
      t[2 * i + 1] = kDigits[i & 15];
    }
    return t;
  }();
  const uint32_t x = Permute32(static_cast<uint32_t>(token) + string_salt_[field]);
  for (int i = 0; i < 4; ++i)
    std::memcpy(out + 2 * i, &kHexPairs[2 * ((x >> (24 - 8 * i)) & 0xff)], 2);
}

Result<uint64_t> PlantedModel::TokenOfHex(int field, std::string_view hex) const {
  if (hex.size() != 8)
    return Status::NotFound("C" + std::to_string(field - kIntFields + 1) + ": '" +
                            std::string(hex) + "' is not 8 hex chars");
  uint32_t x = 0;
  for (char c : hex) {
    const int d = HexDigit(c);
    if (d < 0)
      return Status::NotFound("C" + std::to_string(field - kIntFields + 1) + ": '" +
                              std::string(hex) + "' is not hex");
    x = (x << 4) | static_cast<uint32_t>(d);
  }
  const uint64_t token = Unpermute32(x) - string_salt_[field];
  if (token >= vocab_size(field)) {
    return Status::NotFound("C" + std::to_string(field - kIntFields + 1) + ": '" +
                            std::string(hex) + "' is no token of this model");
  }
  return token;
}

Status PlantedModel::ParseLine(std::string_view line, int* label, RowTokens* row) const {
  size_t begin = 0;
  for (int column = 0; column <= kFields; ++column) {
    const size_t tab = line.find('\t', begin);
    const bool last = column == kFields;
    if (last != (tab == std::string_view::npos)) {
      return Status::Corruption("expected 40 tab-separated columns, column " +
                                std::to_string(column) +
                                (last ? " is followed by more" : " is the last"));
    }
    const std::string_view text = line.substr(begin, last ? std::string_view::npos : tab - begin);
    begin = tab + 1;
    if (column == 0) {
      if (text != "0" && text != "1")
        return Status::Corruption("label '" + std::string(text) + "' is not 0/1");
      *label = text[0] - '0';
      continue;
    }
    const int field = column - 1;
    if (text.empty()) {
      (*row)[field] = kMissingToken;
    } else if (!active(field)) {
      return Status::NotFound("column " + std::to_string(column) + ": '" + std::string(text) +
                              "' where this model writes nothing (active_fields)");
    } else if (IsIntField(field)) {
      int64_t x = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), x);
      if (ec != std::errc() || end != text.data() + text.size()) {
        return Status::Corruption("I" + std::to_string(field + 1) + ": '" + std::string(text) +
                                  "' is not an integer");
      }
      const int64_t bucket = CriteoIntBucket(x);
      if (bucket < 0 || static_cast<uint64_t>(bucket) >= vocab_size(field)) {
        return Status::NotFound("I" + std::to_string(field + 1) + ": bucket of " +
                                std::string(text) + " is no token");
      }
      (*row)[field] = static_cast<uint64_t>(bucket);
    } else {
      auto token = TokenOfHex(field, text);
      if (!token.ok()) return token.status();
      (*row)[field] = *token;
    }
  }
  return Status::OK();
}

}  // namespace fmps::datagen
