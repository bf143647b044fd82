package jsonf

import "encoding/binary"

// MaxDepth is the deepest nesting of arrays and objects accepted, the same
// limit as encoding/json's.
const MaxDepth = 10000

// plainByte[c] is true for the bytes a JSON string can hold as they are and
// that need no decoding: printable ASCII other than '"' and '\\'.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

func trimSpace(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && isSpace(b[i]) {
		i++
	}
	for j > i && isSpace(b[j-1]) {
		j--
	}
	return b[i:j]
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// plainWord reports whether none of the 8 bytes of x needs attention in a
// string: no '"', '\\', control character or non-ASCII byte. The bit tricks
// (Hacker's Delight, "find a zero byte") have false positives only in which
// byte, never false negatives, and a false "no" only sends the caller to the
// byte-by-byte loop.
func plainWord(x uint64) bool {
	quote := x ^ (lsb * '"')
	bslash := x ^ (lsb * '\\')
	t := (x - lsb*0x20) & ^x // a byte < 0x20 sets its top bit
	t |= (quote - lsb) & ^quote
	t |= (bslash - lsb) & ^bslash
	t |= x // a byte >= 0x80
	return t&msb == 0
}

// skipString scans the string token starting at b[i] == '"'. It returns the
// index after the closing quote, and plain: the token holds neither escapes
// nor non-ASCII bytes, so its content is b[i+1:end-1] as it is.
func skipString(b []byte, i int) (end int, plain, ok bool) {
	plain = true
	i++
	for {
		for i+8 <= len(b) && plainWord(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		for i < len(b) && plainByte[b[i]] {
			i++
		}
		if i >= len(b) {
			return 0, false, false
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, plain, true
		case c == '\\':
			plain = false
			if i+1 >= len(b) {
				return 0, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || hex4(b[i+2:i+6]) < 0 {
					return 0, false, false
				}
				i += 6
			default:
				return 0, false, false
			}
		case c < 0x20:
			return 0, false, false
		default: // >= 0x80: left as it is, but not plain (it may be invalid UTF-8)
			plain = false
			i++
		}
	}
}

// hex4 decodes 4 hex digits, or returns -1.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// skipNumber scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at b[i].
func skipNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return 0, false
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func skipLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// skipValue scans the value starting at b[i] (no leading space) inside
// depth open containers and returns the index just past it.
func skipValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		end, _, ok := skipString(b, i)
		return end, ok
	case '{', '[':
		return skipContainer(b, i, depth)
	case 't':
		return skipLiteral(b, i, "true")
	case 'f':
		return skipLiteral(b, i, "false")
	case 'n':
		return skipLiteral(b, i, "null")
	default:
		return skipNumber(b, i)
	}
}

// skipContainer scans the object or array starting at b[i] without
// recursion: a bit per open level says object (1) or array (0).
func skipContainer(b []byte, i, depth int) (int, bool) {
	var (
		low  uint64   // levels 0..63
		high []uint64 // levels 64.., allocated only for deep documents
		n    int      // open levels
		ok   bool
		obj  bool // the innermost open level is an object
	)
open: // b[i] is '{' or '['
	if depth+n >= MaxDepth {
		return 0, false
	}
	obj = b[i] == '{'
	if n < 64 {
		if obj {
			low |= 1 << n
		} else {
			low &^= 1 << n
		}
	} else {
		w := (n - 64) / 64
		if w >= len(high) {
			high = append(high, 0)
		}
		if obj {
			high[w] |= 1 << ((n - 64) % 64)
		} else {
			high[w] &^= 1 << ((n - 64) % 64)
		}
	}
	n++
	i = skipSpace(b, i+1)
	if i >= len(b) {
		return 0, false
	}
	if obj {
		if b[i] == '}' {
			i++
			goto closed
		}
		goto key
	}
	if b[i] == ']' {
		i++
		goto closed
	}
	goto value
key:
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	if i, _, ok = skipString(b, i); !ok {
		return 0, false
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return 0, false
	}
	i = skipSpace(b, i+1)
value:
	if i >= len(b) {
		return 0, false
	}
	if b[i] == '{' || b[i] == '[' {
		goto open
	}
	if i, ok = skipValue(b, i, depth+n); !ok {
		return 0, false
	}
next: // a value ended inside the innermost open level
	i = skipSpace(b, i)
	if i >= len(b) {
		return 0, false
	}
	switch {
	case b[i] == ',':
		i = skipSpace(b, i+1)
		if obj {
			goto key
		}
		goto value
	case obj && b[i] == '}', !obj && b[i] == ']':
		i++
		goto closed
	}
	return 0, false
closed:
	n--
	if n == 0 {
		return i, true
	}
	if m := n - 1; m < 64 {
		obj = low&(1<<m) != 0
	} else {
		obj = high[(m-64)/64]&(1<<((m-64)%64)) != 0
	}
	goto next
}
