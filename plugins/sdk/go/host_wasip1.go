//go:build wasip1

package evp

// The evp_v1 import module (docs/plugin-abi.md §4).

//go:wasmimport evp_v1 log
func hostLog(level int32, msg string)

//go:wasmimport evp_v1 now_ms
func hostNowMillis() int64

//go:wasmimport evp_v1 metric_add
func hostMetricAdd(name string, delta int64)

//go:wasmimport evp_v1 lookup
func lookupImport(table, key string, out *byte, outCap int32) int32

// lookupBuf is reused by every Lookup; a guest is single-threaded.
var lookupBuf = make([]byte, 256)

func hostLookup(table, key string) ([]byte, bool) {
	for {
		n := lookupImport(table, key, &lookupBuf[0], int32(len(lookupBuf)))
		switch {
		case n < 0:
			return nil, false
		case int(n) <= len(lookupBuf):
			return cloneBytes(lookupBuf[:n]), true
		}
		lookupBuf = make([]byte, n)
	}
}
