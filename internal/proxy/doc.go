// Package proxy is evproxy's Kafka wire server: it accepts producer
// connections, reads request frames, answers ApiVersions, Metadata and
// InitProducerId itself and hands Produce requests to the upstream.
//
// # Connections
//
// Each connection has a reader goroutine and a writer goroutine. The reader
// decodes one request at a time and starts its work; the writer answers in
// request order, waiting for each request's work to finish. Up to
// MaxInflight requests of one connection are in progress at once
// (pipelining); the reader stops reading when that many are pending.
//
// A connection is closed, with one log line saying why, on: a frame larger
// than MaxRequestBytes or smaller than a request header, a truncated frame,
// an unknown API key, an API or version evproxy does not implement, or a
// request body that does not decode. Other connections are unaffected.
//
// # Idempotent producers
//
// evproxy issues producer ids itself (InitProducerId) and checks each
// idempotent batch's sequence against the batches it accepted for that
// producer and partition: a retried batch that was already written is
// answered from memory with its original offset and is not forwarded again;
// a gap is answered with OUT_OF_ORDER_SEQUENCE_NUMBER.
package proxy
