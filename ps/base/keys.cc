#include "ps/base/keys.h"

namespace fmps {

uint64_t Checksum64(const void* data, size_t size) { return XXH3_64bits(data, size); }

}  // namespace fmps
