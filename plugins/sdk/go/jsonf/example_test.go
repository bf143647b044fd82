package jsonf_test

import (
	"fmt"

	"github.com/evproxy/evproxy/plugins/sdk/go/jsonf"
)

func ExampleGet() {
	value := []byte(`{"id":"o-1","customer":{"region":"eu"},"total":45.48}`)
	raw, ok := jsonf.Get(value, "customer", "region")
	fmt.Println(string(raw), ok, jsonf.KindOf(raw))
	region, _ := jsonf.GetString(value, "customer", "region")
	fmt.Println(region)
	_, ok = jsonf.Get([]byte(`{"id":1`), "id") // truncated: not a valid object
	fmt.Println(ok)
	// Output:
	// "eu" true string
	// eu
	// false
}

func ExampleSetString() {
	out, err := jsonf.SetString([]byte(`{"id": 1}`), "source", `checkout "eu"`)
	fmt.Println(string(out), err)
	_, err = jsonf.SetString([]byte(`[1]`), "source", "x")
	fmt.Println(err)
	// Output:
	// {"id": 1,"source":"checkout \"eu\""} <nil>
	// jsonf: not a JSON object
}

func ExampleMembers() {
	it := jsonf.Members([]byte(`{"a": 1, "b\u0021": [true], "c": {}}`))
	for it.Next() {
		fmt.Printf("%s=%s\n", it.Key(), it.Value())
	}
	fmt.Println(it.Err())
	// Output:
	// a=1
	// b!=[true]
	// c={}
	// <nil>
}
