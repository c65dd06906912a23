// ReadExport on export files whose manifest names config fields as before the parameter table
// (dplr_rank, max_memory_mb, keep_field_pair_scale): they are read under today's names.
#include "serving/model_export.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <string>
#include <vector>

namespace fmps {
namespace {

template <typename T>
void Put(std::string* out, const T& v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

// An export file of no rows and no dense block whose manifest's config is config_json.
std::string ExportWithConfig(const std::string& config_json) {
  const std::string header =
      "{\"fmps_export\":1,\"model\":\"dplr\",\"manifest\":{\"version\":\"3\","
      "\"config\":" +
      config_json + "}}";
  std::string out(kExportMagic, sizeof(kExportMagic));
  Put(&out, kExportFormatVersion);
  Put(&out, static_cast<uint32_t>(header.size()));
  out += header;
  Put(&out, uint64_t{0});  // dense floats
  Put(&out, uint64_t{0});  // rows
  Put(&out,
      static_cast<uint32_t>(crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(out.data()),
                                  static_cast<uInt>(out.size()))));
  return out;
}

proto::JobConfig ConfigOf(const std::string& config_json) {
  ExportHeader header;
  std::vector<float> dense;
  Status st = ReadExport(ExportWithConfig(config_json), "test.fmps", &header, &dense, {});
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(header.manifest.version(), 3);
  return header.manifest.config();
}

TEST(ModelExportTest, OldConfigNamesAreReadAsTodays) {
  const proto::JobConfig old = ConfigOf(
      "{\"model\":\"dplr\",\"dplr_rank\":3,\"max_memory_mb\":\"64\",\"keep_field_pair_scale\":"
      "true}");
  EXPECT_EQ(old.model(), "dplr");
  EXPECT_EQ(old.rank(), 3);
  EXPECT_EQ(old.store_memory_mb(), 64u);
  EXPECT_FALSE(old.normalize_field_pairs());
  EXPECT_TRUE(ConfigOf("{\"keep_field_pair_scale\":false}").normalize_field_pairs());

  const proto::JobConfig today = ConfigOf(
      "{\"model\":\"dplr\",\"rank\":4,\"store_memory_mb\":\"8\",\"normalize_field_pairs\":true}");
  EXPECT_EQ(today.rank(), 4);
  EXPECT_EQ(today.store_memory_mb(), 8u);
  EXPECT_TRUE(today.normalize_field_pairs());
}

}  // namespace
}  // namespace fmps
