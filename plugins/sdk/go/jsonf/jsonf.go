// Package jsonf reads and edits JSON documents without parsing them into
// maps: a small scanner finds a field's raw bytes, checks that a value is an
// object, and splices a field in, returning new bytes. It is meant for
// plugins compiled to WebAssembly, where encoding/json costs around 100 µs
// per record. On a 420-byte event (BenchmarkGet) jsonf reads a field in
// about 0.4 µs natively and 5 µs inside a Go guest, 15 to 20 times less
// than decoding it with encoding/json, and allocates nothing.
//
// # Semantics
//
// jsonf agrees with encoding/json on every document:
//
//   - A document is accepted exactly when [encoding/json.Valid] accepts it
//     (RFC 8259 grammar, surrounding whitespace allowed, nesting up to
//     [MaxDepth]); every reading function checks the whole document, so a
//     truncated or corrupt value is never half-read.
//   - Keys are compared after decoding (escapes resolved, invalid UTF-8 and
//     unpaired surrogates read as U+FFFD), exactly as encoding/json compares
//     map keys.
//   - With duplicate keys the last one wins, as in encoding/json,
//     JavaScript and Python. [Set] replaces every occurrence, so no reader
//     sees the old value.
//
// Raw values are sub-slices of the input: they are valid as long as the
// input is, and cost no allocation.
//
// # Example
//
//	region, ok := jsonf.GetString(value, "customer", "region")
//	if jsonf.IsObject(value) {
//		value, err = jsonf.SetString(value, "source", "checkout")
//	}
package jsonf

import "errors"

var (
	// ErrNotObject is returned when a document that must be an object is not
	// one (it may still be valid JSON).
	ErrNotObject = errors.New("jsonf: not a JSON object")
	// ErrNotArray is returned when a document that must be an array is not
	// one (it may still be valid JSON).
	ErrNotArray = errors.New("jsonf: not a JSON array")
	// ErrInvalid is returned for bytes that are not valid JSON.
	ErrInvalid = errors.New("jsonf: invalid JSON")
)

// Kind is the type of a JSON value.
type Kind uint8

// The kinds of JSON values.
const (
	Invalid Kind = iota
	Null
	Bool
	Number
	String
	Array
	Object
)

var kindNames = [...]string{"invalid", "null", "bool", "number", "string", "array", "object"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "invalid"
}

// KindOf returns the kind of the valid value raw (as returned by [Get]) from
// its first byte; it does not check the rest (use [Valid] for that).
func KindOf(raw []byte) Kind {
	raw = trimSpace(raw)
	if len(raw) == 0 {
		return Invalid
	}
	switch c := raw[0]; {
	case c == '{':
		return Object
	case c == '[':
		return Array
	case c == '"':
		return String
	case c == 't' || c == 'f':
		return Bool
	case c == 'n':
		return Null
	case c == '-' || '0' <= c && c <= '9':
		return Number
	}
	return Invalid
}

// Valid reports whether data is one valid JSON value, optionally
// surrounded by whitespace. It agrees with encoding/json.Valid.
func Valid(data []byte) bool {
	end, ok := skipValue(data, skipSpace(data, 0), 0)
	return ok && skipSpace(data, end) == len(data)
}

// IsObject reports whether data is one valid JSON object, optionally
// surrounded by whitespace.
func IsObject(data []byte) bool {
	i := skipSpace(data, 0)
	return i < len(data) && data[i] == '{' && Valid(data)
}

// Get returns the raw bytes of the value at path in the JSON object data:
// path[0] names a field of data, path[1] a field of that field's object
// value, and so on. ok is false when data is not a valid JSON object, when a
// field is missing or when a step of the path is not an object. With an
// empty path Get returns data itself, trimmed, if it is valid JSON.
func Get(data []byte, path ...string) (raw []byte, ok bool) {
	if len(path) == 0 {
		if !Valid(data) {
			return nil, false
		}
		return trimSpace(data), true
	}
	cur := data
	for _, name := range path {
		var ok bool
		if cur, ok = field(cur, name); !ok {
			return nil, false
		}
	}
	return cur, true
}

