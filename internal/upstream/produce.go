package upstream

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/evproxy/evproxy/internal/recordbatch"
)

// Batch is one v2 record batch for one partition, forwarded as bytes.
type Batch struct {
	Topic     string
	Partition int32
	// Data holds exactly one record batch that recordbatch.Parse accepted.
	// Its producer fields and CRC are rewritten in place when it is sent.
	Data []byte
	// NumRecords is the batch's record count.
	NumRecords int32

	// BaseOffset, LogAppendTime and LogStartOffset are the broker's answer,
	// valid once the Produce is done and Err is nil.
	BaseOffset     int64
	LogAppendTime  int64
	LogStartOffset int64
	// Err is why the batch was not written: a *kerr.Error the producer can
	// be given as is. Only set once the Produce is done.
	Err error
	// Epoch is the FailureEpoch the caller read before it decided to send
	// this batch (before checking the producer's sequences). A batch whose
	// partition failed since then is not written: it would overtake the
	// failed batch. See Client.FailureEpoch.
	Epoch uint64

	failed atomic.Bool // set, before the failure epoch moves, when Err is
	fenced bool        // refused by the failure fence while numbering

	sent   bool   // handed to a broker connection (set during Send only)
	pidGen uint64 // producer id generation the batch was numbered under
	seqGen uint32 // partition sequence generation
	seq    int32  // upstream base sequence
}

// Sent reports whether Send handed the batch to a broker connection. It is
// false when the batch failed before that (unknown topic, no leader, broker
// unreachable); such a batch's Err is already set when Send returns. Call it
// only after Send returned, from the goroutine that called Send.
func (b *Batch) Sent() bool { return b.sent }

// Failed reports, as soon as it is known and from any goroutine, that the
// batch will not be written. It turns true before the failure epoch moves
// past the failure, so a caller that read the epoch after this batch failed
// sees Failed true.
func (b *Batch) Failed() bool { return b.failed.Load() }

// FailureEpoch counts batch failures. Read it before checking and sending a
// batch and store it in Batch.Epoch; see Batch.Failed for the guarantee.
//
// Why: once a batch of a partition fails, every later batch of the same
// producer and partition must fail too until the producer resends the
// failed one, or the later ones would be written first. Later batches the
// caller accepted before it could know of the failure are refused by this
// fence; batches it accepts after can see the failure through Failed.
func (c *Client) FailureEpoch() uint64 { return c.failures.Load() }

// failBatch ends b with err and moves the failure epoch past it.
func (c *Client) failBatch(b *Batch, err error) {
	b.Err = err
	b.failed.Store(true)
	c.seqMu.Lock()
	c.lastFail[topicPartition{b.Topic, b.Partition}] = c.failures.Add(1)
	c.seqMu.Unlock()
}

// Produce is a set of batches forwarded together, typically the partitions
// of one producer request. Read the batches' results only once onDone ran.
type Produce struct {
	Batches []*Batch

	onDone    func()
	remaining atomic.Int32
}

// NewProduce returns a Produce for batches; onDone is called once, from
// whichever goroutine settles the last batch (possibly inside Send), when
// every batch has a result. It must not block.
func NewProduce(batches []*Batch, onDone func()) *Produce {
	return &Produce{Batches: batches, onDone: onDone}
}

// Hold delays onDone until the matching Release, so the caller can finish
// its own bookkeeping after Send first.
func (p *Produce) Hold() { p.remaining.Add(1) }

// Release undoes one Hold; onDone runs here if everything else finished.
func (p *Produce) Release() { p.finish() }

func (p *Produce) finish() {
	if p.remaining.Add(-1) == 0 {
		p.onDone()
	}
}

// Send forwards the batches of p to their partition leaders. It returns once
// every batch is written to a broker connection (or has failed), in the
// order the caller calls Send: batches for one partition sent by one
// goroutine reach the broker in that order. When every batch has a result,
// p's onDone runs.
func (c *Client) Send(ctx context.Context, p *Produce) {
	// One group per leader; requests rarely span more than a few brokers,
	// so a slice beats a map.
	type group struct {
		leader  int32
		batches []*Batch
	}
	var groups []group
	p.remaining.Add(1) // held until every group is dispatched
	for _, b := range p.Batches {
		tm, err := c.leaders(ctx, b.Topic)
		if err != nil {
			c.failBatch(b, asKafkaErr(err))
			continue
		}
		if tm.err != 0 {
			c.failBatch(b, kerr.ErrorForCode(tm.err))
			continue
		}
		if b.Partition < 0 || int(b.Partition) >= len(tm.leaders) {
			c.failBatch(b, kerr.UnknownTopicOrPartition)
			continue
		}
		leader := tm.leaders[b.Partition]
		if leader < 0 {
			c.markStale(b.Topic)
			c.failBatch(b, kerr.LeaderNotAvailable)
			continue
		}
		i := 0
		for i < len(groups) && groups[i].leader != leader {
			i++
		}
		if i == len(groups) {
			groups = append(groups, group{leader: leader})
		}
		groups[i].batches = append(groups[i].batches, b)
	}
	for _, g := range groups {
		bc, err := c.conn(ctx, g.leader)
		if err != nil {
			for _, b := range g.batches {
				c.failBatch(b, asKafkaErr(err))
				c.markStale(b.Topic)
			}
			continue
		}
		p.remaining.Add(1)
		written := bc.send(ctx, g.batches, p)
		for _, b := range g.batches {
			b.sent = written && !b.fenced
		}
	}
	p.finish()
}

