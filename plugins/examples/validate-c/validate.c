// validate-c: the validate plugin (plugins/examples/validate) in C, written
// against the evp_v1 ABI (docs/plugin-abi.md) with no kit: exports,
// imports, the batch and verdict encodings, a JSON scanner and the config
// parser are all here. It must behave exactly like the Go version:
// ../validate/testdata/cases.json holds the vectors both pass.
//
// Config: {"required": ["id", "amount"]}. A record is rejected with code 1
// and the reason "not a JSON object" or "missing field: <name>" (the first
// missing field in config order); everything else is kept.
//
// JSON is accepted exactly as Go's encoding/json accepts it (RFC 8259,
// nesting up to 10000), and keys are compared after decoding, with invalid
// UTF-8 and unpaired surrogates read as U+FFFD, as Go does.
//
// Build (a WASI reactor):
//   clang --target=wasm32-wasi --sysroot=/usr -mexec-model=reactor -O2 \
//     -Wl,--stack-first -Wl,--strip-debug -o validate-c.wasm validate.c
// (--stack-first: a stack overflow traps instead of overwriting globals.)

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT(name) __attribute__((import_module("evp_v1"), import_name(name)))
#define EXPORT(name) __attribute__((export_name(name)))

// ---- Host functions (docs/plugin-abi.md §4) ----

IMPORT("log") void evp_log(int32_t level, const char *msg, int32_t len);
IMPORT("metric_add") void evp_metric_add(const char *name, int32_t len, int64_t delta);

enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

static void log_str(int32_t level, const char *msg) { evp_log(level, msg, (int32_t)strlen(msg)); }

// ---- Growable byte buffers ----

typedef struct {
	uint8_t *p;
	size_t len, cap;
} buf_t;

