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

# First matching route wins, in file order. A topic no route matches is
# refused with TOPIC_AUTHORIZATION_FAILED.
route "default" {
  topics   = ["*"]
  delivery = "direct"
}
