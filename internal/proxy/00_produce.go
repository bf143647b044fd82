package proxy

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/evproxy/evproxy/internal/messageset"
	"github.com/evproxy/evproxy/internal/recordbatch"
	"github.com/evproxy/evproxy/internal/upstream"
)

// Produce: v0-12
//
// Behavior:
// * v0-2 carry legacy message sets (magic 0/1): each partition's set is
//   decompressed and converted to one uncompressed v2 batch (no producer
//   id) before forwarding. librdkafka before 2.11.1 compresses with gzip,
//   snappy or lz4 only when Produce v0 is advertised, so we implement it.
// * Each partition must carry exactly one v2 record batch (as brokers
//   require since v3); its CRC is checked and its records are forwarded as
//   bytes, compressed as the producer sent them, to the same upstream
//   partition. Nothing is decompressed.
// * Whatever the request's acks (0, 1, all), the upstream write uses
//   acks=all with evproxy's own idempotent producer; the producer is
//   answered (unless acks=0) once the upstream acknowledged, with the
//   upstream's base offset.
// * Idempotent batches are checked against the producer's accepted
//   sequences (idempotence.go); a retry of a written batch is answered with
//   its original offset and not forwarded.
// * A topic no route claims: TOPIC_AUTHORIZATION_FAILED (with a message on
//   v8+). A transactional produce: TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
//   A bad batch: CORRUPT_MESSAGE (CRC, truncation, magic) or INVALID_RECORD
//   (several batches, control batch).
// * v13 (topic ids) is not offered.

// produceSlot is one partition of a produce request.
type produceSlot struct {
	resp  *kmsg.ProduceResponseTopicPartition
	batch *upstream.Batch // nil when answered without forwarding
	hdr   recordbatch.Header
	gen   uint32 // idempotence generation when accepted
	idem  bool   // accepted under idempotence: report to producers.done
	size  int
	// settled means the idempotence outcome was already reported.
	settled bool
	// Plugin path: side records to produce, the error producing them
	// (set before the answer runs), and whether the batch was consumed
	// without anything left to forward to its partition.
	side     []*kgo.Record
	sideErr  error
	consumed bool
	topic    *string
	// Outbox path: the batch was handed to the outbox writer, and the
	// commit's error.
	outbox    bool
	outboxErr error
}

