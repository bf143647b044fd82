package jsonf

import (
	"unicode/utf16"
	"unicode/utf8"
)

// Unquote returns the text of the JSON string token raw (quotes included,
// as Get returns it), decoded as encoding/json decodes it: escapes resolved,
// invalid UTF-8 and unpaired surrogates replaced by U+FFFD. When raw needs
// no decoding, the result is a sub-slice of raw (no allocation). ok is false
// if raw is not exactly one valid string token.
func Unquote(raw []byte) (text []byte, ok bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return nil, false
	}
	end, plain, ok := skipString(raw, 0)
	if !ok || end != len(raw) {
		return nil, false
	}
	content := raw[1 : len(raw)-1]
	if plain || utf8.Valid(content) && !hasBackslash(content) {
		return content, true
	}
	return appendDecoded(make([]byte, 0, len(content)), content), true
}

// AppendUnquote is Unquote appending the text to dst.
func AppendUnquote(dst, raw []byte) ([]byte, bool) {
	text, ok := Unquote(raw)
	if !ok {
		return dst, false
	}
	return append(dst, text...), true
}

func hasBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

// appendDecoded decodes content, the inside of a string token that
// skipString accepted.
func appendDecoded(dst, content []byte) []byte {
	for i := 0; i < len(content); {
		c := content[i]
		switch {
		case c == '\\':
			switch e := content[i+1]; e {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := hex4(content[i+2:])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(content) && content[i] == '\\' && content[i+1] == 'u' {
						if r2 := hex4(content[i+2:]); r2 >= 0 {
							if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
								dst = utf8.AppendRune(dst, d)
								i += 6
								continue
							}
						}
					}
					r = utf8.RuneError
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default: // '"', '\\', '/'
				dst = append(dst, e)
			}
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(content[i:])
			if r == utf8.RuneError && size == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, content[i:i+size]...)
			}
			i += size
		}
	}
	return dst
}

// keyIs reports whether the string token content (plain as skipString
// said) decodes to name, without allocating for keys of up to 128 bytes.
func keyIs(content []byte, plain bool, name string) bool {
	if plain {
		return string(content) == name
	}
	if len(name) > 4*len(content) { // decoding never more than triples a byte; quick reject
		return false
	}
	var buf [128]byte
	return string(appendDecoded(buf[:0], content)) == name
}

const hexDigits = "0123456789abcdef"

// AppendQuote appends s as a JSON string token: '"', '\\' and control
// characters escaped, invalid UTF-8 replaced by \ufffd, everything else
// (including '<', '>' and '&') as it is.
func AppendQuote(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plainByte[c] {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
