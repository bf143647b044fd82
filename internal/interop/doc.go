// Package interop holds interop tests: real Kafka clients (kcat and
// confluent-kafka-python on librdkafka, kafkajs, sarama, kafka-go and
// franz-go) produce through evproxy, and a franz-go consumer reads the
// upstream cluster directly to check that every record arrived byte for
// byte: keys, values, headers, partitions and per-key order.
//
// The external clients come from .ci/run: the Debian packages kcat and
// python3-confluent-kafka (run with /usr/bin/python3), and kafkajs from
// testdata/node (npm ci). A missing client skips its test, or fails it when
// the CI environment variable is set.
//
// The package has no non-test code.
package interop
