package upstream

import (
	"encoding/binary"
	"net"
)

// produceFrame is a Produce request encoded for writev: meta holds every
// byte evproxy writes itself (size, header, topic and partition framing),
// bufs interleaves slices of meta with the batches' own bytes, which are
// written from where they already are (the producer's request frame)
// instead of being copied.
type produceFrame struct {
	meta []byte
	bufs net.Buffers
	// cuts records, for each batch, the offset in meta where it goes.
	cuts []int
}

// appendString appends a Kafka string (compact when flexible).
func appendString(b []byte, s string, flexible bool) []byte {
	if flexible {
		b = binary.AppendUvarint(b, uint64(len(s))+1)
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	}
	return append(b, s...)
}

// appendArrayLen appends an array length (compact when flexible).
func appendArrayLen(b []byte, n int, flexible bool) []byte {
	if flexible {
		return binary.AppendUvarint(b, uint64(n)+1)
	}
	return binary.BigEndian.AppendUint32(b, uint32(n))
}

// encodeProduce encodes a Produce request (v3-12) for batches, grouped by
// topic in order of first appearance, with acks=all. It reuses f's memory.
func encodeProduce(f *produceFrame, version int16, corr int32, clientID string, timeoutMillis int32, batches []*Batch) {
	flexible := version >= 9
	m := f.meta[:0]
	m = append(m, 0, 0, 0, 0) // size, set below
	m = binary.BigEndian.AppendUint16(m, 0)
	m = binary.BigEndian.AppendUint16(m, uint16(version))
	m = binary.BigEndian.AppendUint32(m, uint32(corr))
	m = binary.BigEndian.AppendUint16(m, uint16(len(clientID))) // header client id is never compact
	m = append(m, clientID...)
	if flexible {
		m = append(m, 0) // header tags
		m = append(m, 0) // null compact transactional id
	} else {
		m = binary.BigEndian.AppendUint16(m, 0xffff) // null transactional id
	}
	m = binary.BigEndian.AppendUint16(m, 0xffff) // acks -1
	m = binary.BigEndian.AppendUint32(m, uint32(timeoutMillis))

	// Topics in order of first appearance, each with its batches.
	type topicSpan struct {
		name  string
		count int
	}
	var topics []topicSpan
	order := make([]int, 0, len(batches)) // batch indexes grouped by topic
	for i, b := range batches {
		found := false
		for j := range topics {
			if topics[j].name == b.Topic {
				topics[j].count++
				found = true
				break
			}
		}
		if !found {
			topics = append(topics, topicSpan{b.Topic, 1})
		}
		_ = i
	}
	for _, t := range topics {
		for i, b := range batches {
			if b.Topic == t.name {
				order = append(order, i)
			}
		}
	}
	m = appendArrayLen(m, len(topics), flexible)
	f.cuts = f.cuts[:0]
	total := 0
	k := 0
	for _, t := range topics {
		m = appendString(m, t.name, flexible)
		m = appendArrayLen(m, t.count, flexible)
		for n := 0; n < t.count; n++ {
			b := batches[order[k]]
			k++
			m = binary.BigEndian.AppendUint32(m, uint32(b.Partition))
			if flexible {
				m = binary.AppendUvarint(m, uint64(len(b.Data))+1)
			} else {
				m = binary.BigEndian.AppendUint32(m, uint32(len(b.Data)))
			}
			f.cuts = append(f.cuts, len(m))
			total += len(b.Data)
			if flexible {
				m = append(m, 0) // partition tags
			}
		}
		if flexible {
			m = append(m, 0) // topic tags
		}
	}
	if flexible {
		m = append(m, 0) // request tags
	}
	binary.BigEndian.PutUint32(m, uint32(len(m)+total-4))
	f.meta = m
	f.bufs = f.bufs[:0]
	prev := 0
	for i, cut := range f.cuts {
		f.bufs = append(f.bufs, m[prev:cut], batches[order[i]].Data)
		prev = cut
	}
	f.bufs = append(f.bufs, m[prev:])
}
