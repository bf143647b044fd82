package outbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrBacklog is returned by Writer.Write when more rows wait for a commit
// than the writer accepts: the producer should retry.
var ErrBacklog = errors.New("outbox: too many records waiting for a commit")

// ErrClosed is returned for writes after Close.
var ErrClosed = errors.New("outbox: writer closed")

// WriterConfig configures a Writer.
type WriterConfig struct {
	// Shards is how many transactions commit at once (default 4). A
	// (topic, key) always goes to the same shard, whose commits are
	// serial, so ids keep request order per key.
	Shards int
	// MaxBatchRows is the most rows committed in one transaction.
	// Defaults to 5000.
	MaxBatchRows int
	// MaxQueuedRows bounds the rows waiting for a commit; Write refuses
	// more with ErrBacklog. Defaults to 100000.
	MaxQueuedRows int
	// Timeout bounds one commit. Defaults to 10s.
	Timeout time.Duration
	// Committed runs after each successful commit (it wakes the relay).
	Committed func()
	Metrics   *Metrics
}

// Writer commits messages of many produce requests together: group commit.
// Messages are spread over shards by (topic, key); each shard commits
// whatever is waiting in one transaction, one transaction at a time, so
// outbox ids follow Write order per key, which is what per-key order across
// pipelined requests needs, while shards commit in parallel. A Write's done
// callback runs once every shard holding part of it committed (nil) or one
// failed. A Write spread over shards is not atomic: when one shard fails,
// the producer retries the whole request and the parts that did commit are
// written twice (duplicates in a failure window, never loss).
type Writer struct {
	shards []*shard
}

type write struct {
	msgs []*Message
	done func(error)
}

// shard is one serial committer.
type shard struct {
	exec Executor
	cfg  WriterConfig

	mu      sync.Mutex
	queue   []write
	queued  int // rows in queue
	closed  bool
	kick    chan struct{}
	stopped chan struct{}
}

// NewWriter starts a writer committing to exec. Close stops it.
func NewWriter(exec Executor, cfg WriterConfig) *Writer {
	if cfg.Shards <= 0 {
		cfg.Shards = 4
	}
	if cfg.MaxBatchRows <= 0 {
		cfg.MaxBatchRows = 5000
	}
	if cfg.MaxQueuedRows <= 0 {
		cfg.MaxQueuedRows = 100000
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	w := &Writer{shards: make([]*shard, cfg.Shards)}
	per := cfg
	per.MaxQueuedRows = max(cfg.MaxQueuedRows/cfg.Shards, 1)
	for i := range w.shards {
		sh := &shard{exec: exec, cfg: per, kick: make(chan struct{}, 1), stopped: make(chan struct{})}
		w.shards[i] = sh
		go sh.loop()
	}
	return w
}

// Write queues msgs for the next commits; done is called exactly once, from
// a writer goroutine, and must not block. It never blocks itself.
func (w *Writer) Write(msgs []*Message, done func(error)) {
	if len(w.shards) == 1 || len(msgs) == 0 {
		w.shards[0].write(msgs, done)
		return
	}
	// Split by shard, keeping order within each part.
	first := w.shardOf(msgs[0])
	same := true
	for _, m := range msgs[1:] {
		if w.shardOf(m) != first {
			same = false
			break
		}
	}
	if same {
		w.shards[first].write(msgs, done)
		return
	}
	parts := make([][]*Message, len(w.shards))
	for _, m := range msgs {
		i := w.shardOf(m)
		parts[i] = append(parts[i], m)
	}
	n := 0
	for _, p := range parts {
		if len(p) > 0 {
			n++
		}
	}
	j := &joint{left: int32(n), done: done}
	for i, p := range parts {
		if len(p) > 0 {
			w.shards[i].write(p, j.part)
		}
	}
}

// shardOf is the shard of a message: FNV-1a of its topic and key.
func (w *Writer) shardOf(m *Message) int {
	h := uint32(2166136261)
	for i := 0; i < len(m.Topic); i++ {
		h = (h ^ uint32(m.Topic[i])) * 16777619
	}
	h = (h ^ 0xff) * 16777619
	for _, c := range m.Key {
		h = (h ^ uint32(c)) * 16777619
	}
	return int(h % uint32(len(w.shards)))
}

// joint calls done once every part of a Write finished, with the first
// error.
type joint struct {
	mu   sync.Mutex
	left int32
	err  error
	done func(error)
}

func (j *joint) part(err error) {
	j.mu.Lock()
	if err != nil && j.err == nil {
		j.err = err
	}
	j.left--
	last := j.left == 0
	err = j.err
	j.mu.Unlock()
	if last {
		j.done(err)
	}
}

// Close commits what is queued, then stops the writer.
func (w *Writer) Close() {
	for _, sh := range w.shards {
		sh.close()
	}
}

func (w *shard) write(msgs []*Message, done func(error)) {
	w.mu.Lock()
	switch {
	case w.closed:
		w.mu.Unlock()
		done(ErrClosed)
		return
	case w.queued+len(msgs) > w.cfg.MaxQueuedRows && w.queued > 0:
		w.mu.Unlock()
		done(ErrBacklog)
		return
	}
	w.queue = append(w.queue, write{msgs, done})
	w.queued += len(msgs)
	select { // under mu: close cannot close kick meanwhile
	case w.kick <- struct{}{}:
	default:
	}
	w.mu.Unlock()
}

func (w *shard) close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.kick)
	}
	w.mu.Unlock()
	<-w.stopped
}

func (w *shard) loop() {
	defer close(w.stopped)
	for {
		_, ok := <-w.kick
		for w.flush() {
		}
		if !ok {
			return
		}
	}
}

// flush commits one group; it reports whether anything was queued.
func (w *shard) flush() bool {
	w.mu.Lock()
	if len(w.queue) == 0 {
		w.mu.Unlock()
		return false
	}
	// Take whole writes up to MaxBatchRows (at least one).
	n, rows := 0, 0
	for n < len(w.queue) && (n == 0 || rows+len(w.queue[n].msgs) <= w.cfg.MaxBatchRows) {
		rows += len(w.queue[n].msgs)
		n++
	}
	group := make([]write, n)
	copy(group, w.queue[:n])
	w.queue = append(w.queue[:0], w.queue[n:]...)
	w.queued -= rows
	w.mu.Unlock()

	msgs := make([]*Message, 0, rows)
	for _, g := range group {
		msgs = append(msgs, g.msgs...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.Timeout)
	start := time.Now()
	_, err := w.exec.OutboxInsertMany(ctx, &OutboxInsertManyParams{Messages: msgs})
	cancel()
	if err != nil {
		err = fmt.Errorf("outbox: commit %d records: %w", rows, err)
	} else {
		w.cfg.Metrics.observeCommit(time.Since(start), rows)
	}
	for _, g := range group {
		g.done(err)
	}
	if err == nil && w.cfg.Committed != nil {
		w.cfg.Committed()
	}
	return true
}
