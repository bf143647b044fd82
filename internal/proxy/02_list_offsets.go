package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets: v1-8
//
// Behavior:
// * Forwarded to the upstream partition leaders and merged, so consumers
//   reading through evproxy can resolve start/end/time offsets.
// * A topic no route claims: TOPIC_AUTHORIZATION_FAILED.
// * An upstream failure answers every partition with the retriable error.

func (cc *clientConn) listOffsets(p *pending, req *kmsg.ListOffsetsRequest) {
	s := cc.s
	fwd := *req
	fwd.Topics = nil
	var refused []kmsg.ListOffsetsRequestTopic
	for _, t := range req.Topics {
		if !s.cfg.Router.Claims(t.Topic) {
			refused = append(refused, t)
			continue
		}
		fwd.Topics = append(fwd.Topics, t)
	}
	var (
		up  *kmsg.ListOffsetsResponse
		err error
	)
	p.answer = func() kmsg.Response {
		resp := kmsg.NewPtrListOffsetsResponse()
		answerAll := func(topics []kmsg.ListOffsetsRequestTopic, code int16) {
			for _, t := range topics {
				rt := kmsg.NewListOffsetsResponseTopic()
				rt.Topic = t.Topic
				for _, rp := range t.Partitions {
					pp := kmsg.NewListOffsetsResponseTopicPartition()
					pp.Partition = rp.Partition
					pp.ErrorCode = code
					rt.Partitions = append(rt.Partitions, pp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
		}
		switch {
		case err != nil:
			cc.log.Warn().Err(err).Msg("upstream list offsets failed")
			answerAll(fwd.Topics, kerr.LeaderNotAvailable.Code)
		case up != nil:
			resp.Topics = up.Topics
			resp.ThrottleMillis = up.ThrottleMillis
		}
		answerAll(refused, kerr.TopicAuthorizationFailed.Code)
		return resp
	}
	if len(fwd.Topics) == 0 {
		cc.complete(p)
		return
	}
	cc.async(p, func() { up, err = s.cfg.Upstream.ListOffsets(s.ctx, &fwd) })
}
