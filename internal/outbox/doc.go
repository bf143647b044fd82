// Package outbox is evproxy's transactional outbox: records of outbox routes
// are committed to a database before the producer is acknowledged, and a
// relay publishes them to Kafka in order per (topic, key), with retries,
// a circuit breaker and dead letters.
//
// The database is behind Store, implemented by outboxpgx (PostgreSQL, for
// production and several evproxy processes) and outboxsqlite (an embedded
// single-process store for development). No SQL lives outside those
// drivers; outboxtest holds the conformance suite both pass.
//
// Ordering: every row has a lane, a hash of its topic and key. A relay
// process leases lanes (LaneAcquire) and only claims rows of lanes it
// holds, so one (topic, key) is relayed by one process at a time. Within
// its lanes a claim never returns a row ahead of an earlier pending row of
// the same (topic, key) (OutboxClaimBatch), and the relay publishes a
// claimed batch before claiming the next one.
package outbox
