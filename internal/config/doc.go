// Package config loads the HCL configuration file of evproxy.
//
// [Load] reads a file and [Parse] parses bytes; both return a [Config] with
// every default filled in and every value validated, or a
// [*DiagnosticsError] that lists every problem with its file:line:col and
// says how to fix it. `evproxy validate` prints those diagnostics with
// [DiagnosticsError.WriteDiagnostics]; `evproxy run` refuses to start on them.
//
// # File layout
//
// Every block is optional and the singleton blocks (proxy, admin, kafka, log)
// may appear at most once. Route blocks are labeled, uniquely named, and kept
// in file order:
//
//	proxy {
//	  listen            = "127.0.0.1:9092"
//	  advertised        = "127.0.0.1:9092"
//	  max_request_bytes = 104857600
//	  max_inflight      = 32
//	  shutdown_timeout  = "30s"
//	  idle_timeout      = "10m"
//	}
//	admin { listen = "127.0.0.1:9644" }
//	kafka {
//	  brokers             = ["127.0.0.1:19092"]
//	  embedded            = true
//	  embedded_partitions = 3
//	  client_id           = "evproxy"
//	  request_timeout     = "30s"
//	  produce_timeout     = "30s"
//	}
//	log {
//	  level  = "info"
//	  format = "json"
//	}
//	route "orders" {
//	  topics   = ["orders", "orders.*"]
//	  delivery = "direct"
//	}
//	route "default" { topics = ["*"] }
//
// HCL allows a block on one line only when it holds a single key. Unknown
// blocks and keys are errors. The full reference, with the default
// and meaning of every key, is docs/configuration.md.
//
// # Environment variables
//
// Every expression may call env("NAME") or env("NAME", "default"). env
// returns the variable's value (an empty value counts as set), else the
// default; a variable that is not set and has no default is an error that
// points at the call. Keep secrets out of the file this way:
//
//	kafka { brokers = [env("KAFKA_BROKER", "127.0.0.1:19092")] }
//
// # Notes
//
// The package only describes configuration: routing by topic (first matching
// route in file order wins) lives in internal/pipeline, and the proxy refuses
// a topic that matches no route.
package config