func (cc *clientConn) produce(p *pending, req *kmsg.ProduceRequest) {
	s := cc.s
	// Read before any sequence check: see upstream.Client.FailureEpoch.
	epoch := s.cfg.Upstream.FailureEpoch()
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = req.Version
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	var slots []produceSlot
	var batches []*upstream.Batch
	var writes []outboxWrite
	var jobs []pipelineJob
	n := 0
	for i := range req.Topics {
		n += len(req.Topics[i].Partitions)
	}
	slots = make([]produceSlot, 0, n)
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := &resp.Topics[i]
		*st = kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		route, fixed := s.cfg.Router.Match(rt.Topic)
		refused := fixed && route == nil
		passthrough := fixed && route != nil && route.Passthrough()
		if refused {
			cc.log.Warn().Str("topic", rt.Topic).Msg("produce to a topic no route claims: answering TOPIC_AUTHORIZATION_FAILED")
		}
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := &st.Partitions[j]
			*sp = kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			slots = append(slots, produceSlot{resp: sp, size: len(rp.Records), topic: &rt.Topic})
			slot := &slots[len(slots)-1]
			switch {
			case req.TransactionID != nil:
				setErr(sp, req.Version, kerr.TransactionalIDAuthorizationFailed, "evproxy does not proxy transactions")
				continue
			case refused:
				setErr(sp, req.Version, kerr.TopicAuthorizationFailed, fmt.Sprintf("evproxy: no route matches topic %q", rt.Topic))
				continue
			}
			if req.Version < 3 {
				// Legacy message sets become one v2 batch.
				converted, err := convertMessageSet(rp.Records, s.cfg.MaxRequestBytes)
				if err != nil {
					code := kerr.CorruptMessage
					if errors.Is(err, messageset.ErrTooLarge) {
						code = kerr.MessageTooLarge
					}
					cc.log.Warn().Str("topic", rt.Topic).Int32("partition", rp.Partition).Err(err).
						Str("answer", code.Message).Msg("refusing message set")
					setErr(sp, req.Version, code, "")
					if s.m != nil {
						s.m.badBatches.Inc()
					}
					continue
				}
				rp.Records = converted
			}
			h, err := recordbatch.Parse(rp.Records)
			if err == nil && h.Size() != len(rp.Records) {
				err = errMultipleBatches
			}
			if err == nil && h.Control() {
				err = errControlBatch
			}
			if err == nil && h.Transactional() {
				err = errTransactionalBatch
			}
			if err != nil {
				code := batchErrCode(err)
				cc.log.Warn().Str("topic", rt.Topic).Int32("partition", rp.Partition).Err(err).
					Str("answer", code.Message).Msg("refusing record batch")
				setErr(sp, req.Version, code, "evproxy: "+err.Error())
				if s.m != nil {
					s.m.badBatches.Inc()
				}
				continue
			}
			slot.hdr = h
			batch := &upstream.Batch{Topic: rt.Topic, Partition: rp.Partition, Data: rp.Records, NumRecords: h.NumRecords, Epoch: epoch}
			if h.ProducerID >= 0 {
				v := s.producers.check(h.ProducerID, h.ProducerEpoch, tpKey{rt.Topic, rp.Partition}, h.BaseSequence, h.LastSequence(), batch)
				switch {
				case v.err != nil:
					if !errors.Is(v.err, kerr.DuplicateSequenceNumber) {
						cc.log.Debug().Str("topic", rt.Topic).Int32("partition", rp.Partition).Int64("producer_id", h.ProducerID).
							Int32("sequence", h.BaseSequence).Err(v.err).Msg("idempotent batch refused")
					}
					setErr(sp, req.Version, v.err.(*kerr.Error), "")
					continue
				case !v.accept:
					sp.BaseOffset = v.dupOffset // a retry of a written batch
					continue
				}
				slot.idem, slot.gen = true, v.gen
			}
			if s.m != nil {
				s.m.recordsIn(rt.Topic, int(h.NumRecords), len(rp.Records))
			}
			if ob := s.cfg.Router.Outbox(rt.Topic); ob != nil {
				// Outbox path: committed to the outbox, then answered.
				if msgs := cc.toOutbox(slot, batch, ob, passthrough, h, req.Version); msgs != nil {
					writes = append(writes, outboxWrite{slot, msgs})
				}
				continue
			}
			if !passthrough {
				// Plugin path: decode, run the chains, re-encode; all
				// such partitions together, below.
				jobs = append(jobs, pipelineJob{slot: slot, batch: batch, partition: rp.Partition})
				continue
			}
			slot.batch = batch
		}
	}
	if len(jobs) > 0 {
		cc.runPipelines(jobs, req.Version)
		for _, j := range jobs {
			if j.ok {
				j.slot.batch = j.batch
			}
			if j.buf != nil {
				p.bufs = append(p.bufs, j.buf)
			}
		}
	}
	for i := range slots {
		if slots[i].batch != nil {
			batches = append(batches, slots[i].batch)
		}
	}
	acks := req.Acks
	p.answer = func() kmsg.Response {
		for i := range slots {
			cc.settle(&slots[i], req.Version)
		}
		if acks == 0 {
			return nil
		}
		return resp
	}
	up := upstream.NewProduce(batches, func() { cc.complete(p) })
	up.Hold() // the answer waits for the bookkeeping below
	cc.writeOutbox(up, writes)
	for i := range slots {
		sl := &slots[i]
		if len(sl.side) == 0 {
			continue
		}
		up.Hold()
		s.cfg.Upstream.ProduceRecords(s.ctx, sl.side, func(err error) {
			sl.sideErr = err
			up.Release()
		})
	}
	if len(batches) > 0 {
		s.cfg.Upstream.Send(s.ctx, up)
		// Batches that failed before reaching a broker failed now, in
		// request order: settle them before the next request is read so
		// a later batch of the same partition cannot overtake them.
		for i := range slots {
			sl := &slots[i]
			if sl.batch != nil && !sl.batch.Sent() {
				cc.settle(sl, req.Version)
			}
		}
	}
	up.Release()
}

