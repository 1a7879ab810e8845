// Inlet: see Inlet.h for the API and README.md for the why.
#include "Inlet.h"

#include <string.h>

#if defined(ESP8266)
// RANDOM_REG32 is the hardware random number generator; ESP.rtcUserMemory* the
// 512 bytes of RTC memory that survive deep sleep (not a power cycle).
static uint32_t inletRandom() { return RANDOM_REG32; }
#if INLET_RTC
static bool inletRtcRead(uint32_t word, uint32_t *data, size_t bytes) {
  return ESP.rtcUserMemoryRead(INLET_RTC_OFFSET + word, data, bytes);
}
static bool inletRtcWrite(uint32_t word, uint32_t *data, size_t bytes) {
  return ESP.rtcUserMemoryWrite(INLET_RTC_OFFSET + word, data, bytes);
}
#endif
#elif defined(ESP32)
#include <esp_attr.h>
#if __has_include(<esp_random.h>)
#include <esp_random.h>  // ESP-IDF 5 (Arduino core 3)
#else
#include <esp_system.h>
#endif
static uint32_t inletRandom() { return esp_random(); }
#if INLET_RTC
// RTC slow memory that no start-up code initialises: kept across deep sleep and
// resets, random after a power cycle (then the CRC fails: a new boot).
static RTC_NOINIT_ATTR uint32_t inletRtc[INLET_RTC_BYTES / 4];
static bool inletRtcRead(uint32_t word, uint32_t *data, size_t bytes) {
  memcpy(data, inletRtc + word, bytes);
  return true;
}
static bool inletRtcWrite(uint32_t word, uint32_t *data, size_t bytes) {
  memcpy(inletRtc + word, data, bytes);
  return true;
}
#endif
#else
// Other boards: no hardware RNG known here and no RTC memory. Define
// INLET_RANDOM() to a good 32-bit random source for unique boot ids.
#ifndef INLET_RANDOM
#define INLET_RANDOM() ((uint32_t)micros() * 2654435761u ^ (uint32_t)millis())
#endif
static uint32_t inletRandom() { return INLET_RANDOM(); }
#undef INLET_RTC
#define INLET_RTC 0
#endif

#ifndef INLET_HELLO_TIMEOUT_MS
#define INLET_HELLO_TIMEOUT_MS 5000
#endif
#ifndef INLET_ACK_TIMEOUT_MS
#define INLET_ACK_TIMEOUT_MS 10000
#endif

static const uint8_t kHead = 6;  // seq:4, len:2

// ---- small helpers (no printf: it would pull kilobytes into the image) ----

