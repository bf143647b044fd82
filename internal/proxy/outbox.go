package proxy

import (
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/evproxy/evproxy/internal/batchcodec"
	"github.com/evproxy/evproxy/internal/outbox"
	"github.com/evproxy/evproxy/internal/pipeline"
	"github.com/evproxy/evproxy/internal/recordbatch"
	"github.com/evproxy/evproxy/internal/upstream"
)

// OutboxWriter commits the records of outbox routes (internal/outbox.Writer).
// Write must not block; done runs once, after the commit or its failure,
// and must not block either.
type OutboxWriter interface {
	Write(msgs []*outbox.Message, done func(error))
}

// outboxWrite is a partition batch waiting to be handed to the writer once
// the request's answer is set up.
type outboxWrite struct {
	slot *produceSlot
	msgs []*outbox.Message
}

// toOutbox turns one partition's batch into outbox messages: decoded, run
// through the route's plugins when it has any, with ce_id filled and
// evproxy.deliver-at consumed. The messages own their bytes (the decode
// buffers are reused by the next request). It returns nil when the slot
// was answered without writing (refused batch, rejected records, or
// nothing left to write).
func (cc *clientConn) toOutbox(slot *produceSlot, batch *upstream.Batch, route *pipeline.Route, passthrough bool, h recordbatch.Header, version int16) []*outbox.Message {
	s := cc.s
	if s.cfg.Outbox == nil {
		cc.failSlot(slot, version, kerr.UnknownServerError, "evproxy: outbox delivery is not configured")
		return nil
	}
	topic, partition := batch.Topic, batch.Partition
	dec, ok := cc.decodeSlot(&cc.decoder, slot, batch, version)
	if !ok {
		return nil
	}
	main := dec.Records
	var side []pipeline.SideRecord
	if !passthrough {
		out, ok := cc.process(slot, topic, partition, dec.Records, h, version)
		if !ok {
			return nil
		}
		main, side = out.Main, out.Side
	}
	if len(main)+len(side) == 0 {
		slot.consumed, slot.settled = true, true
		slot.resp.BaseOffset = -1
		cc.idemDone(slot, nil)
		return nil
	}
	size := 0
	for i := range main {
		size += recordBytes(main[i].Key, main[i].Value, main[i].Headers)
	}
	for i := range side {
		size += recordBytes(side[i].Key, side[i].Value, side[i].Headers)
	}
	a := arena{buf: make([]byte, 0, size)}
	msgs := make([]*outbox.Message, 0, len(main)+len(side))
	var bad []pipeline.RecordError
	add := func(i int, topic string, partition int32, key, value []byte, hs []batchcodec.Header, ts int64) {
		m := &outbox.Message{
			Topic: topic, Partition: partition, Key: a.copy(key), Value: a.copy(value),
			Timestamp: time.UnixMilli(ts), Priority: route.Priority, Processed: true,
			Headers: make([]outbox.Header, 0, len(hs)+1),
		}
		for _, hd := range hs {
			switch hd.Key {
			case outbox.HeaderDeliverAt:
				at, err := outbox.ParseDeliverAt(hd.Value)
				if err != nil {
					bad = append(bad, pipeline.RecordError{Index: int32(i), Message: "evproxy: " + err.Error()})
				}
				m.DeliverAt = at
				continue // consumed: never published
			case outbox.HeaderEventID:
				if len(hd.Value) == 0 {
					continue // empty: replaced by a generated id below
				}
				m.EventID = string(hd.Value)
			}
			m.Headers = append(m.Headers, outbox.Header{Key: strings.Clone(hd.Key), Value: a.copy(hd.Value)})
		}
		if m.EventID == "" {
			m.EventID, m.Generated = outbox.NewEventID(), true
			m.Headers = append(m.Headers, outbox.Header{Key: outbox.HeaderEventID, Value: []byte(m.EventID)})
		}
		msgs = append(msgs, m)
	}
	for i := range main {
		r := &main[i]
		add(i, topic, partition, r.Key, r.Value, r.Headers, r.Timestamp)
	}
	for i := range side {
		r := &side[i]
		add(len(main)+i, r.Topic, -1, r.Key, r.Value, r.Headers, r.Timestamp)
	}
	if len(bad) > 0 {
		cc.failRecords(slot, h, version, bad)
		return nil
	}
	return msgs
}

