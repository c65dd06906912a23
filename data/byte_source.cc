#include "data/byte_source.h"

#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace fmps {
namespace {

constexpr size_t kCompressedChunk = 256 << 10;

// Raw bytes of a file. Bytes already consumed for sniffing (a stream cannot seek back) are handed
// out first.
class FdInput {
 public:
  FdInput(std::unique_ptr<SequentialFile> file, std::string path)
      : file_(std::move(file)), path_(std::move(path)) {}
  FdInput(const FdInput&) = delete;
  FdInput& operator=(const FdInput&) = delete;

  void PutBack(const unsigned char* bytes, size_t size) { head_.assign(bytes, bytes + size); }

  Result<size_t> Read(char* dst, size_t capacity) {
    if (head_pos_ < head_.size()) {
      size_t n = std::min(capacity, head_.size() - head_pos_);
      std::memcpy(dst, head_.data() + head_pos_, n);
      head_pos_ += n;
      consumed_ += n;
      return n;
    }
    Result<size_t> n = file_->Read(dst, capacity);
    if (n.ok()) consumed_ += *n;
    return n;
  }

  Status Seek(uint64_t offset) {
    head_.clear();
    head_pos_ = 0;
    return file_->Seek(offset);
  }

  const std::string& path() const { return path_; }
  uint64_t consumed() const { return consumed_; }  // raw bytes handed out so far

 private:
  std::unique_ptr<SequentialFile> file_;
  std::string path_;
  std::vector<unsigned char> head_;
  size_t head_pos_ = 0;
  uint64_t consumed_ = 0;
};

class PlainSource final : public ByteSource {
 public:
  explicit PlainSource(std::unique_ptr<FdInput> input) : input_(std::move(input)) {}
  Result<size_t> Read(char* dst, size_t capacity) override { return input_->Read(dst, capacity); }

 private:
  std::unique_ptr<FdInput> input_;
};

// gzip through zlib (windowBits 15+32 also accepts zlib headers); concatenated members are read
// one after another, as gunzip does.
class GzipSource final : public ByteSource {
 public:
  explicit GzipSource(std::unique_ptr<FdInput> input)
      : input_(std::move(input)), in_(kCompressedChunk) {
    std::memset(&zs_, 0, sizeof(zs_));
    init_ok_ = inflateInit2(&zs_, 15 + 32) == Z_OK;
  }
  ~GzipSource() override {
    if (init_ok_) inflateEnd(&zs_);
  }

  Result<size_t> Read(char* dst, size_t capacity) override {
    if (!init_ok_) return Status::IOError(input_->path() + ": cannot initialize zlib");
    if (done_) return size_t{0};
    zs_.next_out = reinterpret_cast<Bytef*>(dst);
    zs_.avail_out = static_cast<uInt>(std::min<size_t>(capacity, 1u << 30));
    const uInt out_start = zs_.avail_out;
    while (zs_.avail_out > 0) {
      if (zs_.avail_in == 0 && !in_eof_) FMPS_RETURN_IF_ERROR(Refill());
      if (member_end_) {
        if (zs_.avail_in == 0) {  // clean end after a complete member
          done_ = true;
          break;
        }
        inflateReset(&zs_);
        member_end_ = false;
      }
      const uInt in_before = zs_.avail_in;
      const uInt out_before = zs_.avail_out;
      int ret = inflate(&zs_, Z_NO_FLUSH);
      if (ret == Z_STREAM_END) {
        member_end_ = true;
        continue;
      }
      if (ret != Z_OK && ret != Z_BUF_ERROR) {
        return Status::Corruption(input_->path() + ": corrupt gzip stream at compressed offset " +
                                  std::to_string(Offset()) + ": " +
                                  (zs_.msg ? zs_.msg : zError(ret)));
      }
      bool progress = zs_.avail_in != in_before || zs_.avail_out != out_before;
      if (!progress && zs_.avail_in == 0 && in_eof_) {
        return Status::Corruption(input_->path() + ": truncated gzip stream at compressed offset " +
                                  std::to_string(Offset()));
      }
    }
    return static_cast<size_t>(out_start - zs_.avail_out);
  }

