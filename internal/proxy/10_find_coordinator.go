package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator: v0-3
//
// Behavior:
// * evproxy coordinates no consumer groups and no transactions: group
//   lookups are answered GROUP_AUTHORIZATION_FAILED, transaction lookups
//   TRANSACTIONAL_ID_AUTHORIZATION_FAILED, with a message (v1+) saying to
//   use Kafka directly. librdkafka requires FindCoordinator to be
//   advertised before it will compress with LZ4, which is why it is here.
// * v4+ (batched keys) is not offered.

const coordinatorMsg = "evproxy proxies the produce path; consumer groups and transactions are served by Kafka directly"

func (s *Server) findCoordinator(req *kmsg.FindCoordinatorRequest) *kmsg.FindCoordinatorResponse {
	resp := kmsg.NewPtrFindCoordinatorResponse()
	resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
	if req.CoordinatorType == 1 {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
	}
	if req.Version >= 1 {
		msg := coordinatorMsg
		resp.ErrorMessage = &msg
	}
	resp.NodeID, resp.Port = -1, -1
	return resp
}
