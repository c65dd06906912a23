// BatchParams: the parameters of one localized batch as a model reads them (w, zero-padded V,
// real widths, dense block), unpacked from a pull answer; and the gradient buffers, packed back
// into the pull layout (per key: w gradient, then widths[i] embedding gradients) for the push.
#ifndef FMPS_WORKER_BATCH_PARAMS_H_
#define FMPS_WORKER_BATCH_PARAMS_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "models/model.h"
#include "ps/base/status.h"

namespace fmps {

// n floats, eight at a time with fixed-size copies (one vector move each) and the rest one by
// one: a memcpy call per key of a few floats (15k keys per minibatch, both ways) cost more than
// the copying.
inline void CopyFloats(const float* from, size_t n, float* to) {
  size_t d = 0;
  for (; d + 8 <= n; d += 8) std::memcpy(to + d, from + d, 8 * sizeof(float));
  for (; d < n; ++d) to[d] = from[d];
}

struct BatchParams {
  int width = 0;  // the model's embedding width
  std::vector<float> w, V, dense;
  std::vector<uint16_t> widths;

  ParamView View() const { return ParamView{w.data(), V.data(), widths.data(), dense.data()}; }

  // values: per key w then widths[i] floats. Widths beyond the model's are cut (a model with a
  // smaller width reading a bigger store would be a config error, reported by the caller).
  Status Unpack(const std::vector<float>& values, const std::vector<uint16_t>& key_widths) {
    const size_t k = key_widths.size();
    w.resize(k);
    widths.resize(k);
    V.assign(k * width, 0.f);  // the padding: one fill for the batch, not a memset per key
    size_t pos = 0;
    for (size_t i = 0; i < k; ++i) {
      const int kw = key_widths[i];
      if (kw > width) {
        return Status::InvalidArgument("a key has an embedding of width " + std::to_string(kw) +
                                       " but the model's width is " + std::to_string(width));
      }
      if (pos + 1 + kw > values.size()) {
        return Status::Corruption("pull answer of " + std::to_string(values.size()) +
                                  " floats is too short for its widths");
      }
      w[i] = values[pos++];
      widths[i] = key_widths[i];
      CopyFloats(&values[pos], kw, &V[i * width]);
      pos += kw;
    }
    return Status::OK();
  }
};

struct BatchGrads {
  std::vector<float> w, V, dense;
  void Reset(size_t keys, int width, size_t dense_size) {
    w.assign(keys, 0.f);
    V.assign(keys * width, 0.f);
    dense.assign(dense_size, 0.f);
  }
  GradView View() { return GradView{w.data(), V.data(), dense.data()}; }
  // Packs into the push layout for the widths the worker saw.
  void Pack(const std::vector<uint16_t>& widths, int width, std::vector<float>* out) const {
    size_t total = widths.size();
    for (uint16_t kw : widths) total += kw;
    out->resize(total);
    float* p = out->data();
    for (size_t i = 0; i < widths.size(); ++i) {
      *p++ = w[i];
      CopyFloats(&V[i * width], widths[i], p);
      p += widths[i];
    }
  }
};

}  // namespace fmps

#endif  // FMPS_WORKER_BATCH_PARAMS_H_
