// Package evptest runs evp plugins natively, the way evproxy runs their
// WebAssembly builds, so that plugin logic is tested with go test.
//
// A [Host] is a fake evproxy: the host functions of the evp_v1 ABI with a
// settable clock, captured logs, counted metrics and in-memory lookup
// tables, with the limits of docs/plugin-abi.md §4. [Host.Instantiate] and
// [Instance.Process] drive a plugin through the kit's real ABI code: the
// config and every batch are encoded as the host encodes them, decoded by
// the kit, and the verdicts come back through the output buffer, checked as
// the host checks them. [Run] does both in one call:
//
//	vs := evptest.Run(t, &myPlugin{}, `{"source":"checkout"}`, "order.created", recs...)
//	if vs[0].Action() != evp.ActionReplace { ... }
//
// [Apply] turns a verdict into the records evproxy would send on.
//
// # Test vectors
//
// A cases file (testdata/cases.json) holds configs, batches and expected
// verdicts in JSON ([Case]); [RunCases] runs one against a plugin. The same
// files test the plugin's .wasm builds under a real host, and
// [AppendBatch] and [DecodeVerdicts] are the host side of the encoding for
// such tools. [ReadEvents] reads events files, one record per line, as
// `evproxy plugin test` does.
package evptest
