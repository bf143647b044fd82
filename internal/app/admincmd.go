package app

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/evproxy/evproxy/internal/config"
	"github.com/evproxy/evproxy/internal/outbox"
	"github.com/evproxy/evproxy/internal/outbox/outboxsqlite"
)

// This file holds the logic of the outbox admin commands: `evproxy
// migrate`, `evproxy outbox status` and `evproxy dlq list|show|replay`.
// cmd/evproxy parses their flags and calls these.

// UsageError is a mistake in a command's arguments: the command exits 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usageErrorf(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// AdminCmd runs the outbox admin commands against the store cfg's outbox
// block names.
type AdminCmd struct {
	Config *config.Config
	// Path is the configuration file, for messages.
	Path string
	// Out receives the command's output, Notes remarks about it (stderr;
	// nil discards them).
	Out, Notes io.Writer
	// JSON prints machine-readable output instead of text.
	JSON bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c *AdminCmd) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// storeDesc names the configured store for messages: "sqlite: PATH", or
// the PostgreSQL URL without its password.
func (c *AdminCmd) storeDesc() string {
	u := c.Config.Outbox.DatabaseURL
	if p, ok := strings.CutPrefix(u, "sqlite:"); ok {
		return p
	}
	return redactedURL(u)
}

// redactedURL hides the password of a database URL.
func redactedURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func (c *AdminCmd) embedded() bool {
	return strings.HasPrefix(c.Config.Outbox.DatabaseURL, "sqlite:")
}

// open opens the configured store. read means the command only reads or
// edits rows: it does not create a missing embedded database.
func (c *AdminCmd) open(ctx context.Context, read bool) (outbox.Store, error) {
	oc := c.Config.Outbox
	if !oc.Enabled {
		return nil, fmt.Errorf(`%s has no outbox block: add outbox { database_url = "postgres://user@host:5432/db" } for PostgreSQL, or outbox { database_url = "sqlite:evproxy-outbox.db" } for the embedded store`, c.Path)
	}
	if c.embedded() && read {
		p := c.storeDesc()
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("embedded outbox store %s does not exist yet: `evproxy migrate -c %s` creates it, and so does `evproxy run`", p, c.Path)
		}
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := OpenStore(octx, oc)
	if err != nil {
		return nil, c.explain(fmt.Errorf("open the outbox store %s: %w", c.storeDesc(), err))
	}
	// outboxsqlite.Open has read the file already (and its Ping fails on
	// a database without tables); outboxpgx.New does not connect.
	if !c.embedded() {
		if err := s.Ping(octx); err != nil {
			s.Close()
			return nil, c.explain(fmt.Errorf("cannot reach the outbox store %s: %w", c.storeDesc(), err))
		}
	}
	return s, nil
}

// explain adds what to do to a store error.
func (c *AdminCmd) explain(err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, outboxsqlite.ErrInUse):
		return fmt.Errorf("%w\n  the embedded store (sqlite:) can be opened by one process at a time: stop evproxy, then run this command again (with a PostgreSQL store these commands work while evproxy runs)", err)
	case strings.Contains(msg, "no such table") || strings.Contains(msg, "SQLSTATE 42P01") || strings.Contains(msg, "SQLSTATE 3F000"):
		return fmt.Errorf("%w\n  the outbox schema is missing: run `evproxy migrate -c %s` (evproxy run also migrates at start)", err, c.Path)
	case !c.embedded() && errors.Is(err, outbox.ErrUnavailable):
		return fmt.Errorf("%w\n  check outbox.database_url in %s and that PostgreSQL is running", err, c.Path)
	}
	return err
}

// Migrate applies the store's schema migrations.
func (c *AdminCmd) Migrate(ctx context.Context) error {
	s, err := c.open(ctx, false)
	if err != nil {
		if errors.Is(err, outboxsqlite.ErrInUse) {
			return fmt.Errorf("%w\n  a running evproxy has already migrated its store at start: nothing to do", errors.Unwrap(err))
		}
		return err
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		return c.explain(fmt.Errorf("migrate the outbox store %s: %w", c.storeDesc(), err))
	}
	if s.Name() == "postgres" {
		fmt.Fprintf(c.Out, "outbox store postgres: schema %s is up to date (%s)\n", c.Config.Outbox.Schema, c.storeDesc())
	} else {
		fmt.Fprintf(c.Out, "outbox store %s: %s is up to date\n", s.Name(), c.storeDesc())
	}
	return nil
}

