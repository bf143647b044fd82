// Package evp is the Go kit for evproxy plugins: it implements the guest
// side of the evp_v1 ABI (docs/plugin-abi.md) so that a plugin is a type
// with two methods.
//
//	package main
//
//	import evp "github.com/evproxy/evproxy/plugins/sdk/go"
//
//	type tagger struct{ source []byte }
//
//	func (t *tagger) Init(config []byte) error { t.source = []byte("me"); return nil }
//
//	func (t *tagger) Process(eventType string, recs []evp.Record, out []evp.Verdict) {
//		for i := range recs {
//			recs[i].SetHeader("tagged-by", t.source)
//			out[i] = evp.Modified(recs[i])
//		}
//	}
//
//	func init() { evp.Register(&tagger{}) }
//
//	func main() {} // never called: a plugin is a WASI reactor
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o tagger.wasm .
//
// # Verdicts
//
// Process gets one batch: records of one partition batch with one event
// type, and out, one [Verdict] per record, all [Keep] on entry. A verdict
// keeps, drops ([Drop]), rejects ([Reject], with a code and a reason) or
// replaces the record by zero or more outputs ([Replace], [Modified],
// [RouteTo]); an [Output] starts as a copy of the input record and
// overrides what it sets. Records point into the input buffer: they are
// valid until Process returns ([Record.Clone] keeps one).
//
// # Host functions
//
// [Log], [NowMillis], [MetricAdd] and [Lookup] call evproxy. The guest has
// WASI with nothing behind it but clocks and random numbers: crypto/rand
// and time work, files, network and environment do not, and stdout and
// stderr are discarded.
//
// # Testing
//
// Outside WebAssembly the host functions go to a fake host, so plugins are
// tested natively with go test. Package evptest runs a plugin through the
// real ABI encoding, with a settable clock, captured logs and metrics, and
// tables:
//
//	vs := evptest.Run(t, &tagger{}, `{}`, "order.created", evp.Record{Topic: "orders", Value: []byte(`{}`)})
//
// # JSON
//
// encoding/json costs about 100 µs per record inside a Go guest; package
// jsonf reads fields, checks objects and sets fields in well under a
// microsecond.
//
// # Failures
//
// A panic in Process is recovered and logged with its stack, and the call
// fails: evproxy discards the instance and isolates the records that cause
// it. An error from Init refuses to start the plugin and is logged.
package evp
