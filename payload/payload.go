// Package payload derives fields from message payloads: it reads the bytes a device
// sent (`41`, `temp=21.5,hum=40`, `{"t":21.5,"room":"lab"}`) and produces the
// derived columns stored next to them — a flat JSON object of fields for charts and
// queries, and the counter value when the payload is a lone integer.
//
// The package owns only this interpretation. Its functions are pure functions over
// bytes: they never modify or retain the payload (which is stored exactly as it
// came), keep no state, and are safe for concurrent use.
//
// # Rules
//
// Before parsing, leading and trailing ASCII whitespace (space, tab, CR, LF) is
// trimmed from the whole payload. Then the first rule that applies wins:
//
//   - Lone integer: an optional '+' or '-' followed by one or more decimal digits
//     whose value fits in int64 — exactly what strconv.ParseInt(s, 10, 64)
//     accepts. It is a counter, and also gives {"value":n}. Leading zeros are
//     allowed ("007" is counter 7); the sign is allowed because the counter is a
//     signed int64, so "-3" is counter -3 and "+5" is counter 5.
//   - Lone number: a decimal number ([+-] digits [. digits] [e [+-] digits], the
//     integer or the fraction part may be empty but not both) that is finite as a
//     float64 gives {"value":x}. An integer literal too large for int64
//     ("99999999999999999999") is not a counter but still a value. Hex, inf, nan
//     and digit separators are not numbers; neither is a number that overflows
//     float64 ("1e999"), which derives nothing.
//   - JSON object: a payload starting with '{' must be one valid JSON object in
//     valid UTF-8, otherwise nothing is derived (no fallback to key=value). Its
//     string and number members become fields; booleans, null, nested objects
//     and arrays, and numbers that overflow float64 are skipped. Strings are
//     decoded and re-escaped canonically (a lone UTF-16 surrogate becomes
//     U+FFFD, as encoding/json does); any key is accepted, including "".
//   - key=value pairs: tokens separated by any mix of spaces, tabs, CR, LF, ','
//     and ';' (repeated separators allowed). Every token must be key=value with a
//     key of 1..64 bytes from [A-Za-z0-9_.:-] and a non-empty value containing no
//     '=' and no control byte, and the payload must be valid UTF-8; if any token
//     fails, nothing at all is derived. A value that is a finite number in the
//     syntax above becomes a JSON number, any other value a JSON string taken
//     literally (quotes are not interpreted: room="lab" gives the string
//     "\"lab\"").
//   - Anything else (free text, invalid UTF-8, an array, ...) derives nothing.
//
// Duplicate keys: the first occurrence that yields a field wins, later ones are
// dropped (in the JSON case a member that is skipped, e.g. a nested object, does
// not claim its key). Fields appear in the order their keys were first seen.
//
// Numbers are re-emitted in canonical JSON form: integers that fit in int64 as
// plain integers ("+5" and "007" become 5 and 7), other numbers as the shortest
// float64 text in the format encoding/json uses ("1e3" becomes 1000, ".5"
// becomes 0.5, 1e21 and above and below 1e-6 use an exponent).
package payload

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxKeyLen is the longest key accepted in a key=value payload.
const maxKeyLen = 64

// AppendFields appends to dst the derived fields of p as a JSON object and reports
// the counter value when p is a lone integer. When nothing is derived it returns dst
// unchanged (len unchanged) — callers store NULL then.
//
// Like any append function it may write into dst's spare capacity even when it
// ends up deriving nothing. It does not allocate for a lone integer when dst has
// room for the result (len(`{"value":-9223372036854775808}`) is 30 bytes).
func AppendFields(dst []byte, p []byte) (out []byte, counter int64, isCounter bool) {
	s := trimSpace(p)
	if len(s) == 0 {
		return dst, 0, false
	}
	if s[0] == '{' {
		return appendObject(dst, s), 0, false
	}
	if ok, integer := scanNumber(s); ok {
		if integer {
			if n, ok := parseInt64(s); ok {
				out = append(dst, `{"value":`...)
				out = strconv.AppendInt(out, n, 10)
				return append(out, '}'), n, true
			}
		}
		out, ok = appendFloat(append(dst, `{"value":`...), s)
		if !ok {
			return dst, 0, false
		}
		return append(out, '}'), 0, false
	}
	return appendKV(dst, s), 0, false
}

// isSpace reports whether c is whitespace trimmed around a payload.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n'
}

func trimSpace(p []byte) []byte {
	for len(p) > 0 && isSpace(p[0]) {
		p = p[1:]
	}
	for len(p) > 0 && isSpace(p[len(p)-1]) {
		p = p[:len(p)-1]
	}
	return p
}

