package plugins

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func appendS64(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7F)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// loopSecondModule is a plugin that KEEPs every record of its first
// evp_process call (the warm-up) and, from the second on, logs "looping"
// and loops forever.
func loopSecondModule() []byte {
	types := wsec(secType, wvec(
		[]byte{0x60, 3, 0x7F, 0x7F, 0x7F, 0}, // log
		[]byte{0x60, 0, 0},
		[]byte{0x60, 1, 0x7F, 1, 0x7F},
		[]byte{0x60, 2, 0x7F, 0x7F, 1, 0x7F},
		[]byte{0x60, 2, 0x7F, 0x7F, 1, 0x7E},
	))
	imports := wsec(secImport, wvec(slices.Concat(wname(hostModule), wname(fnLog), []byte{0x00, 0})))
	funcs := wsec(secFunction, wvec([]byte{1}, []byte{2}, []byte{3}, []byte{4}))
	memory := wsec(secMemory, wvec([]byte{0x00, 1}))
	globals := wsec(secGlobal, wvec([]byte{0x7F, 0x01, 0x41, 0, 0x0B})) // calls
	exports := wsec(secExport, wvec(
		slices.Concat(wname(exportMemory), []byte{2, 0}),
		slices.Concat(wname(abiMarker), []byte{0, 1}),
		slices.Concat(wname(exportAlloc), []byte{0, 2}),
		slices.Concat(wname(exportInit), []byte{0, 3}),
		slices.Concat(wname(exportProcess), []byte{0, 4}),
	))
	process := slices.Concat(
		[]byte{0x23, 0, 0x41, 1, 0x6A, 0x24, 0},    // calls++
		[]byte{0x23, 0, 0x41, 2, 0x4E, 0x04, 0x40}, // if calls >= 2
		[]byte{0x41, 1, 0x41, 0, 0x41, 7, 0x10, 0}, // log(info, "looping")
		[]byte{0x03, 0x40, 0x0C, 0, 0x0B},          // loop br 0 end
		[]byte{0x0B},
		// verdicts at 1024: the input's count, then as many KEEP bytes (zero)
		[]byte{0x41, 0x80, 0x08, 0x20, 0, 0x28, 2, 0, 0x36, 2, 0},
		appendS64([]byte{0x42}, 1024<<32),
		[]byte{0x20, 0, 0x28, 2, 0, 0x41, 4, 0x6A, 0xAD, 0x84, 0x0B}, // | 4+count
	)
	code := wsec(secCode, wvec(
		wfunc([]byte{0}, 0x0B),
		wfunc([]byte{0}, 0x41, 0x80, 0x20, 0x0B), // evp_alloc: 4096
		wfunc([]byte{0}, 0x41, 0, 0x0B),          // evp_init: 0
		wfunc([]byte{0}, process...),
	))
	data := wsec(secData, wvec(slices.Concat([]byte{0x00, 0x41, 0, 0x0B}, wname("looping"))))
	return wmodule(types, imports, funcs, memory, globals, exports, code, data)
}

// signalWriter closes a channel the first time a log line contains a
// string.
type signalWriter struct {
	want string
	seen chan struct{}
	once sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

// Without a timeout nothing ends a runaway loop but the caller's context;
// still, the loop reaches the host about every 0.5 ms, where Go can stop
// it. Uninstrumented, a garbage collection would wait for the loop to
// end, forever, with every other goroutine of the process stopped.
func TestRunawayLoopDoesNotStopTheProcess(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "loop.wasm")
	if err := os.WriteFile(path, loopSecondModule(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, timeout := range []time.Duration{0, 50 * time.Millisecond} {
		t.Run("timeout="+timeout.String(), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			looping := &signalWriter{want: "looping", seen: make(chan struct{})}
			p := b.load(t, Config{Name: "loop", Path: path, PoolSize: 1, Timeout: timeout,
				Logger: zerolog.New(looping), Metrics: b.metrics})
			if !p.instrumented {
				t.Fatal("not instrumented")
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			type result struct {
				vs  []Verdict
				err error
			}
			done := make(chan result, 1)
			go func() {
				vs, err := p.Process(ctx, "e", recs("a"))
				done <- result{vs, err}
			}()
			<-looping.seen
			runtime.GC() // needs every goroutine, the looping one included, to stop for a moment
			if timeout == 0 {
				cancel()
				if r := <-done; !errors.Is(r.err, context.Canceled) {
					t.Fatalf("Process: %v, want context.Canceled", r.err)
				}
				return
			}
			r := <-done
			if r.err != nil || !reflect.DeepEqual(r.vs, []Verdict{hostReject(ReasonTimeout)}) {
				t.Fatalf("Process: %+v, %v; want a timeout", r.vs, r.err)
			}
		})
	}
}
