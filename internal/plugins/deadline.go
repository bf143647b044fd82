package plugins

import (
	"context"
	"errors"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// Between two calls to tick (instrument.go), an instrumented guest runs
// a budget of loop iterations. tick adapts the budget so that it is called
// about every tickTarget: often enough that a timeout is noticed within
// about a millisecond, and seldom enough that it costs nothing measurable
// (a call to tick costs about as much as 100-200 iterations of a small
// loop; the Go enrich example runs ~16,000 iterations in 330 µs).
const (
	tickTarget  = int64(500 * time.Microsecond)
	startBudget = 1 << 14
	maxBudget   = 1 << 24
)

// errDeadline and errCanceled end a guest call from tick. The caller
// classifies the call by callState.stop, not by these errors (wazero wraps
// them).
var (
	errDeadline = errors.New("plugin call ran past its deadline")
	errCanceled = errors.New("plugin call canceled")
)

// stopReason says why tick ended a guest call.
type stopReason uint8

const (
	stopNone     stopReason = iota
	stopDeadline            // the call's deadline passed
	stopCanceled            // the caller's context ended
)

// clockBase anchors monotonic deadlines: time.Since(clockBase) reads the
// monotonic clock.
var clockBase = time.Now()

func monotonic() int64 { return int64(time.Since(clockBase)) }

// callState is the context of every guest call of one instance, and what
// the host functions learn about the call from it: it embeds the caller's
// context (so wazero and the host functions see its values), and adds the
// call's deadline, whether it is a warm-up call, and the init log. An
// instance is used by one goroutine at a time, so its callState is reused
// from call to call without allocating; it must not be retained past the
// call (wazero does not: with instrumentation it starts no goroutine).
type callState struct {
	context.Context
	deadline int64           // monotonic(); 0: none
	done     <-chan struct{} // the caller's Done, nil if it cannot end
	stop     stopReason      // set by tick before it ends the call
	budget   int64           // iterations between ticks; 0 until the first
	lastTick int64           // monotonic() of the call's start or last tick
	warmup   bool            // host functions: log at debug level, metric_add ignored
	initLog  *initLog        // collects what evp_init logs
}

// callStateKey finds the callState of a call under another context (in the
// fallback mode, where wazero gets a context.WithTimeout).
type callStateKey struct{}

func (c *callState) Value(key any) any {
	if key == (callStateKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// begin prepares the state for a call with ctx and a deadline (0: none).
func (c *callState) begin(ctx context.Context, d time.Duration) {
	c.Context = ctx
	c.done = ctx.Done()
	c.lastTick = monotonic()
	c.deadline = 0
	if d > 0 {
		c.deadline = c.lastTick + int64(d)
	}
	c.stop = stopNone
}

// end drops the references of the last call.
func (c *callState) end() {
	c.Context = context.Background()
	c.done = nil
}

// stateOf returns the callState of the guest call whose context is ctx, or
// nil.
func stateOf(ctx context.Context) *callState {
	if c, ok := ctx.(*callState); ok {
		return c
	}
	c, _ := ctx.Value(callStateKey{}).(*callState)
	return c
}

// tick is evp_internal.tick() -> i32, called by instrumented guests when
// their fuel runs out: it returns the next budget, or ends the call (a
// panic, which wazero turns into the call's error) if its deadline passed
// or its context ended. The guest's call into Go is also where a pending
// garbage collection can stop it.
func tick(ctx context.Context, _ api.Module, stack []uint64) {
	c := stateOf(ctx)
	if c == nil {
		stack[0] = startBudget
		return
	}
	now := monotonic()
	if c.deadline != 0 && now > c.deadline {
		c.stop = stopDeadline
		panic(errDeadline)
	}
	if c.done != nil {
		select {
		case <-c.done:
			c.stop = stopCanceled
			panic(errCanceled)
		default:
		}
	}
	b, elapsed := c.budget, now-c.lastTick
	c.lastTick = now
	switch {
	case b == 0:
		b = startBudget
	case elapsed < tickTarget/4:
		b = min(2*b, maxBudget)
	case elapsed > 2*tickTarget: // slow iterations: come back sooner
		b = max(b*tickTarget/elapsed, 1)
	}
	c.budget = b
	stack[0] = uint64(b)
}