// settle copies a forwarded batch's upstream result into its response slot
// and reports it to the idempotence tracker, once.
func (cc *clientConn) settle(sl *produceSlot, version int16) {
	if sl.outbox {
		cc.settleOutbox(sl, version)
		return
	}
	if sl.consumed && !sl.settled {
		// Nothing left for the partition itself (all dropped, rejected
		// or routed away): the batch is done once its side records are.
		sl.settled = true
		cc.settleConsumed(sl, version)
		return
	}
	if sl.batch == nil || sl.settled {
		return
	}
	sl.settled = true
	if sl.sideErr != nil && sl.batch.Err == nil {
		cc.log.Warn().Err(sl.sideErr).Str("topic", sl.batch.Topic).Msg("routed, fanned-out or dead-letter records failed")
		sl.batch.Err = kerr.NotEnoughReplicas // retriable; the batch itself was written
	}
	b, h, s := sl.batch, &sl.hdr, cc.s
	tp := tpKey{b.Topic, b.Partition}
	if b.Err != nil {
		var ke *kerr.Error
		if !errors.As(b.Err, &ke) {
			ke = kerr.UnknownServerError
		}
		setErr(sl.resp, version, ke, "")
		if s.m != nil {
			s.m.upstreamErrors.WithLabelValues(ke.Message).Inc()
		}
	} else {
		sl.resp.BaseOffset = b.BaseOffset
		sl.resp.LogAppendTime = b.LogAppendTime
		sl.resp.LogStartOffset = b.LogStartOffset
		if s.m != nil {
			s.m.recordsOut(b.Topic, int(b.NumRecords), sl.size)
		}
	}
	if sl.idem {
		s.producers.done(h.ProducerID, h.ProducerEpoch, tp, h.BaseSequence, h.LastSequence(), sl.gen, b.BaseOffset, b.Err)
	}
}

// convertMessageSet turns a Produce v0-2 message set into a v2 batch. The
// decompressed size is bounded by the request size limit.
func convertMessageSet(set []byte, maxBytes int32) ([]byte, error) {
	b, _, err := messageset.ToRecordBatch(set, time.Now().UnixMilli(), int(maxBytes))
	return b, err
}

var (
	errMultipleBatches    = errors.New("partition data holds more than one record batch")
	errControlBatch       = errors.New("control batches cannot be produced")
	errTransactionalBatch = errors.New("transactional batches are not proxied")
)

// batchErrCode maps a batch validation error to the Kafka error code a
// broker would answer.
func batchErrCode(err error) *kerr.Error {
	switch {
	case errors.Is(err, recordbatch.ErrCRC), errors.Is(err, recordbatch.ErrTruncated),
		errors.Is(err, recordbatch.ErrCorrupt):
		return kerr.CorruptMessage
	case errors.Is(err, recordbatch.ErrMagic):
		return kerr.UnsupportedForMessageFormat
	case errors.Is(err, errTransactionalBatch):
		return kerr.TransactionalIDAuthorizationFailed
	default:
		return kerr.InvalidRecord
	}
}

// setErr sets a partition's error code, and its message on versions that
// carry one (v8+).
func setErr(sp *kmsg.ProduceResponseTopicPartition, version int16, err *kerr.Error, msg string) {
	sp.ErrorCode = err.Code
	sp.BaseOffset = -1
	if version >= 8 && msg != "" {
		sp.ErrorMessage = &msg
	}
}
