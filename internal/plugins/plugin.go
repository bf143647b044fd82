package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Config configures one plugin.
type Config struct {
	// Name identifies the plugin in logs, metrics and errors. Required.
	Name string
	// Path is the .wasm file. Required.
	Path string
	// Config is passed to evp_init as is; it must be JSON. Defaults to {}.
	Config []byte
	// MemoryLimit is the most linear memory an instance may have, in bytes,
	// rounded up to whole 64 KiB pages. Defaults to 64 MiB; at most 2 GiB
	// (evp_process returns its output pointer in 31 bits).
	MemoryLimit uint64
	// Timeout bounds each evp_process call (with its evp_alloc). 0 disables
	// it (config.hcl's default of 100ms is applied by the caller). Either
	// way the module is instrumented with a fuel counter (instrument.go):
	// its loops reach the host about every 0.5 ms, where a call past its
	// timeout or whose ctx ended is interrupted, and where Go's runtime can
	// stop it (for a garbage collection). A module that cannot be
	// instrumented gets wazero's termination checks with a timeout (loops
	// run 3-4× slower) and nothing without one: then a runaway loop stops
	// the whole process at its next garbage collection.
	Timeout time.Duration
	// Tables maps a lookup table's name to a JSON file holding an object of
	// string values.
	Tables map[string]string
	// PoolSize is the number of instances, all made (and warmed up) by
	// Load; a discarded instance is replaced in the background, so there
	// are never more. Defaults to runtime.GOMAXPROCS(0).
	PoolSize int
	// Logger receives the plugin's log calls and the host's messages about
	// it, with a field plugin=Name.
	Logger zerolog.Logger
	// Metrics receives the plugin's metrics; nil disables them.
	Metrics *Metrics
}

const (
	pageSize           = 65536
	defaultMemoryLimit = 64 << 20
	maxMemoryLimit     = 2 << 30
)

// withDefaults returns a copy of c with the documented defaults filled in.
func (c Config) withDefaults() Config {
	if len(c.Config) == 0 {
		c.Config = []byte("{}")
	}
	if c.MemoryLimit == 0 {
		c.MemoryLimit = defaultMemoryLimit
	}
	if c.PoolSize == 0 {
		c.PoolSize = runtime.GOMAXPROCS(0)
	}
	return c
}

func (c *Config) validate() error {
	switch {
	case c.Name == "":
		return errors.New("plugins: a plugin needs a name")
	case c.Path == "":
		return fmt.Errorf("plugin %q: no path", c.Name)
	case c.MemoryLimit > maxMemoryLimit:
		return fmt.Errorf("plugin %q: memory limit %d is above 2 GiB", c.Name, c.MemoryLimit)
	case c.Timeout < 0:
		return fmt.Errorf("plugin %q: negative timeout %v", c.Name, c.Timeout)
	case c.PoolSize < 0:
		return fmt.Errorf("plugin %q: negative pool size %d", c.Name, c.PoolSize)
	case !json.Valid(c.Config):
		return fmt.Errorf("plugin %q: config is not valid JSON", c.Name)
	}
	for name := range c.Tables {
		if name == "" {
			return fmt.Errorf("plugin %q: a table needs a name", c.Name)
		}
	}
	return nil
}

// Plugin is one loaded version of a plugin: its compiled module and a pool
// of instances. It is safe for concurrent use.
type Plugin struct {
	name    string
	r       *Runtime
	rt      wazero.Runtime
	code    wazero.CompiledModule
	modCfg  wazero.ModuleConfig
	initCfg []byte
	timeout time.Duration
	// instrumented: the module went through instrument, so the timeout and
	// ctx are enforced by tick (deadline.go); otherwise, with a timeout, by
	// wazero's WithCloseOnContextDone and a context.WithTimeout per call.
	instrumented bool
	// recycleAt is the memory size past which an instance that grew is
	// replaced after its call: ¾ of the limit.
	recycleAt uint32
	log       zerolog.Logger
	metrics   *pluginMetrics
	tables    map[string]map[string]string

	// pool holds PoolSize tokens: an idle, warmed-up instance, or nil for a
	// slot whose instance could not be replaced (the next user makes a
	// fresh one). A token is owned by one goroutine from receive to send,
	// so an instance is never used concurrently; a discarded instance's
	// token goes to a background goroutine that makes its replacement
	// (replace). There are never more than PoolSize instances.
	pool chan *instance
	// warm is the batch new instances are warmed up with (warmup.go),
	// at most warmMax bytes.
	warm          atomic.Pointer[warmBatch]
	warmMax       int
	warmupTimeout time.Duration

	// refs is 1 (dropped by Close) plus one per Process call in flight and
	// per replacement being made; the plugin is finalized (instances and
	// runtime closed) when it reaches 0.
	refs   refCount
	closed atomic.Bool
	// life ends when Close starts: it interrupts replacements and their
	// warm-up calls.
	life    context.Context
	endLife context.CancelFunc
	done    chan struct{} // closed once finalized

	replacing   sync.WaitGroup // replacements being made (tests wait on it)
	replaceHook func()         // tests: called by each replacement before it starts
}

