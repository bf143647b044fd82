package proxy

import (
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evproxy/evproxy/internal/batchcodec"
	"github.com/evproxy/evproxy/internal/pipeline"
	"github.com/evproxy/evproxy/internal/recordbatch"
	"github.com/evproxy/evproxy/internal/upstream"
)

// pipelineJob is one partition of a produce request on the plugin path.
type pipelineJob struct {
	slot      *produceSlot
	batch     *upstream.Batch
	partition int32
	ok        bool    // the batch is to be forwarded
	buf       *[]byte // from the server's frame pools, holding batch.Data when ok
}

// codecs decode and re-encode the batches of the plugin path. The server
// pools them: the partitions of one request are processed in parallel.
type codecs struct {
	dec batchcodec.Decoder
	enc batchcodec.Encoder
}

// runPipelines runs the plugin chains over a request's plugin-path
// partitions, in parallel on up to GOMAXPROCS goroutines (the calling one
// included): each partition's batch is decoded, processed and re-encoded
// on its own, so a request's partitions cost the latency of the slowest,
// not the sum.
func (cc *clientConn) runPipelines(jobs []pipelineJob, version int16) {
	run := func(j *pipelineJob) {
		c, _ := cc.s.codecs.Get().(*codecs)
		if c == nil {
			c = &codecs{}
		}
		j.ok, j.buf = cc.runPipeline(c, j.slot, j.batch, j.batch.Topic, j.partition, j.slot.hdr, version)
		cc.s.codecs.Put(c)
	}
	workers := min(len(jobs), runtime.GOMAXPROCS(0))
	if workers <= 1 {
		for i := range jobs {
			run(&jobs[i])
		}
		return
	}
	var next atomic.Int32
	work := func() {
		for {
			i := int(next.Add(1)) - 1
			if i >= len(jobs) {
				return
			}
			run(&jobs[i])
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
}

// runPipeline runs the plugin chains over one partition's batch. It
// rewrites batch (the records that stay in the partition, re-encoded with
// the producer's codec) and collects the side records of slot. It reports
// whether batch still has to be forwarded; when it does not, slot is
// answered by itself (consumed, refused, or failed). The re-encoded batch
// is written to a buffer of the server's frame pools when it fits (buf,
// to be put back once the request is answered).
func (cc *clientConn) runPipeline(c *codecs, slot *produceSlot, batch *upstream.Batch, topic string, partition int32, h recordbatch.Header, version int16) (ok bool, buf *[]byte) {
	dec, ok := cc.decodeSlot(&c.dec, slot, batch, version)
	if !ok {
		return false, nil
	}
	out, ok := cc.process(slot, topic, partition, dec.Records, h, version)
	if !ok {
		return false, nil
	}
	// The outcome's memory is reused by the next batch: its side records
	// are copied and its main records encoded before Release.
	defer out.Release()
	for _, r := range out.Side {
		slot.side = append(slot.side, sideRecord(r))
	}
	if len(out.Main) == 0 {
		slot.consumed = true
		return false, nil
	}
	// Room for the batch as the producer sent it, and as much again for
	// what plugins add: a larger batch grows out of it into memory of its
	// own.
	buf = cc.s.frames.get(2*len(batch.Data) + 4096)
	enc, err := c.enc.Encode((*buf)[:0], h.Attributes, -1, -1, -1, out.Main)
	if err != nil {
		cc.s.frames.put(buf)
		cc.failSlot(slot, version, kerr.UnknownServerError, "evproxy: re-encode batch: "+err.Error())
		return false, nil
	}
	if cap(enc) != cap(*buf) {
		cc.s.frames.put(buf) // outgrown: enc is garbage-collected memory
		buf = nil
	}
	batch.Data = enc
	batch.NumRecords = int32(len(out.Main))
	return true, buf
}

// decodeSlot decodes a partition's batch with dec (whose buffers the
// records alias until its next use); on failure the slot is answered.
func (cc *clientConn) decodeSlot(d *batchcodec.Decoder, slot *produceSlot, batch *upstream.Batch, version int16) (*batchcodec.Batch, bool) {
	dec, err := d.Decode(batch.Data, int(cc.s.cfg.MaxRequestBytes))
	if err != nil {
		code := kerr.CorruptMessage
		switch {
		case errors.Is(err, batchcodec.ErrTooLarge):
			code = kerr.MessageTooLarge
		case errors.Is(err, batchcodec.ErrUnsupportedCodec):
			code = kerr.UnsupportedCompressionType
		}
		cc.log.Warn().Str("topic", batch.Topic).Int32("partition", batch.Partition).Err(err).Str("answer", code.Message).Msg("refusing record batch: cannot decode its records")
		cc.failSlot(slot, version, code, "evproxy: "+err.Error())
		return nil, false
	}
	return dec, true
}

// process runs the plugin chains over decoded records. When records are
// refused (on_reject = "error", or no route for their event type) or the
// pipeline fails, the slot is answered and ok is false.
func (cc *clientConn) process(slot *produceSlot, topic string, partition int32, recs []batchcodec.Record, h recordbatch.Header, version int16) (pipeline.Outcome, bool) {
	s := cc.s
	if s.cfg.Pipeline == nil {
		cc.failSlot(slot, version, kerr.UnknownServerError, "evproxy: plugins are not configured")
		return pipeline.Outcome{}, false
	}
	out, err := s.cfg.Pipeline.Process(s.ctx, pipeline.Input{Topic: topic, Partition: partition, Records: recs})
	if err != nil {
		cc.log.Error().Str("topic", topic).Int32("partition", partition).Err(err).Msg("pipeline failed")
		cc.failSlot(slot, version, kerr.UnknownServerError, "evproxy: "+err.Error())
		return pipeline.Outcome{}, false
	}
	if s.m != nil && out.Rejected > 0 {
		s.m.rejected(topic, out.Rejected)
	}
	if len(out.Errors) > 0 {
		// on_reject = "error": the batch fails as a whole, with the
		// reasons per record (v8+).
		cc.failRecords(slot, h, version, out.Errors)
		return pipeline.Outcome{}, false
	}
	return out, true
}

// sideRecord copies a pipeline side record into a franz-go record: its
// bytes and strings may alias the connection's decode buffers, which the
// next request reuses, or the plugins' verdicts, which the next batch
// reuses (pipeline.Outcome.Release).
func sideRecord(r pipeline.SideRecord) *kgo.Record {
	kr := &kgo.Record{Topic: strings.Clone(r.Topic), Timestamp: timeFromMillis(r.Timestamp)}
	if r.Key != nil {
		kr.Key = append([]byte{}, r.Key...)
	}
	if r.Value != nil {
		kr.Value = append([]byte{}, r.Value...)
	}
	for _, h := range r.Headers {
		kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: strings.Clone(h.Key), Value: append([]byte(nil), h.Value...)})
	}
	return kr
}

