package evptest_test

import (
	"fmt"

	evp "github.com/evproxy/evproxy/plugins/sdk/go"
	"github.com/evproxy/evproxy/plugins/sdk/go/evptest"
	"github.com/evproxy/evproxy/plugins/sdk/go/jsonf"
)

type requireID struct{}

func (requireID) Init([]byte) error { return nil }

func (requireID) Process(_ string, recs []evp.Record, out []evp.Verdict) {
	for i := range recs {
		if _, ok := jsonf.Get(recs[i].Value, "id"); !ok {
			out[i] = evp.Reject(1, "no id")
			evp.MetricAdd("rejected", 1)
		}
	}
}

func Example() {
	h := evptest.NewHost()
	in, err := h.Instantiate(requireID{}, `{}`)
	if err != nil {
		panic(err)
	}
	vs, err := in.Process("order.created", []evp.Record{
		{Topic: "orders", Value: []byte(`{"id":1}`)},
		{Topic: "orders", Value: []byte(`{"no":"id"}`)},
	})
	if err != nil {
		panic(err)
	}
	for _, v := range vs {
		fmt.Println(v)
	}
	fmt.Println(h.Metrics())
	// Output:
	// KEEP
	// REJECT(1, "no id")
	// map[rejected:1]
}

func ExampleApply() {
	in := evp.Record{Topic: "orders", Partition: 3, Key: []byte("c-1"), Value: []byte(`{}`)}
	v := evp.Replace(evp.Original(), evp.To("audit").WithHeaders([]evp.Header{{Name: "copy", Value: []byte("1")}}))
	for _, r := range evptest.Apply(in, v) {
		fmt.Printf("%s\n", evptest.AppendRecordJSON(nil, r))
	}
	// Output:
	// {"topic":"orders","partition":3,"timestamp":0,"key":"c-1","value":{},"headers":{}}
	// {"topic":"audit","partition":-1,"timestamp":0,"key":"c-1","value":{},"headers":{"copy":"1"}}
}
