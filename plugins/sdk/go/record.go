package evp

// Header is a Kafka record header. A nil Value is a null header value.
type Header struct {
	Name  string
	Value []byte
}

// Record is one input record of a batch. Nil Key or Value means null; an
// empty non-nil slice is an empty (non-null) key or value.
//
// The Key, Value and header values of the records passed to
// [Plugin.Process] point into the input buffer, which the next batch
// overwrites: they are valid until Process returns. Use [Record.Clone] to
// keep a record longer. Verdicts may use them freely: they are encoded
// before Process's buffer is reused.
type Record struct {
	Topic     string
	Partition int32
	Timestamp int64 // Unix milliseconds
	Key       []byte
	Value     []byte
	Headers   []Header
}

// Header returns the value of the first header named name.
func (r *Record) Header(name string) ([]byte, bool) {
	for i := range r.Headers {
		if r.Headers[i].Name == name {
			return r.Headers[i].Value, true
		}
	}
	return nil, false
}

// SetHeader sets header name to v: the first header of that name gets the
// value and any others are removed; if there is none, the header is added
// at the end. It changes r.Headers in place.
func (r *Record) SetHeader(name string, v []byte) {
	found := false
	kept := r.Headers[:0]
	for _, h := range r.Headers {
		if h.Name == name {
			if found {
				continue
			}
			found = true
			h.Value = v
		}
		kept = append(kept, h)
	}
	clear(r.Headers[len(kept):])
	r.Headers = kept
	if !found {
		r.Headers = append(r.Headers, Header{Name: name, Value: v})
	}
}

// DelHeader removes every header named name, in place.
func (r *Record) DelHeader(name string) {
	kept := r.Headers[:0]
	for _, h := range r.Headers {
		if h.Name != name {
			kept = append(kept, h)
		}
	}
	clear(r.Headers[len(kept):])
	r.Headers = kept
}

// Clone returns a deep copy of r that shares no memory with the input
// buffer.
func (r *Record) Clone() Record {
	c := *r
	c.Key = cloneBytes(r.Key)
	c.Value = cloneBytes(r.Value)
	if r.Headers != nil {
		c.Headers = make([]Header, len(r.Headers))
		for i, h := range r.Headers {
			c.Headers[i] = Header{Name: h.Name, Value: cloneBytes(h.Value)}
		}
	}
	return c
}

// cloneBytes copies b, keeping nil nil and empty empty.
func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}