 private:
  Status Refill() {
    Result<size_t> n = input_->Read(reinterpret_cast<char*>(in_.data()), in_.size());
    if (!n.ok()) return n.status();
    if (*n == 0) in_eof_ = true;
    zs_.next_in = in_.data();
    zs_.avail_in = static_cast<uInt>(*n);
    return Status::OK();
  }
  uint64_t Offset() const { return input_->consumed() - zs_.avail_in; }

  std::unique_ptr<FdInput> input_;
  std::vector<unsigned char> in_;
  z_stream zs_;
  bool init_ok_ = false;
  bool in_eof_ = false;
  bool member_end_ = false;
  bool done_ = false;
};

// zstd streaming decompression; concatenated frames are read one after another.
class ZstdSource final : public ByteSource {
 public:
  explicit ZstdSource(std::unique_ptr<FdInput> input)
      : input_(std::move(input)), in_(ZSTD_DStreamInSize()), dctx_(ZSTD_createDCtx()) {}
  ~ZstdSource() override { ZSTD_freeDCtx(dctx_); }

  Result<size_t> Read(char* dst, size_t capacity) override {
    if (dctx_ == nullptr) return Status::IOError(input_->path() + ": cannot create zstd context");
    ZSTD_outBuffer out{dst, capacity, 0};
    while (out.pos < out.size) {
      if (in_buf_.pos == in_buf_.size && !in_eof_) FMPS_RETURN_IF_ERROR(Refill());
      if (at_frame_start_ && in_buf_.pos < in_buf_.size) {
        // The size a frame declares, checked when it ends: zstd itself does not always notice
        // a frame that ends early (found by fuzz/findings/zstd_source-truncated-frame-verdict).
        frame_declared_ = ZSTD_getFrameContentSize(
            static_cast<const char*>(in_buf_.src) + in_buf_.pos, in_buf_.size - in_buf_.pos);
        frame_start_ = Offset();
        frame_out_ = 0;
        at_frame_start_ = false;
      }
      const size_t in_before = in_buf_.pos;
      const size_t out_before = out.pos;
      size_t ret = ZSTD_decompressStream(dctx_, &out, &in_buf_);
      if (ZSTD_isError(ret)) {
        return Status::Corruption(input_->path() + ": corrupt zstd stream at compressed offset " +
                                  std::to_string(Offset()) + ": " + ZSTD_getErrorName(ret));
      }
      bool progress = in_buf_.pos != in_before || out.pos != out_before;
      frame_out_ += out.pos - out_before;
      if (progress && ret == 0) {  // a frame ended
        if (frame_declared_ != ZSTD_CONTENTSIZE_UNKNOWN &&
            frame_declared_ != ZSTD_CONTENTSIZE_ERROR && frame_out_ != frame_declared_) {
          return Status::Corruption(input_->path() + ": zstd frame at compressed offset " +
                                    std::to_string(frame_start_) + " declares " +
                                    std::to_string(frame_declared_) + " bytes but holds " +
                                    std::to_string(frame_out_));
        }
        at_frame_start_ = true;
      }
      // Without input after a finished frame zstd hints at the next frame's header: keep the
      // hint of the last call that did something.
      if (progress) frame_hint_ = ret;
      if (!progress && in_buf_.pos == in_buf_.size && in_eof_) {
        // The last frame is complete and flushed: said now (when a flush ended exactly at the end
        // of the output buffer) or by the last call that made progress.
        if (ret == 0 || frame_hint_ == 0) break;
        return Status::Corruption(input_->path() + ": truncated zstd stream at compressed offset " +
                                  std::to_string(Offset()));
      }
    }
    return out.pos;
  }

 private:
  Status Refill() {
    Result<size_t> n = input_->Read(static_cast<char*>(in_.data()), in_.size());
    if (!n.ok()) return n.status();
    if (*n == 0) in_eof_ = true;
    in_buf_ = ZSTD_inBuffer{in_.data(), *n, 0};
    return Status::OK();
  }
  uint64_t Offset() const { return input_->consumed() - (in_buf_.size - in_buf_.pos); }

