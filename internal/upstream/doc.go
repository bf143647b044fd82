// Package upstream talks to the Kafka cluster evproxy fronts.
//
// It has two paths. Control requests (Metadata, InitProducerId, topic
// creation, readiness pings) go through a franz-go kgo.Client. Produce
// requests go through a lower-level path of our own: one pipelined TCP
// connection per upstream broker carrying raw v2 record batches, so a batch
// a producer sent is forwarded without being decoded, decompressed or
// re-compressed. Benchmarks (docs/benchmarks.md) chose this path over
// re-producing every record through kgo.
//
// # Idempotence
//
// evproxy is one idempotent producer towards the upstream: it holds one
// upstream producer id and numbers the batches it forwards per partition,
// rewriting each batch's producer id, epoch and base sequence (and its CRC)
// just before the batch is written to the broker connection. Batches for one
// partition are numbered and written under one lock, so the upstream sees
// them in sequence order, and a failed batch makes every later in-flight
// batch of that partition fail with it instead of overtaking it.
//
// When a batch fails with an error that says it was not written, the
// partition's next sequence rolls back to that batch's and a new generation
// starts. When the outcome is unknown (the connection broke, the request
// timed out), the producer id is replaced, which resets every partition.
package upstream
