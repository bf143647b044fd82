package interop

import (
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// recorder collects what assertRecords reports.
type recorder struct{ errs []string }

func (*recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestAssertRecords checks that the comparison the interop tests rely on
// catches each kind of difference, since against a correct broker it only
// ever sees matches.
func TestAssertRecords(t *testing.T) {
	t.Parallel()

	// stored lays want out as a broker would: key-hashed or pinned
	// partitions, null keys in partition 0, offsets in send order.
	stored := func(want []testRecord) []*kgo.Record {
		next := make(map[int32]int64)
		var got []*kgo.Record
		for _, w := range want {
			p := max(w.Partition, 0)
			if w.Partition < 0 && w.Key != nil {
				p = murmur2Partition(w.Key, numPartitions)
			}
			got = append(got, &kgo.Record{Key: w.Key, Value: w.Value, Headers: w.Headers, Partition: p, Offset: next[p]})
			next[p]++
		}
		return got
	}
	base := func() []testRecord {
		recs := genRecords(60, genOpts{NullKeys: true, Headers: richHeaders})
		recs[1].Partition = 2 // one pinned record
		return recs
	}

	for _, tc := range []struct {
		name   string
		mutate func(got []*kgo.Record) []*kgo.Record
		want   string // substring of the first report; "" means no report
	}{
		{name: "match", mutate: func(got []*kgo.Record) []*kgo.Record { return got }},
		{
			name:   "missing",
			mutate: func(got []*kgo.Record) []*kgo.Record { return append(got[:5:5], got[6:]...) },
			want:   "got 59 records upstream, want 60",
		},
		{
			name: "duplicate",
			mutate: func(got []*kgo.Record) []*kgo.Record {
				dup := *got[7]
				dup.Offset += 1000
				return append(got, &dup)
			},
			want: "got 61 records upstream, want 60",
		},
		{
			name:   "unexpected",
			mutate: func(got []*kgo.Record) []*kgo.Record { got[3].Value = []byte("stranger"); return got },
			want:   "unexpected record",
		},
		{
			name:   "key bytes",
			mutate: func(got []*kgo.Record) []*kgo.Record { got[2].Key = []byte("key-02"); return got },
			want:   "record 2: key",
		},
		{
			name:   "empty key for null key",
			mutate: func(got []*kgo.Record) []*kgo.Record { got[24].Key = []byte{}; return got },
			want:   "record 24: key \"\", want null",
		},
		{
			name: "header order",
			mutate: func(got []*kgo.Record) []*kgo.Record {
				h := append([]kgo.RecordHeader(nil), got[0].Headers...)
				h[3], h[4] = h[4], h[3]
				got[0].Headers = h
				return got
			},
			want: "record 0: headers",
		},
		{
			name: "empty header value for null",
			mutate: func(got []*kgo.Record) []*kgo.Record {
				got[0].Headers = append(append([]kgo.RecordHeader(nil), got[0].Headers...), kgo.RecordHeader{Key: "x", Value: []byte{}})
				return got
			},
			want: "record 0: headers",
		},
		{
			name:   "pinned partition",
			mutate: func(got []*kgo.Record) []*kgo.Record { got[1].Partition = 0; return got },
			want:   "record 1 (key",
		},
		{
			name: "key split across partitions",
			mutate: func(got []*kgo.Record) []*kgo.Record {
				got[20+3].Partition = (got[3].Partition + 1) % numPartitions
				return got
			},
			want: "in partition",
		},
		{
			name: "key out of order",
			mutate: func(got []*kgo.Record) []*kgo.Record {
				got[5].Offset, got[25].Offset = got[25].Offset, got[5].Offset // same key, same partition
				return got
			},
			want: "key \"key-05",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := base()
			var r recorder
			assertRecords(&r, want, tc.mutate(stored(want)))
			switch {
			case tc.want == "" && len(r.errs) > 0:
				t.Errorf("reported %q", r.errs)
			case tc.want != "" && len(r.errs) == 0:
				t.Errorf("reported nothing, want %q", tc.want)
			case tc.want != "" && !strings.Contains(r.errs[0], tc.want):
				t.Errorf("reported %q, want %q first", r.errs, tc.want)
			}
		})
	}
}
