package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evproxy/evproxy/internal/app"
	"github.com/evproxy/evproxy/internal/outbox"
	"github.com/evproxy/evproxy/internal/outbox/outboxpgx"
	"github.com/evproxy/evproxy/internal/outbox/outboxsqlite"
)

// outboxEnv is a config file naming an outbox store, for the admin
// commands.
type outboxEnv struct {
	cfg  string // config file
	db   string // the embedded store's file ("" for PostgreSQL)
	open func(t *testing.T) outbox.Store
}

// newSQLiteEnv writes a config with an embedded store in a temp dir and
// migrates the store.
func newSQLiteEnv(t *testing.T) *outboxEnv {
	t.Helper()
	dir := t.TempDir()
	e := &outboxEnv{cfg: filepath.Join(dir, "config.hcl"), db: filepath.Join(dir, "outbox.db")}
	writeFile(t, e.cfg, "outbox { database_url = \"sqlite:outbox.db\" }\nkafka { embedded = true }\n")
	e.open = func(t *testing.T) outbox.Store {
		t.Helper()
		s, err := outboxsqlite.Open(testCtx(t), e.db)
		if err != nil {
			t.Fatalf("open store: %v", err)
		}
		return s
	}
	s := e.open(t)
	if err := s.Migrate(testCtx(t)); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	s.Close()
	return e
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// run runs evproxy with args and -c the env's config.
func (e *outboxEnv) run(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(append(args, "-c", e.cfg), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// seeded is what seed put into a store.
type seeded struct {
	now time.Time // seconds
	// dead letter ids by event id: e5 (orders, delivery, published),
	// e6 (payments, plugin, binary value), e7 (orders, long reason)
	ids map[string]int64
}

const longReason = "kafka: MESSAGE_TOO_LARGE: the record is larger than the broker's message.max.bytes\nretries do not help"

// seed fills the store: orders has two pending rows (one retrying) and one
// scheduled, payments one pending; three dead letters, one of them
// published.
func seed(t *testing.T, s outbox.Store) seeded {
	t.Helper()
	ctx := testCtx(t)
	now := time.Now().UTC().Truncate(time.Second)
	msg := func(id, topic, key string, value []byte, deliverAt time.Time, hs ...outbox.Header) *outbox.Message {
		return &outbox.Message{
			EventID: id, Topic: topic, Partition: -1, Key: []byte(key), Value: value,
			Headers:   append([]outbox.Header{{Key: "ce_id", Value: []byte(id)}}, hs...),
			Timestamp: now, DeliverAt: deliverAt, Processed: true,
		}
	}
	msgs := []*outbox.Message{
		msg("e1", "orders", "k1", []byte(`{"id":1}`), time.Time{}),
		msg("e2", "orders", "k2", []byte(`{"id":2}`), time.Time{}),
		msg("e3", "orders", "k3", []byte(`{"id":3}`), now.Add(time.Hour)),
		msg("e4", "payments", "p1", []byte(`{"id":4}`), time.Time{}),
		msg("e5", "orders", "k5", []byte(`{"id":5}`), time.Time{}),
		msg("e6", "payments", "p2", []byte{0, 1, 2, 0xff}, time.Time{}, outbox.Header{Key: "bin", Value: []byte{0, 0xff}}),
		msg("e7", "orders", "k7", []byte(`{"id":7}`), time.Time{}),
	}
	msgs[5].Priority = 5
	if n, err := s.OutboxInsertMany(ctx, &outbox.OutboxInsertManyParams{Messages: msgs}); err != nil || n != len(msgs) {
		t.Fatalf("insert: %d, %v", n, err)
	}
	// Rows without DeliverAt are due from the database's now(), which may
	// be a little later than now: claim a minute ahead (e3 waits an hour).
	rows, err := s.OutboxClaimBatch(ctx, &outbox.OutboxClaimBatchParams{Now: time.Now().Add(time.Minute), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	byEvent := map[string]int64{}
	for _, r := range rows {
		byEvent[r.EventID] = r.ID
	}
	for _, id := range []string{"e2", "e5", "e6", "e7"} {
		if byEvent[id] == 0 {
			t.Fatalf("row %s not claimed (claimed %v)", id, byEvent)
		}
	}
	err = s.OutboxComplete(ctx, &outbox.OutboxCompleteParams{
		Retry: []outbox.OutboxRetry{{ID: byEvent["e2"], Attempts: 1, NextAttemptAt: now.Add(time.Minute), Error: "NOT_LEADER_FOR_PARTITION", Blocks: true}},
		Dead: []outbox.OutboxDead{
			{ID: byEvent["e5"], Attempts: 6, Stage: "delivery", Reason: "kafka: REQUEST_TIMED_OUT", FailedAt: now.Add(-3 * time.Hour)},
			{ID: byEvent["e6"], Attempts: 0, Stage: "plugin", Reason: `validate: missing field "id"`, Plugin: "validate", FailedAt: now.Add(-time.Hour)},
			{ID: byEvent["e7"], Attempts: 3, Stage: "delivery", Reason: longReason, FailedAt: now.Add(-30 * time.Minute)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	dls, err := s.DeadLetterList(ctx, &outbox.DeadLetterListParams{})
	if err != nil || len(dls) != 3 {
		t.Fatalf("dead letters: %d, %v", len(dls), err)
	}
	sd := seeded{now: now, ids: map[string]int64{}}
	for _, dl := range dls {
		sd.ids[dl.EventID] = dl.ID
	}
	if err := s.DeadLetterMarkPublished(ctx, []int64{sd.ids["e5"]}); err != nil {
		t.Fatal(err)
	}
	return sd
}

// seedEnv seeds the env's store and closes it (the embedded store admits
// one Store at a time).
func (e *outboxEnv) seed(t *testing.T) seeded {
	t.Helper()
	s := e.open(t)
	defer s.Close()
	return seed(t, s)
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	noOutbox := filepath.Join(t.TempDir(), "config.hcl")
	writeFile(t, noOutbox, "kafka { embedded = true }\n")
	cases := []struct {
		name   string
		locked bool
		cfg    string // overrides the env's config
		code   int
		out    string
		inErr  []string
	}{
		{name: "fresh", code: 0, out: "outbox store sqlite: DB is up to date\n"},
		{name: "again", code: 0, out: "outbox store sqlite: DB is up to date\n"},
		{name: "running evproxy", locked: true, code: 1, inErr: []string{"is in use by another evproxy process", "a running evproxy has already migrated its store at start: nothing to do"}},
		{name: "no outbox block", cfg: noOutbox, code: 1, inErr: []string{noOutbox + ` has no outbox block: add outbox { database_url = "postgres://user@host:5432/db" } for PostgreSQL, or outbox { database_url = "sqlite:evproxy-outbox.db" } for the embedded store`}},
		{name: "stray argument", code: 2, inErr: []string{`evproxy migrate: unexpected argument "now"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			e := &outboxEnv{cfg: filepath.Join(dir, "config.hcl"), db: filepath.Join(dir, "outbox.db")}
			writeFile(t, e.cfg, "outbox { database_url = \"sqlite:outbox.db\" }\nkafka { embedded = true }\n")
			if c.cfg != "" {
				e.cfg = c.cfg
			}
			args := []string{"migrate"}
			switch c.name {
			case "again":
				if code, _, stderr := e.run("migrate"); code != 0 {
					t.Fatalf("first migrate: exit %d: %s", code, stderr)
				}
			case "stray argument":
				args = append(args, "now")
			}
			if c.locked {
				s, err := outboxsqlite.Open(testCtx(t), e.db)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
			}
			code, stdout, stderr := e.run(args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, c.code, stderr)
			}
			if want := strings.ReplaceAll(c.out, "DB", e.db); stdout != want {
				t.Errorf("stdout %q, want %q", stdout, want)
			}
			for _, w := range c.inErr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q, want it to contain %q", stderr, w)
				}
			}
			if c.code == 0 {
				s, err := outboxsqlite.Open(testCtx(t), e.db)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if _, err := s.OutboxStats(testCtx(t), time.Now()); err != nil {
					t.Errorf("store not migrated: %v", err)
				}
			}
		})
	}
}

// ageRE is the last column of a status table line: the oldest age, which
// depends on the clock.
var ageRE = regexp.MustCompile(`(\d+[smhd])+$`)

func TestOutboxStatus(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		seed   bool
		locked bool
		json   bool
		code   int
		lines  []string // stdout, ages replaced by AGE
		inErr  []string
	}{
		{name: "empty", code: 0, lines: []string{
			"outbox: no records waiting",
			"dead letters: 0 (0 not yet on the dead-letter topic)",
		}},
		{name: "seeded", seed: true, code: 0, lines: []string{
			"TOPIC     PENDING  SCHEDULED  RETRYING  OLDEST PENDING",
			"orders    2        1          1         AGE",
			"payments  1        0          0         AGE",
			"total     3        1          1         AGE",
			"dead letters: 3 (2 not yet on the dead-letter topic)",
		}},
		{name: "json", seed: true, json: true, code: 0},
		{name: "locked", locked: true, code: 1, inErr: []string{
			"is in use by another evproxy process",
			"the embedded store (sqlite:) can be opened by one process at a time: stop evproxy, then run this command again",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newSQLiteEnv(t)
			if c.seed {
				e.seed(t)
			}
			if c.locked {
				s := e.open(t)
				defer s.Close()
			}
			args := []string{"outbox", "status"}
			if c.json {
				args = append(args, "--json")
			}
			start := time.Now()
			code, stdout, stderr := e.run(args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, c.code, stderr)
			}
			for _, w := range c.inErr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q, want it to contain %q", stderr, w)
				}
			}
			if c.json {
				var st app.StatusJSON
				if err := json.Unmarshal([]byte(stdout), &st); err != nil {
					t.Fatalf("%v in %s", err, stdout)
				}
				if st.Store != "sqlite" || len(st.Topics) != 2 {
					t.Fatalf("status %+v", st)
				}
				o, p := st.Topics[0], st.Topics[1]
				if o.Topic != "orders" || o.Pending != 2 || o.Scheduled != 1 || o.Retrying != 1 || o.OldestPendingAt == nil {
					t.Errorf("orders %+v", o)
				}
				if p.Topic != "payments" || p.Pending != 1 || p.Scheduled != 0 || p.Retrying != 0 || p.OldestPendingAt == nil {
					t.Errorf("payments %+v", p)
				}
				tot := st.Total
				if tot.Topic != "" || tot.Pending != 3 || tot.Scheduled != 1 || tot.Retrying != 1 || tot.OldestPendingAt == nil ||
					tot.OldestPendingAgeSeconds < 0 || tot.OldestPendingAgeSeconds > time.Since(start).Seconds()+60 {
					t.Errorf("total %+v", tot)
				}
				if st.DeadLetters != (app.DeadLettersJSON{Total: 3, Unpublished: 2}) {
					t.Errorf("dead letters %+v", st.DeadLetters)
				}
				if !strings.Contains(stdout, `"oldest_pending_age_seconds"`) || !strings.Contains(stdout, `"dead_letters": {`) {
					t.Errorf("JSON field names changed:\n%s", stdout)
				}
				return
			}
			if c.code != 0 {
				return
			}
			got := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
			for i, l := range got {
				if strings.HasPrefix(l, "orders") || strings.HasPrefix(l, "payments") || strings.HasPrefix(l, "total") {
					got[i] = ageRE.ReplaceAllString(l, "AGE")
				}
			}
			if !slices.Equal(got, c.lines) {
				t.Errorf("stdout:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.lines, "\n"))
			}
		})
	}
}

func TestDLQList(t *testing.T) {
	t.Parallel()
	e := newSQLiteEnv(t)
	sd := e.seed(t)
	rfc := func(d time.Duration) string { return sd.now.Add(d).Format(time.RFC3339) }
	// The TOPIC column is as wide as its longest topic plus two spaces;
	// the other columns are as wide in every case.
	row := map[string][]any{
		"e5": {sd.ids["e5"], "orders", rfc(-3 * time.Hour), "6", "delivery", "yes", "kafka: REQUEST_TIMED_OUT"},
		"e6": {sd.ids["e6"], "payments", rfc(-time.Hour), "0", "plugin", "no", `validate: missing field "id"`},
		"e7": {sd.ids["e7"], "orders", rfc(-30 * time.Minute), "3", "delivery", "no", "kafka: MESSAGE_TOO_LARGE: the record is larger than the bro…"},
	}
	table := func(events []string) string {
		w := len("TOPIC")
		for _, ev := range events {
			w = max(w, len(row[ev][1].(string)))
		}
		f := fmt.Sprintf("%%-4v%%-%dv%%-22v%%-10v%%-10v%%-11v%%v\n", w+2)
		out := fmt.Sprintf(f, "ID", "TOPIC", "FAILED AT", "ATTEMPTS", "STAGE", "PUBLISHED", "REASON")
		for _, ev := range events {
			out += fmt.Sprintf(f, row[ev]...)
		}
		return out
	}
	id := func(ev string) string { return fmt.Sprint(sd.ids[ev]) }
	cases := []struct {
		name  string
		args  []string
		code  int
		want  []string // event ids listed, in order
		out   string   // exact stdout instead of want
		inErr string
	}{
		{name: "all", want: []string{"e5", "e6", "e7"}},
		{name: "topic", args: []string{"--topic", "orders"}, want: []string{"e5", "e7"}},
		{name: "since duration ago", args: []string{"--since", "2h"}, want: []string{"e6", "e7"}},
		{name: "since until RFC 3339", args: []string{"--since", rfc(-3 * time.Hour), "--until", rfc(-time.Hour)}, want: []string{"e5"}},
		{name: "ids repeated", args: []string{"--id", id("e7"), "--id", id("e5")}, want: []string{"e5", "e7"}},
		{name: "ids comma", args: []string{"--id", id("e5") + "," + id("e6")}, want: []string{"e5", "e6"}},
		{name: "unpublished", args: []string{"--unpublished"}, want: []string{"e6", "e7"}},
		{name: "limit", args: []string{"--limit", "1"}, want: []string{"e5"}, inErr: "showing the first 1 dead letters; there are more"},
		{name: "none", args: []string{"--topic", "nope"}, out: "no dead letters match\n"},
		{name: "bad time", args: []string{"--since", "yesterday"}, code: 2,
			inErr: `invalid value "yesterday" for flag -since: invalid time "yesterday": use RFC 3339 (2026-11-29T10:00:00Z) or a duration ago (2h, 30m, 1h30m)`},
		{name: "negative duration", args: []string{"--until", "-2h"}, code: 2, inErr: `invalid time "-2h"`},
		{name: "bad id", args: []string{"--id", "x"}, code: 2, inErr: `invalid dead letter id "x"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Not parallel: the embedded store admits one process (here:
			// one Store) at a time.
			code, stdout, stderr := e.run(append([]string{"dlq", "list"}, c.args...)...)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, c.code, stderr)
			}
			if !strings.Contains(stderr, c.inErr) {
				t.Errorf("stderr %q, want it to contain %q", stderr, c.inErr)
			}
			if c.code != 0 {
				return
			}
			want := c.out
			if c.want != nil {
				want = table(c.want)
			}
			if stdout != want {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		code, stdout, stderr := e.run("dlq", "list", "--topic", "payments", "--json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var dls []app.DeadLetterJSON
		if err := json.Unmarshal([]byte(stdout), &dls); err != nil {
			t.Fatalf("%v in %s", err, stdout)
		}
		if len(dls) != 1 {
			t.Fatalf("got %d dead letters", len(dls))
		}
		checkE6JSON(t, dls[0], sd)
	})
}

// checkE6JSON checks the JSON of dead letter e6 (binary value and header).
func checkE6JSON(t *testing.T, d app.DeadLetterJSON, sd seeded) {
	t.Helper()
	str := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	if d.ID != sd.ids["e6"] || d.Topic != "payments" || d.Partition != -1 || d.EventID != "e6" ||
		!d.FailedAt.Equal(sd.now.Add(-time.Hour)) || d.Attempts != 0 || d.Stage != "plugin" ||
		d.Reason != `validate: missing field "id"` || d.Plugin != "validate" || d.Published ||
		d.DeadLetterTopic != "payments.failed" || d.Priority != 5 || d.Timestamp == nil || !d.Timestamp.Equal(sd.now) {
		t.Errorf("dead letter %+v", d)
	}
	if str(d.Key) != "p2" || d.KeyEncoding != "text" || str(d.Value) != "AAEC/w==" || d.ValueEncoding != "base64" {
		t.Errorf("key %q (%s), value %q (%s)", str(d.Key), d.KeyEncoding, str(d.Value), d.ValueEncoding)
	}
	want := []string{"ce_id=e6 (text)", "bin=AP8= (base64)"}
	var got []string
	for _, h := range d.Headers {
		got = append(got, fmt.Sprintf("%s=%s (%s)", h.Key, str(h.Value), h.Encoding))
	}
	if !slices.Equal(got, want) {
		t.Errorf("headers %q, want %q", got, want)
	}
}

func TestDLQShow(t *testing.T) {
	t.Parallel()
	e := newSQLiteEnv(t)
	sd := e.seed(t)
	ms := func(tm time.Time) string { return tm.UTC().Format("2006-01-02T15:04:05.000Z07:00") }
	cases := []struct {
		name  string
		args  []string
		code  int
		out   []string
		inErr string
	}{
		{name: "binary", args: []string{fmt.Sprint(sd.ids["e6"])}, out: []string{
			fmt.Sprintf("id          %d", sd.ids["e6"]),
			"topic       payments",
			"partition   -1 (by key)",
			"event id    e6",
			"failed at   " + ms(sd.now.Add(-time.Hour)),
			"attempts    0",
			"stage       plugin",
			"plugin      validate",
			`reason      validate: missing field "id"`,
			"published   no (a running evproxy produces it to payments.failed)",
			"timestamp   " + ms(sd.now),
			"priority    5",
			"key         (text, 2 bytes) p2",
			"header      ce_id (text) e6",
			"header      bin (base64) AP8=",
			"value       (base64, 4 bytes) AAEC/w==",
		}},
		{name: "text, flags after the id", args: []string{fmt.Sprint(sd.ids["e5"]), "--json=false"}, out: []string{
			fmt.Sprintf("id          %d", sd.ids["e5"]),
			"topic       orders",
			"partition   -1 (by key)",
			"event id    e5",
			"failed at   " + ms(sd.now.Add(-3*time.Hour)),
			"attempts    6",
			"stage       delivery",
			"plugin      -",
			"reason      kafka: REQUEST_TIMED_OUT",
			"published   yes, to orders.failed",
			"timestamp   " + ms(sd.now),
			"priority    0",
			"key         (text, 2 bytes) k5",
			"header      ce_id (text) e5",
			`value       (text, 8 bytes) {"id":5}`,
		}},
		{name: "unknown", args: []string{"999"}, code: 1, inErr: "evproxy dlq show: no dead letter 999: it may have been replayed, or deleted after outbox.retention (168h0m0s)"},
		{name: "no id", code: 2, inErr: "evproxy dlq show: give one dead letter id: `evproxy dlq show ID`"},
		{name: "two ids", args: []string{"1", "2"}, code: 2, inErr: "give one dead letter id"},
		{name: "bad id", args: []string{"-5"}, code: 2, inErr: "flag provided but not defined: -5"},
		{name: "zero id", args: []string{"0"}, code: 2, inErr: `invalid dead letter id "0": ids are positive whole numbers`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := e.run(append([]string{"dlq", "show"}, c.args...)...)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, c.code, stderr)
			}
			if !strings.Contains(stderr, c.inErr) {
				t.Errorf("stderr %q, want it to contain %q", stderr, c.inErr)
			}
			if c.out != nil {
				if want := strings.Join(c.out, "\n") + "\n"; stdout != want {
					t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
				}
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		code, stdout, stderr := e.run("dlq", "show", "--json", fmt.Sprint(sd.ids["e6"]))
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var d app.DeadLetterJSON
		if err := json.Unmarshal([]byte(stdout), &d); err != nil {
			t.Fatalf("%v in %s", err, stdout)
		}
		checkE6JSON(t, d, sd)
	})
}

func TestDLQReplay(t *testing.T) {
	t.Parallel()
	const embeddedNote = "evproxy publishes them once it runs again (the embedded store is single-process)\n"
	cases := []struct {
		name     string
		args     func(sd seeded) []string
		code     int
		out      string
		inErr    string
		replayed []string // event ids back in the outbox
	}{
		{name: "no selector", code: 2,
			inErr: "evproxy dlq replay: no dead letters selected: give --id, --topic, --since or --until, or --all to replay every dead letter\n"},
		{name: "limit is no selector", args: func(seeded) []string { return []string{"--limit", "1"} }, code: 2, inErr: "no dead letters selected"},
		{name: "bad time", args: func(seeded) []string { return []string{"--since", "2 hours"} }, code: 2, inErr: `invalid time "2 hours"`},
		{name: "id", args: func(sd seeded) []string { return []string{"--id", fmt.Sprint(sd.ids["e6"])} },
			out: "replayed 1 dead letter into the outbox with attempts reset\n" + embeddedNote, replayed: []string{"e6"}},
		{name: "topic and since", args: func(seeded) []string { return []string{"--topic", "orders", "--since", "1h"} },
			out: "replayed 1 dead letter into the outbox with attempts reset\n" + embeddedNote, replayed: []string{"e7"}},
		{name: "all", args: func(seeded) []string { return []string{"--all"} },
			out: "replayed 3 dead letters into the outbox with attempts reset\n" + embeddedNote, replayed: []string{"e5", "e6", "e7"}},
		{name: "none match", args: func(seeded) []string { return []string{"--topic", "nope"} }, out: "no dead letters match: nothing replayed\n"},
		{name: "dry run", args: func(sd seeded) []string { return []string{"--topic", "orders", "--dry-run"} },
			out: "dry run: would replay 2 dead letters (ids ID5, ID7)\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newSQLiteEnv(t)
			sd := e.seed(t)
			var args []string
			if c.args != nil {
				args = c.args(sd)
			}
			code, stdout, stderr := e.run(append([]string{"dlq", "replay"}, args...)...)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, c.code, stderr)
			}
			if !strings.Contains(stderr, c.inErr) {
				t.Errorf("stderr %q, want it to contain %q", stderr, c.inErr)
			}
			want := strings.NewReplacer("ID5", fmt.Sprint(sd.ids["e5"]), "ID7", fmt.Sprint(sd.ids["e7"])).Replace(c.out)
			if stdout != want {
				t.Errorf("stdout %q, want %q", stdout, want)
			}
			s := e.open(t)
			defer s.Close()
			checkReplayed(t, s, sd, c.replayed)
		})
	}
}

// checkReplayed checks that exactly the dead letters of events are back
// in the outbox with zero attempts, and the others still dead letters.
func checkReplayed(t *testing.T, s outbox.Store, sd seeded, events []string) {
	t.Helper()
	ctx := testCtx(t)
	dls, err := s.DeadLetterList(ctx, &outbox.DeadLetterListParams{})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, dl := range dls {
		left = append(left, dl.EventID)
	}
	var wantLeft []string
	for _, ev := range []string{"e5", "e6", "e7"} {
		if !slices.Contains(events, ev) {
			wantLeft = append(wantLeft, ev)
		}
	}
	if !slices.Equal(left, wantLeft) {
		t.Errorf("dead letters left %q, want %q", left, wantLeft)
	}
	rows, err := s.OutboxClaimBatch(ctx, &outbox.OutboxClaimBatchParams{Now: time.Now().Add(2 * time.Hour), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	back := map[string]*outbox.Row{}
	for _, r := range rows {
		back[r.EventID] = r
	}
	for _, ev := range events {
		r := back[ev]
		switch {
		case r == nil:
			t.Errorf("%s not back in the outbox", ev)
		case r.Attempts != 0:
			t.Errorf("%s back with attempts %d, want 0", ev, r.Attempts)
		}
	}
	if r := back["e6"]; slices.Contains(events, "e6") && r != nil && (!bytes.Equal(r.Value, []byte{0, 1, 2, 0xff}) || r.Topic != "payments" || string(r.Key) != "p2") {
		t.Errorf("e6 back as %+v", r.Message)
	}
	for _, ev := range wantLeft {
		if back[ev] != nil {
			t.Errorf("%s in the outbox, but it was not replayed", ev)
		}
	}
}

// TestOutboxPostgres runs the commands against PostgreSQL
// (TEST_DATABASE_URL) in a schema of their own, with a record an
// application published with evproxy.publish as docs/outbox.md shows.
func TestOutboxPostgres(t *testing.T) {
	t.Parallel()
	url := os.Getenv("TEST_DATABASE_URL")
	if url == "" {
		url = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx := testCtx(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		if os.Getenv("TEST_DATABASE_URL") != "" {
			t.Fatalf("TEST_DATABASE_URL: %v", err)
		}
		t.Skipf("no PostgreSQL at %s (set TEST_DATABASE_URL): %v", url, err)
	}
	defer conn.Close(context.Background())
	b := make([]byte, 6)
	rand.Read(b)
	schema := "evpcli_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	e := &outboxEnv{cfg: filepath.Join(t.TempDir(), "config.hcl")}
	writeFile(t, e.cfg, fmt.Sprintf("outbox {\n  database_url = %q\n  schema = %q\n  poll_interval = \"250ms\"\n}\nkafka { embedded = true }\n", url, schema))

	code, stdout, stderr := e.run("outbox", "status")
	if code != 1 || !strings.Contains(stderr, "the outbox schema is missing: run `evproxy migrate -c "+e.cfg+"`") {
		t.Errorf("status before migrate: exit %d, stderr %q", code, stderr)
	}
	code, stdout, stderr = e.run("migrate")
	if want := fmt.Sprintf("outbox store postgres: schema %s is up to date (%s)\n", schema, url); code != 0 || stdout != want {
		t.Fatalf("migrate: exit %d, stdout %q, want %q; stderr %s", code, stdout, want, stderr)
	}

	s, err := outboxpgx.New(ctx, url, outboxpgx.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sd := seed(t, s)
	// An application's transaction, as in docs/outbox.md.
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	headers := map[string]string{"ce_type": "order.created"}
	if _, err := tx.Exec(ctx, "SELECT "+schema+".publish($1, $2, $3, $4, $5)",
		"invoices", "i1", `{"id":8}`, headers, nil); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr = e.run("outbox", "status")
	got := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	for i := range got {
		got[i] = ageRE.ReplaceAllString(got[i], "AGE")
	}
	want := []string{
		"TOPIC     PENDING  SCHEDULED  RETRYING  OLDEST PENDING",
		"invoices  1        0          0         AGE",
		"orders    2        1          1         AGE",
		"payments  1        0          0         AGE",
		"total     4        1          1         AGE",
		"dead letters: 3 (2 not yet on the dead-letter topic)",
	}
	if code != 0 || !slices.Equal(got, want) {
		t.Errorf("status: exit %d, stderr %q, stdout:\n%s\nwant:\n%s", code, stderr, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	code, stdout, stderr = e.run("dlq", "list", "--unpublished", "--json")
	var dls []app.DeadLetterJSON
	if err := json.Unmarshal([]byte(stdout), &dls); code != 0 || err != nil || len(dls) != 2 {
		t.Fatalf("list: exit %d, %v, stdout %s, stderr %s", code, err, stdout, stderr)
	}
	checkE6JSON(t, dls[0], sd)

	code, stdout, stderr = e.run("dlq", "replay", "--id", fmt.Sprint(sd.ids["e6"]))
	if want := "replayed 1 dead letter into the outbox with attempts reset\na running evproxy publishes them within outbox.poll_interval (250ms)\n"; code != 0 || stdout != want {
		t.Errorf("replay: exit %d, stdout %q, want %q; stderr %s", code, stdout, want, stderr)
	}
	checkReplayed(t, s, sd, []string{"e6"})

	// The published row carries the application's header and a ce_id.
	rows, err := s.OutboxClaimBatch(ctx, &outbox.OutboxClaimBatchParams{Now: time.Now().Add(2 * time.Hour), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var inv *outbox.Row
	for _, r := range rows {
		if r.Topic == "invoices" {
			inv = r
		}
	}
	if inv == nil || string(inv.Key) != "i1" || string(inv.Value) != `{"id":8}` || inv.Processed || inv.EventID == "" ||
		len(inv.Headers) != 2 || inv.Headers[0].Key != "ce_type" || inv.Headers[1].Key != "ce_id" || string(inv.Headers[1].Value) != inv.EventID {
		t.Errorf("published row %+v", inv)
	}
}