// instance is one instantiated module with its exports resolved.
type instance struct {
	mod      api.Module
	mem      api.Memory
	alloc    api.Function
	process  api.Function
	baseSize uint32    // memory size once initialized
	warmSize int       // largest batch (encoded) it has processed, warm-ups included
	stack    [2]uint64 // CallWithStack arguments and results
	cs       callState // the context of its calls
}

// Load compiles the plugin at cfg.Path (or takes it from the compilation
// cache), checks that it implements evp_v1 (an *ABIError says how it does
// not), loads its tables and makes cfg.PoolSize instances, each
// instantiated (running _initialize), initialized with evp_init and warmed
// up (warmup.go). If evp_init refuses, Load fails with what the plugin
// logged last.
func (r *Runtime) Load(ctx context.Context, cfg Config) (*Plugin, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("plugin %q: %w", cfg.Name, err)
	}
	tables, err := loadTables(cfg)
	if err != nil {
		return nil, err
	}
	if !r.acquire() {
		return nil, ErrClosed
	}
	pages := (cfg.MemoryLimit + pageSize - 1) / pageSize
	p := &Plugin{
		name:          cfg.Name,
		r:             r,
		modCfg:        hostModuleConfig(),
		initCfg:       cfg.Config,
		timeout:       cfg.Timeout,
		recycleAt:     uint32(pages * pageSize / 4 * 3),
		log:           cfg.Logger.With().Str("plugin", cfg.Name).Logger(),
		metrics:       newPluginMetrics(cfg.Metrics, cfg.Name),
		tables:        tables,
		pool:          make(chan *instance, cfg.PoolSize),
		warmMax:       warmMax(cfg.MemoryLimit),
		warmupTimeout: warmupTimeout,
		done:          make(chan struct{}),
	}
	p.life, p.endLife = context.WithCancel(context.Background())
	p.warm.Store(defaultWarmBatch(cfg.MemoryLimit))
	p.refs.init()
	loaded := false
	defer func() {
		if !loaded {
			p.endLife()
			for len(p.pool) > 0 {
				p.discard(<-p.pool)
			}
			p.closeRuntime()
			r.release(p)
		}
	}()

	if err := p.compile(ctx, cfg, bin, uint32(pages)); err != nil {
		return nil, err
	}
	if err := validateABI(cfg.Name, p.code, p.instrumented); err != nil {
		return nil, err
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, p.rt); err != nil {
		return nil, fmt.Errorf("plugin %q: WASI: %w", cfg.Name, err)
	}
	if err := p.instantiateHost(ctx); err != nil {
		return nil, fmt.Errorf("plugin %q: %s: %w", cfg.Name, hostModule, err)
	}
	if p.instrumented {
		if err := p.instantiateTick(ctx); err != nil {
			return nil, fmt.Errorf("plugin %q: %s: %w", cfg.Name, tickModule, err)
		}
	}
	for range cfg.PoolSize {
		inst, err := p.newWarmInstance(ctx)
		if err != nil {
			p.metrics.errorInc(kindInit)
			return nil, err
		}
		p.pool <- inst
	}
	if !r.register(p) {
		return nil, ErrClosed
	}
	loaded = true
	return p, nil
}

