package plugins

import (
	"errors"
	"fmt"
)

// This file rewrites a plugin's module so that a per-call timeout costs
// almost nothing.
//
// wazero's own mechanism (WithCloseOnContextDone) compiles, at the head of
// every loop, a call into Go that checks whether the module was closed.
// That exit from native code costs tens of nanoseconds per loop iteration:
// it made guest loops 3-4× slower (and a Go guest, whose functions are
// loops, about 4.5× slower). Instead, instrument gives the module one
// mutable i32 global, the fuel, and one import, evp_internal.tick
// () -> i32, and puts at the head of every loop:
//
//	global.get $fuel  i32.const 1  i32.sub  global.set $fuel
//	global.get $fuel  i32.eqz
//	if  call $tick  global.set $fuel  end
//
// A few native instructions per iteration. When the fuel runs out (about
// every 0.5 ms, see deadline.go), the guest calls tick (in Go), which
// checks the call's deadline and its context and either returns a new
// budget or panics, which ends the call with an error (the instance is
// then discarded, like after any timeout).
// The guarantee is wazero's: every loop iteration is counted, so a guest
// cannot run for long without reaching tick, and tick is also where a
// pending garbage collection can stop the goroutine.
//
// The rewrite is mechanical: the new import takes the function index just
// after the existing function imports, so every defined function's index
// grows by one, everywhere it appears (calls, ref.func, exports, the start
// function, element segments, the name section). Custom sections other
// than "name" are dropped (DWARF offsets would no longer match the code).
// instrument understands the WebAssembly 2.0 core features wazero enables
// by default; anything else makes it fail, and the caller then falls back
// to wazero's mechanism.

// The import instrument adds.
const (
	tickModule = "evp_internal"
	tickName   = "tick"
)

// Section ids.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
)

var errInstrument = errors.New("cannot instrument module")

// wasmReader reads the binary format.
type wasmReader struct {
	b   []byte
	off int
	err error
}

func (r *wasmReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: offset %d: %s", errInstrument, r.off, fmt.Sprintf(format, args...))
	}
	r.off = len(r.b)
}

func (r *wasmReader) done() bool { return r.err != nil || r.off >= len(r.b) }

