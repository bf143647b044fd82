package proxy_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestProduceSmoke(t *testing.T) {
	b := setup(t, nil)
	cl := b.producer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; i < 100; i++ {
		r := &kgo.Record{Topic: "smoke", Key: []byte(fmt.Sprint(i % 7)), Value: []byte(fmt.Sprintf("v%d", i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	got := b.consumeUpstream(t, "smoke", 100)
	if len(got) != 100 {
		t.Fatal(len(got))
	}
}
