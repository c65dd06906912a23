// A raw HTTP/1.1 GET over a plain socket for the metrics tests: no client library, so the tests
// see exactly the bytes a scraper gets.
#ifndef FMPS_TESTS_METRICS_HTTP_GET_H_
#define FMPS_TESTS_METRICS_HTTP_GET_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace fmps {

struct HttpAnswer {
  int status = -1;  // -1: no connection or no answer
  std::string body, raw;
};

// GET `path` from 127.0.0.1:port with "Connection: close"; reads until the server closes.
inline HttpAnswer HttpGet(int port, const std::string& path) {
  HttpAnswer answer;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return answer;
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return answer;
  }
  const std::string request =
      "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return answer;
  }
  char buf[65536];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) answer.raw.append(buf, n);
  ::close(fd);
  if (answer.raw.rfind("HTTP/1.1 ", 0) != 0) return answer;
  answer.status = std::atoi(answer.raw.c_str() + 9);
  const size_t head_end = answer.raw.find("\r\n\r\n");
  if (head_end != std::string::npos) answer.body = answer.raw.substr(head_end + 4);
  return answer;
}

}  // namespace fmps

#endif  // FMPS_TESTS_METRICS_HTTP_GET_H_
