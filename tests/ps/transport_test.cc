// Transports: both implementations deliver a Meta header and raw frames intact (empty and 5 MB
// frames included), refuse unknown destinations and taken ports, and the ZeroMQ one drops
// undecodable input from the network without losing the next good message.
#include "ps/transport.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>
#include <zmq.hpp>

namespace fmps {
namespace {

enum class Kind { kZmq, kInProc };

class TransportTest : public ::testing::TestWithParam<Kind> {
 protected:
  std::unique_ptr<Transport> Make() {
    if (GetParam() == Kind::kZmq) return NewZmqTransport(ZmqTransportOptions());
    return NewInProcTransport(hub_);
  }
  std::shared_ptr<InProcHub> hub_ = NewInProcHub();
};

Message SampleMessage() {
  Message msg;
  msg.meta.set_cmd(proto::PUSH);
  msg.meta.set_sender(3);
  msg.meta.set_request_id(1234567890123LL);
  msg.meta.mutable_kv()->set_num_keys(4);
  msg.meta.mutable_kv()->set_with_dense(true);
  msg.frames.push_back(ToFrame(std::vector<uint64_t>{1, 2, 3, UINT64_MAX}));
  msg.frames.push_back("");  // an empty frame in the middle
  std::string big(5 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131) ^ (i >> 9));
  msg.frames.push_back(std::move(big));
  msg.frames.push_back("");  // and one at the end
  return msg;
}

// Frames are read in place when aligned, and copied when not; both give the same values.
TEST(ViewFrameTest, AlignedFramesAreViewedMisalignedOnesCopied) {
  const std::vector<uint64_t> values = {1, 2, 0xFFFFFFFFFFFFFFFFull, 42};
  const std::string frame = ToFrame(values);
  std::vector<uint64_t> storage;
  std::span<const uint64_t> view;
  ASSERT_TRUE(ViewFrame(frame, &storage, &view));
  EXPECT_EQ(static_cast<const void*>(view.data()), static_cast<const void*>(frame.data()));
  EXPECT_TRUE(storage.empty());
  EXPECT_EQ(std::vector<uint64_t>(view.begin(), view.end()), values);
  // The same bytes one byte off their alignment.
  const std::string shifted = "x" + frame;
  ASSERT_TRUE(ViewFrame(std::string_view(shifted).substr(1), &storage, &view));
  EXPECT_EQ(view.data(), storage.data());
  EXPECT_EQ(std::vector<uint64_t>(view.begin(), view.end()), values);
  EXPECT_FALSE(ViewFrame(std::string_view(shifted).substr(2), &storage, &view))
      << "31 bytes are not whole uint64s";
}

TEST_P(TransportTest, MessageArrivesIntact) {
  auto a = Make(), b = Make();
  Result<int> pa = a->Bind("127.0.0.1", 0);
  Result<int> pb = b->Bind("127.0.0.1", 0);
  ASSERT_TRUE(pa.ok()) << pa.status().ToString();
  ASSERT_TRUE(pb.ok()) << pb.status().ToString();
  EXPECT_NE(pa.value(), pb.value());
  ASSERT_TRUE(a->Connect(7, "127.0.0.1", pb.value()).ok());
  Message sent = SampleMessage();
  ASSERT_TRUE(a->Send(7, sent).ok());
  Message header_only;
  header_only.meta.set_cmd(proto::HEARTBEAT);
  header_only.meta.mutable_heartbeat()->set_keys(99);
  ASSERT_TRUE(a->Send(7, header_only).ok());

  std::optional<Message> got = b->Recv(10000);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->meta.SerializeAsString(), sent.meta.SerializeAsString());
  ASSERT_EQ(got->frames.size(), sent.frames.size());
  for (size_t i = 0; i < sent.frames.size(); ++i)
    EXPECT_TRUE(got->frames[i] == sent.frames[i]) << "frame " << i;
  EXPECT_FALSE(got->peer.empty());
  std::vector<uint64_t> keys;
  ASSERT_TRUE(FromFrame(got->frames[0], &keys));
  EXPECT_EQ(keys, (std::vector<uint64_t>{1, 2, 3, UINT64_MAX}));

