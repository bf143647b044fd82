package config

import "time"

// Defaults of keys a file leaves out. They are documented on the fields of
// the config structs and in docs/configuration.md; keep the three in step.
const (
	defaultProxyListen        = "127.0.0.1:9092"
	defaultMaxRequestBytes    = 104857600 // 100 MiB
	minMaxRequestBytes        = 1024
	defaultMaxInflight        = 32
	maxMaxInflight            = 1024
	defaultShutdownTimeout    = 30 * time.Second
	defaultIdleTimeout        = 10 * time.Minute
	defaultAdminListen        = "127.0.0.1:9644"
	defaultEmbeddedBroker     = "127.0.0.1:19092"
	defaultEmbeddedPartitions = 3
	maxEmbeddedPartitions     = 10000
	defaultClientID           = "evproxy"
	defaultRequestTimeout     = 30 * time.Second
	defaultProduceTimeout     = 30 * time.Second
	defaultLogLevel           = "info"
	defaultLogFormat          = "json"
	defaultDelivery           = DeliveryDirect
	defaultOnReject           = OnRejectDeadLetter
	defaultTopicSuffix        = ".failed"
	defaultPluginMemory       = 64 << 20
	defaultPluginTimeout      = 100 * time.Millisecond
)

// OnReject values of [RouteConfig.OnReject]: what happens to a record a
// plugin rejects.
const (
	// OnRejectDeadLetter sends it to the dead letter topic (the default).
	OnRejectDeadLetter = "dead_letter"
	// OnRejectError fails the producer's batch with INVALID_RECORD and the
	// reason.
	OnRejectError = "error"
	// OnRejectDrop discards it (counted in metrics).
	OnRejectDrop = "drop"
)

// Delivery values of [RouteConfig.Delivery].
const (
	// DeliveryDirect forwards records to Kafka and acknowledges the producer
	// after Kafka acknowledged them (acks=all). It is the default.
	DeliveryDirect = "direct"
	// DeliveryOutbox commits records to the outbox store before
	// acknowledging; the relay publishes them to Kafka. It needs an outbox
	// block.
	DeliveryOutbox = "outbox"
)

// Config is the whole evproxy configuration file. [Parse] and [Load] return
// it with every default filled in and every value validated.
type Config struct {
	// Proxy configures the Kafka-protocol listener producers connect to
	// (block proxy).
	Proxy ProxyConfig
	// Admin configures the HTTP admin server (block admin).
	Admin AdminConfig
	// Kafka configures the upstream Kafka cluster (block kafka).
	Kafka KafkaConfig
	// Log configures logging (block log).
	Log LogConfig
	// DeadLetter configures dead-letter topics (block dead_letter).
	DeadLetter DeadLetterConfig
	// Outbox configures the transactional outbox and its relay (block
	// outbox).
	Outbox OutboxConfig
	// Plugins are the plugin blocks in file order.
	Plugins []PluginConfig
	// Routes are the route blocks in file order; the first route whose
	// topics match a record's topic wins. It is empty when the file has no
	// route block, and then every topic is refused.
	Routes []RouteConfig
}

// ProxyConfig is the proxy block: the Kafka-protocol listener.
type ProxyConfig struct {
	// Listen is the host:port producers connect to (key listen). Defaults to
	// "127.0.0.1:9092". An empty host or 0.0.0.0 binds all interfaces.
	Listen string
	// Advertised is the host:port returned to clients in Metadata responses
	// (key advertised). Defaults to Listen; it is required when Listen binds
	// all interfaces, since clients cannot connect to 0.0.0.0.
	Advertised string
	// MaxRequestBytes is the largest request frame accepted, in bytes
	// (key max_request_bytes). Defaults to 104857600; at least 1024.
	MaxRequestBytes int32
	// MaxInflight is how many pipelined requests of one connection may be
	// in flight at once (key max_inflight). Defaults to 32; 1 to 1024.
	MaxInflight int
	// ShutdownTimeout is how long SIGTERM waits for in-flight requests
	// (key shutdown_timeout). Defaults to 30s; never negative.
	ShutdownTimeout time.Duration
	// IdleTimeout closes client connections idle this long
	// (key idle_timeout). Defaults to 10m; 0 disables it.
	IdleTimeout time.Duration
}

// AdminConfig is the admin block: the HTTP server for /metrics, /healthz,
// /readyz and the admin API.
type AdminConfig struct {
	// Listen is the host:port of the admin server (key listen). Defaults to
	// "127.0.0.1:9644"; "" disables the admin server.
	Listen string
}

