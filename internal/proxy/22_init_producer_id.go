package proxy

import (
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId: v0-4
//
// Behavior:
// * evproxy issues producer ids itself; they never reach the upstream,
//   which sees evproxy's own idempotent producer (see internal/upstream).
// * Idempotent producers only: a request with a transactional id is answered
//   TRANSACTIONAL_ID_AUTHORIZATION_FAILED; evproxy does not proxy
//   transactions.
// * v3+ epoch bumps (KIP-360) of a known producer id return the same id with
//   the next epoch and forget its sequences; an unknown id gets a new one.

func (s *Server) initProducerID(req *kmsg.InitProducerIDRequest, log zerolog.Logger) *kmsg.InitProducerIDResponse {
	resp := kmsg.NewPtrInitProducerIDResponse()
	if req.TransactionalID != nil {
		log.Warn().Str("transactional_id", *req.TransactionalID).
			Msg("refusing transactional producer: evproxy supports idempotent producers, not transactions")
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		resp.ProducerID, resp.ProducerEpoch = -1, -1
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = s.producers.issue(req.ProducerID, req.ProducerEpoch)
	return resp
}