// writeOutbox hands the batches of one request to the writer, in request
// order, holding the answer until each is committed.
func (cc *clientConn) writeOutbox(up *upstream.Produce, writes []outboxWrite) {
	for _, w := range writes {
		sl := w.slot
		sl.outbox = true
		n := len(w.msgs)
		up.Hold()
		cc.s.cfg.Outbox.Write(w.msgs, func(err error) {
			sl.outboxErr = err
			if err == nil && cc.s.m != nil {
				cc.s.m.recordsOut(*sl.topic, n, sl.size)
			}
			up.Release()
		})
	}
}

// settleOutbox answers a batch written to the outbox: success (offset -1:
// the records are not in Kafka yet) once committed, or a retriable
// KAFKA_STORAGE_ERROR when the commit failed; never a false ack.
func (cc *clientConn) settleOutbox(sl *produceSlot, version int16) {
	if sl.settled {
		return
	}
	sl.settled = true
	if err := sl.outboxErr; err != nil {
		cc.log.Warn().Err(err).Str("topic", *sl.topic).Msg("outbox commit failed: answering KAFKA_STORAGE_ERROR (retriable)")
		setErr(sl.resp, version, kerr.KafkaStorageError, "evproxy: "+err.Error())
		if cc.s.m != nil {
			cc.s.m.upstreamErrors.WithLabelValues("OUTBOX_COMMIT_FAILED").Inc()
		}
		cc.idemDone(sl, kerr.KafkaStorageError)
		return
	}
	sl.resp.BaseOffset = -1
	cc.idemDone(sl, nil)
}

// failRecords fails a slot with INVALID_RECORD and per-record messages.
func (cc *clientConn) failRecords(slot *produceSlot, h recordbatch.Header, version int16, errs []pipeline.RecordError) {
	setErr(slot.resp, version, kerr.InvalidRecord, errs[0].Message)
	if version >= 8 {
		for _, e := range errs {
			re := kmsg.NewProduceResponseTopicPartitionErrorRecord()
			re.RelativeOffset = e.Index
			m := e.Message
			re.ErrorMessage = &m
			slot.resp.ErrorRecords = append(slot.resp.ErrorRecords, re)
		}
	}
	// The producer does not retry INVALID_RECORD: its sequence is used
	// up, so later batches are in order.
	slot.consumed, slot.settled = true, true
	if slot.idem {
		cc.s.producers.done(h.ProducerID, h.ProducerEpoch, tpKey{*slot.topic, slot.resp.Partition}, h.BaseSequence, h.LastSequence(), slot.gen, -1, nil)
	}
}

// idemDone reports a slot's outcome to the idempotence tracker.
func (cc *clientConn) idemDone(sl *produceSlot, err error) {
	if !sl.idem {
		return
	}
	h := &sl.hdr
	cc.s.producers.done(h.ProducerID, h.ProducerEpoch, tpKey{*sl.topic, sl.resp.Partition}, h.BaseSequence, h.LastSequence(), sl.gen, -1, err)
}

// recordBytes is the size of a record's key, value and header values.
func recordBytes(key, value []byte, hs []batchcodec.Header) int {
	n := len(key) + len(value)
	for _, h := range hs {
		n += len(h.Value)
	}
	return n
}

// arena copies byte slices into one allocation.
type arena struct{ buf []byte }

// copy returns a copy of b in the arena; nil stays nil.
func (a *arena) copy(b []byte) []byte {
	if b == nil {
		return nil
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return a.buf[start:len(a.buf):len(a.buf)]
}
