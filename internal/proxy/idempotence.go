package proxy

import (
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// producers tracks the idempotent producers evproxy issued ids to, and per
// partition the sequences it accepted, to de-duplicate retried batches.
type producers struct {
	mu        sync.Mutex
	next      int64
	m         map[int64]*producer
	lastSweep time.Time
}

// producerIdle is how long an idle producer's state is kept (Kafka's
// producer.id.expiration.ms default).
const producerIdle = 24 * time.Hour

// ackWindow is how many acknowledged batches per partition are remembered
// to answer retries, as brokers do.
const ackWindow = 5

type producer struct {
	epoch    int16
	lastUsed time.Time
	parts    map[tpKey]*seqTrack
}

type tpKey struct {
	topic     string
	partition int32
}

// seqTrack is one producer's sequence state for one partition.
type seqTrack struct {
	next     int32 // next expected base sequence, counting batches in flight
	gen      uint32
	lastErr  error // why the current generation started; nil when healthy
	acked    [ackWindow]ackedBatch
	ackPos   int
	inflight []inflightBatch
}

type ackedBatch struct {
	seqRange
	offset int64
	valid  bool
}

type seqRange struct{ first, last int32 }

// failer is a forwarded batch that can say, from any goroutine, that it
// will not be written (upstream.Batch).
type failer interface{ Failed() bool }

// inflightBatch is an accepted batch whose outcome is not reported yet.
type inflightBatch struct {
	seqRange
	b failer
}

func newProducers(now time.Time) *producers {
	// Ids grow with wall time so a restarted evproxy never reissues an id
	// a client still holds.
	return &producers{next: now.UnixMicro(), m: make(map[int64]*producer), lastSweep: now}
}

// issue hands out a producer id and epoch. A known id asking for a bump gets
// its next epoch; anything else gets a new id at epoch 0.
func (ps *producers) issue(id int64, epoch int16) (int64, int16) {
	now := time.Now()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if now.Sub(ps.lastSweep) > time.Minute {
		ps.lastSweep = now
		for pid, p := range ps.m {
			if now.Sub(p.lastUsed) > producerIdle {
				delete(ps.m, pid)
			}
		}
	}
	if p := ps.m[id]; id >= 0 && p != nil && p.epoch == epoch && epoch < 32767 {
		p.epoch++
		p.parts = make(map[tpKey]*seqTrack)
		p.lastUsed = now
		return id, p.epoch
	}
	ps.next++
	ps.m[ps.next] = &producer{lastUsed: now, parts: make(map[tpKey]*seqTrack)}
	return ps.next, 0
}

// verdict is the outcome of checking an idempotent batch.
type verdict struct {
	accept bool
	gen    uint32
	// dupOffset is the original base offset of a duplicate (accept false,
	// err nil).
	dupOffset int64
	err       error
}

// check decides what to do with a batch of producer id with sequences
// [first, last] for tp, to be forwarded as b. Accepted batches must be
// reported with done.
func (ps *producers) check(id int64, epoch int16, tp tpKey, first, last int32, b failer) verdict {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p := ps.m[id]
	if p == nil {
		// Not issued by this process (evproxy restarted, or another
		// replica issued it): adopt it and trust its sequences.
		p = &producer{epoch: epoch, parts: make(map[tpKey]*seqTrack)}
		ps.m[id] = p
	}
	p.lastUsed = time.Now()
	switch {
	case epoch < p.epoch:
		return verdict{err: kerr.InvalidProducerEpoch}
	case epoch > p.epoch:
		p.epoch = epoch
		p.parts = make(map[tpKey]*seqTrack)
	}
	st := p.parts[tp]
	if st == nil {
		st = &seqTrack{next: first}
		p.parts[tp] = st
	}
	// A batch in flight that already failed (its answer is not
	// processed yet) must be resent before anything after it.
	for _, r := range st.inflight {
		if r.b.Failed() {
			st.rollback(r.first, kerr.RequestTimedOut)
		}
	}
	for _, a := range st.acked {
		if a.valid && a.first == first && a.last == last {
			return verdict{dupOffset: a.offset}
		}
	}
	for _, r := range st.inflight {
		if r.first == first && r.last == last {
			// The original is still in flight; the retry will find
			// it acknowledged (or failed) next time.
			return verdict{err: kerr.RequestTimedOut}
		}
	}
	if first == st.next {
		st.next = last + 1
		if st.next < 0 {
			st.next = 0 // sequences wrap after MaxInt32
		}
		st.inflight = append(st.inflight, inflightBatch{seqRange{first, last}, b})
		return verdict{accept: true, gen: st.gen}
	}
	if st.lastErr != nil && seqAfter(first, st.next) {
		// An earlier batch failed and is due first; this one waits
		// behind it.
		return verdict{err: st.lastErr}
	}
	if seqAfter(st.next, last) {
		// Older than anything we remember: written long ago.
		return verdict{err: kerr.DuplicateSequenceNumber}
	}
	return verdict{err: kerr.OutOfOrderSequenceNumber}
}

// seqAfter reports whether sequence a comes after b, allowing for wrap.
func seqAfter(a, b int32) bool { return int32(uint32(a)-uint32(b)) > 0 }

// done reports the outcome of an accepted batch: written at offset, or
// failed with err (not written).
func (ps *producers) done(id int64, epoch int16, tp tpKey, first, last int32, gen uint32, offset int64, err error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p := ps.m[id]
	if p == nil || p.epoch != epoch {
		return
	}
	st := p.parts[tp]
	if st == nil {
		return
	}
	for i, r := range st.inflight {
		if r.first == first && r.last == last {
			st.inflight = append(st.inflight[:i], st.inflight[i+1:]...)
			break
		}
	}
	if err == nil {
		st.acked[st.ackPos] = ackedBatch{seqRange: seqRange{first, last}, offset: offset, valid: true}
		st.ackPos = (st.ackPos + 1) % ackWindow
		if gen == st.gen {
			st.lastErr = nil
		}
		return
	}
	st.rollback(first, err)
}

// rollback makes first the next expected sequence if it is earlier than
// the current one: the batch starting there failed, and it and everything
// after it must be resent, in order. err (made retriable) answers later
// batches until then.
func (st *seqTrack) rollback(first int32, err error) {
	if !seqAfter(st.next, first) {
		return // already rolled back to it or earlier
	}
	st.next = first
	st.gen++
	if !kerr.IsRetriable(err) {
		err = kerr.NotEnoughReplicas // only blocked behind the failed batch
	}
	st.lastErr = err
}
