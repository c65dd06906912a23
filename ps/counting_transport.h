// A Transport that counts the bytes it sends to and receives from each peer, for /metrics
// (fmps_transport_sent_bytes_total{peer="ID"}, fmps_transport_received_bytes_total{peer="ID"},
// ids as in the node table: 0 the scheduler, then servers, then workers). It wraps any transport;
// the count is the header's encoded size plus the data frames, without the wire's framing.
#ifndef FMPS_PS_COUNTING_TRANSPORT_H_
#define FMPS_PS_COUNTING_TRANSPORT_H_

#include <memory>

#include "metrics/metrics.h"
#include "ps/transport.h"

namespace fmps {

// `registry` must outlive the transport.
std::unique_ptr<Transport> NewCountingTransport(std::unique_ptr<Transport> inner,
                                                MetricsRegistry* registry);

}  // namespace fmps

#endif  // FMPS_PS_COUNTING_TRANSPORT_H_