// field is Get with one name, written as one loop over locals rather than
// with an Iter: in a Go WebAssembly guest that is markedly faster.
func field(b []byte, name string) (raw []byte, found bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil, false
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return nil, false
		}
		end, plain, ok := skipString(b, i)
		if !ok {
			return nil, false
		}
		key := b[i+1 : end-1]
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return nil, false
		}
		i = skipSpace(b, i+1)
		start := i
		if i, ok = skipValue(b, i, 1); !ok {
			return nil, false
		}
		if keyIs(key, plain, name) {
			raw, found = b[start:i], true
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return nil, false
		}
		if b[i] == '}' {
			break
		}
		if b[i] != ',' {
			return nil, false
		}
		i = skipSpace(b, i+1)
	}
	if skipSpace(b, i+1) != len(b) {
		return nil, false
	}
	return raw, found
}

// GetString returns the text of the string at path (see [Get]); ok is false
// if there is no value there or it is not a string. It allocates the
// result; use Get and [Unquote] to avoid that.
func GetString(data []byte, path ...string) (string, bool) {
	raw, ok := Get(data, path...)
	if !ok || raw[0] != '"' {
		return "", false
	}
	text, _ := Unquote(raw)
	return string(text), true
}

// Has reports whether the object data has the field name (whatever its
// value, null included). It is false when data is not a valid JSON object.
func Has(data []byte, name string) bool {
	_, ok := Get(data, name)
	return ok
}

// Iter walks the members of an object ([Members]) or the elements of an
// array ([Elements]), checking the syntax as it goes:
//
//	it := jsonf.Members(data)
//	for it.Next() {
//		use(it.Key(), it.Value())
//	}
//	if err := it.Err(); err != nil { ... } // data was not a valid object
//
// The zero Iter yields nothing. An Iter is a value: it allocates nothing
// unless a key needs decoding and is longer than 128 bytes.
type Iter struct {
	data     []byte
	array    bool
	state    uint8 // iterStart, iterRunning, iterDone
	i        int   // where scanning resumes
	key      []byte
	keyPlain bool
	valStart int
	close    int // index of the closing bracket once done
	count    int
	err      error
}

const (
	iterStart = iota
	iterRunning
	iterDone
)

// Members returns an iterator over the members of the JSON object data.
func Members(data []byte) Iter { return Iter{data: data} }

// Elements returns an iterator over the elements of the JSON array data.
func Elements(data []byte) Iter { return Iter{data: data, array: true} }

// Next advances to the next member or element; it returns false at the end
// or on a syntax error (see [Iter.Err]).
func (it *Iter) Next() bool {
	b, i := it.data, it.i
	open, closing := byte('{'), byte('}')
	if it.array {
		open, closing = '[', ']'
	}
	switch it.state {
	case iterStart:
		i = skipSpace(b, 0)
		if i >= len(b) || b[i] != open {
			if it.array {
				return it.fail(ErrNotArray)
			}
			return it.fail(ErrNotObject)
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == closing {
			return it.finish(i)
		}
	case iterRunning:
		i = skipSpace(b, i)
		switch {
		case i >= len(b):
			return it.fail(ErrInvalid)
		case b[i] == ',':
			i = skipSpace(b, i+1)
		case b[i] == closing:
			return it.finish(i)
		default:
			return it.fail(ErrInvalid)
		}
	default:
		return false
	}
	if !it.array {
		if i >= len(b) || b[i] != '"' {
			return it.fail(ErrInvalid)
		}
		end, plain, ok := skipString(b, i)
		if !ok {
			return it.fail(ErrInvalid)
		}
		it.key, it.keyPlain = b[i+1:end-1], plain
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return it.fail(ErrInvalid)
		}
		i = skipSpace(b, i+1)
	}
	end, ok := skipValue(b, i, 1)
	if !ok {
		return it.fail(ErrInvalid)
	}
	it.valStart, it.i, it.state = i, end, iterRunning
	it.count++
	return true
}

