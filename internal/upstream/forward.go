package upstream

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Versions of forwarded requests are capped where newer versions address
// topics by id, which evproxy does not map (see newKgoClient).
const (
	maxFetchVersion       = 12
	maxListOffsetsVersion = 8
)

// ListOffsets forwards a ListOffsets request to the partitions' leaders and
// merges their answers.
func (c *Client) ListOffsets(ctx context.Context, req *kmsg.ListOffsetsRequest) (*kmsg.ListOffsetsResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	sub := *req
	sub.ReplicaID = -1
	resp, err := sub.RequestWith(ctx, c.cl)
	if err != nil {
		return nil, fmt.Errorf("upstream: list offsets: %w", err)
	}
	return resp, nil
}

// Fetch forwards a sessionless Fetch to the leaders of the requested
// partitions and merges their answers. Partitions whose leader is unknown or
// whose broker fails are answered with a retriable error.
func (c *Client) Fetch(ctx context.Context, req *kmsg.FetchRequest) *kmsg.FetchResponse {
	type part struct {
		topic string
		p     kmsg.FetchRequestTopicPartition
	}
	byLeader := make(map[int32][]part)
	out := kmsg.NewPtrFetchResponse()
	fail := func(topic string, partition int32, code int16) {
		i := -1
		for j := range out.Topics {
			if out.Topics[j].Topic == topic {
				i = j
				break
			}
		}
		if i < 0 {
			t := kmsg.NewFetchResponseTopic()
			t.Topic = topic
			out.Topics = append(out.Topics, t)
			i = len(out.Topics) - 1
		}
		p := kmsg.NewFetchResponseTopicPartition()
		p.Partition = partition
		p.ErrorCode = code
		p.HighWatermark, p.LastStableOffset, p.LogStartOffset = -1, -1, -1
		out.Topics[i].Partitions = append(out.Topics[i].Partitions, p)
	}
	for _, t := range req.Topics {
		tm, err := c.leaders(ctx, t.Topic)
		for _, p := range t.Partitions {
			switch {
			case err != nil:
				fail(t.Topic, p.Partition, asKafkaErr(err).(*kerr.Error).Code)
			case tm.err != 0:
				fail(t.Topic, p.Partition, tm.err)
			case p.Partition < 0 || int(p.Partition) >= len(tm.leaders):
				fail(t.Topic, p.Partition, kerr.UnknownTopicOrPartition.Code)
			case tm.leaders[p.Partition] < 0:
				fail(t.Topic, p.Partition, kerr.LeaderNotAvailable.Code)
			default:
				l := tm.leaders[p.Partition]
				byLeader[l] = append(byLeader[l], part{t.Topic, p})
			}
		}
	}
	type result struct {
		parts []part
		resp  *kmsg.FetchResponse
		err   error
	}
	results := make(chan result, len(byLeader))
	for leader, parts := range byLeader {
		sub := kmsg.NewPtrFetchRequest()
		sub.ReplicaID = -1
		sub.MaxWaitMillis = req.MaxWaitMillis
		sub.MinBytes = req.MinBytes
		sub.MaxBytes = req.MaxBytes
		sub.IsolationLevel = req.IsolationLevel
		sub.SessionID, sub.SessionEpoch = 0, -1
		sub.Rack = req.Rack
		for _, p := range parts {
			n := len(sub.Topics)
			if n == 0 || sub.Topics[n-1].Topic != p.topic {
				t := kmsg.NewFetchRequestTopic()
				t.Topic = p.topic
				sub.Topics = append(sub.Topics, t)
				n++
			}
			sub.Topics[n-1].Partitions = append(sub.Topics[n-1].Partitions, p.p)
		}
		go func() {
			rctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout+durationMillis(req.MaxWaitMillis))
			defer cancel()
			resp, err := c.cl.Broker(int(leader)).RetriableRequest(rctx, sub)
			r := result{parts: parts, err: err}
			if err == nil {
				r.resp = resp.(*kmsg.FetchResponse)
			}
			results <- r
		}()
	}
	for range byLeader {
		r := <-results
		if r.err == nil && r.resp.ErrorCode != 0 {
			r.err = kerr.ErrorForCode(r.resp.ErrorCode)
		}
		if r.err != nil {
			c.log.Debug().Err(r.err).Msg("upstream fetch failed")
			for _, p := range r.parts {
				c.markStale(p.topic)
				fail(p.topic, p.p.Partition, asKafkaErr(r.err).(*kerr.Error).Code)
			}
			continue
		}
		out.ThrottleMillis = max(out.ThrottleMillis, r.resp.ThrottleMillis)
		for _, t := range r.resp.Topics {
			i := -1
			for j := range out.Topics {
				if out.Topics[j].Topic == t.Topic {
					i = j
					break
				}
			}
			if i < 0 {
				nt := kmsg.NewFetchResponseTopic()
				nt.Topic = t.Topic
				out.Topics = append(out.Topics, nt)
				i = len(out.Topics) - 1
			}
			for _, p := range t.Partitions {
				p.PreferredReadReplica = -1 // clients only know evproxy
				p.CurrentLeader = kmsg.NewFetchResponseTopicPartitionCurrentLeader()
				switch p.ErrorCode {
				case kerr.NotLeaderForPartition.Code, kerr.FencedLeaderEpoch.Code, kerr.UnknownLeaderEpoch.Code:
					c.markStale(t.Topic)
				}
				out.Topics[i].Partitions = append(out.Topics[i].Partitions, p)
			}
		}
	}
	return out
}