static bool buf_reserve(buf_t *b, size_t extra) {
	if (b->cap - b->len >= extra) {
		return true;
	}
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < extra) {
		cap *= 2;
	}
	uint8_t *p = realloc(b->p, cap);
	if (!p) {
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

static bool buf_append(buf_t *b, const void *p, size_t n) {
	if (!buf_reserve(b, n)) {
		return false;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return true;
}

static bool buf_u8(buf_t *b, uint8_t v) { return buf_append(b, &v, 1); }

static bool buf_u32(buf_t *b, uint32_t v) {
	uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	return buf_append(b, le, 4);
}

// ---- JSON scanner (same grammar and limits as encoding/json.Valid) ----

#define MAX_DEPTH 10000

static bool is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static size_t skip_space(const uint8_t *b, size_t n, size_t i) {
	while (i < n && is_space(b[i])) {
		i++;
	}
	return i;
}

static int hexval(uint8_t c) {
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

// hex4 decodes 4 hex digits at b, or returns -1.
static int32_t hex4(const uint8_t *b) {
	int32_t r = 0;
	for (int k = 0; k < 4; k++) {
		int v = hexval(b[k]);
		if (v < 0) return -1;
		r = r << 4 | v;
	}
	return r;
}

// scan_string scans the string token at b[i] == '"'; *end is the index
// after the closing quote, *plain says it has no escapes and no non-ASCII
// bytes (its content needs no decoding).
static bool scan_string(const uint8_t *b, size_t n, size_t i, size_t *end, bool *plain) {
	*plain = true;
	for (i++; i < n;) {
		uint8_t c = b[i];
		if (c == '"') {
			*end = i + 1;
			return true;
		}
		if (c == '\\') {
			*plain = false;
			if (i + 1 >= n) return false;
			switch (b[i + 1]) {
			case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
				i += 2;
				break;
			case 'u':
				if (i + 6 > n || hex4(b + i + 2) < 0) return false;
				i += 6;
				break;
			default:
				return false;
			}
			continue;
		}
		if (c < 0x20) return false;
		if (c >= 0x80) *plain = false;
		i++;
	}
	return false;
}

static size_t skip_digits(const uint8_t *b, size_t n, size_t i) {
	while (i < n && b[i] >= '0' && b[i] <= '9') {
		i++;
	}
	return i;
}

// scan_number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at b[i].
static bool scan_number(const uint8_t *b, size_t n, size_t i, size_t *end) {
	if (i < n && b[i] == '-') i++;
	if (i >= n) return false;
	if (b[i] == '0') {
		i++;
	} else if (b[i] >= '1' && b[i] <= '9') {
		i = skip_digits(b, n, i + 1);
	} else {
		return false;
	}
	if (i < n && b[i] == '.') {
		size_t j = skip_digits(b, n, i + 1);
		if (j == i + 1) return false;
		i = j;
	}
	if (i < n && (b[i] == 'e' || b[i] == 'E')) {
		i++;
		if (i < n && (b[i] == '+' || b[i] == '-')) i++;
		size_t j = skip_digits(b, n, i);
		if (j == i) return false;
		i = j;
	}
	*end = i;
	return true;
}

static bool scan_literal(const uint8_t *b, size_t n, size_t i, const char *lit, size_t *end) {
	size_t l = strlen(lit);
	if (n - i < l || memcmp(b + i, lit, l) != 0) return false;
	*end = i + l;
	return true;
}

// One bit per open container (1: object), for skip_value: no recursion, so
// deep documents cannot overflow the C stack.
static uint8_t open_kinds[MAX_DEPTH / 8 + 1];

static void set_kind(size_t level, bool obj) {
	if (obj) open_kinds[level / 8] |= (uint8_t)(1u << (level % 8));
	else open_kinds[level / 8] &= (uint8_t)~(1u << (level % 8));
}

static bool kind_is_obj(size_t level) { return open_kinds[level / 8] >> (level % 8) & 1; }

// skip_value scans the value at b[i] (no leading space) inside depth open
// containers; *end is the index just past it. Containers are walked with
// gotos, like the Go kit's scanner, not recursion.
static bool skip_value(const uint8_t *b, size_t n, size_t i, size_t depth, size_t *end) {
	if (i >= n) return false;
	bool plain, obj;
	size_t e, open = 0; // containers opened here
	switch (b[i]) {
	case '"': return scan_string(b, n, i, end, &plain);
	case 't': return scan_literal(b, n, i, "true", end);
	case 'f': return scan_literal(b, n, i, "false", end);
	case 'n': return scan_literal(b, n, i, "null", end);
	case '{': case '[': break;
	default: return scan_number(b, n, i, end);
	}
open_container: // b[i] is '{' or '['
	if (depth + open >= MAX_DEPTH) return false;
	obj = b[i] == '{';
	set_kind(open++, obj);
	i = skip_space(b, n, i + 1);
	if (i >= n) return false;
	if (b[i] == (obj ? '}' : ']')) {
		i++;
		goto closed;
	}
	if (!obj) goto value;
key:
	if (i >= n || b[i] != '"' || !scan_string(b, n, i, &e, &plain)) return false;
	i = skip_space(b, n, e);
	if (i >= n || b[i] != ':') return false;
	i = skip_space(b, n, i + 1);
value:
	if (i >= n) return false;
	if (b[i] == '{' || b[i] == '[') goto open_container;
	if (!skip_value(b, n, i, depth + open, &e)) return false; // a scalar: no deeper
	i = e;
next: // a value ended inside the innermost open container
	i = skip_space(b, n, i);
	if (i >= n) return false;
	if (b[i] == ',') {
		i = skip_space(b, n, i + 1);
		if (obj) goto key;
		goto value;
	}
	if (b[i] != (obj ? '}' : ']')) return false;
	i++;
closed:
	if (--open == 0) {
		*end = i;
		return true;
	}
	obj = kind_is_obj(open - 1);
	goto next;
}

// ---- Decoding strings as Go does ----

// decode_rune decodes one UTF-8 sequence at p as Go's utf8.DecodeRune:
// returns its length, with *r = 0xFFFD and length 1 for invalid bytes.
static size_t decode_rune(const uint8_t *p, size_t n, uint32_t *r) {
	uint8_t c = p[0];
	if (c < 0x80) {
		*r = c;
		return 1;
	}
	size_t len;
	uint8_t lo = 0x80, hi = 0xBF;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0) lo = 0xA0;
		if (c == 0xED) hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0) lo = 0x90;
		if (c == 0xF4) hi = 0x8F;
	} else {
		*r = 0xFFFD;
		return 1;
	}
	if (n < len || p[1] < lo || p[1] > hi) {
		*r = 0xFFFD;
		return 1;
	}
	for (size_t k = 2; k < len; k++) {
		if (p[k] < 0x80 || p[k] > 0xBF) {
			*r = 0xFFFD;
			return 1;
		}
	}
	uint32_t v = c & (0xFF >> (len + 1));
	for (size_t k = 1; k < len; k++) {
		v = v << 6 | (p[k] & 0x3F);
	}
	*r = v;
	return len;
}

