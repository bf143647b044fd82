package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metadata: v0-13
//
// Behavior:
// * Topics and partition counts mirror the upstream cluster, so producers
//   hash keys to the partitions they would use without evproxy.
// * evproxy presents itself as the only broker (node NodeID at Advertised),
//   leader and sole replica of every partition.
// * Topic auto-creation is forwarded (AllowAutoTopicCreation; always on for
//   v0-3, as brokers do) but only for topics a route claims.
// * A requested topic no route claims is answered TOPIC_AUTHORIZATION_FAILED;
//   a request for all topics lists only routed topics.
// * Cluster and topic authorized operations are not reported.

func (cc *clientConn) metadata(p *pending, req *kmsg.MetadataRequest) {
	s := cc.s
	var topics []string
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	var refused []string
	if !all {
		topics = make([]string, 0, len(req.Topics))
		for _, t := range req.Topics {
			if t.Topic == nil {
				continue // v10+ lookups by id only: unsupported, skipped
			}
			if !s.cfg.Router.Claims(*t.Topic) {
				refused = append(refused, *t.Topic)
				continue
			}
			topics = append(topics, *t.Topic)
		}
	}
	autoCreate := req.AllowAutoTopicCreation || req.Version < 4
	var (
		up  *kmsg.MetadataResponse
		err error
	)
	p.answer = func() kmsg.Response {
		resp := kmsg.NewPtrMetadataResponse()
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = s.cfg.NodeID, s.advHost, s.advPort
		resp.Brokers = []kmsg.MetadataResponseBroker{b}
		resp.ControllerID = s.cfg.NodeID
		if err != nil {
			cc.log.Warn().Err(err).Msg("upstream metadata failed")
			if s.m != nil {
				s.m.upstreamErrors.WithLabelValues("metadata").Inc()
			}
			for _, t := range topics {
				rt := kmsg.NewMetadataResponseTopic()
				rt.Topic = kmsg.StringPtr(t)
				rt.ErrorCode = kerr.LeaderNotAvailable.Code
				resp.Topics = append(resp.Topics, rt)
			}
		} else if up != nil {
			resp.ClusterID = up.ClusterID
			for _, ut := range up.Topics {
				if ut.Topic == nil || (all && !s.cfg.Router.Claims(*ut.Topic)) {
					continue
				}
				resp.Topics = append(resp.Topics, s.mirrorTopic(ut))
			}
		}
		for _, t := range refused {
			cc.log.Warn().Str("topic", t).Msg("metadata for a topic no route claims: answering TOPIC_AUTHORIZATION_FAILED")
			rt := kmsg.NewMetadataResponseTopic()
			rt.Topic = kmsg.StringPtr(t)
			rt.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	if !all && len(topics) == 0 {
		cc.complete(p)
		return
	}
	cc.async(p, func() { up, err = s.cfg.Upstream.Metadata(s.ctx, topics, autoCreate) })
}

// mirrorTopic copies an upstream topic, making evproxy every partition's
// leader and only replica.
func (s *Server) mirrorTopic(ut kmsg.MetadataResponseTopic) kmsg.MetadataResponseTopic {
	rt := kmsg.NewMetadataResponseTopic()
	rt.Topic = ut.Topic
	rt.TopicID = ut.TopicID
	rt.ErrorCode = ut.ErrorCode
	rt.IsInternal = ut.IsInternal
	self := []int32{s.cfg.NodeID}
	rt.Partitions = make([]kmsg.MetadataResponseTopicPartition, 0, len(ut.Partitions))
	for _, up := range ut.Partitions {
		rp := kmsg.NewMetadataResponseTopicPartition()
		rp.Partition = up.Partition
		rp.ErrorCode = up.ErrorCode
		if rp.ErrorCode == kerr.ReplicaNotAvailable.Code {
			rp.ErrorCode = 0 // our single replica is always there
		}
		rp.Leader = s.cfg.NodeID
		rp.LeaderEpoch = up.LeaderEpoch
		rp.Replicas = self
		rp.ISR = self
		rt.Partitions = append(rt.Partitions, rp)
	}
	return rt
}
