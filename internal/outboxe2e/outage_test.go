package outboxe2e

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metric returns the value of an unlabelled metric from /metrics.
func metric(t testing.TB, admin, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// TestKafkaOutage: the upstream drops every connection for 30 s under
// load. Outbox routes keep accepting, the relay's breaker opens (attempts
// are not burned: nothing is dead-lettered although max_retries would be
// exhausted in well under a second), then closes after recovery, and every
// acknowledged record arrives, in key order.
func TestKafkaOutage(t *testing.T) {
	t.Parallel()
	outage := 30 * time.Second
	if testing.Short() {
		outage = 8 * time.Second
	}
	kf := startKafka(t)
	var down atomic.Bool
	kf.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		kf.KeepControl()
		if down.Load() {
			return nil, errors.New("test: broker down"), true // closes the connection
		}
		return nil, nil, false
	})
	a := startApp(t, kf.ListenAddrs()[0], pgOutbox(newSchema(t), `max_retries = 2`)+outboxRoutes)
	cl := producer(t, a.ProxyAddr())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Load: 50 records every 50 ms, before, during and after the outage.
	var (
		mu    sync.Mutex
		acked []int
	)
	produce := func(from, to int) {
		var wg sync.WaitGroup
		for i := from; i < to; i++ {
			wg.Add(1)
			cl.Produce(ctx, &kgo.Record{Topic: "orders", Key: []byte("k" + strconv.Itoa(i%20)), Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					t.Errorf("produce %d during the outage: %v (outbox routes must keep accepting)", i, err)
					return
				}
				mu.Lock()
				acked = append(acked, i)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	next := 0
	tick := func() { produce(next, next+50); next += 50 }
	for range 10 {
		tick()
	}
	down.Store(true)
	sawOpen := false
	end := time.Now().Add(outage)
	for time.Now().Before(end) {
		tick()
		if metric(t, a.AdminAddr(), `evproxy_outbox_breaker_transitions_total{to="open"}`) > 0 {
			sawOpen = true
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !sawOpen {
		t.Errorf("the relay's circuit breaker never opened during a %s outage", outage)
	}
	if dead := metric(t, a.AdminAddr(), "evproxy_outbox_dead_lettered_total"); dead != 0 {
		t.Errorf("%v records dead-lettered during the outage: attempts were burned", dead)
	}
	down.Store(false)
	for range 10 {
		tick()
	}
	recs := consume(t, kf.ListenAddrs()[0], "orders", next, 2*time.Minute)
	checkKeyOrder(t, recs)
	got := map[int]bool{}
	for _, r := range recs {
		i, _ := strconv.Atoi(string(r.Value))
		got[i] = true
	}
	for _, i := range acked {
		if !got[i] {
			t.Fatalf("acknowledged record %d lost", i)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for metric(t, a.AdminAddr(), "evproxy_outbox_breaker_state") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("breaker did not close after the upstream recovered")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if dead := metric(t, a.AdminAddr(), "evproxy_outbox_dead_lettered_total"); dead != 0 {
		t.Fatalf("%v records dead-lettered", dead)
	}
	t.Logf("%d records, %s outage: none lost; breaker opened %v times", next, outage,
		metric(t, a.AdminAddr(), `evproxy_outbox_breaker_transitions_total{to="open"}`))
}