// StatusJSON is the --json output of `evproxy outbox status`.
type StatusJSON struct {
	Store       string            `json:"store"`
	Topics      []TopicStatusJSON `json:"topics"`
	Total       TopicStatusJSON   `json:"total"`
	DeadLetters DeadLettersJSON   `json:"dead_letters"`
}

// TopicStatusJSON is one topic (or the total) of StatusJSON.
type TopicStatusJSON struct {
	Topic     string `json:"topic,omitempty"`
	Pending   int64  `json:"pending"`
	Scheduled int64  `json:"scheduled"`
	Retrying  int64  `json:"retrying"`
	// OldestPendingAt is the creation time of the oldest pending record;
	// absent when none is pending.
	OldestPendingAt *time.Time `json:"oldest_pending_at,omitempty"`
	// OldestPendingAgeSeconds is its age, 0 when none is pending.
	OldestPendingAgeSeconds float64 `json:"oldest_pending_age_seconds"`
}

// DeadLettersJSON counts the dead letters in StatusJSON.
type DeadLettersJSON struct {
	Total       int64 `json:"total"`
	Unpublished int64 `json:"unpublished"`
}

// OutboxStatus prints the pending records per topic and the dead-letter
// counts.
func (c *AdminCmd) OutboxStatus(ctx context.Context) error {
	s, err := c.open(ctx, true)
	if err != nil {
		return err
	}
	defer s.Close()
	now := c.now()
	st, err := s.OutboxStats(ctx, now)
	if err != nil {
		return c.explain(err)
	}
	out := StatusJSON{
		Store:       s.Name(),
		Topics:      []TopicStatusJSON{},
		DeadLetters: DeadLettersJSON{Total: st.DeadLetters, Unpublished: st.DeadUnpublished},
	}
	var oldest time.Time
	for _, t := range st.Topics {
		ts := TopicStatusJSON{Topic: t.Topic, Pending: t.Pending, Scheduled: t.Scheduled, Retrying: t.Retrying}
		if t.Pending > 0 && !t.Oldest.IsZero() {
			at := t.Oldest.UTC()
			ts.OldestPendingAt = &at
			ts.OldestPendingAgeSeconds = max(now.Sub(at), 0).Seconds()
			if oldest.IsZero() || at.Before(oldest) {
				oldest = at
			}
		}
		out.Topics = append(out.Topics, ts)
		out.Total.Pending += t.Pending
		out.Total.Scheduled += t.Scheduled
		out.Total.Retrying += t.Retrying
	}
	if !oldest.IsZero() {
		out.Total.OldestPendingAt = &oldest
		out.Total.OldestPendingAgeSeconds = max(now.Sub(oldest), 0).Seconds()
	}
	if c.JSON {
		return writeJSON(c.Out, out)
	}

	if len(out.Topics) == 0 {
		fmt.Fprintln(c.Out, "outbox: no records waiting")
	} else {
		tw := tabwriter.NewWriter(c.Out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "TOPIC\tPENDING\tSCHEDULED\tRETRYING\tOLDEST PENDING")
		row := func(name string, t TopicStatusJSON) {
			age := "-"
			if t.OldestPendingAt != nil {
				age = FormatAge(now.Sub(*t.OldestPendingAt))
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", name, t.Pending, t.Scheduled, t.Retrying, age)
		}
		for _, t := range out.Topics {
			row(t.Topic, t)
		}
		row("total", out.Total)
		tw.Flush()
	}
	fmt.Fprintf(c.Out, "dead letters: %d (%d not yet on the dead-letter topic)\n", st.DeadLetters, st.DeadUnpublished)
	return nil
}

// FormatAge prints a duration the way status shows ages: whole seconds,
// minutes and hours ("45s", "3m12s", "5h4m", "3d2h").
func FormatAge(d time.Duration) string {
	d = max(d, 0).Truncate(time.Second)
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", d/time.Minute, d%time.Minute/time.Second)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", d/time.Hour, d%time.Hour/time.Minute)
	}
	return fmt.Sprintf("%dd%dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
}

// DLQFilter selects dead letters for `evproxy dlq list` and `replay`.
type DLQFilter struct {
	IDs   []int64
	Topic string
	// Since and Until bound the failure time: [Since, Until).
	Since, Until time.Time
	// Unpublished selects dead letters not yet on the dead-letter topic.
	Unpublished bool
	// Limit is the most dead letters selected; 0: no limit.
	Limit int
}