func (it *Iter) fail(err error) bool {
	it.err, it.state, it.key = err, iterDone, nil
	return false
}

// finish checks that only whitespace follows the closing bracket at b[i].
func (it *Iter) finish(i int) bool {
	if skipSpace(it.data, i+1) != len(it.data) {
		return it.fail(ErrInvalid)
	}
	it.close, it.state, it.key = i, iterDone, nil
	return false
}

// Err returns the reason iteration stopped early: [ErrNotObject] or
// [ErrNotArray] if data does not start like one, [ErrInvalid] if it is not
// valid JSON. It is nil after a complete walk of a valid document.
func (it *Iter) Err() error { return it.err }

// Value returns the raw bytes of the current member's value or element.
func (it *Iter) Value() []byte { return it.data[it.valStart:it.i] }

// RawKey returns the current member's key as it is in the document,
// between the quotes and still escaped.
func (it *Iter) RawKey() []byte { return it.key }

// Key returns the current member's key decoded; it allocates only when the
// key has escapes or non-ASCII bytes.
func (it *Iter) Key() []byte {
	if it.keyPlain {
		return it.key
	}
	return appendDecoded(nil, it.key)
}

// KeyIs reports whether the current member's decoded key is name, without
// allocating.
func (it *Iter) KeyIs(name string) bool { return !it.array && keyIs(it.key, it.keyPlain, name) }

// Set returns data, a JSON object, with the top-level field set to the JSON
// value raw: every member named field gets raw as its value, or, if there
// is none, `"field":raw` is added after the last member. Everything else is
// kept byte for byte. It fails with [ErrNotObject] or [ErrInvalid] if data
// is not a valid object, and [ErrInvalid] if raw is not one valid JSON
// value.
func Set(data []byte, field string, raw []byte) ([]byte, error) {
	return AppendSet(make([]byte, 0, len(data)+len(field)+len(raw)+8), data, field, raw)
}

// AppendSet is [Set] appending the result to dst; on error dst is returned
// unchanged.
func AppendSet(dst, data []byte, field string, raw []byte) ([]byte, error) {
	raw = trimSpace(raw)
	if !Valid(raw) {
		return dst, ErrInvalid
	}
	return appendSet(dst, data, field, raw, "", false)
}

// SetString is [Set] with the value the JSON string for s (see
// [AppendQuote]).
func SetString(data []byte, field, s string) ([]byte, error) {
	return AppendSetString(make([]byte, 0, len(data)+len(field)+len(s)+8), data, field, s)
}

// AppendSetString is [SetString] appending the result to dst; on error dst
// is returned unchanged.
func AppendSetString(dst, data []byte, field, s string) ([]byte, error) {
	return appendSet(dst, data, field, nil, s, true)
}

func appendSet(dst, data []byte, field string, raw []byte, s string, quote bool) ([]byte, error) {
	start := len(dst)
	appendValue := func(dst []byte) []byte {
		if quote {
			return AppendQuote(dst, s)
		}
		return append(dst, raw...)
	}
	copied := 0
	it := Members(data)
	for it.Next() {
		if it.KeyIs(field) {
			dst = append(dst, data[copied:it.valStart]...)
			dst = appendValue(dst)
			copied = it.i
		}
	}
	if err := it.Err(); err != nil {
		return dst[:start], err
	}
	if copied == 0 { // no such field: add it before the closing brace
		dst = append(dst, data[:it.close]...)
		if it.count > 0 {
			dst = append(dst, ',')
		}
		dst = AppendQuote(dst, field)
		dst = append(dst, ':')
		dst = appendValue(dst)
		copied = it.close
	}
	return append(dst, data[copied:]...), nil
}
