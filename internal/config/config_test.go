package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testEnv is the environment every test parses with.
var testEnv = map[string]string{
	"BROKER":       "env-broker:9092",
	"EMPTY":        "",
	"CLIENT_ID":    "from-env",
	"PROXY_HOST":   "10.0.0.7",
	"INFLIGHT":     "64",
	"EMBEDDED":     "true",
	"ROUTE_TOPICS": "payments.*",
}

func lookupTestEnv(name string) (string, bool) {
	v, ok := testEnv[name]
	return v, ok
}

// parseTest parses src as config.hcl with testEnv.
func parseTest(src string) (*Config, error) {
	return parse([]byte(src), "config.hcl", lookupTestEnv)
}

// defaults is the Config of an embedded-broker file that sets nothing else.
func defaults() *Config {
	return &Config{
		Proxy: ProxyConfig{
			Listen:          "127.0.0.1:9092",
			Advertised:      "127.0.0.1:9092",
			MaxRequestBytes: 104857600,
			MaxInflight:     32,
			ShutdownTimeout: 30 * time.Second,
			IdleTimeout:     10 * time.Minute,
		},
		Admin: AdminConfig{Listen: "127.0.0.1:9644"},
		Kafka: KafkaConfig{
			Brokers:            []string{"127.0.0.1:19092"},
			Embedded:           true,
			EmbeddedPartitions: 3,
			ClientID:           "evproxy",
			RequestTimeout:     30 * time.Second,
			ProduceTimeout:     30 * time.Second,
		},
		Log:        LogConfig{Level: "info", Format: "json"},
		DeadLetter: DeadLetterConfig{Enabled: true, TopicSuffix: ".failed"},
		Outbox: OutboxConfig{
			Schema:          "evproxy",
			BatchSize:       2000,
			BatchBytes:      16 << 20,
			RelayWorkers:    4,
			PollInterval:    time.Second,
			Retry:           testRetry,
			Retention:       168 * time.Hour,
			LeaseTTL:        30 * time.Second,
			PublishTimeout:  10 * time.Second,
			BreakerFailures: 3,
			BreakerTimeout:  5 * time.Second,
		},
		Plugins: []PluginConfig{},
		Routes:  []RouteConfig{},
	}
}

// testRetry is the default retry policy.
var testRetry = RetryPolicy{MaxRetries: 5, RetryDelay: time.Second, BackoffFactor: 2, MaxRetryDelay: 5 * time.Minute}

