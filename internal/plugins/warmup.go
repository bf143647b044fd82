package plugins

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// Warm-up.
//
// A fresh instance's first call is slow, and a Go guest's much slower: its
// runtime grows its heap (and the linear memory under it, 13 memory.grow
// from 2.8 to 10 MiB) to the batch's working size and runs its first
// garbage collection (at 4 MB). For the Go enrich example on a 1,400-record
// batch, with wazero's default memory (which copied the whole memory on
// every grow, see memory.go), that first call took 75-90 ms (20-32 ms of it
// growing memory) against 11-13 ms for the next ones; with wazero's
// termination checks on top and a busy machine, 220 ms. With a 100 ms
// timeout it timed out, the instance was discarded, and its replacement
// was as cold as it. With memory grown in place it takes 20-30 ms.
//
// So every instance, before it serves a batch, processes one synthetic
// batch (newWarmInstance): at Load, when a discarded instance is replaced,
// and when an instance is recycled. An instance that meets a batch larger
// by a quarter than any it has processed while the warm-up batch is larger
// too (the instances made at Load, warmed up with the default batch, when
// the first large batches come) is warmed up again with the new shape
// first, on the request path: one call without the timeout instead of a
// slow first call under it. The warm-up call is bounded by
// warmupTimeout rather than the plugin's timeout; its verdicts are
// dropped, its log lines go out at debug level and its metric_add calls
// are ignored. A warm-up that fails (trap, timeout, malformed output)
// costs that instance; a cold one takes its place, and instances start
// cold until the warm-up batch changes.
//
// The synthetic batch has the shape of the largest batch the plugin has
// processed (capped at warmMax): its event type, topic, partition and
// timestamps, the same number of records with keys, values and header
// values of the same lengths, and the same header names; but none of the
// bytes of a real key, value or header value (a plugin that remembers what
// it has seen, to drop duplicates say, must not be shown a record it will
// see again). A value that was a JSON object is a JSON object of the same
// length ({"evproxy_warmup":"xxx…"}), so JSON plugins take their usual
// path. Before the first batch, it is defaultWarmBatch.

// warmupTimeout bounds a warm-up call.
const warmupTimeout = 5 * time.Second

// warmBatch is a batch to warm instances up with.
type warmBatch struct {
	eventType string
	recs      []Record
	size      int         // encoded
	failed    atomic.Bool // a warm-up with it failed: instances start cold
}

// Warm-up batch sizes.
const (
	warmMaxBytes      = 4 << 20 // the most bytes of a warm-up batch…
	warmMaxFraction   = 16      // …and at most 1/16 of memory_limit
	defaultWarmCount  = 100     // records of the default warm-up batch
	defaultWarmValue  = 200     // bytes per value
	defaultWarmKeyLen = 16
)

// warmMax is the largest warm-up batch for a memory limit.
func warmMax(memoryLimit uint64) int {
	return int(min(warmMaxBytes, memoryLimit/warmMaxFraction))
}

// defaultWarmBatch is the warm-up batch before the plugin has seen any:
// 100 records with 16-byte keys, 200-byte JSON object values and one
// header, like a typical event stream's, or fewer if that is too large for
// the memory limit.
func defaultWarmBatch(memoryLimit uint64) *warmBatch {
	r := Record{
		Topic:     "evproxy.warmup",
		Timestamp: time.Now().UnixMilli(),
		Key:       make([]byte, defaultWarmKeyLen),
		Value:     []byte("{}"),
		Headers:   []Header{{Key: "content-type", Value: []byte("application/json")}},
	}
	r.Value = append(r.Value, make([]byte, defaultWarmValue-2)...)
	r.Value[defaultWarmValue-1] = '}' // {…} with its contents filled in below
	recs := make([]Record, defaultWarmCount)
	for i := range recs {
		recs[i] = r
	}
	const eventType = "evproxy.warmup"
	n := fitting(eventType, recs, warmMax(memoryLimit))
	return newWarmBatch(eventType, recs[:n])
}