static bool append_rune(buf_t *b, uint32_t r) {
	uint8_t u[4];
	size_t n;
	if (r < 0x80) {
		u[0] = (uint8_t)r;
		n = 1;
	} else if (r < 0x800) {
		u[0] = (uint8_t)(0xC0 | r >> 6);
		u[1] = (uint8_t)(0x80 | (r & 0x3F));
		n = 2;
	} else if (r < 0x10000) {
		u[0] = (uint8_t)(0xE0 | r >> 12);
		u[1] = (uint8_t)(0x80 | (r >> 6 & 0x3F));
		u[2] = (uint8_t)(0x80 | (r & 0x3F));
		n = 3;
	} else {
		u[0] = (uint8_t)(0xF0 | r >> 18);
		u[1] = (uint8_t)(0x80 | (r >> 12 & 0x3F));
		u[2] = (uint8_t)(0x80 | (r >> 6 & 0x3F));
		u[3] = (uint8_t)(0x80 | (r & 0x3F));
		n = 4;
	}
	return buf_append(b, u, n);
}

static bool is_surrogate(int32_t r) { return r >= 0xD800 && r < 0xE000; }

// decode_string appends the decoded content of a string token that
// scan_string accepted (p, n: between the quotes), as encoding/json
// decodes it.
static bool decode_string(buf_t *out, const uint8_t *p, size_t n) {
	for (size_t i = 0; i < n;) {
		uint8_t c = p[i];
		if (c == '\\') {
			uint8_t e = p[i + 1];
			uint8_t ch;
			switch (e) {
			case 'b': ch = '\b'; break;
			case 'f': ch = '\f'; break;
			case 'n': ch = '\n'; break;
			case 'r': ch = '\r'; break;
			case 't': ch = '\t'; break;
			case 'u': {
				int32_t r = hex4(p + i + 2);
				i += 6;
				if (is_surrogate(r)) {
					int32_t r2 = -1;
					if (i + 6 <= n && p[i] == '\\' && p[i + 1] == 'u') r2 = hex4(p + i + 2);
					if (r >= 0xD800 && r < 0xDC00 && r2 >= 0xDC00 && r2 < 0xE000) {
						i += 6;
						r = 0x10000 + ((r - 0xD800) << 10) + (r2 - 0xDC00);
					} else {
						r = 0xFFFD;
					}
				}
				if (!append_rune(out, (uint32_t)r)) return false;
				continue;
			}
			default: ch = e; break; // '"', '\\', '/'
			}
			if (!buf_u8(out, ch)) return false;
			i += 2;
		} else if (c < 0x80) {
			if (!buf_u8(out, c)) return false;
			i++;
		} else {
			uint32_t r;
			size_t l = decode_rune(p + i, n - i, &r);
			if (r == 0xFFFD && l == 1) {
				if (!append_rune(out, 0xFFFD)) return false;
			} else if (!buf_append(out, p + i, l)) {
				return false;
			}
			i += l;
		}
	}
	return true;
}

// ---- Object members ----

// member_iter walks the members of a JSON object, checking its syntax; on
// the way out (next returns false) err says whether the document was a
// valid object with nothing but whitespace after it.
typedef struct {
	const uint8_t *b;
	size_t n, i;
	int state; // 0 start, 1 running, 2 done
	bool err;
	const uint8_t *key; // between the quotes, still escaped
	size_t key_len;
	bool key_plain;
	size_t val, val_end;
} member_iter;

static member_iter members(const uint8_t *b, size_t n) {
	member_iter it = {.b = b, .n = n};
	return it;
}

static bool iter_stop(member_iter *it, bool err) {
	it->state = 2;
	it->err = err;
	return false;
}

static bool iter_finish(member_iter *it, size_t close) {
	return iter_stop(it, skip_space(it->b, it->n, close + 1) != it->n);
}

static bool next_member(member_iter *it) {
	const uint8_t *b = it->b;
	size_t n = it->n, i = it->i;
	if (it->state == 0) {
		i = skip_space(b, n, 0);
		if (i >= n || b[i] != '{') return iter_stop(it, true);
		i = skip_space(b, n, i + 1);
		if (i < n && b[i] == '}') return iter_finish(it, i);
	} else if (it->state == 1) {
		i = skip_space(b, n, i);
		if (i >= n) return iter_stop(it, true);
		if (b[i] == '}') return iter_finish(it, i);
		if (b[i] != ',') return iter_stop(it, true);
		i = skip_space(b, n, i + 1);
	} else {
		return false;
	}
	size_t end;
	bool plain;
	if (i >= n || b[i] != '"' || !scan_string(b, n, i, &end, &plain)) return iter_stop(it, true);
	it->key = b + i + 1;
	it->key_len = end - i - 2;
	it->key_plain = plain;
	i = skip_space(b, n, end);
	if (i >= n || b[i] != ':') return iter_stop(it, true);
	i = skip_space(b, n, i + 1);
	if (!skip_value(b, n, i, 1, &end)) return iter_stop(it, true);
	it->val = i;
	it->val_end = end;
	it->i = end;
	it->state = 1;
	return true;
}