// empty reports whether the filter selects every dead letter.
func (f *DLQFilter) empty() bool {
	return len(f.IDs) == 0 && f.Topic == "" && f.Since.IsZero() && f.Until.IsZero() && !f.Unpublished
}

func (f *DLQFilter) params() *outbox.DeadLetterListParams {
	return &outbox.DeadLetterListParams{IDs: f.IDs, Topic: f.Topic, Since: f.Since, Until: f.Until, Unpublished: f.Unpublished, Limit: f.Limit}
}

// AddFlags registers the selector flags on fs (--id, --topic, --since,
// --until); list adds --unpublished. Times are read relative to now()
// when given as a duration.
func (f *DLQFilter) AddFlags(fs *flag.FlagSet, now func() time.Time, list bool) {
	fs.Var((*idsFlag)(&f.IDs), "id", "dead letter `ID` (repeat the flag, or separate ids with commas)")
	fs.StringVar(&f.Topic, "topic", "", "only dead letters of `TOPIC` (the original topic)")
	fs.Var(&timeFlag{t: &f.Since, now: now}, "since", "only dead letters that failed at or after `TIME` (RFC 3339, or a duration ago such as 2h)")
	fs.Var(&timeFlag{t: &f.Until, now: now}, "until", "only dead letters that failed before `TIME` (RFC 3339, or a duration ago such as 30m)")
	if list {
		fs.BoolVar(&f.Unpublished, "unpublished", false, "only dead letters not yet on the dead-letter topic")
	}
}

// idsFlag is a repeatable flag of dead-letter ids.
type idsFlag []int64

func (f *idsFlag) String() string {
	if f == nil {
		return ""
	}
	s := make([]string, len(*f))
	for i, id := range *f {
		s[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(s, ",")
}

func (f *idsFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		id, err := ParseID(strings.TrimSpace(p))
		if err != nil {
			return err
		}
		*f = append(*f, id)
	}
	return nil
}

// ParseID parses a dead-letter id.
func ParseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("invalid dead letter id %q: ids are positive whole numbers, as `evproxy dlq list` prints them", s)
	}
	return id, nil
}

// timeFlag is a TIME flag: RFC 3339 or a duration ago.
type timeFlag struct {
	t   *time.Time
	now func() time.Time
}

func (f *timeFlag) String() string {
	if f == nil || f.t == nil || f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339)
}

func (f *timeFlag) Set(v string) error {
	t, err := ParseTime(v, f.now())
	if err != nil {
		return err
	}
	*f.t = t
	return nil
}

// ParseTime reads a TIME argument: RFC 3339 ("2026-11-29T10:00:00Z", with
// or without fractional seconds) or a duration ago ("2h", "90m", "1h30m")
// meaning now minus that duration.
func ParseTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("invalid time %q: use RFC 3339 (2026-11-29T10:00:00Z) or a duration ago (2h, 30m, 1h30m)", s)
}

// DeadLetterJSON is a dead letter in --json output. Byte fields are text
// when valid UTF-8 without control characters (encoding "text"), else
// base64 (encoding "base64"); a null key or value is null with no
// encoding.
type DeadLetterJSON struct {
	ID        int64     `json:"id"`
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	EventID   string    `json:"event_id"`
	FailedAt  time.Time `json:"failed_at"`
	Attempts  int32     `json:"attempts"`
	Stage     string    `json:"stage"`
	Reason    string    `json:"reason"`
	Plugin    string    `json:"plugin"`
	// Published reports whether the record reached the dead-letter topic.
	Published bool `json:"published"`
	// DeadLetterTopic is where the relay produces it ("" when
	// dead_letter.enabled is false).
	DeadLetterTopic string       `json:"dead_letter_topic"`
	Timestamp       *time.Time   `json:"timestamp,omitempty"`
	Priority        int32        `json:"priority"`
	Key             *string      `json:"key"`
	KeyEncoding     string       `json:"key_encoding,omitempty"`
	Value           *string      `json:"value"`
	ValueEncoding   string       `json:"value_encoding,omitempty"`
	Headers         []HeaderJSON `json:"headers"`
}

// HeaderJSON is a record header in DeadLetterJSON.
type HeaderJSON struct {
	Key      string  `json:"key"`
	Value    *string `json:"value"`
	Encoding string  `json:"encoding,omitempty"`
}

