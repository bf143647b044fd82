package outboxe2e

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// failProduce makes kfake refuse produce requests for topic with
// NOT_ENOUGH_REPLICAS (retriable) until the relay made attempts attempts,
// and records when each request for topic arrived. franz-go retries a
// refused record quickly (every ~250ms) until the relay's publish times
// out; a pause of more than 300ms starts the relay's next attempt.
func failProduce(t *testing.T, kf *kfake.Cluster, topic string, attempts int) func() []time.Time {
	id := createTopic(t, kf.ListenAddrs()[0], topic)
	var mu sync.Mutex
	var seen []time.Time
	bursts := 0
	kf.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kf.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		// Produce v13 names topics by id.
		if len(pr.Topics) != 1 || (pr.Topics[0].Topic != topic && pr.Topics[0].TopicID != id) {
			return nil, nil, false
		}
		mu.Lock()
		now := time.Now()
		if len(seen) == 0 || now.Sub(seen[len(seen)-1]) > burstGap {
			bursts++
		}
		seen = append(seen, now)
		fail := bursts <= attempts
		mu.Unlock()
		if !fail {
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

// burstGap separates the relay's attempts in failProduce.
const burstGap = 300 * time.Millisecond

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
		{name: "dead-lettered after max_retries", maxRetries: 1, refused: 1000, dead: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kf := startKafka(t)
			topic := "orders.flaky"
			seen := failProduce(t, kf, topic, tc.refused)
			a := startApp(t, kf.ListenAddrs()[0], pgOutbox(newSchema(t), `retry_delay = "400ms"`, `backoff_factor = 2`, `publish_timeout = "500ms"`, `lease_ttl = "5s"`, `max_retry_delay = "5s"`,
				"max_retries = "+strconv.Itoa(tc.maxRetries))+outboxRoutes)
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
			// The pauses between the relay's attempts.
			var gaps []time.Duration
			for i := 1; i < len(times); i++ {
				if d := times[i].Sub(times[i-1]); d > burstGap {
					gaps = append(gaps, d)
				}
			}
			t.Logf("%d produce requests over %s; pauses between attempts %v", len(times), times[len(times)-1].Sub(times[0]), gaps)
			if len(gaps) != tc.refused {
				t.Fatalf("%d pauses, want %d (one per refused attempt)", len(gaps), tc.refused)
			}
			// 400ms then 800ms, minus at most 20% jitter.
			if gaps[0] < 320*time.Millisecond || gaps[1] < 640*time.Millisecond {
				t.Fatalf("backoff pauses %v: want at least 320ms, then 640ms", gaps)
			}
			if gaps[0] > 2*time.Second || gaps[1] > 3*time.Second {
				t.Fatalf("backoff pauses %v: far longer than configured", gaps)
			}
		})
	}
}