// failSlot answers a partition with err without forwarding it, reporting
// the failure to the idempotence tracker.
func (cc *clientConn) failSlot(slot *produceSlot, version int16, err *kerr.Error, msg string) {
	setErr(slot.resp, version, err, msg)
	slot.consumed, slot.settled = true, true
	if slot.idem {
		h := &slot.hdr
		cc.s.producers.done(h.ProducerID, h.ProducerEpoch, tpKey{*slot.topic, slot.resp.Partition}, h.BaseSequence, h.LastSequence(), slot.gen, -1, err)
	}
}

// settleConsumed answers a batch nothing of which went to its own
// partition: success once its side records are acknowledged.
func (cc *clientConn) settleConsumed(sl *produceSlot, version int16) {
	var err error
	if sl.sideErr != nil {
		cc.log.Warn().Err(sl.sideErr).Str("topic", *sl.topic).Msg("routed, fanned-out or dead-letter records failed")
		setErr(sl.resp, version, kerr.NotEnoughReplicas, "")
		err = kerr.NotEnoughReplicas
	} else {
		sl.resp.BaseOffset = -1
	}
	if sl.idem {
		h := &sl.hdr
		cc.s.producers.done(h.ProducerID, h.ProducerEpoch, tpKey{*sl.topic, sl.resp.Partition}, h.BaseSequence, h.LastSequence(), sl.gen, -1, err)
	}
}

func timeFromMillis(ms int64) time.Time { return time.UnixMilli(ms) }
