package outbox

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
)

// LaneOf is the lane of a row of topic and key: the first four bytes of
// md5(topic + lowercase hex of key), big endian, modulo Lanes. outboxpgx
// computes the same in SQL (the outbox table's generated lane column);
// outboxsqlite computes it with LaneOf. A nil and an empty key have the
// same lane (they are still different keys for ordering).
func LaneOf(topic string, key []byte) int32 {
	buf := make([]byte, len(topic)+hex.EncodedLen(len(key)))
	n := copy(buf, topic)
	hex.Encode(buf[n:], key)
	sum := md5.Sum(buf)
	return int32(binary.BigEndian.Uint32(sum[:4]) % Lanes)
}