// routeDefaults fills the outbox keys of wanted routes that a test left
// zero with their defaults.
func routeDefaults(c *Config) {
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.Ordering == "" {
			r.Ordering = OrderingStrict
		}
		if r.Retry == (RetryPolicy{}) {
			r.Retry = c.Outbox.Retry
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want func(c *Config) // changes defaults() into the expected Config
	}{
		{
			name: "defaults with embedded broker",
			src:  `kafka { embedded = true }`,
			want: func(*Config) {},
		},
		{
			name: "defaults with real brokers",
			src:  `kafka { brokers = ["k1:9092"] }`,
			want: func(c *Config) {
				c.Kafka.Embedded = false
				c.Kafka.Brokers = []string{"k1:9092"}
			},
		},
		{
			name: "empty blocks keep defaults",
			src: `
proxy {}
admin {}
kafka { embedded = true }
log {}
`,
			want: func(*Config) {},
		},
		{
			name: "null keeps the default",
			src: `
proxy { max_inflight = null }
kafka { embedded = true }
`,
			want: func(*Config) {},
		},
		{
			name: "every key",
			src: `
proxy {
  listen            = "0.0.0.0:19092"
  advertised        = "proxy.example.com:19092"
  max_request_bytes = 2048
  max_inflight      = 1
  shutdown_timeout  = "1m30s"
  idle_timeout      = "0s"
}
admin { listen = "127.0.0.1:0" }
kafka {
  brokers             = ["k1:9092", "[::1]:9093"]
  embedded            = false
  embedded_partitions = 12
  client_id           = "edge"
  request_timeout     = "5s"
  produce_timeout     = "2m"
}
log {
  level  = "debug"
  format = "console"
}
route "orders" {
  topics   = ["orders", "orders.*"]
  delivery = "direct"
}
route "default" { topics = ["*"] }
`,
			want: func(c *Config) {
				c.Proxy = ProxyConfig{
					Listen:          "0.0.0.0:19092",
					Advertised:      "proxy.example.com:19092",
					MaxRequestBytes: 2048,
					MaxInflight:     1,
					ShutdownTimeout: 90 * time.Second,
					IdleTimeout:     0,
				}
				c.Admin.Listen = "127.0.0.1:0"
				c.Kafka = KafkaConfig{
					Brokers:            []string{"k1:9092", "[::1]:9093"},
					EmbeddedPartitions: 12,
					ClientID:           "edge",
					RequestTimeout:     5 * time.Second,
					ProduceTimeout:     2 * time.Minute,
				}
				c.Log = LogConfig{Level: "debug", Format: "console"}
				c.Routes = []RouteConfig{
					{Name: "orders", Topics: []string{"orders", "orders.*"}, Delivery: "direct", EventTypes: []string{"*"}, OnReject: "dead_letter"},
					{Name: "default", Topics: []string{"*"}, Delivery: "direct", EventTypes: []string{"*"}, OnReject: "dead_letter"},
				}
			},
		},
		{
			name: "advertised defaults to listen",
			src: `
proxy { listen = "10.1.2.3:9000" }
kafka { embedded = true }
`,
			want: func(c *Config) {
				c.Proxy.Listen = "10.1.2.3:9000"
				c.Proxy.Advertised = "10.1.2.3:9000"
			},
		},
		{
			name: "empty admin listen disables the admin server",
			src: `
admin { listen = "" }
kafka { embedded = true }
`,
			want: func(c *Config) { c.Admin.Listen = "" },
		},
		{
			name: "embedded broker address and port 0",
			src: `
kafka {
  embedded = true
  brokers  = ["127.0.0.1:0"]
}`,
			want: func(c *Config) { c.Kafka.Brokers = []string{"127.0.0.1:0"} },
		},
		{
			name: "embedded with empty brokers uses the default address",
			src: `
kafka {
  embedded = true
  brokers  = []
}`,
			want: func(*Config) {},
		},
		{
			name: "numbers and bools convert from strings",
			src: `
proxy { max_inflight = "8" }
kafka { embedded = "true" }
`,
			want: func(c *Config) { c.Proxy.MaxInflight = 8 },
		},
		{
			name: "routes keep file order",
			src: `
kafka { embedded = true }
route "b" { topics = ["b"] }
route "a" { topics = ["a", "a.?", "[xy]*", "\\*"] }
route "c" { topics = ["*"] }
`,
			want: func(c *Config) {
				c.Routes = []RouteConfig{
					{Name: "b", Topics: []string{"b"}, Delivery: "direct", EventTypes: []string{"*"}, OnReject: "dead_letter"},
					{Name: "a", Topics: []string{"a", "a.?", "[xy]*", `\*`}, Delivery: "direct", EventTypes: []string{"*"}, OnReject: "dead_letter"},
					{Name: "c", Topics: []string{"*"}, Delivery: "direct", EventTypes: []string{"*"}, OnReject: "dead_letter"},
				}
			},
		},
		{
			name: "env with the variable set",
			src: `
proxy {
  listen       = "${env("PROXY_HOST")}:9092"
  max_inflight = env("INFLIGHT")
}
kafka {
  brokers   = [env("BROKER")]
  client_id = env("CLIENT_ID", "unused default")
}
route "payments" { topics = [env("ROUTE_TOPICS")] }
`,
			want: func(c *Config) {
				c.Proxy.Listen = "10.0.0.7:9092"
				c.Proxy.Advertised = "10.0.0.7:9092"
				c.Proxy.MaxInflight = 64
				c.Kafka.Embedded = false
				c.Kafka.Brokers = []string{"env-broker:9092"}
				c.Kafka.ClientID = "from-env"
				c.Routes = []RouteConfig{{Name: "payments", Topics: []string{"payments.*"}, Delivery: "direct", EventTypes: []string{"*"}, OnReject: "dead_letter"}}
			},
		},
		{
			name: "env default when the variable is not set",
			src: `
kafka {
  embedded  = env("NOT_SET", "true")
  client_id = env("NOT_SET", "fallback")
}
`,
			want: func(c *Config) { c.Kafka.ClientID = "fallback" },
		},
		{
			name: "env set to empty wins over the default",
			src: `
admin { listen = env("EMPTY", "127.0.0.1:1") }
kafka { embedded = env("EMBEDDED") }
`,
			want: func(c *Config) { c.Admin.Listen = "" },
		},
		{
			name: "outbox block and routes",
			src: `
kafka { embedded = true }
outbox {
  database_url    = "sqlite:data/outbox.db"
  batch_size      = 100
  relay_workers   = 8
  batch_bytes     = "1MiB"
  poll_interval   = "250ms"
  max_retries     = 7
  retry_delay     = "2s"
  backoff_factor  = 1.5
  max_retry_delay = "1m"
  retention       = "24h"
  publish_timeout = "1s"
  breaker_failures = 2
  breaker_timeout = "3s"
}
route "orders" {
  topics   = ["orders"]
  delivery = "outbox"
  priority = -1
  ordering = "relaxed"
  retry {
    max_retries = 10
  }
}
route "rest" {
  topics   = ["*"]
  delivery = "outbox"
}
`,
			want: func(c *Config) {
				c.Outbox = OutboxConfig{
					Enabled: true, DatabaseURL: "sqlite:data/outbox.db", Schema: "evproxy",
					BatchSize: 100, BatchBytes: 1 << 20, RelayWorkers: 8, PollInterval: 250 * time.Millisecond,
					Retry:     RetryPolicy{MaxRetries: 7, RetryDelay: 2 * time.Second, BackoffFactor: 1.5, MaxRetryDelay: time.Minute},
					Retention: 24 * time.Hour, LeaseTTL: 30 * time.Second, PublishTimeout: time.Second,
					BreakerFailures: 2, BreakerTimeout: 3 * time.Second,
				}
				r7 := c.Outbox.Retry
				r10 := r7
				r10.MaxRetries = 10
				c.Routes = []RouteConfig{
					{Name: "orders", Topics: []string{"orders"}, Delivery: "outbox", EventTypes: []string{"*"}, OnReject: "dead_letter", Priority: -1, Ordering: "relaxed", Retry: r10},
					{Name: "rest", Topics: []string{"*"}, Delivery: "outbox", EventTypes: []string{"*"}, OnReject: "dead_letter", Ordering: "strict", Retry: r7},
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseTest(tt.src)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			want := defaults()
			tt.want(want)
			routeDefaults(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("config mismatch\n got: %+v\nwant: %+v", got, want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	// Each case has exactly one error diagnostic, at pos (line:col), whose
	// summary and detail contain summary and detail.
	tests := []struct {
		name    string
		src     string
		pos     string
		summary string
		detail  string
	}{
		// Structure.
		{
			name:    "syntax error",
			src:     "kafka {\n  embedded = \n}",
			pos:     "2:14",
			summary: "Invalid expression",
			detail:  "Expected the start of an expression",
		},
		{
			name:    "unknown key",
			src:     "kafka {\n  embedded = true\n  broker = [\"a:1\"]\n}",
			pos:     "3:3",
			summary: "Unsupported argument",
			detail:  `An argument named "broker" is not expected here. Did you mean "brokers"? Valid keys in a kafka block are brokers, client_id, embedded, embedded_partitions, produce_timeout, request_timeout: rename or remove this one.`,
		},
		{
			name:    "unknown block",
			src:     "kafka { embedded = true }\noutput {}",
			pos:     "2:1",
			summary: "Unsupported block type",
			detail:  `Blocks of type "output" are not expected here. Valid blocks at the top level are admin, dead_letter, kafka, log, outbox, plugin, proxy, route: rename or remove this one.`,
		},
		{
			name:    "unknown nested block",
			src:     "kafka { embedded = true }\nproxy {\n  tls {}\n}",
			pos:     "3:3",
			summary: "Unsupported block type",
			detail:  `Valid keys in a proxy block are advertised, idle_timeout, listen, max_inflight, max_request_bytes, shutdown_timeout`,
		},
		{
			name:    "duplicate singleton block",
			src:     "kafka { embedded = true }\nlog {}\nlog {}",
			pos:     "3:1",
			summary: "Duplicate log block",
			detail:  "only one log block is allowed: merge this one into the log block at config.hcl:2:1",
		},
		{
			name:    "duplicate route name",
			src:     "kafka { embedded = true }\nroute \"a\" { topics = [\"a\"] }\nroute \"a\" { topics = [\"b\"] }",
			pos:     "3:7",
			summary: "Duplicate route name",
			detail:  `route "a": route names must be unique, and "a" is already used by the route at config.hcl:2:1: rename one of them`,
		},
		{
			name:    "empty route name",
			src:     "kafka { embedded = true }\nroute \"\" { topics = [\"a\"] }",
			pos:     "2:7",
			summary: "Empty route name",
			detail:  `route names must not be empty: name the route, e.g. route "orders" { ... }`,
		},
		{
			name:    "route without label",
			src:     "kafka { embedded = true }\nroute { topics = [\"a\"] }",
			pos:     "2:7",
			summary: "Missing name for route",
		},
		{
			name:    "label on a singleton block",
			src:     "kafka \"main\" { embedded = true }",
			pos:     "1:7",
			summary: "Extraneous label for kafka",
		},
		{
			name:    "too deeply nested",
			src:     "kafka { embedded = " + strings.Repeat("(", maxNesting+1) + "true" + strings.Repeat(")", maxNesting+1) + " }",
			pos:     fmt.Sprintf("1:%d", 20+maxNesting-1),
			summary: "Configuration too deeply nested",
			detail:  "the file nests brackets more than 1000 levels deep or uses more than 10000 operators: simplify the expression here",
		},
		{
			name:    "arithmetic",
			src:     "kafka { embedded = true }\nproxy {\n  max_request_bytes = 100 * 1024 * 1024\n}",
			pos:     "3:23",
			summary: "Arithmetic not supported",
			detail:  "evproxy configuration does not support arithmetic: write the resulting value, e.g. max_request_bytes = 104857600",
		},
		{
			// Formatting this number as text took seconds and stalled the fuzzer.
			name:    "huge number literal",
			src:     "kafka { embedded = true }\nproxy {\n  max_request_bytes = 1e10000000\n}",
			pos:     "3:23",
			summary: "Number out of range",
			detail:  "this number is too large or too close to zero: every numeric key of evproxy takes a whole number below 2147483648",
		},
		{
			name:    "huge number in a string",
			src:     "kafka { embedded = true }\nproxy {\n  max_request_bytes = \"1e10000000\"\n}",
			pos:     "3:23",
			summary: "Value out of range",
			detail:  "proxy.max_request_bytes must be a whole number from 1024 to 2147483647, got a number too large to show",
		},
		{
			name:    "variables are not allowed",
			src:     "kafka { embedded = var.embedded }",
			pos:     "1:20",
			summary: "Variables not allowed",
		},

		// env().
		{
			name:    "env variable not set",
			src:     "kafka {\n  embedded = true\n  client_id = env(\"KAFKA_CLIENT\")\n}",
			pos:     "3:15",
			summary: "Environment variable not set",
			detail:  `environment variable KAFKA_CLIENT is not set: set it in evproxy's environment, or give a default with env("KAFKA_CLIENT", "value")`,
		},
		{
			name:    "env variable not set inside a template",
			src:     "kafka {\n  brokers = [\"${env(\"KAFKA_HOST\")}:9092\"]\n}",
			pos:     "2:17",
			summary: "Environment variable not set",
			detail:  "environment variable KAFKA_HOST is not set",
		},
		{
			name:    "env with three arguments",
			src:     "kafka {\n  embedded = true\n  client_id = env(\"A\", \"b\", \"c\")\n}",
			pos:     "3:15",
			summary: "Error in function call",
			detail:  `env takes one or two arguments, got 3: write env("NAME") or env("NAME", "default")`,
		},
		{
			name:    "env without a name",
			src:     "kafka {\n  embedded = true\n  client_id = env(\"\")\n}",
			pos:     "3:21",
			summary: "Invalid function argument",
			detail:  `the variable name is empty: write the name of an environment variable, e.g. env("KAFKA_PASSWORD")`,
		},
		{
			name:    "unknown function",
			src:     "kafka {\n  embedded = true\n  client_id = file(\"id\")\n}",
			pos:     "3:15",
			summary: "Call to unknown function",
		},

		// Types.
		{
			name:    "string key given a number",
			src:     "kafka {\n  embedded = true\n  client_id = 7\n}",
			pos:     "3:15",
			summary: "Invalid value type",
			detail:  "kafka.client_id must be a string in quotes, got number",
		},
		{
			name:    "list key given a string",
			src:     "kafka {\n  brokers = \"k1:9092\"\n}",
			pos:     "2:13",
			summary: "Invalid value type",
			detail:  `kafka.brokers must be a list of strings such as ["a", "b"], got string`,
		},
		{
			name:    "list element not a string",
			src:     "kafka {\n  brokers = [\"k1:9092\", true]\n}",
			pos:     "2:25",
			summary: "Invalid value type",
			detail:  "kafka.brokers must be a list of strings, but element 2 is true",
		},
		{
			name:    "bool key given a word",
			src:     "kafka {\n  embedded = \"maybe\"\n}",
			pos:     "2:14",
			summary: "Invalid value type",
			detail:  `kafka.embedded must be true or false, got "maybe"`,
		},
		{
			name:    "number key given a word",
			src:     "kafka { embedded = true }\nproxy {\n  max_inflight = \"many\"\n}",
			pos:     "3:18",
			summary: "Invalid value type",
			detail:  `proxy.max_inflight must be a whole number from 1 to 1024, got "many"`,
		},

		// proxy.
		{
			name:    "listen without port",
			src:     "kafka { embedded = true }\nproxy {\n  listen = \"localhost\"\n}",
			pos:     "3:12",
			summary: "Invalid address",
			detail:  `proxy.listen: invalid address "localhost": missing port in address; use host:port such as "127.0.0.1:9092"`,
		},
		{
			name:    "listen port out of range",
			src:     "kafka { embedded = true }\nproxy {\n  listen = \"127.0.0.1:70000\"\n}",
			pos:     "3:12",
			summary: "Invalid address",
			detail:  `proxy.listen: invalid address "127.0.0.1:70000": port "70000" is not a number from 0 to 65535; use host:port such as "127.0.0.1:9092"`,
		},
		{
			name:    "listen on all interfaces without advertised",
			src:     "kafka { embedded = true }\nproxy {\n  listen = \":9092\"\n}",
			pos:     "3:12",
			summary: "Missing proxy.advertised",
			detail:  `proxy.advertised is required when proxy.listen binds all interfaces (":9092"): set advertised to the host:port producers connect to, e.g. advertised = "evproxy.example.com:9092"`,
		},
		{
			name:    "advertised unspecified address",
			src:     "kafka { embedded = true }\nproxy {\n  advertised = \"0.0.0.0:9092\"\n}",
			pos:     "3:16",
			summary: "Invalid address",
			detail:  `proxy.advertised: invalid address "0.0.0.0:9092": 0.0.0.0 is not an address clients can connect to; use host:port such as "evproxy.example.com:9092"`,
		},
		{
			name:    "advertised port 0",
			src:     "kafka { embedded = true }\nproxy {\n  advertised = \"proxy:0\"\n}",
			pos:     "3:16",
			summary: "Invalid address",
			detail:  `port "0" is not a number from 1 to 65535`,
		},
		{
			name:    "max_request_bytes too small",
			src:     "kafka { embedded = true }\nproxy {\n  max_request_bytes = 1023\n}",
			pos:     "3:23",
			summary: "Value out of range",
			detail:  "proxy.max_request_bytes must be a whole number from 1024 to 2147483647, got 1023",
		},
		{
			name:    "max_request_bytes too large",
			src:     "kafka { embedded = true }\nproxy {\n  max_request_bytes = 2147483648\n}",
			pos:     "3:23",
			summary: "Value out of range",
			detail:  "proxy.max_request_bytes must be a whole number from 1024 to 2147483647, got 2147483648",
		},
		{
			name:    "max_request_bytes not whole",
			src:     "kafka { embedded = true }\nproxy {\n  max_request_bytes = 2048.5\n}",
			pos:     "3:23",
			summary: "Value out of range",
			detail:  "got 2048.5",
		},
		{
			name:    "max_inflight zero",
			src:     "kafka { embedded = true }\nproxy {\n  max_inflight = 0\n}",
			pos:     "3:18",
			summary: "Value out of range",
			detail:  "proxy.max_inflight must be a whole number from 1 to 1024, got 0",
		},
		{
			name:    "max_inflight too large",
			src:     "kafka { embedded = true }\nproxy {\n  max_inflight = 1025\n}",
			pos:     "3:18",
			summary: "Value out of range",
			detail:  "proxy.max_inflight must be a whole number from 1 to 1024, got 1025",
		},
		{
			name:    "bad shutdown_timeout",
			src:     "kafka { embedded = true }\nproxy {\n  shutdown_timeout = \"5x\"\n}",
			pos:     "3:22",
			summary: "Invalid duration",
			detail:  `invalid duration "5x" for proxy.shutdown_timeout: use Go duration syntax such as "30s" or "5m"`,
		},
		{
			name:    "negative shutdown_timeout",
			src:     "kafka { embedded = true }\nproxy {\n  shutdown_timeout = \"-1s\"\n}",
			pos:     "3:22",
			summary: "Invalid duration",
			detail:  `proxy.shutdown_timeout must not be negative, got "-1s"`,
		},
		{
			name:    "idle_timeout without unit",
			src:     "kafka { embedded = true }\nproxy {\n  idle_timeout = 30\n}",
			pos:     "3:18",
			summary: "Invalid duration",
			detail:  `invalid duration 30 for proxy.idle_timeout: a duration needs a unit and quotes, such as "30s" or "5m"`,
		},
		{
			name:    "negative idle_timeout",
			src:     "kafka { embedded = true }\nproxy {\n  idle_timeout = \"-5m\"\n}",
			pos:     "3:18",
			summary: "Invalid duration",
			detail:  `proxy.idle_timeout must not be negative, got "-5m"; "0s" disables the idle timeout`,
		},

		// admin.
		{
			name:    "admin listen bad",
			src:     "kafka { embedded = true }\nadmin {\n  listen = \"9644\"\n}",
			pos:     "3:12",
			summary: "Invalid address",
			detail:  `admin.listen: invalid address "9644": missing port in address; use host:port such as "127.0.0.1:9644"`,
		},

		// kafka.
		{
			name:    "no kafka block",
			src:     "log {}\n",
			pos:     "1:1",
			summary: "Missing Kafka brokers",
			detail:  "kafka.brokers: at least one broker address is required unless embedded = true",
		},
		{
			name:    "kafka block without brokers",
			src:     "log {}\nkafka {\n  client_id = \"x\"\n}",
			pos:     "2:1",
			summary: "Missing Kafka brokers",
			detail:  `kafka.brokers: at least one broker address is required unless embedded = true: add brokers = ["host:9092"], or set embedded = true to start a development broker`,
		},
		{
			name:    "empty brokers",
			src:     "kafka {\n  brokers = []\n}",
			pos:     "2:13",
			summary: "Missing Kafka brokers",
			detail:  "kafka.brokers: at least one broker address is required unless embedded = true",
		},
		{
			name:    "broker address without port",
			src:     "kafka {\n  brokers = [\"k1:9092\", \"k2\"]\n}",
			pos:     "2:25",
			summary: "Invalid broker address",
			detail:  `kafka.brokers: invalid address "k2": missing port in address; use host:port such as "127.0.0.1:9092"`,
		},
		{
			name:    "broker address without host",
			src:     "kafka {\n  brokers = [\":9092\"]\n}",
			pos:     "2:14",
			summary: "Invalid broker address",
			detail:  `kafka.brokers: invalid address ":9092": the host is empty`,
		},
		{
			name:    "broker port 0 without embedded",
			src:     "kafka {\n  brokers = [\"k1:0\"]\n}",
			pos:     "2:14",
			summary: "Invalid broker address",
			detail:  `port "0" is not a number from 1 to 65535`,
		},
		{
			name:    "embedded with two brokers",
			src:     "kafka {\n  embedded = true\n  brokers = [\"127.0.0.1:19092\", \"127.0.0.1:19093\"]\n}",
			pos:     "3:13",
			summary: "Too many brokers for the embedded broker",
			detail:  "kafka.brokers: with embedded = true give one address, where the embedded broker listens, not 2: remove the others, or set embedded = false to use a real cluster",
		},
		{
			name:    "embedded_partitions zero",
			src:     "kafka {\n  embedded = true\n  embedded_partitions = 0\n}",
			pos:     "3:25",
			summary: "Value out of range",
			detail:  "kafka.embedded_partitions must be a whole number from 1 to 10000, got 0",
		},
		{
			name:    "empty client_id",
			src:     "kafka {\n  embedded = true\n  client_id = \"\"\n}",
			pos:     "3:15",
			summary: "Empty kafka.client_id",
			detail:  `kafka.client_id must not be empty: set a name such as "evproxy", or remove the key to use the default "evproxy"`,
		},
		{
			name:    "bad request_timeout",
			src:     "kafka {\n  embedded = true\n  request_timeout = \"soon\"\n}",
			pos:     "3:21",
			summary: "Invalid duration",
			detail:  `invalid duration "soon" for kafka.request_timeout: use Go duration syntax such as "30s" or "5m"`,
		},
		{
			name:    "zero request_timeout",
			src:     "kafka {\n  embedded = true\n  request_timeout = \"0s\"\n}",
			pos:     "3:21",
			summary: "Invalid duration",
			detail:  `kafka.request_timeout must be at least 1ms, got "0s"`,
		},
		{
			name:    "produce_timeout too long",
			src:     "kafka {\n  embedded = true\n  produce_timeout = \"1000h\"\n}",
			pos:     "3:21",
			summary: "Invalid duration",
			detail:  `kafka.produce_timeout must be at most 596h31m23.647s, got "1000h"`,
		},

		// log.
		{
			name:    "unknown log level",
			src:     "kafka { embedded = true }\nlog {\n  level = \"verbose\"\n}",
			pos:     "3:11",
			summary: "Invalid value",
			detail:  `log.level: unknown value "verbose": use one of "debug", "info", "warn", "error"`,
		},
		{
			name:    "unknown log format",
			src:     "kafka { embedded = true }\nlog {\n  format = \"text\"\n}",
			pos:     "3:12",
			summary: "Invalid value",
			detail:  `log.format: unknown value "text": use one of "json", "console"`,
		},

		// route.
		{
			name:    "route without topics",
			src:     "kafka { embedded = true }\nroute \"orders\" {\n  delivery = \"direct\"\n}",
			pos:     "2:1",
			summary: "Missing route topics",
			detail:  `route "orders": topics must list at least one topic glob, e.g. topics = ["orders.*"]`,
		},
		{
			name:    "route with empty topics",
			src:     "kafka { embedded = true }\nroute \"orders\" {\n  topics = []\n}",
			pos:     "3:12",
			summary: "Missing route topics",
			detail:  `route "orders": topics must list at least one topic glob, e.g. topics = ["orders.*"]`,
		},
		{
			name:    "route with empty topic pattern",
			src:     "kafka { embedded = true }\nroute \"orders\" {\n  topics = [\"orders\", \"\"]\n}",
			pos:     "3:23",
			summary: "Invalid topic pattern",
			detail:  `route "orders": a topic pattern is empty: write a glob such as "orders.*", or remove it`,
		},
		{
			name:    "route with bad glob",
			src:     "kafka { embedded = true }\nroute \"orders\" {\n  topics = [\"orders.[a-\"]\n}",
			pos:     "3:13",
			summary: "Invalid topic pattern",
			detail:  `route "orders": invalid topic pattern "orders.[a-": use path.Match syntax, where * matches any characters, ? one character, [abc] or [a-z] one of a set, and \ escapes the next character`,
		},
		{
			name:    "route with slash in pattern",
			src:     "kafka { embedded = true }\nroute \"orders\" {\n  topics = [\"orders/*\"]\n}",
			pos:     "3:13",
			summary: "Invalid topic pattern",
			detail:  `route "orders": topic pattern "orders/*" never matches, since Kafka topic names cannot contain '/': remove the '/'`,
		},
		{
			name:    "route topics not a list",
			src:     "kafka { embedded = true }\nroute \"orders\" {\n  topics = \"orders\"\n}",
			pos:     "3:12",
			summary: "Invalid value type",
			detail:  `route "orders": topics must be a list of strings such as ["a", "b"], got string`,
		},
		{
			name:    "route with outbox delivery",
			src:     "kafka { embedded = true }\nroute \"orders\" {\n  topics   = [\"orders\"]\n  delivery = \"outbox\"\n}",
			pos:     "4:14",
			summary: "Outbox delivery needs an outbox block",
			detail:  `route "orders": delivery = "outbox" needs an outbox block naming the store: add outbox { database_url = "sqlite:evproxy-outbox.db" }`,
		},
		{
			name:    "outbox without database_url",
			src:     "kafka { embedded = true }\noutbox {\n  batch_size = 10\n}",
			pos:     "2:1",
			summary: "Missing outbox.database_url",
			detail:  `outbox.database_url is required: use "postgres://user@host:5432/db" for PostgreSQL, or "sqlite:evproxy-outbox.db"`,
		},
		{
			name:    "outbox relay_workers above the lanes",
			src:     "kafka { embedded = true }\noutbox {\n  database_url  = \"sqlite:o.db\"\n  relay_workers = 65\n}",
			pos:     "4:19",
			summary: "Value out of range",
			detail:  `outbox.relay_workers must be a whole number from 1 to 64, got 65`,
		},
		{
			name:    "outbox batch_bytes too small",
			src:     "kafka { embedded = true }\noutbox {\n  database_url = \"sqlite:o.db\"\n  batch_bytes  = \"512B\"\n}",
			pos:     "4:18",
			summary: "Size out of range",
			detail:  `outbox.batch_bytes must be from 1KiB to 1GiB, got "512B"`,
		},
		{
			name:    "outbox with unknown store",
			src:     "kafka { embedded = true }\noutbox {\n  database_url = \"mysql://u:secret@h/db\"\n}",
			pos:     "3:18",
			summary: "Invalid outbox.database_url",
			detail:  `unknown store "mysql://u:***@h/db": use "postgres://user@host:5432/db" for PostgreSQL or "sqlite:PATH"`,
		},
		{
			name:    "outbox in memory",
			src:     "kafka { embedded = true }\noutbox {\n  database_url = \"sqlite::memory:\"\n}",
			pos:     "3:18",
			summary: "Invalid outbox.database_url",
			detail:  `an in-memory SQLite store would lose acknowledged records on exit`,
		},
		{
			name:    "outbox schema not an identifier",
			src:     "kafka { embedded = true }\noutbox {\n  database_url = \"postgres://h/db\"\n  schema = \"x; drop\"\n}",
			pos:     "4:12",
			summary: "Invalid outbox.schema",
			detail:  `outbox.schema "x; drop" is not a plain SQL identifier`,
		},
		{
			name:    "outbox lease shorter than two publishes",
			src:     "kafka { embedded = true }\noutbox {\n  database_url = \"postgres://h/db\"\n  publish_timeout = \"10s\"\n  lease_ttl = \"15s\"\n}",
			pos:     "5:15",
			summary: "outbox.lease_ttl too short",
			detail:  `outbox.lease_ttl (15s) must be more than twice outbox.publish_timeout (10s)`,
		},
		{
			name:    "outbox backoff factor below one",
			src:     "kafka { embedded = true }\noutbox {\n  database_url = \"postgres://h/db\"\n  backoff_factor = 0.5\n}",
			pos:     "4:20",
			summary: "Invalid backoff_factor",
			detail:  `outbox.backoff_factor must be a number from 1 to 100, got 0.5`,
		},
		{
			name:    "route retry max delay below first delay",
			src:     "kafka { embedded = true }\noutbox {\n  database_url = \"postgres://h/db\"\n}\nroute \"o\" {\n  topics = [\"o\"]\n  delivery = \"outbox\"\n  retry {\n    retry_delay = \"10m\"\n  }\n}",
			pos:     "9:19",
			summary: "Invalid max_retry_delay",
			detail:  `route "o": retry.max_retry_delay (5m0s) must not be shorter than retry_delay (10m0s)`,
		},
		{
			name:    "priority on a direct route",
			src:     "kafka { embedded = true }\nroute \"o\" {\n  topics = [\"o\"]\n  priority = 1\n}",
			pos:     "4:14",
			summary: "Key needs outbox delivery",
			detail:  `route "o": priority applies to outbox delivery only: remove it, or set delivery = "outbox"`,
		},
		{
			name:    "retry block on a direct route",
			src:     "kafka { embedded = true }\nroute \"o\" {\n  topics = [\"o\"]\n  retry {\n    max_retries = 1\n  }\n}",
			pos:     "4:3",
			summary: "Key needs outbox delivery",
			detail:  `route "o": the retry block applies to outbox delivery only`,
		},
		{
			name:    "unknown ordering",
			src:     "kafka { embedded = true }\noutbox {\n  database_url = \"postgres://h/db\"\n}\nroute \"o\" {\n  topics = [\"o\"]\n  delivery = \"outbox\"\n  ordering = \"loose\"\n}",
			pos:     "8:14",
			summary: "Invalid value",
			detail:  `route "o": ordering: unknown value "loose": use one of "strict", "relaxed"`,
		},
		{
			name:    "route with unknown delivery",
			src:     "kafka { embedded = true }\nroute \"orders\" {\n  topics   = [\"orders\"]\n  delivery = \"sync\"\n}",
			pos:     "4:14",
			summary: "Invalid delivery",
			detail:  `route "orders": unknown delivery "sync": use "direct" or "outbox"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := parseTest(tt.src)
			if err == nil {
				t.Fatalf("parse succeeded with %+v, want an error", cfg)
			}
			if cfg != nil {
				t.Errorf("parse returned a config with an error")
			}
			var de *DiagnosticsError
			if !errors.As(err, &de) {
				t.Fatalf("error is %T, want *DiagnosticsError: %v", err, err)
			}
			if n := len(de.Diags.Errs()); n != 1 {
				t.Errorf("got %d errors, want 1:\n%v", n, err)
			}

			// Error(): "file:line:col: summary; detail".
			wantLine := "config.hcl:" + tt.pos + ": " + tt.summary
			if !strings.Contains(err.Error(), wantLine) || !strings.Contains(err.Error(), tt.detail) {
				t.Errorf("Error() =\n%s\nwant it to contain %q and %q", err, wantLine, tt.detail)
			}

			// WriteDiagnostics: position, summary, source snippet, detail.
			var buf bytes.Buffer
			if err := de.WriteDiagnostics(&buf, false); err != nil {
				t.Fatalf("WriteDiagnostics: %v", err)
			}
			rendered := buf.String()
			line := tt.pos[:strings.IndexByte(tt.pos, ':')]
			for _, want := range []string{
				"config.hcl:" + tt.pos + ": Error: " + tt.summary,
				"on config.hcl line " + line,
				tt.detail,
			} {
				if !strings.Contains(rendered, want) {
					t.Errorf("rendered diagnostics =\n%s\nwant it to contain %q", rendered, want)
				}
			}
		})
	}
}

func TestParseReportsEveryError(t *testing.T) {
	t.Parallel()
	src := `
proxy {
  max_inflight     = 0
  shutdown_timeout = "5x"
}
log { level = "loud" }
route "a" { topics = [] }
`
	_, err := parseTest(src)
	var de *DiagnosticsError
	if !errors.As(err, &de) {
		t.Fatalf("error is %T, want *DiagnosticsError: %v", err, err)
	}
	// In file order, whatever order the checks ran in.
	want := []string{
		"config.hcl:1:1: Missing Kafka brokers",
		"config.hcl:3:22: Value out of range",
		"config.hcl:4:22: Invalid duration",
		"config.hcl:6:15: Invalid value",
		"config.hcl:7:22: Missing route topics",
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d diagnostics, want %d:\n%s", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w+"; ") {
			t.Errorf("diagnostic %d = %q, want prefix %q", i, lines[i], w)
		}
	}
}

func TestWriteDiagnosticsColor(t *testing.T) {
	t.Parallel()
	_, err := parseTest("kafka {\n  embedded = maybe\n}")
	var de *DiagnosticsError
	if !errors.As(err, &de) {
		t.Fatalf("error is %T, want *DiagnosticsError: %v", err, err)
	}
	for _, color := range []bool{false, true} {
		var buf bytes.Buffer
		if err := de.WriteDiagnostics(&buf, color); err != nil {
			t.Fatalf("WriteDiagnostics: %v", err)
		}
		if got := strings.Contains(buf.String(), "\x1b["); got != color {
			t.Errorf("color=%v: output has escape codes: %v\n%q", color, got, buf.String())
		}
		if !strings.Contains(buf.String(), "   2:   embedded = ") || !strings.Contains(buf.String(), "maybe") {
			t.Errorf("color=%v: output lacks the source line:\n%s", color, buf.String())
		}
	}
	if err := de.WriteDiagnostics(failingWriter{}, false); err == nil {
		t.Error("WriteDiagnostics to a failing writer returned nil")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	good := filepath.Join(dir, "good.hcl")
	if err := os.WriteFile(good, []byte("kafka { embedded = true }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(good)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !reflect.DeepEqual(cfg, defaults()) {
		t.Errorf("Load = %+v, want defaults %+v", cfg, defaults())
	}

	bad := filepath.Join(dir, "bad.hcl")
	if err := os.WriteFile(bad, []byte("kafka {\n  embedded = 1\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	var de *DiagnosticsError
	if !errors.As(err, &de) {
		t.Fatalf("Load(bad) error is %T, want *DiagnosticsError: %v", err, err)
	}
	if want := bad + ":2:14: Invalid value type; kafka.embedded must be true or false, got 1"; err.Error() != want {
		t.Errorf("Load(bad) = %q, want %q", err, want)
	}
	if de.Files[bad] == nil {
		t.Errorf("Files lacks %s", bad)
	}

	missing := filepath.Join(dir, "missing.hcl")
	_, err = Load(missing)
	if !errors.As(err, &de) {
		t.Fatalf("Load(missing) error is %T, want *DiagnosticsError: %v", err, err)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want it to match fs.ErrNotExist", err)
	}
	if want := "Cannot read configuration file; open " + missing + ": no such file or directory: check the path of the configuration file"; err.Error() != want {
		t.Errorf("Load(missing) = %q, want %q", err, want)
	}
	if err := de.WriteDiagnostics(io.Discard, false); err != nil {
		t.Errorf("WriteDiagnostics: %v", err)
	}
}

// checkParseResult checks the invariant of parse: a Config, or a
// *DiagnosticsError with at least one error that can be printed.
func checkParseResult(t *testing.T, cfg *Config, err error) {
	t.Helper()
	if err == nil {
		if cfg == nil {
			t.Fatal("parse returned neither a config nor an error")
		}
		return
	}
	if cfg != nil {
		t.Fatalf("parse returned a config and an error: %v", err)
	}
	var de *DiagnosticsError
	if !errors.As(err, &de) {
		t.Fatalf("error is %T, want *DiagnosticsError: %v", err, err)
	}
	if !de.Diags.HasErrors() {
		t.Fatalf("DiagnosticsError without errors: %v", err)
	}
	if err.Error() == "" {
		t.Fatal("empty error message")
	}
	if err := de.WriteDiagnostics(io.Discard, false); err != nil {
		t.Fatalf("WriteDiagnostics: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	seeds := []string{
		"",
		"kafka { embedded = true }",
		`kafka { brokers = [env("BROKER"), env("NOT_SET", "k2:9092")] }`,
		`
proxy {
  listen            = "0.0.0.0:19092"
  advertised        = "proxy.example.com:19092"
  max_request_bytes = 2048
  max_inflight      = 1
  shutdown_timeout  = "1m30s"
  idle_timeout      = "0s"
}
admin { listen = "" }
kafka {
  brokers             = ["k1:9092", "[::1]:9093"]
  embedded            = false
  embedded_partitions = 12
  client_id           = "${env("CLIENT_ID")}-1"
  request_timeout     = "5s"
  produce_timeout     = "2m"
}
log {
  level  = "debug"
  format = "console"
}
route "orders" {
  topics   = ["orders", "orders.*"]
  delivery = "direct"
}
route "default" { topics = ["*"] }
`,
		"kafka {\n  embedded = \n}",
		"proxy { shutdown_timeout = \"5x\" }\nroute \"a\" { topics = [\"[\"] }\nroute \"a\" {}",
		"kafka { brokers = [1, null, true] }",
		`kafka { embedded = env("A", "b", "c") }`,
		"kafka { embedded = true }\nproxy { max_request_bytes = 1e100000 }",
		"kafka { embedded = true }\nproxy { max_inflight = -(1/0) }",
		"kafka { embedded = !!!!true ? 1 : 2 }",
		`kafka { client_id = "%{ for x in [1,2] }${x}%{ endfor }" }`,
		"kafka { client_id = <<EOT\nid\nEOT\n}",
		`route "x" { topics = [for t in ["a", "b"] : "${t}.*"] }`,
		"unknown {}\nproxy \"label\" {}\nlog { level = {a = 1} }",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, err := parse(src, "fuzz.hcl", lookupTestEnv)
		checkParseResult(t, cfg, err)
	})
}