func (r *wasmReader) byte() byte {
	if r.off >= len(r.b) {
		r.fail("unexpected end")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *wasmReader) bytes(n int) []byte {
	if n < 0 || n > len(r.b)-r.off {
		r.fail("unexpected end")
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

// leb reads an unsigned LEB128 number of at most maxBits bits.
func (r *wasmReader) leb(maxBits uint) uint64 {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= maxBits+7 || shift >= 70 {
			r.fail("LEB128 too long")
			return 0
		}
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint64(c&0x7F) << shift
		if c&0x80 == 0 {
			return v
		}
	}
}

func (r *wasmReader) u32() uint32 {
	v := r.leb(32)
	if v > 0xFFFFFFFF {
		r.fail("u32 out of range")
	}
	return uint32(v)
}

// skipLEB skips a (signed or unsigned) LEB128 number of at most maxBits.
func (r *wasmReader) skipLEB(maxBits uint) { r.leb(maxBits) }

func (r *wasmReader) name() []byte { return r.bytes(int(r.u32())) }

func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7F)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func appendName(b []byte, s string) []byte {
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}

// instrumenter is one rewrite in progress.
type instrumenter struct {
	funcImports   uint32 // function imports of the original module
	globalImports uint32
	globals       uint32 // defined globals of the original module
	types         uint32
	tickType      uint32 // index of () -> i32
	tickFunc      uint32 // index of the tick import (= funcImports)
	fuelGlobal    uint32 // index of the fuel global
	loops         int    // loops instrumented
}

// shift returns the new index of function f.
func (in *instrumenter) shift(f uint32) uint32 {
	if f >= in.funcImports {
		return f + 1
	}
	return f
}

// instrument returns bin with a fuel check at the head of every loop (see
// the top of this file) and the number of loops it instrumented.
func instrument(bin []byte) ([]byte, int, error) {
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" || string(bin[4:8]) != "\x01\x00\x00\x00" {
		return nil, 0, fmt.Errorf("%w: not a WebAssembly 1.0 binary", errInstrument)
	}
	// First pass: the sections, and the counts the rewrite needs.
	type section struct {
		id   byte
		body []byte
	}
	var secs []section
	in := &instrumenter{}
	r := &wasmReader{b: bin, off: 8}
	last := byte(0)
	for !r.done() {
		id := r.byte()
		body := r.bytes(int(r.u32()))
		if r.err != nil {
			return nil, 0, r.err
		}
		if id > secDataCount {
			return nil, 0, fmt.Errorf("%w: unsupported section %d", errInstrument, id)
		}
		if id != secCustom {
			if sectionOrder(id) <= sectionOrder(last) {
				return nil, 0, fmt.Errorf("%w: section %d out of order", errInstrument, id)
			}
			last = id
		}
		secs = append(secs, section{id, body})
		var err error
		switch id {
		case secType:
			in.types, err = vecCount(body)
		case secImport:
			err = in.countImports(body)
		case secGlobal:
			in.globals, err = vecCount(body)
		}
		if err != nil {
			return nil, 0, err
		}
	}
	in.tickType = in.types
	in.tickFunc = in.funcImports
	in.fuelGlobal = in.globalImports + in.globals

	// Second pass: write the new module, adding the type, import and
	// global sections if the module has none.
	out := make([]byte, 0, len(bin)+len(bin)/8)
	out = append(out, bin[:8]...)
	put := func(id byte, body []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	wrote := map[byte]bool{}
	ensure := func(upTo byte) { // writes the sections we add that come before upTo
		for _, id := range []byte{secType, secImport, secGlobal} {
			if !wrote[id] && sectionOrder(id) < sectionOrder(upTo) {
				wrote[id] = true
				switch id {
				case secType:
					put(id, in.typeSection(nil))
				case secImport:
					put(id, in.importSection(nil))
				case secGlobal:
					put(id, in.globalSection(nil))
				}
			}
		}
	}
	for _, s := range secs {
		if s.id != secCustom {
			ensure(s.id)
		}
		var (
			body []byte
			err  error
		)
		switch s.id {
		case secCustom:
			body, err = in.customSection(s.body)
			if body == nil { // dropped
				continue
			}
		case secType:
			body = in.typeSection(s.body)
		case secImport:
			body = in.importSection(s.body)
		case secGlobal:
			body, err = in.rewriteGlobals(s.body)
		case secExport:
			body, err = in.rewriteExports(s.body)
		case secStart:
			rr := &wasmReader{b: s.body}
			body = appendU32(nil, in.shift(rr.u32()))
			err = rr.err
		case secElement:
			body, err = in.rewriteElements(s.body)
		case secCode:
			body, err = in.rewriteCode(s.body)
		default:
			body = s.body
		}
		if err != nil {
			return nil, 0, err
		}
		if s.id != secCustom {
			wrote[s.id] = true
		}
		put(s.id, body)
	}
	ensure(secDataCount + 1)
	return out, in.loops, nil
}

// sectionOrder is the position of a non-custom section id in the order the
// binary format requires (the data count section sits before code).
func sectionOrder(id byte) int {
	switch id {
	case secDataCount:
		return int(secElement) + 1
	case secCode, secData:
		return int(id) + 1
	case secDataCount + 1: // past the end
		return 100
	}
	return int(id)
}

func vecCount(body []byte) (uint32, error) {
	r := &wasmReader{b: body}
	n := r.u32()
	return n, r.err
}

func (in *instrumenter) countImports(body []byte) error {
	r := &wasmReader{b: body}
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		mod := r.name()
		r.name()
		if string(mod) == tickModule {
			return fmt.Errorf("%w: it imports from %s itself", errInstrument, tickModule)
		}
		switch kind := r.byte(); kind {
		case 0x00: // function
			r.u32()
			in.funcImports++
		case 0x01: // table: reftype limits
			r.byte()
			r.limits()
		case 0x02: // memory
			r.limits()
		case 0x03: // global: valtype mut
			r.byte()
			r.byte()
			in.globalImports++
		default:
			r.fail("import kind %d", kind)
		}
	}
	if r.err == nil && r.off != len(body) {
		r.fail("trailing bytes in the import section")
	}
	return r.err
}

func (r *wasmReader) limits() {
	switch flags := r.byte(); flags {
	case 0x00:
		r.u32()
	case 0x01:
		r.u32()
		r.u32()
	default:
		r.fail("limits flags %#x", flags)
	}
}

// typeSection appends the tick type, () -> i32, to a type section body
// (nil if there is none).
func (in *instrumenter) typeSection(body []byte) []byte {
	b := appendU32(nil, in.types+1)
	if body != nil {
		r := &wasmReader{b: body}
		r.u32()
		b = append(b, body[r.off:]...)
	}
	return append(b, 0x60, 0x00, 0x01, 0x7F)
}

// importSection appends the tick import to an import section body.
func (in *instrumenter) importSection(body []byte) []byte {
	var n uint32
	var rest []byte
	if body != nil {
		r := &wasmReader{b: body}
		n = r.u32()
		rest = body[r.off:]
	}
	b := appendU32(nil, n+1)
	b = append(b, rest...)
	b = appendName(b, tickModule)
	b = appendName(b, tickName)
	b = append(b, 0x00)
	return appendU32(b, in.tickType)
}

