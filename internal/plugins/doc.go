// Package plugins is the host side of the evp_v1 plugin ABI
// (docs/plugin-abi.md): it loads WebAssembly plugins with wazero, runs
// batches of records through them and reloads them without a restart.
//
//	rt, _ := plugins.NewRuntime(ctx, plugins.RuntimeConfig{CacheDir: dir})
//	set, _ := plugins.NewSet(rt, cfgs)
//	go set.Watch(ctx)
//
//	p, release := set.Get("enrich")
//	verdicts, err := p.Process(ctx, "order.created", records)
//	release()
//
// # Runtime, plugins and instances
//
// A Runtime holds what all plugins share: the wazero configuration and the
// compilation cache (on disk with RuntimeConfig.CacheDir). Runtime.Load
// makes a Plugin, one version of one plugin: its own wazero runtime (with
// the plugin's memory limit), the WASI module with nothing behind it (no
// files, environment or arguments; stdout and stderr discarded), the
// evp_v1 host module (log, now_ms, metric_add, lookup, closures over the
// plugin's logger, tables and counters), the compiled module after its ABI
// was checked, and a pool of instances.
//
// # Timeouts
//
// Load rewrites every module (instrument.go): a fuel global decremented at
// the head of every loop, and a call to the host function evp_internal.tick
// when it runs out, about every 0.5 ms (deadline.go). tick checks the
// call's deadline (the timeout, if any) and its context, and ends the call
// (a panic that wazero turns into the call's error) when either is past.
// The state of a call (deadline, warm-up flag, init log) lives in the
// instance's callState, which is also the context the call is made with:
// no context.WithTimeout, timer or goroutine per call. tick is also where
// the Go runtime can stop the goroutine: native code cannot be preempted,
// so an uninstrumented call delays every stop-the-world phase of the
// garbage collector (and the goroutines it stops) until it returns, and a
// runaway loop stops the whole process for good.
//
// wazero's own mechanism, WithCloseOnContextDone, is the fallback for a
// module instrument cannot rewrite, when it has a timeout: it compiles a
// call into Go at every loop head (guest loops 3-4× slower, a Go guest's
// 4.5×) and starts a goroutine per call.
//
// Linear memory is reserved for the memory limit at instantiation and
// grown in place (memory.go), outside the Go heap.
//
// # Pooling
//
// An instance is used by one goroutine at a time. The pool is a buffered
// channel holding Config.PoolSize tokens (GOMAXPROCS by default), each an
// idle instance or nil for a slot whose replacement could not be made.
// Process receives a token (waiting, with its ctx, if all are busy), makes
// a fresh instance if the token is nil, and sends the token back when it
// is done. Load fills every slot first, so the hot path does not
// instantiate (a Go guest takes ~8 ms and ~5 MB to instantiate, C ~50 µs).
//
// Every instance is warmed up before it serves: it processes one
// synthetic batch with the shape of the largest batch seen (warmup.go),
// bounded by 5 s rather than the timeout, with its log lines at debug
// level and its metric_add calls ignored. A fresh Go guest's first call
// on a large batch is otherwise several times slower than the next ones
// (heap growth, first GC) and, with a 100 ms timeout, timed out.
//
// A discarded (or recycled) instance's token goes to a goroutine that
// makes and warms up its replacement and then sends it to the pool
// (Plugin.replace): the call that discarded it does not wait, and a
// bisection retry takes the next free instance. Tokens are never
// duplicated, so there are at most PoolSize instances.
//
// One call is one evp_alloc and one evp_process. The batch is encoded
// directly into the guest's buffer (no intermediate copy) and the output is
// validated completely in guest memory, then copied out once (only if some
// verdict carries bytes: a batch of KEEPs is decoded in place) before the
// instance goes back to the pool. An instance whose memory grew past ¾ of
// its limit is replaced after its call, giving the memory back.
//
// # Failures and bisection
//
// A trap, a timeout, a negative evp_process result, a failed evp_alloc or
// malformed output costs the instance: it is closed (its memory may be
// corrupt) and the batch is retried in halves, recursively, each on
// another instance, until the records that fail on their own are isolated. Those
// get a host verdict Reject with Code 0 and Reason ReasonTrap,
// ReasonTimeout or ReasonMalformed; all other records get the plugin's
// verdicts. A batch with one bad record among n costs about 2·log2(n)
// extra calls, so with a timeout of T a looping record costs about
// log2(n)·T. If no fresh instance can be made (the plugin's _initialize
// or evp_init fails on a retry), the remaining records get ReasonTrap.
// Process never turns a guest fault into a Go error: it returns one only
// if its ctx ends or the plugin is closed.
//
// # Reload
//
// A Set maps names to the current Plugin of each. Get is lock-free: it
// takes a reference on the current version, which the caller releases when
// its Process call returned. Reload loads the new versions completely
// (compile, validate, pre-warm) while the old ones keep serving, then swaps
// them all in with one atomic store; if any fails to load, nothing is
// swapped and the old versions keep running. A replaced version is closed
// in the background when its last reference is released, so calls in
// flight finish on the version they started on and none is lost. Watch
// calls Reload when a plugin's file or table file changes (debounced);
// SIGHUP handling is the caller's: it calls Reload with the new
// configuration.
//
// # Shutdown
//
// Stop feeding records first, then close in this order:
//
//  1. Set.Close: plugins leave the Set; each is closed when its in-flight
//     calls are released. Watch returns.
//  2. Runtime.Close: closes any plugin still open (Loaded outside a Set),
//     waits for them, then closes the compilation cache (compiled code must
//     outlive every instance using it).
//
// Both wait until ctx ends; if it does first they return its error, and
// what is left is freed when the last in-flight call returns (a call is
// never cut short by Close: only a plugin timeout or the call's own ctx
// interrupt a running guest).
package plugins

//go:generate sh -c "for f in testdata/*.wat; do wat2wasm \"$DOLLAR{f}\" -o \"$DOLLAR{f%.wat}.wasm\" || exit 1; done"
