// header-c: a header-only enrichment plugin in C, written against the evp_v1
// ABI (docs/plugin-abi.md) with no kit. It is the cheapest useful plugin:
// it never looks at keys or values, so its cost is the ABI's own (decoding
// the batch, encoding the verdicts) and it is what cmd/evproxy-bench uses
// to measure that cost.
//
// Config: {"source": "checkout"} (required, a non-empty string; any other
// key is refused). Every record is REPLACEd by one output that keeps topic,
// key and value and whose headers are the input's headers, unchanged and
// in order, plus one more: enriched-by = source. An enriched-by header the
// record already has is kept (Kafka headers may repeat).
//
// Build (a WASI reactor):
//   clang --target=wasm32-wasi --sysroot=/usr -mexec-model=reactor -O2 \
//     -o header-c.wasm header.c

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT(name) __attribute__((import_module("evp_v1"), import_name(name)))
#define EXPORT(name) __attribute__((export_name(name)))

// ---- Host functions (docs/plugin-abi.md §4) ----

IMPORT("log") void evp_log(int32_t level, const char *msg, int32_t len);

enum { LOG_ERROR = 3 };

static void log_str(const char *msg) { evp_log(LOG_ERROR, msg, (int32_t)strlen(msg)); }

// ---- Config: {"source": "..."} ----

static const char header_name[] = "enriched-by";
#define HEADER_NAME_LEN (sizeof header_name - 1)

static uint8_t *source; // decoded
static size_t source_len;
static bool ready;