// globalSection returns a global section body of the given globals (an
// already rewritten vector body, without its count) plus the fuel global,
// a mutable i32 starting at 1.
func (in *instrumenter) globalSection(globals []byte) []byte {
	b := appendU32(nil, in.globals+1)
	b = append(b, globals...)
	return append(b, 0x7F, 0x01, 0x41, 0x01, 0x0B)
}

func (in *instrumenter) rewriteGlobals(body []byte) ([]byte, error) {
	r := &wasmReader{b: body}
	n := r.u32()
	var b []byte
	for i := uint32(0); i < n && r.err == nil; i++ {
		start := r.off
		r.byte() // valtype
		r.byte() // mut
		b = append(b, body[start:r.off]...)
		b = in.expr(r, b)
	}
	if r.err == nil && r.off != len(body) {
		r.fail("trailing bytes in the global section")
	}
	return in.globalSection(b), r.err
}

func (in *instrumenter) rewriteExports(body []byte) ([]byte, error) {
	r := &wasmReader{b: body}
	n := r.u32()
	b := appendU32(nil, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		start := r.off
		r.name()
		kind := r.byte()
		b = append(b, body[start:r.off]...)
		idx := r.u32()
		if kind == 0x00 {
			idx = in.shift(idx)
		}
		b = appendU32(b, idx)
	}
	if r.err == nil && r.off != len(body) {
		r.fail("trailing bytes in the export section")
	}
	return b, r.err
}

func (in *instrumenter) rewriteElements(body []byte) ([]byte, error) {
	r := &wasmReader{b: body}
	n := r.u32()
	b := appendU32(nil, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		flags := r.u32()
		b = appendU32(b, flags)
		if flags > 7 {
			r.fail("element segment flags %d", flags)
			break
		}
		if flags&2 != 0 && flags&1 == 0 { // explicit table index
			b = appendU32(b, r.u32())
		}
		if flags&1 == 0 { // active: offset expression
			b = in.expr(r, b)
		}
		if flags&3 != 0 { // elemkind (flags&4 == 0) or reftype
			b = append(b, r.byte())
		}
		m := r.u32()
		b = appendU32(b, m)
		for i := uint32(0); i < m && r.err == nil; i++ {
			if flags&4 == 0 {
				b = appendU32(b, in.shift(r.u32()))
			} else {
				b = in.expr(r, b)
			}
		}
	}
	if r.err == nil && r.off != len(body) {
		r.fail("trailing bytes in the element section")
	}
	return b, r.err
}

// expr copies a constant expression up to and including its end.
func (in *instrumenter) expr(r *wasmReader, b []byte) []byte {
	for !r.done() {
		op := r.b[r.off]
		b = in.instr(r, b)
		if op == 0x0B {
			return b
		}
	}
	r.fail("unterminated expression")
	return b
}

func (in *instrumenter) rewriteCode(body []byte) ([]byte, error) {
	r := &wasmReader{b: body}
	n := r.u32()
	b := make([]byte, 0, len(body)+len(body)/8)
	b = appendU32(b, n)
	var fn []byte
	for i := uint32(0); i < n && r.err == nil; i++ {
		size := int(r.u32())
		fb := r.bytes(size)
		if r.err != nil {
			break
		}
		fr := &wasmReader{b: fb}
		locals := fr.u32()
		for i := uint32(0); i < locals && fr.err == nil; i++ {
			fr.u32()
			fr.byte()
		}
		fn = append(fn[:0], fb[:fr.off]...)
		for !fr.done() {
			op := fr.b[fr.off]
			fn = in.instr(fr, fn)
			if op == 0x03 && fr.err == nil { // loop blocktype: the check goes first in the body
				fn = in.check(fn)
				in.loops++
			}
		}
		if fr.err != nil {
			return nil, fr.err
		}
		b = appendU32(b, uint32(len(fn)))
		b = append(b, fn...)
	}
	if r.err == nil && r.off != len(body) {
		r.fail("trailing bytes in the code section")
	}
	return b, r.err
}

// check appends the fuel check of a loop head.
func (in *instrumenter) check(b []byte) []byte {
	g := in.fuelGlobal
	b = append(b, 0x23) // global.get
	b = appendU32(b, g)
	b = append(b, 0x41, 0x01, 0x6B, 0x24) // i32.const 1, i32.sub, global.set
	b = appendU32(b, g)
	b = append(b, 0x23) // global.get
	b = appendU32(b, g)
	b = append(b, 0x45, 0x04, 0x40, 0x10) // i32.eqz, if (empty), call
	b = appendU32(b, in.tickFunc)
	b = append(b, 0x24) // global.set
	b = appendU32(b, g)
	return append(b, 0x0B) // end
}

