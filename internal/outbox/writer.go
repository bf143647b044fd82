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
// Each Write is committed in order, in one transaction with whatever else
// is waiting, and its done callback runs once the transaction committed
// (nil) or failed. One transaction at a time keeps outbox ids in Write
// order, which is what per-key order across pipelined requests needs.
type Writer struct {
	exec Executor
	cfg  WriterConfig

	mu      sync.Mutex
	queue   []write
	queued  int // rows in queue
	closed  bool
	kick    chan struct{}
	stopped chan struct{}
}

type write struct {
	msgs []*Message
	done func(error)
}

// NewWriter starts a writer committing to exec. Close stops it.
func NewWriter(exec Executor, cfg WriterConfig) *Writer {
	if cfg.MaxBatchRows <= 0 {
		cfg.MaxBatchRows = 5000
	}
	if cfg.MaxQueuedRows <= 0 {
		cfg.MaxQueuedRows = 100000
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	w := &Writer{exec: exec, cfg: cfg, kick: make(chan struct{}, 1), stopped: make(chan struct{})}
	go w.loop()
	return w
}

// Write queues msgs for the next commit; done is called exactly once, from
// the writer's goroutine, and must not block. It never blocks itself.
func (w *Writer) Write(msgs []*Message, done func(error)) {
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
	select { // under mu: Close cannot close kick meanwhile
	case w.kick <- struct{}{}:
	default:
	}
	w.mu.Unlock()
}

// Close commits what is queued, then stops the writer.
func (w *Writer) Close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.kick)
	}
	w.mu.Unlock()
	<-w.stopped
}

func (w *Writer) loop() {
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
func (w *Writer) flush() bool {
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