// KafkaConfig is the kafka block: the upstream cluster records go to.
type KafkaConfig struct {
	// Brokers are the seed broker addresses, host:port (key brokers).
	// Required unless Embedded. With Embedded it holds exactly one address,
	// where the embedded broker listens, and defaults to "127.0.0.1:19092".
	Brokers []string
	// Embedded starts an in-process development broker (kfake) on
	// Brokers[0] (key embedded). Defaults to false. Development only.
	Embedded bool
	// EmbeddedPartitions is the partition count of topics the embedded
	// broker auto-creates (key embedded_partitions). Defaults to 3; 1 to
	// 10000.
	EmbeddedPartitions int32
	// ClientID is the Kafka client id evproxy uses upstream
	// (key client_id). Defaults to "evproxy"; never empty.
	ClientID string
	// RequestTimeout bounds each upstream request (key request_timeout).
	// Defaults to 30s; at least 1ms.
	RequestTimeout time.Duration
	// ProduceTimeout is how long a forwarded produce may wait for the
	// upstream (key produce_timeout). Defaults to 30s; from 1ms to
	// 2147483647ms, the range of Kafka's produce timeout.
	ProduceTimeout time.Duration
}

// LogConfig is the log block.
type LogConfig struct {
	// Level is the lowest level logged: "debug", "info", "warn" or "error"
	// (key level). Defaults to "info".
	Level string
	// Format is "json" (one object per line) or "console" (human-readable)
	// (key format). Defaults to "json".
	Format string
}

// RouteConfig is one route "name" { } block.
type RouteConfig struct {
	// Name is the block label, unique among routes and never empty.
	Name string
	// Topics are globs in path.Match syntax matched against the whole topic
	// name (key topics); '*' also matches dots, since topic names have no
	// '/'. At least one; each is a valid, non-empty pattern.
	Topics []string
	// Delivery is how records of this route reach Kafka (key delivery):
	// [DeliveryDirect] (the default) or [DeliveryOutbox].
	Delivery string
	// EventTypes are globs matched against a record's event type
	// (key event_types). Defaults to ["*"]: every event type.
	EventTypes []string
	// EventTypeFrom is a JSON pointer (RFC 6901) into the record value
	// giving its event type when no ce_type or event_type header does
	// (key event_type_from); "" means the topic name is the event type.
	EventTypeFrom string
	// Plugins name plugin blocks, applied in order (key plugins).
	Plugins []string
	// OnReject is what happens to records a plugin rejects (key
	// on_reject): [OnRejectDeadLetter] (default), [OnRejectError] or
	// [OnRejectDrop].
	OnReject string
	// Priority orders relaying of outbox routes: lower numbers first (key
	// priority). Defaults to 0. It never reorders records of one (topic,
	// key).
	Priority int32
	// Ordering is what a record waiting for a retry does to later records
	// of its (topic, key) on an outbox route (key ordering):
	// [OrderingStrict] (default) or [OrderingRelaxed].
	Ordering string
	// Retry is the route's retry policy: the outbox block's, overridden by
	// the keys of the route's retry block.
	Retry RetryPolicy
}

// DeadLetterConfig is the dead_letter block.
type DeadLetterConfig struct {
	// Enabled sends dead letters to "<topic><TopicSuffix>" (key enabled).
	// Defaults to true. When false, on_reject = "dead_letter" drops the
	// record and logs it.
	Enabled bool
	// TopicSuffix is appended to a record's topic to name its dead-letter
	// topic (key topic_suffix). Defaults to ".failed"; never empty.
	TopicSuffix string
}

// PluginConfig is one plugin "name" { } block.
type PluginConfig struct {
	// Name is the block label; routes refer to the plugin by it.
	Name string
	// Path is the .wasm file (key path), relative to the configuration
	// file's directory unless absolute. It must exist.
	Path string
	// Config is the plugin's configuration (key config, any HCL value)
	// encoded as JSON; "{}" when absent.
	Config []byte
	// MemoryLimit is the most linear memory an instance may have, in bytes
	// (key memory_limit, e.g. "64MiB"). Defaults to 64 MiB.
	MemoryLimit uint64
	// Timeout bounds each batch call (key timeout). Defaults to 100ms;
	// "0s" disables it (faster guest loops, but nothing stops a runaway
	// plugin).
	Timeout time.Duration
	// Tables maps lookup-table names to JSON files of string values (key
	// tables), paths resolved like Path.
	Tables map[string]string
}