static size_t skip_space(const uint8_t *b, size_t n, size_t i) {
	while (i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r')) i++;
	return i;
}

// skip_string returns the index after the string token at b[i] == '"', or
// 0 if it is not closed.
static size_t skip_string(const uint8_t *b, size_t n, size_t i) {
	for (i++; i < n; i++) {
		if (b[i] == '\\') i++;
		else if (b[i] == '"') return i + 1;
	}
	return 0;
}

// skip_value returns the index after the value at b[i], or 0 on a syntax
// error. Containers are skipped by counting brackets outside strings; the
// host sends well-formed JSON, so that is enough.
static size_t skip_value(const uint8_t *b, size_t n, size_t i) {
	if (i >= n) return 0;
	if (b[i] == '"') return skip_string(b, n, i);
	if (b[i] == '{' || b[i] == '[') {
		size_t depth = 0;
		for (; i < n; i++) {
			switch (b[i]) {
			case '"':
				i = skip_string(b, n, i);
				if (i == 0) return 0;
				i--;
				break;
			case '{': case '[': depth++; break;
			case '}': case ']':
				if (--depth == 0) return i + 1;
				break;
			}
		}
		return 0;
	}
	size_t s = i; // number, true, false, null
	while (i < n && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r') i++;
	return i > s ? i : 0;
}

static int hexval(uint8_t c) {
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

// decode_string decodes the JSON string token [b+i, b+end) into a new
// buffer (*out, *out_len). \u escapes of the BMP are written as UTF-8;
// surrogate pairs are not combined (each half becomes U+FFFD).
static bool decode_string(const uint8_t *b, size_t i, size_t end, uint8_t **out, size_t *out_len) {
	uint8_t *p = malloc(end - i + 1);
	if (!p) return false;
	size_t n = 0;
	for (i++, end--; i < end; i++) {
		uint8_t c = b[i];
		if (c != '\\') {
			p[n++] = c;
			continue;
		}
		if (++i >= end) goto bad;
		switch (b[i]) {
		case 'b': p[n++] = '\b'; break;
		case 'f': p[n++] = '\f'; break;
		case 'n': p[n++] = '\n'; break;
		case 'r': p[n++] = '\r'; break;
		case 't': p[n++] = '\t'; break;
		case 'u': {
			if (end - i < 5) goto bad;
			uint32_t r = 0;
			for (int k = 1; k <= 4; k++) {
				int v = hexval(b[i + k]);
				if (v < 0) goto bad;
				r = r << 4 | (uint32_t)v;
			}
			i += 4;
			if (r >= 0xD800 && r < 0xE000) r = 0xFFFD;
			// At most 3 bytes for 6 input bytes: fits in the buffer.
			if (r < 0x80) {
				p[n++] = (uint8_t)r;
			} else if (r < 0x800) {
				p[n++] = (uint8_t)(0xC0 | r >> 6);
				p[n++] = (uint8_t)(0x80 | (r & 0x3F));
			} else {
				p[n++] = (uint8_t)(0xE0 | r >> 12);
				p[n++] = (uint8_t)(0x80 | (r >> 6 & 0x3F));
				p[n++] = (uint8_t)(0x80 | (r & 0x3F));
			}
			break;
		}
		default: p[n++] = b[i]; break; // '"', '\\', '/'
		}
	}
	*out = p;
	*out_len = n;
	return true;
bad:
	free(p);
	return false;
}

static int32_t refuse(const char *why) {
	log_str(why);
	return 1;
}

EXPORT("evp_init") int32_t evp_init(const uint8_t *cfg, int32_t len) {
	size_t n = len < 0 ? 0 : (size_t)len;
	size_t i = skip_space(cfg, n, 0);
	if (i >= n || cfg[i] != '{') return refuse("config must be a JSON object");
	i = skip_space(cfg, n, i + 1);
	bool first = true;
	while (i < n && cfg[i] != '}') {
		if (!first) {
			if (cfg[i] != ',') return refuse("config must be a JSON object");
			i = skip_space(cfg, n, i + 1);
		}
		first = false;
		size_t kend = i < n && cfg[i] == '"' ? skip_string(cfg, n, i) : 0;
		if (kend == 0) return refuse("config must be a JSON object");
		bool is_source = kend - i == 8 && memcmp(cfg + i, "\"source\"", 8) == 0;
		if (!is_source) return refuse("unknown config key (only \"source\" is allowed)");
		i = skip_space(cfg, n, kend);
		if (i >= n || cfg[i] != ':') return refuse("config must be a JSON object");
		i = skip_space(cfg, n, i + 1);
		size_t vend = skip_value(cfg, n, i);
		if (vend == 0) return refuse("config must be a JSON object");
		free(source);
		source = NULL;
		source_len = 0;
		if (cfg[i] != '"' || !decode_string(cfg, i, vend, &source, &source_len) || source_len == 0) {
			return refuse("config \"source\" must be a non-empty string");
		}
		i = skip_space(cfg, n, vend);
	}
	if (i >= n) return refuse("config must be a JSON object");
	if (source == NULL) return refuse("config needs \"source\": the name to stamp records with");
	ready = true;
	return 0;
}

// ---- Buffers ----

EXPORT("evp_abi_v1") void evp_abi_v1(void) {}

// The input buffer: one, reused; the host asks for it before each call.
static uint8_t *in_buf;
static size_t in_cap;

// grow makes *buf hold at least need bytes (contents are not kept).
static uint8_t *grow(uint8_t **buf, size_t *cap, size_t need) {
	if (need > *cap) {
		size_t c = *cap * 2 > need ? *cap * 2 : need;
		if (c < 4096) c = 4096;
		free(*buf);
		*buf = malloc(c);
		*cap = *buf ? c : 0;
	}
	return *buf;
}

EXPORT("evp_alloc") uint8_t *evp_alloc(int32_t size) {
	if (size < 0) return NULL;
	return grow(&in_buf, &in_cap, size ? (size_t)size : 1);
}

static uint8_t *out_buf;
static size_t out_cap;

// ---- evp_process ----

static inline uint32_t get_u32(const uint8_t *p) {
	uint32_t v;
	memcpy(&v, p, 4); // wasm32 is little-endian, like the ABI
	return v;
}

static inline uint8_t *put_u32(uint8_t *w, uint32_t v) {
	memcpy(w, &v, 4);
	return w + 4;
}

// Per record: action, output count, fields, header count, then the new
// header (str name, nbytes value); the input's headers are copied as is.
#define FIXED_OUT (1 + 4 + 1 + 4 + 4 + HEADER_NAME_LEN + 4)

EXPORT("evp_process") int64_t evp_process(const uint8_t *in, int32_t len) {
	if (!ready) {
		log_str("evp_process called before a successful evp_init");
		return -1;
	}
	size_t n = len < 0 ? 0 : (size_t)len, i = 0;
	if (n < 8) goto malformed;
	uint32_t count = get_u32(in);
	uint32_t etl = get_u32(in + 4);
	if (etl > n - 8) goto malformed;
	i = 8 + etl;
	// Every record has at least 28 bytes (topic length, partition,
	// timestamp, key and value lengths, header count), which bounds count
	// before the output size is computed from it.
	if (count > (n - i) / 28) goto malformed;
	size_t need = 4 + (size_t)count * (FIXED_OUT + source_len) + (n - i);
	uint8_t *w = grow(&out_buf, &out_cap, need);
	if (!w) {
		log_str("out of memory");
		return -1;
	}
	w = put_u32(w, count);
	for (uint32_t k = 0; k < count; k++) {
		// topic: str; partition i32; timestamp i64; key, value: nbytes
		if (n - i < 4) goto malformed;
		uint32_t l = get_u32(in + i);
		if (l > n - i - 4) goto malformed;
		i += 4 + l;
		if (n - i < 12) goto malformed;
		i += 12;
		for (int f = 0; f < 2; f++) {
			if (n - i < 4) goto malformed;
			int32_t bl = (int32_t)get_u32(in + i);
			i += 4;
			if (bl == -1) continue;
			if (bl < 0 || (size_t)bl > n - i) goto malformed;
			i += (size_t)bl;
		}
		if (n - i < 4) goto malformed;
		uint32_t hc = get_u32(in + i);
		i += 4;
		size_t hstart = i;
		for (uint32_t h = 0; h < hc; h++) {
			if (n - i < 4) goto malformed;
			l = get_u32(in + i);
			if (l > n - i - 4) goto malformed;
			i += 4 + l;
			if (n - i < 4) goto malformed;
			int32_t vl = (int32_t)get_u32(in + i);
			i += 4;
			if (vl == -1) continue;
			if (vl < 0 || (size_t)vl > n - i) goto malformed;
			i += (size_t)vl;
		}
		*w++ = 3;            // REPLACE
		w = put_u32(w, 1);   // one output
		*w++ = 8;            // fields: headers only
		w = put_u32(w, hc + 1);
		memcpy(w, in + hstart, i - hstart);
		w += i - hstart;
		w = put_u32(w, HEADER_NAME_LEN);
		memcpy(w, header_name, HEADER_NAME_LEN);
		w += HEADER_NAME_LEN;
		w = put_u32(w, (uint32_t)source_len);
		memcpy(w, source, source_len);
		w += source_len;
	}
	if (i != n) goto malformed;
	return (int64_t)((uint64_t)(uintptr_t)out_buf << 32 | (uint64_t)(w - out_buf));
malformed:
	log_str("malformed input batch");
	return -2;
}