  std::unique_ptr<FdInput> input_;
  std::vector<char> in_;
  ZSTD_DCtx* dctx_;
  ZSTD_inBuffer in_buf_{nullptr, 0, 0};
  size_t frame_hint_ = 1;       // 0 once a frame is complete; nonzero while one is in progress
  bool at_frame_start_ = true;  // the next input byte starts a frame
  unsigned long long frame_declared_ = 0;     // content size the current frame's header declares
  uint64_t frame_out_ = 0, frame_start_ = 0;  // bytes it decoded so far; its compressed offset
  bool in_eof_ = false;
};

// Reads up to `size` bytes, retrying short reads (pipes deliver what they have).
Result<size_t> ReadFully(FdInput* input, unsigned char* dst, size_t size) {
  size_t got = 0;
  while (got < size) {
    Result<size_t> n = input->Read(reinterpret_cast<char*>(dst) + got, size - got);
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    got += *n;
  }
  return got;
}

Result<std::unique_ptr<FdInput>> OpenInput(const std::string& path, Env* env) {
  Result<std::unique_ptr<SequentialFile>> file = env->NewSequentialFile(path);
  if (!file.ok()) return file.status();
  return std::make_unique<FdInput>(std::move(file.value()), path == "-" ? "<stdin>" : path);
}

}  // namespace

const char* CompressionName(Compression compression) {
  switch (compression) {
    case Compression::kNone:
      return "none";
    case Compression::kGzip:
      return "gzip";
    case Compression::kZstd:
      return "zstd";
  }
  return "?";
}

Compression SniffCompression(const unsigned char* head, size_t size) {
  if (size >= 2 && head[0] == 0x1f && head[1] == 0x8b) return Compression::kGzip;
  if (size >= 4 && head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd) {
    return Compression::kZstd;
  }
  return Compression::kNone;
}

Result<Compression> DetectCompression(const std::string& path, Env* env) {
  if (path == "-") return Status::InvalidArgument("cannot sniff stdin without consuming it");
  Result<std::unique_ptr<FdInput>> input = OpenInput(path, env);
  if (!input.ok()) return input.status();
  unsigned char head[4];
  Result<size_t> n = ReadFully(input->get(), head, sizeof(head));
  if (!n.ok()) return n.status();
  return SniffCompression(head, *n);
}

bool IsStream(const std::string& path, Env* env) {
  if (path == "-") return true;
  Result<FileInfo> info = env->Stat(path);
  return info.ok() && !info->is_regular && !info->is_directory;
}

Result<OpenedSource> OpenByteSource(const std::string& path, uint64_t plain_offset, Env* env) {
  const bool stream = IsStream(path, env);
  if (stream && path != "-" && plain_offset > 0) {
    return Status::InvalidArgument(path + " is a stream and cannot be read from an offset");
  }
  Result<std::unique_ptr<FdInput>> opened_input = OpenInput(path, env);
  if (!opened_input.ok()) return opened_input.status();
  std::unique_ptr<FdInput> input = std::move(opened_input.value());
  // Sniff by reading; a stream gets the bytes back, a regular file is positioned afresh.
  unsigned char head[4];
  Result<size_t> n = ReadFully(input.get(), head, sizeof(head));
  if (!n.ok()) return n.status();
  const size_t head_size = *n;
  OpenedSource opened;
  opened.compression = SniffCompression(head, head_size);
  const uint64_t start = opened.compression == Compression::kNone ? plain_offset : 0;
  if (stream) {
    input->PutBack(head, head_size);
  } else {
    FMPS_RETURN_IF_ERROR(input->Seek(start));
  }
  switch (opened.compression) {
    case Compression::kGzip:
      opened.source = std::make_unique<GzipSource>(std::move(input));
      break;
    case Compression::kZstd:
      opened.source = std::make_unique<ZstdSource>(std::move(input));
      break;
    case Compression::kNone:
      opened.source = std::make_unique<PlainSource>(std::move(input));
      break;
  }
  return opened;
}

}  // namespace fmps