  std::optional<Message> second = b->Recv(10000);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->meta.cmd(), proto::HEARTBEAT);
  EXPECT_EQ(second->meta.heartbeat().keys(), 99u);
  EXPECT_TRUE(second->frames.empty());

  EXPECT_FALSE(b->Recv(50).has_value()) << "nothing else was sent";
}

// A message given away (Send(id, Message&&)) may travel without copies (ZeroMQ takes big frames
// as they are); many in a row, each must still arrive byte for byte, in order.
TEST_P(TransportTest, MessagesGivenAwayArriveIntactAndInOrder) {
  auto a = Make(), b = Make();
  Result<int> pb = b->Bind("127.0.0.1", 0);
  ASSERT_TRUE(pb.ok()) << pb.status().ToString();
  ASSERT_TRUE(a->Connect(7, "127.0.0.1", pb.value()).ok());
  const Message expect = SampleMessage();
  constexpr int kMessages = 20;
  for (int i = 0; i < kMessages; ++i) {
    Message m = expect;
    m.meta.set_request_id(i);
    m.frames.push_back(std::string(3000 + i, static_cast<char>('a' + i)));  // zero-copy sized
    m.frames.push_back(std::string(1 + i, static_cast<char>('A' + i)));     // copied
    ASSERT_TRUE(a->Send(7, std::move(m)).ok());
  }
  for (int i = 0; i < kMessages; ++i) {
    std::optional<Message> got = b->Recv(10000);
    ASSERT_TRUE(got.has_value()) << "message " << i;
    EXPECT_EQ(got->meta.request_id(), i);
    ASSERT_EQ(got->frames.size(), expect.frames.size() + 2);
    for (size_t f = 0; f < expect.frames.size(); ++f)
      EXPECT_TRUE(got->frames[f] == expect.frames[f]) << "message " << i << " frame " << f;
    EXPECT_EQ(got->frames[expect.frames.size()], std::string(3000 + i, static_cast<char>('a' + i)));
    EXPECT_EQ(got->frames[expect.frames.size() + 1],
              std::string(1 + i, static_cast<char>('A' + i)));
  }
}

TEST_P(TransportTest, SendToUnknownIdFails) {
  auto a = Make();
  ASSERT_TRUE(a->Bind("127.0.0.1", 0).ok());
  Status st = a->Send(42, SampleMessage());
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("42"), std::string::npos) << st.ToString();
}

TEST_P(TransportTest, BindOnATakenPortSaysPortInUse) {
  auto a = Make(), b = Make();
  Result<int> pa = a->Bind("127.0.0.1", 0);
  ASSERT_TRUE(pa.ok());
  Result<int> pb = b->Bind("127.0.0.1", pa.value());
  ASSERT_FALSE(pb.ok());
  EXPECT_NE(pb.status().message().find("port in use"), std::string::npos) << pb.status().ToString();
  EXPECT_NE(pb.status().message().find(std::to_string(pa.value())), std::string::npos);
}

TEST_P(TransportTest, ReconnectReplacesTheAddress) {
  auto a = Make(), b = Make(), c = Make();
  Result<int> pb = b->Bind("127.0.0.1", 0), pc = c->Bind("127.0.0.1", 0);
  ASSERT_TRUE(pb.ok() && pc.ok());
  ASSERT_TRUE(a->Connect(1, "127.0.0.1", pb.value()).ok());
  ASSERT_TRUE(a->Connect(1, "127.0.0.1", pc.value()).ok());  // node 1 was replaced
  Message m;
  m.meta.set_cmd(proto::SHUTDOWN);
  ASSERT_TRUE(a->Send(1, m).ok());
  std::optional<Message> got = c->Recv(10000);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->meta.cmd(), proto::SHUTDOWN);
  EXPECT_FALSE(b->Recv(100).has_value());
}

INSTANTIATE_TEST_SUITE_P(Both, TransportTest, ::testing::Values(Kind::kZmq, Kind::kInProc),
                         [](const auto& info) {
                           return info.param == Kind::kZmq ? "Zmq" : "InProc";
                         });

