// Package outboxe2e holds end-to-end tests of outbox delivery: producers
// publish through a running evproxy (the real App, configured from HCL)
// whose outbox is a real PostgreSQL database (TEST_DATABASE_URL, default
// postgres://postgres@127.0.0.1:5432/test) or the embedded SQLite store, and
// the relay publishes to a kfake cluster over TCP, where the tests read
// what arrived. Each test uses its own PostgreSQL schema.
package outboxe2e
