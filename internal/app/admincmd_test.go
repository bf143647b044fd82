package app

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDLQParseTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
		err  string
	}{
		{in: "2026-11-29T10:00:00Z", want: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)},
		{in: "2026-11-29T10:00:00.250+01:00", want: time.Date(2026, 11, 29, 9, 0, 0, 250e6, time.UTC)},
		{in: "2h", want: now.Add(-2 * time.Hour)},
		{in: "1h30m", want: now.Add(-90 * time.Minute)},
		{in: "0s", want: now},
		{in: "-2h", err: `invalid time "-2h": use RFC 3339 (2026-11-29T10:00:00Z) or a duration ago (2h, 30m, 1h30m)`},
		{in: "yesterday", err: `invalid time "yesterday"`},
		{in: "2026-11-29", err: `invalid time "2026-11-29"`},
		{in: "", err: `invalid time ""`},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseTime(c.in, now)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("ParseTime(%q) = %v, %v; want error %q", c.in, got, err, c.err)
				}
				return
			}
			if err != nil || !got.Equal(c.want) {
				t.Fatalf("ParseTime(%q) = %v, %v; want %v", c.in, got, err, c.want)
			}
		})
	}
}

func TestDLQFilterFlags(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		args  []string
		want  DLQFilter
		empty bool
		err   string
	}{
		{name: "none", empty: true},
		{name: "ids", args: []string{"--id", "3", "--id", "5,7"}, want: DLQFilter{IDs: []int64{3, 5, 7}}},
		{name: "range", args: []string{"--since", "2h", "--until", "2026-11-29T11:30:00Z"},
			want: DLQFilter{Since: now.Add(-2 * time.Hour), Until: time.Date(2026, 11, 29, 11, 30, 0, 0, time.UTC)}},
		{name: "topic unpublished", args: []string{"--topic", "orders", "--unpublished"}, want: DLQFilter{Topic: "orders", Unpublished: true}},
		{name: "bad id", args: []string{"--id", "3,x"}, err: `invalid dead letter id "x"`},
		{name: "zero id", args: []string{"--id", "0"}, err: `invalid dead letter id "0"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var f DLQFilter
			fs := flag.NewFlagSet("dlq list", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			f.AddFlags(fs, func() time.Time { return now }, true)
			err := fs.Parse(c.args)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.empty() != c.empty {
				t.Errorf("empty() = %v", f.empty())
			}
			if !slices.Equal(f.IDs, c.want.IDs) || f.Topic != c.want.Topic || !f.Since.Equal(c.want.Since) ||
				!f.Until.Equal(c.want.Until) || f.Unpublished != c.want.Unpublished {
				t.Errorf("filter %+v, want %+v", f, c.want)
			}
		})
	}
}

func TestDLQEncodeBytes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   []byte
		want string // "<nil>" for nil
		enc  string
	}{
		{"nil", nil, "<nil>", ""},
		{"empty", []byte{}, "", "text"},
		{"json", []byte(`{"a":"ü"}`), `{"a":"ü"}`, "text"},
		{"multi-line", []byte("a\n\tb\r\n"), "a\n\tb\r\n", "text"},
		{"invalid UTF-8", []byte{0xff, 0xfe}, "//4=", "base64"},
		{"NUL", []byte("a\x00b"), "YQBi", "base64"},
		{"DEL", []byte("a\x7f"), "YX8=", "base64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, enc := EncodeBytes(c.in)
			s := "<nil>"
			if got != nil {
				s = *got
			}
			if s != c.want || enc != c.enc {
				t.Errorf("EncodeBytes(%q) = %q, %q; want %q, %q", c.in, s, enc, c.want, c.enc)
			}
		})
	}
}

func TestOutboxFormatAge(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   time.Duration
		want string
	}{
		{-time.Second, "0s"},
		{0, "0s"},
		{999 * time.Millisecond, "0s"},
		{59 * time.Second, "59s"},
		{3*time.Minute + 12*time.Second + 900*time.Millisecond, "3m12s"},
		{5*time.Hour + 4*time.Minute + 59*time.Second, "5h4m"},
		{47*time.Hour + 59*time.Minute, "47h59m"},
		{74 * time.Hour, "3d2h"},
	}
	for _, c := range cases {
		if got := FormatAge(c.in); got != c.want {
			t.Errorf("FormatAge(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestDLQTruncate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"eleven chars", 10, "eleven ch…"},
		{"üüüüüüüüüüüü", 5, "üüüü…"},
	}
	for _, c := range cases {
		if got := Truncate(c.in, c.n); got != c.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
	if got := oneLine("a\n  b\tc "); got != "a b c" {
		t.Errorf("oneLine = %q", got)
	}
}

func TestDLQRedactedURL(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"postgres://u:secret@h:5432/db?sslmode=disable", "postgres://u:xxxxx@h:5432/db?sslmode=disable"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"postgres://u:pa%zz@h/db", "(unparsable URL)"},
	}
	for _, c := range cases {
		if got := redactedURL(c.in); got != c.want {
			t.Errorf("redactedURL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