// EncodeBytes returns b as text when it is valid UTF-8 without control
// characters (other than tab, CR and LF), else as base64, and which
// ("text" or "base64"). A nil b is (nil, "").
func EncodeBytes(b []byte) (*string, string) {
	if b == nil {
		return nil, ""
	}
	if isText(b) {
		s := string(b)
		return &s, "text"
	}
	s := base64.StdEncoding.EncodeToString(b)
	return &s, "base64"
}

func isText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f {
			return false
		}
	}
	return true
}

func (c *AdminCmd) deadLetterTopic(topic string) string {
	if !c.Config.DeadLetter.Enabled {
		return ""
	}
	return topic + c.Config.DeadLetter.TopicSuffix
}

func (c *AdminCmd) deadLetterJSON(dl *outbox.DeadLetter) DeadLetterJSON {
	j := DeadLetterJSON{
		ID: dl.ID, Topic: dl.Topic, Partition: dl.Partition, EventID: dl.EventID,
		FailedAt: dl.FailedAt.UTC(), Attempts: dl.Attempts, Stage: dl.Stage, Reason: dl.Reason,
		Plugin: dl.Plugin, Published: dl.Published, DeadLetterTopic: c.deadLetterTopic(dl.Topic),
		Priority: dl.Priority, Headers: []HeaderJSON{},
	}
	if !dl.Timestamp.IsZero() {
		ts := dl.Timestamp.UTC()
		j.Timestamp = &ts
	}
	j.Key, j.KeyEncoding = EncodeBytes(dl.Key)
	j.Value, j.ValueEncoding = EncodeBytes(dl.Value)
	for _, h := range dl.Headers {
		hj := HeaderJSON{Key: h.Key}
		hj.Value, hj.Encoding = EncodeBytes(h.Value)
		j.Headers = append(j.Headers, hj)
	}
	return j
}

// reasonWidth is how much of a reason `dlq list` shows.
const reasonWidth = 60

// DLQList prints the selected dead letters, one line each (a JSON array
// with --json).
func (c *AdminCmd) DLQList(ctx context.Context, f DLQFilter) error {
	s, err := c.open(ctx, true)
	if err != nil {
		return err
	}
	defer s.Close()
	p := f.params()
	if p.Limit > 0 {
		p.Limit++ // one more, to tell whether there are more
	}
	dls, err := s.DeadLetterList(ctx, p)
	if err != nil {
		return c.explain(err)
	}
	more := f.Limit > 0 && len(dls) > f.Limit
	if more {
		dls = dls[:f.Limit]
	}
	if c.JSON {
		out := make([]DeadLetterJSON, len(dls))
		for i, dl := range dls {
			out[i] = c.deadLetterJSON(dl)
		}
		if err := writeJSON(c.Out, out); err != nil {
			return err
		}
	} else if len(dls) == 0 {
		fmt.Fprintln(c.Out, "no dead letters match")
	} else {
		tw := tabwriter.NewWriter(c.Out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTOPIC\tFAILED AT\tATTEMPTS\tSTAGE\tPUBLISHED\tREASON")
		for _, dl := range dls {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\n", dl.ID, dl.Topic, dl.FailedAt.UTC().Format(time.RFC3339),
				dl.Attempts, dl.Stage, yesNo(dl.Published), Truncate(oneLine(dl.Reason), reasonWidth))
		}
		tw.Flush()
	}
	if more {
		c.note("showing the first %d dead letters; there are more: narrow the selection, or raise --limit (0: no limit)", f.Limit)
	}
	return nil
}