// asKafkaErr turns a transport or client error into the retriable Kafka
// error a producer understands.
func asKafkaErr(err error) error {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke
	}
	return kerr.NetworkException
}

// outcome classifies a broker error code for a batch.
type outcome int

const (
	outcomeWritten    outcome = iota // success or duplicate
	outcomeNotWritten                // definitely not appended
	outcomeUnknown                   // may or may not be appended
)

func classify(code int16) outcome {
	switch code {
	case 0, kerr.DuplicateSequenceNumber.Code:
		return outcomeWritten
	case kerr.RequestTimedOut.Code, kerr.NetworkException.Code,
		kerr.NotEnoughReplicasAfterAppend.Code, kerr.UnknownProducerID.Code,
		kerr.InvalidProducerEpoch.Code, kerr.ProducerFenced.Code,
		kerr.UnknownServerError.Code:
		return outcomeUnknown
	default:
		return outcomeNotWritten
	}
}

// settle records the broker's answer for b and keeps the partition's
// sequence numbering consistent with what the broker holds.
func (c *Client) settle(b *Batch, code int16) {
	switch classify(code) {
	case outcomeWritten:
		if code != 0 {
			b.BaseOffset = -1
		}
		return
	case outcomeUnknown:
		// The producer retries; with the new producer id the retry is
		// a new write, so at worst it duplicates.
		c.failBatch(b, kerr.RequestTimedOut)
		c.resetProducerID(b.pidGen, kerr.ErrorForCode(code))
		return
	}
	c.failBatch(b, c.rollback(b, code))
}

// rollback handles a batch the broker did not write and returns the error
// for its producer.
func (c *Client) rollback(b *Batch, code int16) error {
	err := kerr.ErrorForCode(code)
	tp := topicPartition{b.Topic, b.Partition}
	c.seqMu.Lock()
	defer c.seqMu.Unlock()
	st := c.seqs[tp]
	if b.pidGen != c.pidGen || st == nil {
		return err
	}
	if b.seqGen != st.gen {
		// An earlier batch of this partition failed; this one was
		// refused because of it (out of order) and must be retried
		// after it, so it reports the same retriable error.
		if code == kerr.OutOfOrderSequenceNumber.Code && st.lastErr != nil {
			return st.lastErr
		}
		return err
	}
	if code == kerr.OutOfOrderSequenceNumber.Code {
		// We numbered in order and the broker disagrees: it lost our
		// producer state. Start over with a new producer id.
		c.pidReset = true
		c.pidGen++
		c.log.Warn().Str("topic", b.Topic).Int32("partition", b.Partition).Int32("sequence", b.seq).
			Msg("upstream refused an in-order sequence; resetting producer id")
		return kerr.RequestTimedOut
	}
	switch code {
	case kerr.NotLeaderForPartition.Code, kerr.LeaderNotAvailable.Code,
		kerr.UnknownTopicOrPartition.Code, kerr.FencedLeaderEpoch.Code,
		kerr.UnknownLeaderEpoch.Code, kerr.KafkaStorageError.Code:
		go c.markStale(b.Topic)
	}
	st.next = b.seq
	st.gen++
	st.lastErr = err
	if !kerr.IsRetriable(err) {
		// Later batches still fail with out-of-order; for them the
		// failure is retriable (they were fine, only blocked).
		st.lastErr = kerr.NotEnoughReplicas
	}
	return err
}

// number assigns upstream producer fields to each batch and rewrites them,
// returning the batches to write. A batch whose partition failed after the
// caller accepted it (its Epoch is older than the failure) is fenced: ended
// with a retriable error and left out. The caller holds the broker
// connection's write lock, so numbering order is write order.
func (c *Client) number(ctx context.Context, batches []*Batch) ([]*Batch, error) {
	c.seqMu.Lock()
	defer c.seqMu.Unlock()
	if err := c.ensureProducerIDLocked(ctx); err != nil {
		return nil, err
	}
	keep := batches[:0:0]
	for _, b := range batches {
		tp := topicPartition{b.Topic, b.Partition}
		if b.Epoch < c.lastFail[tp] {
			b.fenced = true
			b.Err = kerr.RequestTimedOut
			b.failed.Store(true)
			c.lastFail[tp] = c.failures.Add(1)
			continue
		}
		keep = append(keep, b)
		st := c.seqs[tp]
		if st == nil {
			st = &seqState{}
			c.seqs[tp] = st
		}
		b.pidGen = c.pidGen
		b.seqGen = st.gen
		b.seq = st.next
		next := int64(st.next) + int64(b.NumRecords)
		if next > 1<<31-1 {
			next -= 1 << 31 // sequences wrap to 0 after MaxInt32
		}
		st.next = int32(next)
		recordbatch.SetProducer(b.Data, c.pid, c.epoch, b.seq)
	}
	return keep, nil
}
