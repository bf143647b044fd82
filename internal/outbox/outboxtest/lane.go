package outboxtest

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"

	"github.com/evproxy/evproxy/internal/outbox"
)

// Lane is the lane of a row of topic and key: the first four bytes of
// md5(topic + lowercase hex of key), big endian, modulo outbox.Lanes. It is
// what the PostgreSQL schema computes in a generated column; a nil key and
// an empty key have the same lane.
func Lane(topic string, key []byte) int32 {
	sum := md5.Sum([]byte(topic + hex.EncodeToString(key)))
	return int32(binary.BigEndian.Uint32(sum[:4]) % outbox.Lanes)
}
