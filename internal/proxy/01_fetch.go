package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch: v4-12
//
// Behavior:
// * Forwarded to the upstream leaders of the requested partitions and
//   merged, record batches passed through untouched, so simple consumers
//   (kcat -C, assign-mode consumers) can read through evproxy. librdkafka
//   also needs Fetch v4+ advertised to produce v2 record batches at all,
//   and v10+ to use zstd.
// * Sessionless: evproxy never creates fetch sessions (KIP-227); every
//   answer has session id 0. An incremental fetch (epoch > 0) is answered
//   FETCH_SESSION_ID_NOT_FOUND, making the client fall back to full fetches.
// * Preferred read replicas are never reported (always -1).
// * A topic no route claims: TOPIC_AUTHORIZATION_FAILED.
// * v13+ (topic ids) is not offered.

func (cc *clientConn) fetch(p *pending, req *kmsg.FetchRequest) {
	s := cc.s
	resp := kmsg.NewPtrFetchResponse()
	if req.Version >= 7 && req.SessionEpoch > 0 {
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		p.answer = func() kmsg.Response { return resp }
		cc.complete(p)
		return
	}
	fwd := *req
	fwd.Topics = nil
	var refused []kmsg.FetchRequestTopic
	for _, t := range req.Topics {
		if !s.cfg.Router.Claims(t.Topic) {
			refused = append(refused, t)
			continue
		}
		fwd.Topics = append(fwd.Topics, t)
	}
	var up *kmsg.FetchResponse
	p.answer = func() kmsg.Response {
		if up != nil {
			resp.Topics = up.Topics
			resp.ThrottleMillis = up.ThrottleMillis
		}
		for _, t := range refused {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic = t.Topic
			for _, rp := range t.Partitions {
				pp := kmsg.NewFetchResponseTopicPartition()
				pp.Partition = rp.Partition
				pp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				pp.HighWatermark, pp.LastStableOffset, pp.LogStartOffset = -1, -1, -1
				rt.Partitions = append(rt.Partitions, pp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	if len(fwd.Topics) == 0 {
		cc.complete(p)
		return
	}
	cc.async(p, func() { up = s.cfg.Upstream.Fetch(s.ctx, &fwd) })
}