// fitting returns how many of the first records of a batch fit in max
// bytes, encoded (at least one).
func fitting(eventType string, recs []Record, max int) int {
	lo, hi := 1, len(recs)
	for lo < hi { // the largest n with batchSize(recs[:n]) <= max
		mid := (lo + hi + 1) / 2
		if size, ok := batchSize(eventType, recs[:mid]); ok && size <= max {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// newWarmBatch makes a synthetic batch with the shape of recs.
func newWarmBatch(eventType string, recs []Record) *warmBatch {
	w := &warmBatch{eventType: eventType, recs: make([]Record, len(recs))}
	for i := range recs {
		r := &recs[i]
		s := Record{
			Topic:     r.Topic,
			Partition: r.Partition,
			Timestamp: r.Timestamp,
			Key:       filler(r.Key, 'k'),
			Value:     synthValue(r.Value),
		}
		if len(r.Headers) > 0 {
			s.Headers = make([]Header, len(r.Headers))
			for j, h := range r.Headers {
				s.Headers[j] = Header{Key: h.Key, Value: filler(h.Value, 'x')}
			}
		}
		w.recs[i] = s
	}
	w.size, _ = batchSize(eventType, w.recs)
	return w
}

// filler returns len(b) bytes c, or nil if b is nil.
func filler(b []byte, c byte) []byte {
	if b == nil {
		return nil
	}
	f := make([]byte, len(b))
	for i := range f {
		f[i] = c
	}
	return f
}

// synthValue returns a value of the length of v: a JSON object if v looks
// like one ({"evproxy_warmup":"xxx…"}, or {} padded with spaces when
// shorter), else filler bytes.
func synthValue(v []byte) []byte {
	if v == nil {
		return nil
	}
	i := 0
	for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == '\n' || v[i] == '\r') {
		i++
	}
	if i == len(v) || v[i] != '{' || len(v) < 2 {
		return filler(v, 'x')
	}
	out := filler(v, ' ')
	const head = `{"evproxy_warmup":"`
	if len(v) >= len(head)+2 {
		copy(out, head)
		for j := len(head); j < len(v)-2; j++ {
			out[j] = 'x'
		}
		copy(out[len(v)-2:], `"}`)
		return out
	}
	out[0], out[len(v)-1] = '{', '}'
	return out
}

// sample makes a batch the new warm-up shape if it is larger
// than the current one by a quarter (so that the copies stay few) and the
// current one is below warmMax. A batch above warmMax contributes its first
// records.
func (p *Plugin) sample(eventType string, recs []Record, size int) {
	w := p.warm.Load()
	if size <= w.size+w.size/4 || w.size >= p.warmMax {
		return
	}
	n := len(recs)
	if size > p.warmMax {
		n = fitting(eventType, recs, p.warmMax)
		if size, _ = batchSize(eventType, recs[:n]); size <= w.size+w.size/4 {
			return
		}
	}
	p.warm.CompareAndSwap(w, newWarmBatch(eventType, recs[:n]))
}

// newWarmInstance makes an instance (newInstance) and warms it up. If the
// warm-up fails, the instance is discarded and a cold one returned.
func (p *Plugin) newWarmInstance(ctx context.Context) (*instance, error) {
	inst, err := p.newInstance(ctx)
	if err != nil {
		return nil, err
	}
	w := p.warm.Load()
	if w.failed.Load() {
		return inst, nil
	}
	if err = p.warmUp(ctx, inst, w); err == nil {
		return inst, nil
	}
	p.discard(inst)
	if cerr := ctx.Err(); cerr != nil {
		return nil, cerr
	}
	p.warmupFailed(w, err)
	return p.newInstance(ctx)
}

// warmupFailed records that an instance failed warm-up batch w.
func (p *Plugin) warmupFailed(w *warmBatch, err error) {
	p.metrics.errorInc(kindWarmup)
	if !w.failed.Swap(true) {
		p.log.Warn().Err(err).Int("records", len(w.recs)).Str("event_type", w.eventType).
			Msg("plugin failed its warm-up batch; its instances start cold until the batch shape changes")
	}
}

// needsRewarm reports whether inst should be warmed up again with w before
// it processes a batch of size bytes: the batch, and w, are larger by a
// quarter than anything inst has processed. That happens to the instances
// made at Load, warmed up with defaultWarmBatch, when the first large
// batches come.
func (inst *instance) needsRewarm(w *warmBatch, size int) bool {
	seen := inst.warmSize + inst.warmSize/4
	return size > seen && w.size > seen && !w.failed.Load()
}

// warmUp processes w on inst, bounded by p.warmupTimeout (warmupTimeout;
// unless the module is not instrumented and has no timeout: then nothing
// can bound it), and checks the verdicts.
func (p *Plugin) warmUp(ctx context.Context, inst *instance, w *warmBatch) error {
	var d time.Duration
	switch {
	case p.instrumented:
		d = p.warmupTimeout
	case p.timeout > 0:
		d = p.warmupTimeout
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	cctx := inst.enter(p, ctx, d)
	inst.cs.warmup = true
	defer func() {
		inst.cs.warmup = false
		inst.cs.end()
	}()
	inst.stack[0] = uint64(w.size)
	if err := inst.alloc.CallWithStack(cctx, inst.stack[:1]); err != nil {
		return fmt.Errorf("evp_alloc: %w", err)
	}
	ptr := uint32(inst.stack[0])
	in, ok := inst.mem.Read(ptr, uint32(w.size))
	if ptr == 0 || !ok {
		return fmt.Errorf("evp_alloc(%d) returned %d", w.size, ptr)
	}
	encodeBatch(in, w.eventType, w.recs)
	inst.stack[0], inst.stack[1] = uint64(ptr), uint64(w.size)
	if err := inst.process.CallWithStack(cctx, inst.stack[:2]); err != nil {
		return fmt.Errorf("evp_process: %w", err)
	}
	if p.timeout > 0 && !p.instrumented && ctx.Err() != nil {
		return ctx.Err() // see once
	}
	res := int64(inst.stack[0])
	if res < 0 {
		return fmt.Errorf("evp_process returned %d", res)
	}
	buf, ok := inst.mem.Read(uint32(uint64(res)>>32), uint32(res))
	if !ok {
		return fmt.Errorf("output outside memory")
	}
	if _, _, err := validateVerdicts(buf, len(w.recs)); err != nil {
		return err
	}
	inst.warmSize = max(inst.warmSize, w.size)
	return nil
}