// scratch holds decoded keys.
static buf_t scratch;

// member_key returns the current key decoded (valid until the next call),
// or NULL when out of memory.
static const uint8_t *member_key(member_iter *it, size_t *len) {
	if (it->key_plain) {
		*len = it->key_len;
		return it->key;
	}
	scratch.len = 0;
	if (!decode_string(&scratch, it->key, it->key_len)) return NULL;
	*len = scratch.len;
	return scratch.p ? scratch.p : (const uint8_t *)"";
}

// ---- The plugin ----

typedef struct {
	uint8_t *name; // decoded
	size_t len;
} field_t;

static field_t *required;
static size_t n_required;
static bool *found;
static bool ready;

static bool key_is(const uint8_t *k, size_t klen, const char *name) {
	return klen == strlen(name) && memcmp(k, name, klen) == 0;
}

static void log_unknown_key(const uint8_t *k, size_t klen) {
	buf_t m = {0};
	static const char pre[] = "unknown config key \"";
	if (buf_append(&m, pre, sizeof pre - 1) && buf_append(&m, k, klen) && buf_u8(&m, '"')) {
		evp_log(LOG_ERROR, (const char *)m.p, (int32_t)m.len);
	} else {
		log_str(LOG_ERROR, "unknown config key");
	}
	free(m.p);
}

static const char err_list[] = "config \"required\" must be a list of field names (strings)";

// parse_required reads the array of strings at (b, n) into the list.
static bool parse_required(const uint8_t *b, size_t n, field_t **list, size_t *count) {
	for (size_t k = 0; k < *count; k++) free((*list)[k].name);
	*count = 0;
	size_t i = skip_space(b, n, 0), cap = 0;
	if (i >= n || b[i] != '[') return false;
	i = skip_space(b, n, i + 1);
	if (i < n && b[i] == ']') return true;
	for (;;) {
		size_t end;
		bool plain;
		if (i >= n || b[i] != '"' || !scan_string(b, n, i, &end, &plain)) return false;
		buf_t name = {0};
		if (!decode_string(&name, b + i + 1, end - i - 2)) return false;
		if (*count == cap) {
			cap = cap ? 2 * cap : 8;
			field_t *l = realloc(*list, cap * sizeof **list);
			if (!l) return false;
			*list = l;
		}
		(*list)[(*count)++] = (field_t){name.p, name.len};
		i = skip_space(b, n, end);
		if (i >= n) return false;
		if (b[i] == ']') return true;
		if (b[i] != ',') return false;
		i = skip_space(b, n, i + 1);
	}
}

EXPORT("evp_abi_v1") void evp_abi_v1(void) {}

// The input buffer: one, reused; the host asks for it before each call.
static uint8_t *in_buf;
static size_t in_cap;

EXPORT("evp_alloc") uint8_t *evp_alloc(int32_t size) {
	if (size < 0) return NULL;
	size_t need = size ? (size_t)size : 1;
	if (need > in_cap) {
		size_t cap = in_cap * 2 > need ? in_cap * 2 : need;
		if (cap < 4096) cap = 4096;
		free(in_buf);
		in_buf = malloc(cap);
		in_cap = in_buf ? cap : 0;
	}
	return in_buf;
}

EXPORT("evp_init") int32_t evp_init(const uint8_t *cfg, int32_t len) {
	size_t n = len < 0 ? 0 : (size_t)len;
	bool seen = false;
	member_iter it = members(cfg, n);
	while (next_member(&it)) {
		size_t klen;
		const uint8_t *k = member_key(&it, &klen);
		if (!k) {
			log_str(LOG_ERROR, "out of memory");
			return 1;
		}
		if (!key_is(k, klen, "required")) {
			log_unknown_key(k, klen);
			return 1;
		}
		seen = true;
		if (!parse_required(cfg + it.val, it.val_end - it.val, &required, &n_required)) {
			log_str(LOG_ERROR, err_list);
			return 1;
		}
	}
	if (it.err) {
		log_str(LOG_ERROR, "config must be a JSON object");
		return 1;
	}
	if (!seen) {
		log_str(LOG_ERROR, "config needs \"required\": a list of field names");
		return 1;
	}
	found = calloc(n_required ? n_required : 1, sizeof *found);
	if (!found) {
		log_str(LOG_ERROR, "out of memory");
		return 1;
	}
	ready = true;
	return 0;
}

