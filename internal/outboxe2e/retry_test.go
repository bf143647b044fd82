package outboxe2e

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/evproxy/evproxy/internal/app"
)

// failProduce makes kfake refuse produce requests for topic with
// NOT_ENOUGH_REPLICAS (retriable) while refuse() says so, and records when
// each request for topic arrived.
func failProduce(t *testing.T, kf *kfake.Cluster, topic string, refuse func() bool) func() []time.Time {
	id := createTopic(t, kf.ListenAddrs()[0], topic)
	var mu sync.Mutex
	var seen []time.Time
	kf.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kf.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		// Produce v13 names topics by id.
		if len(pr.Topics) != 1 || (pr.Topics[0].Topic != topic && pr.Topics[0].TopicID != id) {
			return nil, nil, false
		}
		mu.Lock()
		seen = append(seen, time.Now())
		mu.Unlock()
		if !refuse() {
			return nil, nil, false
		}
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, t := range pr.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = kerr.NotEnoughReplicas.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	return func() []time.Time {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Time(nil), seen...)
	}
}

// createTopic creates topic (auto-creation through Metadata) and returns
// its id.
func createTopic(t *testing.T, broker, topic string) [16]byte {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = true
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create topic %s: %v %+v", topic, err, resp)
	}
	return resp.Topics[0].TopicID
}

// TestRetryBackoff: a record the broker keeps refusing with a retriable
// error is retried by the relay after retry_delay, then
// retry_delay*backoff_factor (minus at most 20% jitter), and published
// once the broker accepts it; with retries exhausted it is dead-lettered
// with its attempt count.
func TestRetryBackoff(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		maxRetries int
		refused    int // relay attempts refused
		dead       bool
	}{
		{name: "published after two retries", maxRetries: 5, refused: 2},
		{name: "dead-lettered after max_retries", maxRetries: 1, refused: 1 << 30, dead: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kf := startKafka(t)
			topic := "orders.flaky"
			// The relay's failed attempts so far, from its metrics.
			var a *app.App
			var ready atomic.Bool
			refuse := func() bool {
				return !ready.Load() || metric(t, a.AdminAddr(), "evproxy_outbox_retried_total")+metric(t, a.AdminAddr(), "evproxy_outbox_dead_lettered_total") < float64(tc.refused)
			}
			seen := failProduce(t, kf, topic, refuse)
			a = startApp(t, kf.ListenAddrs()[0], pgOutbox(newSchema(t), `retry_delay = "400ms"`, `backoff_factor = 2`, `publish_timeout = "500ms"`, `lease_ttl = "5s"`, `max_retry_delay = "5s"`,
				"max_retries = "+strconv.Itoa(tc.maxRetries))+outboxRoutes)
			ready.Store(true)
			cl := producer(t, a.ProxyAddr())
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if tc.dead {
				dl := consume(t, kf.ListenAddrs()[0], topic+".failed", 1, 30*time.Second)[0]
				if n, _ := header(dl, "evproxy.attempts"); n != strconv.Itoa(tc.maxRetries+1) {
					t.Fatalf("evproxy.attempts = %q, want %d", n, tc.maxRetries+1)
				}
				if r, _ := header(dl, "evproxy.error.reason"); !containsStr(r, "not acknowledged within outbox.publish_timeout (500ms)") {
					t.Fatalf("evproxy.error.reason %q", r)
				}
				return
			}
			got := consume(t, kf.ListenAddrs()[0], topic, 1, 30*time.Second)
			if string(got[0].Value) != "v" {
				t.Fatalf("got %q", got[0].Value)
			}
			times := seen()
			if n := metric(t, a.AdminAddr(), "evproxy_outbox_retried_total"); n != 2 {
				t.Fatalf("%v retries, want 2", n)
			}
			// Between the first refused request and the accepted one lie
			// two refused attempts, each lasting publish_timeout (500ms:
			// franz-go keeps retrying within it), and two backoffs, 400ms
			// then 800ms minus at most 20% jitter: at least 1.96s. Without
			// the backoffs it would be about 1s.
			elapsed := times[len(times)-1].Sub(times[0])
			t.Logf("%d produce requests over %s", len(times), elapsed)
			if elapsed < 1800*time.Millisecond {
				t.Fatalf("published %s after the first refusal: want at least 1.96s (two 500ms attempts and 400ms + 800ms of backoff, minus 20%% jitter)", elapsed)
			}
			if elapsed > 6*time.Second {
				t.Fatalf("published %s after the first refusal: far longer than two 500ms attempts and 1.2s of backoff", elapsed)
			}
		})
	}
}