// The wire layout of zmq_transport.cc, written out independently: one ZeroMQ frame holding the
// header's size (u32) and bytes, the data frames' count (u32) and sizes (u64), then their bytes.
std::string Packed(const proto::Meta& meta, const std::vector<std::string>& frames) {
  const std::string header = meta.SerializeAsString();
  std::string out;
  auto put = [&out](const auto& value) {
    out.append(reinterpret_cast<const char*>(&value), sizeof(value));
  };
  put(static_cast<uint32_t>(header.size()));
  out += header;
  put(static_cast<uint32_t>(frames.size()));
  for (const std::string& f : frames) put(static_cast<uint64_t>(f.size()));
  for (const std::string& f : frames) out += f;
  return out;
}

TEST(ZmqTransportTest, GarbageFromTheNetworkIsDroppedAndTheNextMessageArrives) {
  auto t = NewZmqTransport(ZmqTransportOptions());
  Result<int> port = t->Bind("127.0.0.1", 0);
  ASSERT_TRUE(port.ok());
  zmq::context_t ctx(1);
  zmq::socket_t raw(ctx, zmq::socket_type::push);
  raw.set(zmq::sockopt::linger, 0);
  raw.connect("tcp://127.0.0.1:" + std::to_string(port.value()));
  proto::Meta pull;
  pull.set_cmd(proto::PULL);
  pull.set_request_id(77);
  const std::string good = Packed(pull, {"keys", ""});
  // Every way a frame can be wrong: several ZeroMQ frames; too short for its header size; a
  // header that is not a protobuf; a frame table or frames longer or shorter than what follows.
  const std::string not_protobuf("\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11);
  std::string bad_header = Packed(pull, {"keys"});
  bad_header.replace(4, pull.ByteSizeLong(), std::string(pull.ByteSizeLong(), '\xff'));
  ASSERT_TRUE(raw.send(zmq::buffer(good), zmq::send_flags::sndmore));
  ASSERT_TRUE(raw.send(zmq::buffer(std::string("payload")), zmq::send_flags::none));
  for (const std::string& garbage :
       {std::string("\x0a", 1), not_protobuf, bad_header, good.substr(0, good.size() - 1),
        good + "x", good.substr(0, 4 + pull.ByteSizeLong() + 6)}) {
    ASSERT_TRUE(raw.send(zmq::buffer(garbage), zmq::send_flags::none));
  }

  // Let the garbage arrive first, then send a good message while Recv is already waiting: Recv
  // must keep waiting after dropping the garbage instead of giving up early.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto got = std::async(std::launch::async, [&] { return t->Recv(10000); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_TRUE(raw.send(zmq::buffer(good), zmq::send_flags::none));
  std::optional<Message> msg = got.get();
  ASSERT_TRUE(msg.has_value()) << "Recv gave up after dropping garbage";
  EXPECT_EQ(msg->meta.cmd(), proto::PULL);
  EXPECT_EQ(msg->meta.request_id(), 77);
  ASSERT_EQ(msg->frames.size(), 2u);
  EXPECT_EQ(msg->frames[0], "keys");
  EXPECT_EQ(msg->frames[1], "");
  EXPECT_FALSE(t->Recv(100).has_value()) << "a garbage message was taken for a good one";
}

// What a node sends is that layout: a raw PULL socket receives one frame that unpacks to the
// header and the frames given to Send, large frames and empty ones alike.
TEST(ZmqTransportTest, AMessageIsOneFrameInTheDocumentedLayout) {
  zmq::context_t ctx(1);
  zmq::socket_t raw(ctx, zmq::socket_type::pull);
  raw.set(zmq::sockopt::linger, 0);
  raw.bind("tcp://127.0.0.1:*");
  const std::string endpoint = raw.get(zmq::sockopt::last_endpoint);
  const int port = std::stoi(endpoint.substr(endpoint.rfind(':') + 1));
  auto t = NewZmqTransport(ZmqTransportOptions());
  ASSERT_TRUE(t->Connect(3, "127.0.0.1", port).ok());
  Message m;
  m.meta.set_cmd(proto::PUSH);
  m.meta.set_request_id(5);
  m.frames = {std::string(100000, 'k'), "", "w"};
  const std::string want = Packed(m.meta, m.frames);
  ASSERT_TRUE(t->Send(3, std::move(m)).ok());
  zmq::message_t part;
  raw.set(zmq::sockopt::rcvtimeo, 10000);
  ASSERT_TRUE(raw.recv(part, zmq::recv_flags::none));
  EXPECT_FALSE(part.more());
  EXPECT_EQ(part.to_string(), want);
}

}  // namespace
}  // namespace fmps