// compile makes p's wazero runtime and compiles bin in it, instrumented
// (instrument.go) if it can be; if not, with a timeout, the runtime gets
// wazero's WithCloseOnContextDone instead.
func (p *Plugin) compile(ctx context.Context, cfg Config, bin []byte, pages uint32) error {
	newRuntime := func(closeOnDone bool) {
		p.rt = wazero.NewRuntimeWithConfig(ctx, p.r.base.
			WithMemoryLimitPages(pages).
			WithCloseOnContextDone(closeOnDone))
	}
	ibin, _, instrErr := p.r.instrument(bin)
	if instrErr == nil {
		newRuntime(false)
		if p.code, instrErr = p.rt.CompileModule(ctx, ibin); instrErr == nil {
			p.instrumented = true
			return nil
		}
		// Compile the original below: if it compiles, instrument made an
		// invalid module (a bug); if not, its error is the one to report.
		_ = p.rt.Close(ctx)
	}
	newRuntime(cfg.Timeout > 0)
	var err error
	if p.code, err = p.rt.CompileModule(ctx, bin); err != nil {
		return fmt.Errorf("plugin %q: %s: %w", cfg.Name, cfg.Path, err)
	}
	if cfg.Timeout > 0 {
		p.log.Warn().Err(instrErr).Msg("plugin: cannot instrument the module; wazero's termination checks enforce the timeout (loops run 3-4× slower)")
	} else {
		p.log.Warn().Err(instrErr).Msg("plugin: cannot instrument the module; its calls cannot be interrupted and hold up Go's garbage collector while they run")
	}
	return nil
}

// loadTables reads the lookup tables of cfg.
func loadTables(cfg Config) (map[string]map[string]string, error) {
	tables := make(map[string]map[string]string, len(cfg.Tables))
	for name, path := range cfg.Tables {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("plugin %q: table %q: %w", cfg.Name, name, err)
		}
		var t map[string]string
		if err := json.Unmarshal(b, &t); err != nil {
			return nil, fmt.Errorf("plugin %q: table %q (%s): want a JSON object of strings: %w", cfg.Name, name, path, err)
		}
		if t == nil { // the file said null
			t = map[string]string{}
		}
		tables[name] = t
	}
	return tables, nil
}

// Name returns the plugin's name.
func (p *Plugin) Name() string { return p.name }

// newInstance instantiates the module (running _initialize) and calls
// evp_init with the configuration. Neither is bounded by the timeout;
// instrumented, the end of ctx interrupts them.
func (p *Plugin) newInstance(ctx context.Context) (*instance, error) {
	il := &initLog{}
	inst := &instance{}
	ictx := inst.enter(p, experimental.WithMemoryAllocator(ctx, memoryAllocator), 0)
	defer inst.cs.end()
	inst.cs.initLog = il
	defer func() { inst.cs.initLog = nil }()
	mod, err := p.rt.InstantiateModule(ictx, p.code, p.modCfg)
	if err != nil {
		return nil, fmt.Errorf("plugin %q: instantiate: %w", p.name, err)
	}
	inst.mod = mod
	inst.mem = mod.ExportedMemory(exportMemory)
	inst.alloc = mod.ExportedFunction(exportAlloc)
	inst.process = mod.ExportedFunction(exportProcess)
	p.metrics.instancesAdd(1)
	fail := func(err error) (*instance, error) {
		p.discard(inst)
		return nil, err
	}
	n := uint32(len(p.initCfg))
	inst.stack[0] = uint64(n)
	if err := inst.alloc.CallWithStack(ictx, inst.stack[:1]); err != nil {
		return fail(fmt.Errorf("plugin %q: evp_alloc(%d) for the config: %w", p.name, n, err))
	}
	ptr := uint32(inst.stack[0])
	if ptr == 0 || !inst.mem.Write(ptr, p.initCfg) {
		return fail(fmt.Errorf("plugin %q: evp_alloc(%d) for the config returned %d", p.name, n, ptr))
	}
	inst.stack[0], inst.stack[1] = uint64(ptr), uint64(n)
	if err := mod.ExportedFunction(exportInit).CallWithStack(ictx, inst.stack[:2]); err != nil {
		return fail(fmt.Errorf("plugin %q: evp_init: %w", p.name, err))
	}
	if rc := int32(inst.stack[0]); rc != 0 {
		reason := il.last
		if reason == "" {
			reason = "it logged no reason"
		}
		return fail(fmt.Errorf("plugin %q: evp_init refused to start (code %d): %s", p.name, rc, reason))
	}
	inst.baseSize = inst.mem.Size()
	return inst, nil
}