// check reports whether value is a JSON object with every required field;
// if not, *missing is 0 for "not a JSON object", else the index+1 of the
// first missing field.
static bool check(const uint8_t *value, size_t n, size_t *missing) {
	memset(found, 0, n_required * sizeof *found);
	member_iter it = members(value, n);
	while (next_member(&it)) {
		size_t klen;
		const uint8_t *k = member_key(&it, &klen);
		if (!k) continue; // out of memory: the field counts as missing
		for (size_t j = 0; j < n_required; j++) {
			if (klen == required[j].len && memcmp(k, required[j].name, klen) == 0) found[j] = true;
		}
	}
	if (it.err) {
		*missing = 0;
		return false;
	}
	for (size_t j = 0; j < n_required; j++) {
		if (!found[j]) {
			*missing = j + 1;
			return false;
		}
	}
	return true;
}

// ---- Batch decoding and verdict encoding (docs/plugin-abi.md §3) ----

typedef struct {
	const uint8_t *b;
	size_t n, i;
	bool bad;
} reader_t;

static uint32_t rd_u32(reader_t *r) {
	if (r->bad || r->n - r->i < 4) {
		r->bad = true;
		return 0;
	}
	const uint8_t *p = r->b + r->i;
	r->i += 4;
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void rd_skip(reader_t *r, size_t k) {
	if (r->bad || r->n - r->i < k) {
		r->bad = true;
		return;
	}
	r->i += k;
}

// rd_str skips a str; rd_nbytes returns an nbytes (*null for -1).
static void rd_str(reader_t *r) { rd_skip(r, rd_u32(r)); }

static const uint8_t *rd_nbytes(reader_t *r, size_t *len, bool *null) {
	int32_t l = (int32_t)rd_u32(r);
	*null = false;
	*len = 0;
	if (r->bad) return NULL;
	if (l == -1) {
		*null = true;
		return NULL;
	}
	if (l < 0) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->b + r->i;
	rd_skip(r, (size_t)l);
	*len = (size_t)l;
	return p;
}

static buf_t out;

static const char not_object[] = "not a JSON object";
static const char missing_prefix[] = "missing field: ";

EXPORT("evp_process") int64_t evp_process(const uint8_t *in, int32_t len) {
	if (!ready) {
		log_str(LOG_ERROR, "evp_process called before a successful evp_init");
		return -1;
	}
	reader_t r = {in, len < 0 ? 0 : (size_t)len, 0, false};
	uint32_t count = rd_u32(&r);
	rd_str(&r); // event type
	if (r.bad) goto malformed;
	out.len = 0;
	if (!buf_u32(&out, count)) goto oom;
	int64_t rejected = 0;
	for (uint32_t k = 0; k < count; k++) {
		rd_str(&r);      // topic
		rd_skip(&r, 12); // partition, timestamp
		size_t vlen;
		bool null;
		rd_nbytes(&r, &vlen, &null); // key
		const uint8_t *value = rd_nbytes(&r, &vlen, &null);
		uint32_t hc = rd_u32(&r);
		for (uint32_t h = 0; h < hc && !r.bad; h++) {
			size_t hl;
			bool hn;
			rd_str(&r);
			rd_nbytes(&r, &hl, &hn);
		}
		if (r.bad) goto malformed;
		size_t missing;
		if (!null && check(value, vlen, &missing)) {
			if (!buf_u8(&out, 0)) goto oom; // KEEP
			continue;
		}
		if (null) missing = 0;
		rejected++;
		// REJECT: u8 2, i32 code, str reason
		bool ok = buf_u8(&out, 2) && buf_u32(&out, 1);
		if (missing == 0) {
			ok = ok && buf_u32(&out, sizeof not_object - 1) && buf_append(&out, not_object, sizeof not_object - 1);
		} else {
			field_t *f = &required[missing - 1];
			ok = ok && buf_u32(&out, (uint32_t)(sizeof missing_prefix - 1 + f->len)) &&
			     buf_append(&out, missing_prefix, sizeof missing_prefix - 1) && buf_append(&out, f->name, f->len);
		}
		if (!ok) goto oom;
	}
	if (r.i != r.n) goto malformed;
	if (rejected > 0) evp_metric_add("rejected", 8, rejected);
	return (int64_t)((uint64_t)(uintptr_t)out.p << 32 | (uint64_t)out.len);
malformed:
	log_str(LOG_ERROR, "malformed input batch");
	return -2;
oom:
	log_str(LOG_ERROR, "out of memory");
	return -3;
}