// note prints a remark to Notes.
func (c *AdminCmd) note(format string, args ...any) {
	if c.Notes != nil {
		fmt.Fprintf(c.Notes, format+"\n", args...)
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// oneLine folds whitespace runs (newlines, tabs) into single spaces.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Truncate shortens s to at most n runes, ending in "…" when cut.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// DLQShow prints everything about one dead letter.
func (c *AdminCmd) DLQShow(ctx context.Context, id int64) error {
	s, err := c.open(ctx, true)
	if err != nil {
		return err
	}
	defer s.Close()
	dls, err := s.DeadLetterList(ctx, &outbox.DeadLetterListParams{IDs: []int64{id}})
	if err != nil {
		return c.explain(fmt.Errorf("read dead letter %d: %w", id, err))
	}
	if len(dls) == 0 {
		return fmt.Errorf("no dead letter %d: it may have been replayed, or deleted after outbox.retention (%s); `evproxy dlq list` shows the ids there are", id, c.Config.Outbox.Retention)
	}
	j := c.deadLetterJSON(dls[0])
	if c.JSON {
		return writeJSON(c.Out, j)
	}
	line := func(label, format string, args ...any) {
		fmt.Fprintf(c.Out, "%-11s %s\n", label, fmt.Sprintf(format, args...))
	}
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	line("id", "%d", j.ID)
	line("topic", "%s", j.Topic)
	if j.Partition < 0 {
		line("partition", "%d (by key)", j.Partition)
	} else {
		line("partition", "%d", j.Partition)
	}
	line("event id", "%s", dash(j.EventID))
	line("failed at", "%s", j.FailedAt.Format("2006-01-02T15:04:05.000Z07:00"))
	line("attempts", "%d", j.Attempts)
	line("stage", "%s", dash(j.Stage))
	line("plugin", "%s", dash(j.Plugin))
	line("reason", "%s", dash(j.Reason))
	switch {
	case j.Published:
		line("published", "yes, to %s", dash(j.DeadLetterTopic))
	case j.DeadLetterTopic == "":
		line("published", "no (dead_letter.enabled is false: kept in the dead-letter table only)")
	default:
		line("published", "no (a running evproxy produces it to %s)", j.DeadLetterTopic)
	}
	if j.Timestamp != nil {
		line("timestamp", "%s", j.Timestamp.Format("2006-01-02T15:04:05.000Z07:00"))
	} else {
		line("timestamp", "-")
	}
	line("priority", "%d", j.Priority)
	line("key", "%s", showBytes(j.Key, j.KeyEncoding, len(dls[0].Key)))
	for _, h := range j.Headers {
		line("header", "%s %s", h.Key, showBytes(h.Value, h.Encoding, -1))
	}
	line("value", "%s", showBytes(j.Value, j.ValueEncoding, len(dls[0].Value)))
	return nil
}

// showBytes prints an encoded byte field: "null", or "(text) VALUE" /
// "(base64) VALUE", with the byte count when n >= 0.
func showBytes(s *string, enc string, n int) string {
	if s == nil {
		return "null"
	}
	if n >= 0 {
		return fmt.Sprintf("(%s, %d bytes) %s", enc, n, *s)
	}
	return fmt.Sprintf("(%s) %s", enc, *s)
}

// ReplayOptions are the options of `evproxy dlq replay`.
type ReplayOptions struct {
	// All allows replaying with no selector: every dead letter.
	All bool
	// DryRun prints what would be replayed and changes nothing.
	DryRun bool
}

// DLQReplay moves the selected dead letters back into the outbox with
// their attempts reset. With no selector it refuses unless o.All.
func (c *AdminCmd) DLQReplay(ctx context.Context, f DLQFilter, o ReplayOptions) error {
	if f.empty() && !o.All {
		return usageErrorf("no dead letters selected: give --id, --topic, --since or --until, or --all to replay every dead letter")
	}
	s, err := c.open(ctx, true)
	if err != nil {
		return err
	}
	defer s.Close()
	if o.DryRun {
		dls, err := s.DeadLetterList(ctx, f.params())
		if err != nil {
			return c.explain(err)
		}
		ids := make([]string, 0, len(dls))
		for i, dl := range dls {
			if i == 20 {
				ids = append(ids, "…")
				break
			}
			ids = append(ids, strconv.FormatInt(dl.ID, 10))
		}
		if len(dls) == 0 {
			fmt.Fprintln(c.Out, "dry run: no dead letters match")
		} else {
			fmt.Fprintf(c.Out, "dry run: would replay %d dead %s (ids %s)\n", len(dls), plural(len(dls), "letter", "letters"), strings.Join(ids, ", "))
		}
		return nil
	}
	n, err := s.DeadLetterReplay(ctx, f.params())
	if err != nil {
		return c.explain(err)
	}
	if n == 0 {
		fmt.Fprintln(c.Out, "no dead letters match: nothing replayed")
		return nil
	}
	fmt.Fprintf(c.Out, "replayed %d dead %s into the outbox with attempts reset\n", n, plural(n, "letter", "letters"))
	if s.Name() == "postgres" {
		fmt.Fprintf(c.Out, "a running evproxy publishes them within outbox.poll_interval (%s)\n", c.Config.Outbox.PollInterval)
	} else {
		fmt.Fprintln(c.Out, "evproxy publishes them once it runs again (the embedded store is single-process)")
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