// enter prepares inst's callState for a call with ctx and a deadline d
// from now (0: none) and returns the context to give wazero. Call
// inst.cs.end after the call.
func (inst *instance) enter(p *Plugin, ctx context.Context, d time.Duration) context.Context {
	inst.cs.begin(ctx, d)
	if p.instrumented || p.timeout == 0 {
		return &inst.cs
	}
	// wazero's WithCloseOnContextDone watches the context from another
	// goroutine, which may still read it after the call: give it one that
	// is never modified.
	return context.WithValue(ctx, callStateKey{}, &inst.cs)
}

// discard closes an instance that will not be used again.
func (p *Plugin) discard(inst *instance) {
	if inst == nil {
		return
	}
	_ = inst.mod.Close(context.Background())
	p.metrics.instancesAdd(-1)
}

// replace makes an instance in the background for a pool slot whose
// instance was discarded, and puts it in the pool once warmed up (or nil if
// it cannot be made: the next user of the slot then tries again). The
// caller must hold a reference (a Process call in flight).
func (p *Plugin) replace() {
	if !p.refs.tryAcquire() { // cannot happen while the caller holds one
		p.pool <- nil
		return
	}
	p.replacing.Add(1)
	go func() {
		defer p.replacing.Done()
		defer p.release()
		if p.replaceHook != nil {
			p.replaceHook()
		}
		var inst *instance
		if !p.closed.Load() {
			var err error
			if inst, err = p.newWarmInstance(p.life); err != nil && p.life.Err() == nil {
				p.metrics.errorInc(kindInit)
				p.log.Error().Err(err).Msg("plugin: cannot make a fresh instance")
			}
		}
		p.pool <- inst
	}()
}

// Process runs the plugin on one batch (every record has eventType) and
// returns exactly one verdict per record, in order.
//
// Guest faults are not errors: when a call traps, runs past the timeout,
// returns a negative result or malformed output, its instance is discarded
// and the batch is retried by bisection on other instances, so only the
// records that fail on their own get a host verdict (Reject, Code 0,
// Reason ReasonTrap, ReasonTimeout or ReasonMalformed) and the others get
// the plugin's. Process returns an error only if ctx ends (while it waits
// for an instance, or, with a timeout configured, while the guest runs) or
// the plugin is closed (ErrClosed).
func (p *Plugin) Process(ctx context.Context, eventType string, recs []Record) ([]Verdict, error) {
	return p.ProcessWith(ctx, eventType, recs, nil)
}