// scanNumber reports whether s is a decimal number in the accepted syntax
// [+-]? (D+ ('.' D*)? | '.' D+) ([eE] [+-]? D+)? and whether it is an integer
// literal (no fraction and no exponent).
func scanNumber(s []byte) (ok, integer bool) {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	start := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	digits := i - start
	integer = true
	if i < len(s) && s[i] == '.' {
		integer = false
		i++
		start = i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		digits += i - start
	}
	if digits == 0 {
		return false, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		integer = false
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start = i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == start {
			return false, false
		}
	}
	return i == len(s), integer
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parseInt64 parses [+-]?D+ into an int64, reporting false on any other input or
// on overflow. Unlike strconv.ParseInt it never allocates.
func parseInt64(s []byte) (int64, bool) {
	neg := false
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if len(s) == 0 {
		return 0, false
	}
	limit := uint64(math.MaxInt64)
	if neg {
		limit++
	}
	var u uint64
	for _, c := range s {
		d := uint64(c - '0')
		if d > 9 || u > (limit-d)/10 {
			return 0, false
		}
		u = u*10 + d
	}
	if neg {
		return int64(-u), true // -u wraps to MinInt64 when u == 1<<63
	}
	return int64(u), true
}

// appendNumber appends the canonical JSON form of the decimal number s, reporting
// false (and returning dst unchanged) when s is not a finite number in the
// accepted syntax.
func appendNumber(dst, s []byte) ([]byte, bool) {
	ok, integer := scanNumber(s)
	if !ok {
		return dst, false
	}
	if integer {
		if n, ok := parseInt64(s); ok {
			return strconv.AppendInt(dst, n, 10), true
		}
	}
	return appendFloat(dst, s)
}

// appendFloat appends s, already known to be in the accepted number syntax, as a
// float64 in the format encoding/json uses. It reports false when s overflows.
func appendFloat(dst, s []byte) ([]byte, bool) {
	f, err := strconv.ParseFloat(string(s), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// Shorten e-07 to e-7, as encoding/json does.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, true
}

// keySet remembers the keys already emitted, as spans of the output buffer (keys
// are emitted in canonical form, so equal keys have equal bytes). Past a few dozen
// keys it switches to a map to stay linear on large payloads. The zero value is
// empty and lives on the stack.
type keySet struct {
	n     int
	spans [keySetLinearMax]span
	m     map[string]struct{}
}

type span struct{ off, n int }

const keySetLinearMax = 24

// add records the key out[off:off+n] and reports whether it was new.
func (ks *keySet) add(out []byte, off, n int) bool {
	key := out[off : off+n]
	if ks.m != nil {
		if _, dup := ks.m[string(key)]; dup {
			return false
		}
		ks.m[string(key)] = struct{}{}
		return true
	}
	for _, sp := range ks.spans[:ks.n] {
		if string(out[sp.off:sp.off+sp.n]) == string(key) {
			return false
		}
	}
	if ks.n < len(ks.spans) {
		ks.spans[ks.n] = span{off, n}
		ks.n++
		return true
	}
	ks.m = make(map[string]struct{}, 4*len(ks.spans))
	for _, sp := range ks.spans {
		ks.m[string(out[sp.off:sp.off+sp.n])] = struct{}{}
	}
	ks.m[string(key)] = struct{}{}
	return true
}

// isSep reports whether c separates key=value tokens.
func isSep(c byte) bool {
	return c == ' ' || c == ',' || c == ';' || c == '\t' || c == '\r' || c == '\n'
}

func isKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == '-' || c == ':'
}

// appendKV derives the fields of a key=value payload, or returns dst unchanged.
func appendKV(dst, s []byte) []byte {
	var ks keySet
	out := dst
	fields := 0
	for i := 0; i < len(s); {
		if isSep(s[i]) {
			i++
			continue
		}
		// A token runs to the next separator; its key to the first '='.
		start := i
		for i < len(s) && isKeyByte(s[i]) {
			i++
		}
		keyLen := i - start
		if keyLen == 0 || keyLen > maxKeyLen || i == len(s) || s[i] != '=' {
			return dst
		}
		i++
		vstart := i
		for i < len(s) && !isSep(s[i]) {
			c := s[i]
			if c < 0x20 || c == 0x7f || c == '=' {
				return dst
			}
			i++
		}
		val := s[vstart:i]
		if len(val) == 0 {
			return dst
		}
		mark := len(out)
		if fields == 0 {
			out = append(out, '{', '"')
		} else {
			out = append(out, ',', '"')
		}
		koff := len(out)
		out = append(out, s[start:start+keyLen]...)
		if !ks.add(out, koff, keyLen) {
			out = out[:mark]
			continue // first wins; the rest of the payload is still validated
		}
		out = append(out, '"', ':')
		var ok bool
		if out, ok = appendNumber(out, val); !ok {
			out = appendEscaped(out, val)
		}
		fields++
	}
	if fields == 0 {
		return dst
	}
	// Values may hold any non-control bytes; only now is it worth checking that
	// they are UTF-8 (keys are ASCII by construction).
	if !utf8.Valid(s) {
		return dst
	}
	return append(out, '}')
}

// appendEscaped appends s as a JSON string. s must be valid UTF-8 (checked by
// the caller before the result is used); control bytes are escaped too.
func appendEscaped(out, s []byte) []byte {
	out = append(out, '"')
	start := 0
	for i, c := range s {
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		out = append(out, s[start:i]...)
		out = appendEscapedRune(out, rune(c))
		start = i + 1
	}
	out = append(out, s[start:]...)
	return append(out, '"')
}

// appendEscapedRune appends r escaped for use inside a JSON string.
func appendEscapedRune(out []byte, r rune) []byte {
	switch r {
	case '"':
		return append(out, '\\', '"')
	case '\\':
		return append(out, '\\', '\\')
	case '\n':
		return append(out, '\\', 'n')
	case '\r':
		return append(out, '\\', 'r')
	case '\t':
		return append(out, '\\', 't')
	}
	if r < 0x20 {
		const hex = "0123456789abcdef"
		return append(out, '\\', 'u', '0', '0', hex[r>>4], hex[r&0xf])
	}
	return utf8.AppendRune(out, r)
}

// appendObject derives the fields of a JSON object payload s (s[0] == '{', no
// surrounding whitespace), or returns dst unchanged.
func appendObject(dst, s []byte) []byte {
	if !utf8.Valid(s) || !json.Valid(s) {
		return dst
	}
	// From here on s is known to be exactly one valid JSON object, so the scan
	// below needs no error handling.
	var ks keySet
	out := dst
	fields := 0
	i := skipWS(s, 1)
	if s[i] == '}' {
		return dst
	}
	for {
		mark := len(out)
		if fields == 0 {
			out = append(out, '{')
		} else {
			out = append(out, ',')
		}
		koff := len(out) + 1
		out, i = appendJSONString(out, s, i)
		klen := len(out) - 1 - koff
		out = append(out, ':')
		i = skipWS(s, skipWS(s, i)+1) // past ':'
		emitted := false
		switch c := s[i]; {
		case c == '"':
			out, i = appendJSONString(out, s, i)
			emitted = true
		case c == '-' || isDigit(c):
			j := i
			for j < len(s) && isNumByte(s[j]) {
				j++
			}
			out, emitted = appendNumber(out, s[i:j])
			i = j
		case c == '{' || c == '[':
			i = skipNested(s, i)
		default: // true, false, null
			for i < len(s) && s[i] >= 'a' && s[i] <= 'z' {
				i++
			}
		}
		if emitted && ks.add(out, koff, klen) {
			fields++
		} else {
			out = out[:mark]
		}
		i = skipWS(s, i)
		if s[i] == '}' {
			break
		}
		i = skipWS(s, i+1) // past ','
	}
	if fields == 0 {
		return dst
	}
	return append(out, '}')
}

func skipWS(s []byte, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

func isNumByte(c byte) bool {
	return isDigit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// skipString returns the index after the valid JSON string starting at s[i].
func skipString(s []byte, i int) int {
	for i++; ; i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
}

// skipNested returns the index after the valid JSON object or array at s[i].
func skipNested(s []byte, i int) int {
	depth := 0
	for {
		switch s[i] {
		case '"':
			i = skipString(s, i)
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
		i++
	}
}

// appendJSONString decodes the valid JSON string starting at s[i] and appends it
// re-escaped canonically: only '"', '\\' and control characters are escaped.
// It returns the index after the closing quote.
func appendJSONString(out, s []byte, i int) ([]byte, int) {
	out = append(out, '"')
	i++
	start := i
	for {
		switch s[i] {
		case '"':
			out = append(out, s[start:i]...)
			return append(out, '"'), i + 1
		case '\\':
			out = append(out, s[start:i]...)
			i++
			var r rune
			switch s[i] {
			case 'b':
				r = '\b'
			case 'f':
				r = '\f'
			case 'n':
				r = '\n'
			case 'r':
				r = '\r'
			case 't':
				r = '\t'
			case 'u':
				r = hex4(s[i+1 : i+5])
				i += 4
				if utf16.IsSurrogate(r) {
					pair := rune(utf8.RuneError)
					if i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
						pair = utf16.DecodeRune(r, hex4(s[i+3:i+7]))
					}
					if pair != utf8.RuneError {
						i += 6
					}
					r = pair
				}
			default: // '"', '\\', '/'
				r = rune(s[i])
			}
			out = appendEscapedRune(out, r)
			i++
			start = i
		default:
			i++
		}
	}
}

// hex4 decodes four hex digits (already validated).
func hex4(h []byte) rune {
	var r rune
	for _, c := range h[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