static uint8_t fmtU32(char *out, uint32_t v) {  // out needs 10 bytes
  char tmp[10];
  uint8_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (uint8_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
  return n;
}

// parseU32 reads decimal digits from s up to a space or the end; false if none,
// too many, or anything else.
static bool parseU32(const char *s, uint32_t *v, const char **rest) {
  uint32_t n = 0;
  const char *p = s;
  while (*p >= '0' && *p <= '9') {
    uint32_t d = (uint32_t)(*p - '0');
    if (n > (0xFFFFFFFFu - d) / 10) return false;
    n = n * 10 + d;
    p++;
  }
  if (p == s || (*p != 0 && *p != ' ')) return false;
  *v = n;
  if (rest) *rest = p;
  return true;
}

static bool startsWith(const char *s, const char *prefix, const char **rest) {
  size_t n = strlen(prefix);
  if (strncmp(s, prefix, n) != 0) return false;
  *rest = s + n;
  return true;
}

#if INLET_RTC
static uint32_t crc32(uint32_t crc, const uint32_t *w, size_t words) {
  for (size_t i = 0; i < words; i++) {
    uint32_t v = w[i];
    for (uint8_t b = 0; b < 4; b++) {
      crc ^= (v >> (8 * b)) & 0xFF;
      for (uint8_t k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
  }
  return crc;
}
#endif

static bool putN(Print &p, const char *s, size_t n) { return p.write((const uint8_t *)s, n) == n; }
static bool put(Print &p, const char *s) { return putN(p, s, strlen(s)); }

// bootHex writes the boot id of two random words: 16 hex digits.
static void bootHex(char *out, const uint32_t *w) {
  for (uint8_t i = 0; i < 16; i++) {
    uint8_t d = (w[i / 8] >> (4 * (i % 8))) & 15;
    out[i] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
  }
  out[16] = 0;
}

static bool validDevice(const char *s) {
  size_t n = 0;
  for (; s[n]; n++) {
    char c = s[n];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == ':' || c == '-'))
      return false;
  }
  return n >= 1 && n <= 64;
}

static bool validToken(const char *s) {
  size_t n = 0;
  for (; s[n]; n++)
    if (s[n] <= ' ' || s[n] > '~') return false;
  return n >= 1 && n <= 256;
}

// ---- InletBase ----

InletBase::InletBase()
    : _host(nullptr), _token(nullptr), _device(""), _err(""), _next(1), _acked(0), _dropped(0), _retryAt(0), _backoff(0),
      _backoffMin(500), _backoffMax(60000), _port(0), _used(0), _sent(0), _budget(20), _count(0), _begun(false),
      _resumed(false), _dirty(false) {
  _boot[0] = 0;
}

void InletBase::setBackoff(uint32_t minMs, uint32_t maxMs) {
  _backoffMin = minMs ? minMs : 1;
  _backoffMax = maxMs < _backoffMin ? _backoffMin : maxMs;
}

bool InletBase::start(const char *host, uint16_t port, const char *device, const char *token) {
  if (!host || !*host || !port) {
    _err = "no server";
    return false;
  }
  if (!device || !validDevice(device)) {
    _err = "bad device id";
    return false;
  }
  if (token && *token && !validToken(token)) {
    _err = "bad token";
    return false;
  }
  _host = host;
  _port = port;
  _token = (token && *token) ? token : nullptr;
  _device = device;
  _used = _sent = 0;
  _count = 0;
  _resumed = restore();
  if (!_resumed) {
    uint32_t r[2] = {inletRandom(), inletRandom()};
    bootHex(_boot, r);
    _next = 1;
    _acked = _dropped = 0;
  }
  _begun = true;
  _retryAt = millis();
  _backoff = 0;
  save();
  return true;
}

uint16_t InletBase::offsetOf(uint8_t i) const {
  uint16_t off = 0;
  while (i--) off += kHead + lenAt(off);
  return off;
}

uint32_t InletBase::seqAt(uint16_t off) const {
  const uint8_t *p = _buf + off;
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint16_t InletBase::lenAt(uint16_t off) const { return (uint16_t)(_buf[off + 4] | _buf[off + 5] << 8); }

int InletBase::find(uint32_t seq) const {
  uint16_t off = 0;
  for (uint8_t i = 0; i < _count; i++) {
    if (seqAt(off) == seq) return i;
    off += kHead + lenAt(off);
  }
  return -1;
}

// remove takes the readings in bytes [off, off+n) out of the buffer.
void InletBase::remove(uint16_t off, uint16_t n, uint8_t readings) {
  memmove(_buf + off, _buf + off + n, _used - off - n);
  _used -= n;
  _count -= readings;
  if (_sent > off) _sent = _sent >= off + n ? _sent - n : off;
  _dirty = true;
}

void InletBase::drop(uint8_t i, bool counted) {
  uint16_t off = offsetOf(i);
  remove(off, kHead + lenAt(off), 1);
  if (counted) _dropped++;
}

uint8_t InletBase::ackUpTo(uint32_t seq) {
  uint16_t off = 0;
  uint8_t n = 0;
  while (n < _count && seqAt(off) <= seq) {
    off += kHead + lenAt(off);
    n++;
  }
  if (n) {
    remove(0, off, n);
    _acked += n;
  }
  return n;
}

uint32_t InletBase::send(const char *reading) { return send(reading, reading ? strlen(reading) : 0); }

uint32_t InletBase::send(const char *reading, size_t len) {
  if (!_begun) {
    _err = "not begun";
    return 0;
  }
  if (!reading || len == 0 || len > INLET_MAX_READING || len + kHead > INLET_BUFFER_BYTES) {
    _err = "bad length";
    return 0;
  }
  for (size_t i = 0; i < len; i++) {
    if (reading[i] == '\n' || reading[i] == '\r') {
      _err = "line break";
      return 0;
    }
  }
  while (_count >= INLET_BUFFER_READINGS || _used + kHead + len > INLET_BUFFER_BYTES) {
    drop(0, true);
    _err = "buffer full";
  }
  uint32_t seq = _next++;
  uint8_t *p = _buf + _used;
  p[0] = (uint8_t)seq;
  p[1] = (uint8_t)(seq >> 8);
  p[2] = (uint8_t)(seq >> 16);
  p[3] = (uint8_t)(seq >> 24);
  p[4] = (uint8_t)len;
  p[5] = (uint8_t)(len >> 8);
  memcpy(p + kHead, reading, len);
  _used += kHead + len;
  _count++;
  save();
  return seq;
}

// reply acts on a server's "ACK <seq>" (over TCP cumulative, over UDP for
// that datagram) or "ERR <seq> <reason>" (that reading will never be stored:
// given up, counted dropped); false if s is neither.
bool InletBase::reply(const char *s, bool one) {
  const char *rest;
  uint32_t n;
  if (startsWith(s, "ACK ", &rest) && parseU32(rest, &n, nullptr)) {
    if (!one) {
      ackUpTo(n);
    } else if (int i = find(n) + 1) {
      drop((uint8_t)(i - 1), false);
      _acked++;
    }
    return true;
  }
  if (startsWith(s, "ERR ", &rest) && parseU32(rest, &n, &rest) && n != 0) {
    int i = find(n);
    if (i >= 0) drop((uint8_t)i, true);
    _err = "rejected";
    return true;
  }
  return false;
}

// hello writes the INLET/1 hello line (TCP), or with a seq the header line of
// an acknowledged datagram.
bool InletBase::hello(Print &p, uint32_t seq) {
  char num[10];
  bool ok = put(p, "INLET/1 id=") && put(p, _device) && put(p, " boot=") && put(p, _boot);
  if (ok && seq) ok = put(p, " seq=") && putN(p, num, fmtU32(num, seq));
  if (ok && _token) ok = put(p, " token=") && put(p, _token);
  return ok && put(p, "\n");
}

void InletBase::failed(const char *why) {
  _err = why;
  _backoff = _backoff ? (_backoff > _backoffMax / 2 ? _backoffMax : 2 * _backoff) : _backoffMin;
  uint32_t half = _backoff / 2;
  _retryAt = millis() + half + inletRandom() % (half + 1);
}

void InletBase::giveUp(const char *why) {
  _backoff = _backoffMax;  // a refusal that retrying soon will not cure
  failed(why);
}

// RTC image, in 4-byte words: magic, crc (of every word after it), boot id
// (2 words), next seq, acked, dropped, data bytes; then the newest unacknowledged
// readings that fit, in the buffer's format, zero-padded to a whole word.
#if INLET_RTC
static const uint32_t kMagic = 0x314C4E49u;  // "INL1"
static const uint8_t kRtcHead = 8;
static const uint16_t kRtcData = INLET_RTC_BYTES - 4 * kRtcHead;
#endif

void InletBase::save() {
  _dirty = false;
#if INLET_RTC
  uint16_t from = 0;  // keep the newest readings that fit
  uint8_t skipped = 0;
  while (_used - from > kRtcData) {
    from += kHead + lenAt(from);
    skipped++;
  }
  uint16_t bytes = _used - from;
  uint32_t head[kRtcHead];
  head[0] = kMagic;
  head[2] = 0;
  head[3] = 0;
  for (uint8_t i = 0; i < 16; i++) {
    char c = _boot[i];
    head[2 + i / 8] |= (uint32_t)(c <= '9' ? c - '0' : c - 'a' + 10) << (4 * (i % 8));
  }
  head[4] = _next;
  head[5] = _acked;
  head[6] = _dropped + skipped;  // lost if the device sleeps now
  head[7] = bytes;
  uint32_t crc = crc32(0xFFFFFFFFu, head + 2, kRtcHead - 2);
  uint32_t chunk[8];
  for (uint16_t done = 0, w = kRtcHead; done < bytes; w += 8) {
    uint16_t left = (uint16_t)(bytes - done);
    uint16_t n = left < (uint16_t)sizeof chunk ? left : (uint16_t)sizeof chunk;
    memset(chunk, 0, sizeof chunk);
    memcpy(chunk, _buf + from + done, n);
    uint16_t words = (n + 3) / 4;
    crc = crc32(crc, chunk, words);
    inletRtcWrite(w, chunk, 4 * words);
    done += n;
  }
  head[1] = ~crc;
  inletRtcWrite(0, head, sizeof head);
#endif
}

bool InletBase::restore() {
#if INLET_RTC
  uint32_t head[kRtcHead];
  if (!inletRtcRead(0, head, sizeof head) || head[0] != kMagic || head[7] > kRtcData ||
      head[7] > INLET_BUFFER_BYTES || head[4] == 0)
    return false;
  uint16_t bytes = (uint16_t)head[7];
  uint32_t crc = crc32(0xFFFFFFFFu, head + 2, kRtcHead - 2);
  uint32_t chunk[8];
  for (uint16_t done = 0, w = kRtcHead; done < bytes; w += 8) {
    uint16_t left = (uint16_t)(bytes - done);
    uint16_t n = left < (uint16_t)sizeof chunk ? left : (uint16_t)sizeof chunk;
    uint16_t words = (n + 3) / 4;
    if (!inletRtcRead(w, chunk, 4 * words)) return false;
    crc = crc32(crc, chunk, words);
    memcpy(_buf + done, chunk, n);
    done += n;
  }
  if (~crc != head[1]) return false;
  // The readings must parse: seqs increasing and below next, lengths in range.
  uint16_t off = 0;
  uint8_t n = 0;
  uint32_t prev = 0;
  while (off < bytes) {
    if (bytes - off < kHead || n == INLET_BUFFER_READINGS) return false;
    uint32_t seq = seqAt(off);
    uint16_t len = lenAt(off);
    if (seq <= prev || seq >= head[4] || len == 0 || len > INLET_MAX_READING || len > bytes - off - kHead) return false;
    prev = seq;
    off += kHead + len;
    n++;
  }
  bootHex(_boot, head + 2);
  _next = head[4];
  _acked = head[5];
  _dropped = head[6];
  _used = bytes;
  _count = n;
  return true;
#else
  return false;
#endif
}

// ---- InletClient ----

InletClient::InletClient(Client &client) : _c(client), _since(0), _rxLen(0), _rxOver(false), _state(Idle) {}

bool InletClient::begin(const char *host, uint16_t port, const char *device, const char *token) {
  if (_state != Idle) end();
  return start(host, port, device, token);
}

void InletClient::connect() {
  if (!_c.connect(_host, _port)) {
    failed("connect failed");
    return;
  }
  bool ok = hello(_c, 0);
  _rxLen = 0;
  _rxOver = false;
  _sent = 0;
  _state = Hello;
  _since = millis();
  if (!ok) close("write failed", false);
}

void InletClient::loop() {
  if (!_begun) return;
  if (_state == Idle) {
    if (_count == 0 || !due(millis())) {
      if (_dirty) save();
      return;
    }
    connect();  // blocks for as long as the Client's connect does
    if (_state == Idle) return;
  }
  uint32_t start = millis();
  bool hard = false;
  const char *why = readLines(start, true, &hard);
  if (why) {
    close(why, hard);
  } else {
    uint32_t now = millis();
    if (!_c.connected() && _c.available() <= 0) {
      close("connection lost", false);
    } else if (_state == Hello && now - _since > INLET_HELLO_TIMEOUT_MS) {
      close("hello timeout", false);
    } else if (_state == Ready && _sent > 0 && now - _since > INLET_ACK_TIMEOUT_MS) {
      close("ACK timeout", false);
    } else if (_state == Ready) {
      writeReadings(start);
    }
  }
  if (_dirty) save();
}

// readLines acts on the server's lines as they arrive: within the loop budget,
// or (budgeted false) every byte already received. It returns why the
// connection should close (hard: retrying soon will not help), or nullptr.
const char *InletClient::readLines(uint32_t start, bool budgeted, bool *hard) {
  uint8_t chunk[32];
  const char *why = nullptr;
  for (;;) {
    int avail = _c.available();
    if (avail <= 0) break;
    int n = _c.read(chunk, avail < (int)sizeof chunk ? (size_t)avail : sizeof chunk);
    if (n <= 0) break;
    for (int i = 0; i < n; i++) {
      char c = (char)chunk[i];
      if (c == '\n') {
        if (_rxLen && _rx[_rxLen - 1] == '\r') _rxLen--;
        _rx[_rxLen] = 0;
        const char *w = _rxOver ? "not inlet" : line(hard);
        _rxLen = 0;
        _rxOver = false;
        if (w && !why) why = w;
      } else if (_rxLen < sizeof _rx - 1) {
        _rx[_rxLen++] = c;
      } else {
        _rxOver = true;
      }
    }
    if (budgeted && (why || millis() - start >= _budget)) break;
  }
  return why;
}

// line acts on one server line in _rx and returns why to close, or nullptr.
const char *InletClient::line(bool *hard) {
  const char *rest;
  uint32_t n;
  if (_state == Hello) {
    if (startsWith(_rx, "INLET/1 OK last=", &rest) && parseU32(rest, &n, nullptr)) {
      ackUpTo(n);  // stored before: nothing to resend
      _state = Ready;
      _sent = 0;
      _since = millis();
      succeeded();
      return nullptr;
    }
    if (startsWith(_rx, "INLET/1 ERR ", &rest)) {
      if (strcmp(rest, "unauthorized") == 0) return *hard = true, "unauthorized";
      if (strcmp(rest, "bad-hello") == 0) return *hard = true, "bad-hello";
      return "busy";
    }
    return "not inlet";
  }
  if (reply(_rx, false)) {
    _since = millis();
    return nullptr;
  }
  // ERR 0 bad-seq (a line the server could not read) or anything unknown:
  // start afresh; the next hello's last= says what to resend.
  return startsWith(_rx, "ERR 0 ", &rest) ? "bad-seq" : "not inlet";
}

// writeReadings sends the buffered readings not yet sent on this connection,
// whole lines per write (a line split over writes would, with Nagle's
// algorithm, wait for the server's delayed TCP ACK).
void InletClient::writeReadings(uint32_t start) {
  while (_sent < _used && _state == Ready) {
    char out[INLET_MAX_READING + 12];  // the longest line fits
    uint16_t n = 0, off = _sent, len;
    while (off < _used && n + 12u + (len = lenAt(off)) <= sizeof out) {
      n += fmtU32(out + n, seqAt(off));
      out[n++] = ' ';
      memcpy(out + n, _buf + off + kHead, len);
      n += len;
      out[n++] = '\n';
      off += kHead + len;
    }
#if defined(ESP8266)
    // Never block in write(): send only what the TCP buffer takes now.
    if (_c.availableForWrite() < (int)n) return;
#endif
    if (!putN(_c, out, n)) {
      close("write failed", false);
      return;
    }
    if (_sent == 0) _since = millis();  // the ACK clock starts with the first in flight
    _sent = off;
    if (millis() - start >= _budget) return;
  }
}

// stop reads every line the server sent, then closes the connection.
void InletClient::stop() {
  if (_state == Idle) return;
  bool hard;
  readLines(0, false, &hard);
  _c.stop();
  _state = Idle;
  _sent = 0;
}

void InletClient::close(const char *why, bool hard) {
  stop();
  if (hard)
    giveUp(why);
  else
    failed(why);
}

bool InletClient::flush(uint32_t timeoutMs) {
  uint32_t t0 = millis();
  while (_count > 0 && millis() - t0 < timeoutMs) {
    loop();
    delay(1);
  }
  end();
  return _count == 0;
}

void InletClient::end() {
  stop();
  if (_dirty) save();
}

// ---- InletUDP ----

InletUDP::InletUDP(UDP &udp)
    : _u(udp), _roundAt(0), _retry(300), _local(0), _round(false), _gotAck(false), _heard(false), _open(false) {}

bool InletUDP::begin(const char *host, uint16_t port, const char *device, const char *token, uint16_t localPort) {
  end();
  if (!start(host, port, device, token)) return false;
  for (uint8_t i = 0; i < 8 && !_open; i++) {
    _local = localPort ? localPort : (uint16_t)(49152 + inletRandom() % 16384);
    _open = _u.begin(_local) != 0;
    if (localPort) break;
  }
  if (!_open) {
    _err = "no socket";
    _begun = false;
  }
  _round = false;
  return _open;
}

void InletUDP::end() {
  if (_open) _u.stop();
  _open = false;
  _heard = false;
  if (_dirty) save();
}

// A round sends every pending reading once, including those added while it
// runs; after the retry interval a new round repeats whatever is still pending.
void InletUDP::loop() {
  if (!_begun) return;
  uint32_t start = millis();
  receive(start);
  uint32_t now = millis();
  if (_round && (_count == 0 || now - _roundAt >= _retry)) {
    _round = false;
    if (_gotAck || _count == 0) {
      succeeded();
      _retryAt = now;
    } else {
      _heard = false;
      failed("no ACK");
    }
  }
  if (!_round && _count > 0 && due(now)) {
    _round = true;
    _sent = 0;
    _roundAt = now;
    _gotAck = false;
  }
  if (_round) sendRound(start);
  if (_dirty) save();
}

void InletUDP::sendRound(uint32_t start) {
  while (_sent < _used) {
    uint16_t len = lenAt(_sent);
    if (!_u.beginPacket(_host, _port)) {
      _round = false;
      failed("resolve failed");
      return;
    }
    bool ok = hello(_u, seqAt(_sent)) && putN(_u, (const char *)_buf + _sent + kHead, len);
    if (!_u.endPacket() || !ok) {
      _round = false;
      failed("send failed");
      return;
    }
    _sent += kHead + len;
    if (millis() - start >= _budget) return;
  }
}

void InletUDP::receive(uint32_t start) {
  char rx[48];
  while (_open && _u.parsePacket() > 0) {
    int n = _u.read((uint8_t *)rx, sizeof rx - 1);
    if (n < 0) n = 0;
    while (n > 0 && (rx[n - 1] == '\n' || rx[n - 1] == '\r')) n--;
    rx[n] = 0;
    if (reply(rx, true))
      _gotAck = _heard = true;
    else
      _err = "not inlet";
    if (millis() - start >= _budget) return;
  }
}

bool InletUDP::flush(uint32_t timeoutMs) {
  uint32_t t0 = millis();
  while (_count > 0 && millis() - t0 < timeoutMs) {
    loop();
    delay(1);
  }
  if (_dirty) save();
  return _count == 0;
}
