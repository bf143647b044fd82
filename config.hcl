# evproxy configuration. Reference: docs/configuration.md
#
# This file runs on a fresh machine with nothing else installed: the embedded
# development broker stands in for Kafka. For production, remove
# `embedded = true` and list your brokers.

proxy {
  listen            = "127.0.0.1:9092"   # where producers connect
  advertised        = "127.0.0.1:9092"   # host:port returned in Metadata
  max_request_bytes = 104857600
}

admin {
  listen = "127.0.0.1:9644"              # /metrics /healthz /readyz
}

kafka {
  brokers  = ["127.0.0.1:19092"]
  embedded = true                        # in-process development broker; development only
}

log {
  level  = "info"
  format = "json"                        # or "console"; `evproxy run --log-format console`
}

dead_letter {
  enabled      = true
  topic_suffix = ".failed"                # rejected records of topic T go to T.failed
}

# The transactional outbox (docs/outbox.md): records of outbox routes are
# committed here before the producer is acknowledged, then relayed to Kafka.
# The embedded store is a local file, for one process; production uses
# database_url = "postgres://user@host:5432/db" (password via env("...")).
outbox {
  database_url = "sqlite:.evproxy/outbox.db"
}

# WASM plugins (docs/plugins.md). Build the examples with `make plugins`, then
# uncomment these blocks and the route below.
#
# plugin "validate" {
#   path         = "plugins/examples/validate/validate.wasm"
#   config       = { required = ["id"] }
#   memory_limit = "64MiB"
#   timeout      = "100ms"               # per batch call
# }
# plugin "enrich" {
#   path   = "plugins/examples/enrich/enrich.wasm"
#   config = { source = "checkout" }
# }
#
# route "orders" {
#   topics    = ["orders", "orders.*"]
#   plugins   = ["validate", "enrich"]   # applied in order
#   on_reject = "dead_letter"            # or "error" / "drop"
# }

# Records of these topics go through the outbox: durable before the ack.
route "payments" {
  topics   = ["payments", "payments.*"]
  delivery = "outbox"
}

# First matching route wins, in file order. A topic no route matches is
# refused with TOPIC_AUTHORIZATION_FAILED.
route "default" {
  topics   = ["*"]
  delivery = "direct"
}