// ProcessWith is Process with the verdicts' memory taken from b (see
// Buffers): they stay valid until b is Reset. A nil b allocates fresh
// memory, as Process does.
func (p *Plugin) ProcessWith(ctx context.Context, eventType string, recs []Record, b *Buffers) ([]Verdict, error) {
	if p.closed.Load() || !p.refs.tryAcquire() {
		return nil, ErrClosed
	}
	defer p.release()
	if len(recs) == 0 {
		return nil, nil
	}
	var inst *instance
	select {
	case inst = <-p.pool:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	start := time.Now()
	if b == nil {
		b = &Buffers{}
	}
	c := caller{p: p, ctx: ctx, inst: inst, held: true, eventType: eventType, bufs: b}
	if size, ok := batchSize(eventType, recs); ok {
		c.size, c.count = size, len(recs)
		p.sample(eventType, recs, size)
	}
	out := b.takeVerdicts(len(recs))
	err := c.run(recs, out)
	if err == nil {
		p.metrics.call(time.Since(start).Seconds(), out)
	}
	c.putBack()
	if err != nil {
		return nil, err
	}
	return out, nil
}

// failure is why a guest call failed.
type failure uint8

const (
	failNone failure = iota
	failTrap
	failTimeout
	failMalformed
)

var failureReason = [...]string{"", ReasonTrap, ReasonTimeout, ReasonMalformed}
var failureKind = [...]string{"", kindTrap, kindTimeout, kindMalformed}

// caller is one Process call. While held, it owns one pool token: inst,
// or an empty slot (inst nil, after a failed attempt to make an instance).
// When it discards inst, the token goes to replace and the next attempt
// takes another one from the pool.
type caller struct {
	p         *Plugin
	ctx       context.Context
	inst      *instance
	held      bool
	eventType string
	size      int  // encoded size of the whole batch…
	count     int  // …of count records (0 if it is too large)
	noInst    bool // making an instance failed: reject the rest without trying again
	bufs      *Buffers
}

// putBack returns the caller's token: its instance, or a replacement made
// in the background if it has none.
func (c *caller) putBack() {
	if !c.held {
		return
	}
	c.held = false
	if c.inst != nil {
		c.p.pool <- c.inst
		c.inst = nil
		return
	}
	c.p.replace()
}

// drop discards the caller's instance; its token goes to a replacement.
func (c *caller) drop() {
	c.p.discard(c.inst)
	c.inst = nil
	c.putBack()
}

// acquire makes sure the caller has an instance ready for a batch of size
// bytes (unless making one failed before): it takes a token from the pool,
// waiting for ctx, makes an instance on the spot if the token is an empty
// slot, and warms the instance up again if the batch is larger than it is
// warm for (needsRewarm).
func (c *caller) acquire(size int) error {
	p := c.p
	if !c.held {
		select {
		case c.inst = <-p.pool:
			c.held = true
		case <-c.ctx.Done():
			return c.ctx.Err()
		}
	}
	if c.inst != nil && c.inst.mod.IsClosed() {
		// Closed behind our back: a timeout that fired as the previous call
		// returned (without instrumentation, see once). Not this batch's
		// fault.
		c.drop()
		return c.acquire(size)
	}
	if c.inst == nil && !c.noInst {
		inst, err := p.newWarmInstance(c.ctx)
		if err != nil {
			if cerr := c.ctx.Err(); cerr != nil {
				return cerr
			}
			p.metrics.errorInc(kindInit)
			p.log.Error().Err(err).Msg("plugin: cannot make a fresh instance; the host rejects the batch")
			c.noInst = true
		}
		c.inst = inst
	}
	if c.inst != nil {
		if w := p.warm.Load(); c.inst.needsRewarm(w, size) {
			if err := p.warmUp(c.ctx, c.inst, w); err != nil {
				cerr := c.ctx.Err()
				if cerr == nil {
					p.warmupFailed(w, err) // before drop: the replacement starts cold
				}
				c.drop()
				if cerr != nil {
					return cerr
				}
				return c.acquire(size)
			}
		}
	}
	return nil
}

// run fills out with the verdicts for recs, bisecting on failure.
func (c *caller) run(recs []Record, out []Verdict) error {
	a, err := c.once(recs, out)
	if err != nil || a.f == failNone {
		return err
	}
	f, cause := a.f, a.cause
	if len(recs) == 1 {
		out[0] = Verdict{Action: Reject, Reason: failureReason[f]}
		c.p.log.Warn().Str("reason", failureReason[f]).Err(cause).
			Str("topic", recs[0].Topic).Int32("partition", recs[0].Partition).
			Msg("plugin failed on a record; the host rejects it")
		return nil
	}
	mid := len(recs) / 2
	if err := c.run(recs[:mid], out[:mid]); err != nil {
		return err
	}
	return c.run(recs[mid:], out[mid:])
}

// attempt is the outcome of one guest call.
type attempt struct {
	f     failure
	cause error // why it failed, for the log
}

// once makes one guest call for recs: evp_alloc, encode, evp_process,
// decode into out. It reports a guest failure, or an error that ends
// Process (the caller's ctx ended).
func (c *caller) once(recs []Record, out []Verdict) (attempt, error) {
	p := c.p
	size, ok := c.size, true
	if len(recs) != c.count { // a part, when bisecting
		size, ok = batchSize(c.eventType, recs)
	}
	if err := c.acquire(size); err != nil {
		return attempt{}, err
	}
	if c.inst == nil {
		for i := range out {
			out[i] = Verdict{Action: Reject, Reason: ReasonTrap}
		}
		return attempt{}, nil
	}
	if !ok {
		return c.fail(failTrap, fmt.Errorf("batch of %d records does not fit in 2 GiB", len(recs)))
	}
	ctx := c.ctx
	if p.timeout > 0 && !p.instrumented {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	inst := c.inst
	cctx := inst.enter(p, ctx, p.timeout)
	defer inst.cs.end()
	inst.stack[0] = uint64(size)
	if err := inst.alloc.CallWithStack(cctx, inst.stack[:1]); err != nil {
		return c.callFailed(ctx, fmt.Errorf("evp_alloc: %w", err))
	}
	ptr := uint32(inst.stack[0])
	in, ok := inst.mem.Read(ptr, uint32(size))
	if ptr == 0 || !ok {
		return c.fail(failTrap, fmt.Errorf("evp_alloc(%d) returned %d", size, ptr))
	}
	encodeBatch(in, c.eventType, recs)
	inst.stack[0], inst.stack[1] = uint64(ptr), uint64(size)
	if err := inst.process.CallWithStack(cctx, inst.stack[:2]); err != nil {
		return c.callFailed(ctx, fmt.Errorf("evp_process: %w", err))
	}
	if p.timeout > 0 && !p.instrumented && ctx.Err() != nil {
		// Without instrumentation, wazero closes the module from another
		// goroutine when ctx ends during a call. If that happens as the call
		// returns, the close can land after a successful return, so an
		// instance whose ctx ended is never trusted, even after success:
		// the event sequence is ctx done → wazero's watcher sees it before
		// the call's cleanup → call returns → watcher closes the module.
		return c.callFailed(ctx, ctx.Err())
	}
	res := int64(inst.stack[0])
	if res < 0 {
		return c.fail(failTrap, fmt.Errorf("evp_process returned %d", res))
	}
	optr, olen := uint32(uint64(res)>>32), uint32(res)
	buf, ok := inst.mem.Read(optr, olen)
	if !ok {
		return c.fail(failMalformed, fmt.Errorf("output [%d, %d+%d) is outside memory (%d bytes)", optr, optr, olen, inst.mem.Size()))
	}
	if err := decodeVerdicts(buf, len(recs), out, c.bufs); err != nil {
		return c.fail(failMalformed, err)
	}
	inst.warmSize = max(inst.warmSize, size)
	if size := inst.mem.Size(); size > p.recycleAt && size > inst.baseSize {
		// It grew close to the limit: give the memory back (the verdicts
		// were copied out).
		c.drop()
	}
	return attempt{}, nil
}

// callFailed classifies an error from a guest call made with callCtx.
func (c *caller) callFailed(callCtx context.Context, err error) (attempt, error) {
	if cerr := c.ctx.Err(); cerr != nil {
		// The caller's context ended: not the plugin's fault, and the
		// instance may have been interrupted, so drop it.
		c.drop()
		return attempt{}, cerr
	}
	if c.p.timeout > 0 && (c.inst.cs.stop == stopDeadline || !c.p.instrumented && callCtx.Err() != nil) {
		return c.fail(failTimeout, err)
	}
	return c.fail(failTrap, err)
}

// fail discards the instance (its memory may be corrupt) after failure f.
func (c *caller) fail(f failure, cause error) (attempt, error) {
	c.p.metrics.errorInc(failureKind[f])
	c.p.log.Debug().Str("reason", failureReason[f]).Err(cause).Msg("plugin call failed; instance discarded")
	c.drop()
	return attempt{f, cause}, nil
}

// closeAsync starts closing: new Process calls fail with ErrClosed,
// replacements being made stop, and the last in-flight call to return
// finalizes the plugin.
func (p *Plugin) closeAsync() {
	if !p.closed.Swap(true) {
		p.endLife()
		p.release()
	}
}

// Close closes the plugin: new Process calls fail with ErrClosed; once the
// calls in flight have returned, the instances and the plugin's wazero
// runtime are closed. If ctx ends first, Close returns its error and that
// happens when the last call returns. It is safe to call more than once.
func (p *Plugin) Close(ctx context.Context) error {
	p.closeAsync()
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Plugin) release() {
	if p.refs.release() {
		p.finalize()
	}
}

// finalize runs once, when the last reference is gone: every pool token is
// back, so no instance is in use.
func (p *Plugin) finalize() {
	for len(p.pool) > 0 {
		p.discard(<-p.pool)
	}
	p.closeRuntime()
	p.r.release(p)
	close(p.done)
}

// closeRuntime closes the plugin's wazero runtime (its remaining modules:
// WASI and evp_v1) and drops its compiled module from the shared cache's
// memory (wazero counts the users of a compiled module).
func (p *Plugin) closeRuntime() {
	ctx := context.Background()
	if p.rt != nil {
		_ = p.rt.Close(ctx)
	}
	if p.code != nil {
		_ = p.code.Close(ctx)
	}
}