// instr copies one instruction, renumbering function indices.
func (in *instrumenter) instr(r *wasmReader, b []byte) []byte {
	start := r.off
	op := r.byte()
	switch {
	case op == 0x10 || op == 0xD2: // call, ref.func
		b = append(b, op)
		return appendU32(b, in.shift(r.u32()))
	case op <= 0x01, op == 0x05, op == 0x0B, op == 0x0F, op == 0x1A, op == 0x1B, op == 0xD1,
		op >= 0x45 && op <= 0xC4:
		// no immediates
	case op >= 0x02 && op <= 0x04: // block, loop, if: blocktype (s33)
		r.skipLEB(33)
	case op == 0x0C || op == 0x0D: // br, br_if
		r.u32()
	case op == 0x0E: // br_table
		n := r.u32()
		for i := uint64(0); i <= uint64(n) && r.err == nil; i++ {
			r.u32()
		}
	case op == 0x11: // call_indirect
		r.u32()
		r.u32()
	case op == 0x1C: // select t*
		r.bytes(int(r.u32()))
	case op >= 0x20 && op <= 0x26: // local.*, global.*, table.get/set
		r.u32()
	case op >= 0x28 && op <= 0x3E: // loads and stores
		r.memarg()
	case op == 0x3F || op == 0x40: // memory.size, memory.grow
		r.u32()
	case op == 0x41: // i32.const
		r.skipLEB(32)
	case op == 0x42: // i64.const
		r.skipLEB(64)
	case op == 0x43:
		r.bytes(4)
	case op == 0x44:
		r.bytes(8)
	case op == 0xD0: // ref.null
		r.byte()
	case op == 0xFC:
		switch sub := r.u32(); {
		case sub <= 7: // saturating truncations
		case sub == 8, sub == 10, sub == 12, sub == 14: // memory.init, memory.copy, table.init, table.copy
			r.u32()
			r.u32()
		case sub == 9, sub == 11, sub == 13, sub >= 15 && sub <= 17: // data.drop, memory.fill, elem.drop, table.grow/size/fill
			r.u32()
		default:
			r.fail("unsupported instruction 0xFC %d", sub)
		}
	case op == 0xFD: // SIMD
		switch sub := r.u32(); {
		case sub <= 11, sub == 92, sub == 93: // loads and stores
			r.memarg()
		case sub == 12, sub == 13: // v128.const, i8x16.shuffle
			r.bytes(16)
		case sub >= 21 && sub <= 34: // extract_lane, replace_lane
			r.byte()
		case sub >= 84 && sub <= 91: // load_lane, store_lane
			r.memarg()
			r.byte()
		case sub <= 255: // no immediates
		default:
			r.fail("unsupported instruction 0xFD %d", sub)
		}
	default:
		r.fail("unsupported instruction %#x", op)
	}
	return append(b, r.b[start:r.off]...)
}

func (r *wasmReader) memarg() {
	if align := r.u32(); align&0x40 != 0 { // multi-memory: a memory index follows
		r.u32()
	}
	r.leb(64) // offset
}

// customSection returns the body of a custom section to keep, rewritten,
// or nil to drop it: only the name section is kept, with its function
// indices renumbered (it is dropped if it cannot be read).
func (in *instrumenter) customSection(body []byte) ([]byte, error) {
	r := &wasmReader{b: body}
	name := r.name()
	if r.err != nil {
		return nil, r.err
	}
	if string(name) != "name" {
		return nil, nil
	}
	b := append([]byte(nil), body[:r.off]...)
	for !r.done() {
		id := r.byte()
		sub := r.bytes(int(r.u32()))
		if r.err != nil {
			return nil, nil
		}
		if id >= 1 && id <= 3 { // function, local and label names: keyed by function index
			var err error
			if sub, err = in.renumberNameMap(sub, id != 1); err != nil {
				return nil, nil
			}
		}
		b = append(b, id)
		b = appendU32(b, uint32(len(sub)))
		b = append(b, sub...)
	}
	return b, nil
}

// renumberNameMap renumbers the function indices of a name map or, if
// indirect, of an indirect name map (function index → name map).
func (in *instrumenter) renumberNameMap(sub []byte, indirect bool) ([]byte, error) {
	r := &wasmReader{b: sub}
	n := r.u32()
	b := appendU32(nil, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		b = appendU32(b, in.shift(r.u32()))
		start := r.off
		if indirect {
			m := r.u32()
			for i := uint32(0); i < m && r.err == nil; i++ {
				r.u32()
				r.name()
			}
		} else {
			r.name()
		}
		b = append(b, sub[start:r.off]...)
	}
	if r.err == nil && r.off != len(sub) {
		r.fail("trailing bytes in a name map")
	}
	return b, r.err
}
