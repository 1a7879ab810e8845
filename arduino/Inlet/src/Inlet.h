// Inlet: readings that are never lost, for ESP8266 and ESP32 sketches.
//
// A reading given to send() is kept in a RAM buffer (and, across deep sleep, in
// RTC memory) until the inlet server has acknowledged that it is stored on disk
// (the INLET/1 protocol). Resends after a lost connection or a lost datagram are
// de-duplicated by the server, so every reading is stored exactly once.
//
//   InletClient: over any Arduino Client& (WiFiClient, WiFiClientSecure,
//                EthernetClient), one connection, readings pipelined.
//   InletUDP:    over any Arduino UDP& (WiFiUDP), one datagram per reading,
//                each repeated until its ACK arrives (deep-sleep senders).
//
// No heap, no exceptions, no STL, no String: the buffer is a member array whose
// size is set at compile time (INLET_BUFFER_BYTES, INLET_BUFFER_READINGS).
#ifndef INLET_H
#define INLET_H

#include <Arduino.h>
#include <Client.h>
#include <Udp.h>

// The buffer: at most INLET_BUFFER_READINGS readings in INLET_BUFFER_BYTES
// bytes, each reading costing its length plus 6 bytes. Change these (and the
// settings below) only with build flags (-D...), which reach every source file:
// a #define in the sketch would give the sketch and Inlet.cpp different ideas
// of the objects' layout.
#ifndef INLET_BUFFER_BYTES
#define INLET_BUFFER_BYTES 2048
#endif
#ifndef INLET_BUFFER_READINGS
#define INLET_BUFFER_READINGS 32
#endif
// The longest reading send() takes, in bytes (server default --max-message 4096).
#ifndef INLET_MAX_READING
#define INLET_MAX_READING 256
#endif
// RTC memory used to keep the boot, next seq and unacknowledged readings across
// deep sleep: offset in 4-byte words into the ESP8266's 512 bytes of user RTC
// memory, and size in bytes (a multiple of 4, at least 64).
#ifndef INLET_RTC_OFFSET
#define INLET_RTC_OFFSET 0
#endif
#ifndef INLET_RTC_BYTES
#define INLET_RTC_BYTES 512
#endif
// Set to 0 to keep nothing in RTC memory (every reset then starts a new boot).
#ifndef INLET_RTC
#define INLET_RTC 1
#endif

#if INLET_BUFFER_BYTES > 65535 || INLET_BUFFER_READINGS > 255 || INLET_BUFFER_READINGS < 1
#error "Inlet: INLET_BUFFER_BYTES must be at most 65535 and INLET_BUFFER_READINGS 1 to 255"
#endif
#if INLET_RTC_BYTES % 4 != 0 || INLET_RTC_BYTES < 64 || INLET_RTC_OFFSET * 4 + INLET_RTC_BYTES > 512
#error "Inlet: INLET_RTC_BYTES must be a multiple of 4, at least 64, and fit in 512 bytes from INLET_RTC_OFFSET"
#endif

// InletBase is what both transports share: the buffer of readings not yet
// acknowledged, the boot id and sequence, the counters, RTC memory.
class InletBase {
public:
  // send buffers one reading (a line without '\n' or '\r', at most
  // INLET_MAX_READING bytes) and returns its seq, or 0 when it was refused
  // (empty, too long, a newline, or begin() not called; see lastError()).
  // A full buffer drops its OLDEST reading to make room: counted in dropped(),
  // and the server then lists that seq as missing.
  uint32_t send(const char *reading);
  uint32_t send(const char *reading, size_t len);

  // pending is the number of readings buffered and not yet acknowledged.
  uint8_t pending() const { return _count; }
  // acked counts the readings acknowledged in this boot (kept across deep sleep).
  uint32_t acked() const { return _acked; }
  // dropped counts the readings given up in this boot: pushed out of a full
  // buffer, refused by the server (ERR too-long), or not fitting in RTC memory
  // at deep sleep. Each is a seq the server reports as missing.
  uint32_t dropped() const { return _dropped; }
  // lastError describes the most recent problem ("" if none); a constant string.
  const char *lastError() const { return _err; }
  void clearError() { _err = ""; }
  // bootId is this boot's id as sent to the server (16 hex digits).
  const char *bootId() const { return _boot; }
  // nextSeq is the seq the next reading will get.
  uint32_t nextSeq() const { return _next; }
  // resumed reports whether begin() continued a boot kept in RTC memory (a
  // wake-up from deep sleep) rather than starting a new one (a power cycle).
  bool resumed() const { return _resumed; }

  // Back-off between failed attempts: exponential from minMs to maxMs, each
  // wait drawn at random from its upper half. Defaults 500 ms and 60 s.
  void setBackoff(uint32_t minMs, uint32_t maxMs);
  // The most loop() may take apart from a TCP connect (default 20 ms).
  void setLoopBudget(uint16_t ms) { _budget = ms; }

protected:
  InletBase();
  bool start(const char *host, uint16_t port, const char *device, const char *token);
  void remove(uint16_t off, uint16_t n, uint8_t readings);
  void drop(uint8_t i, bool counted);
  uint8_t ackUpTo(uint32_t seq);
  int find(uint32_t seq) const;
  uint16_t offsetOf(uint8_t i) const;
  uint32_t seqAt(uint16_t off) const;
  uint16_t lenAt(uint16_t off) const;
  bool hello(Print &p, uint32_t seq);
  bool reply(const char *s, bool one);
  void failed(const char *why);
  void giveUp(const char *why);
  void succeeded() { _backoff = 0; }
  bool due(uint32_t now) const { return (int32_t)(now - _retryAt) >= 0; }
  void save();
  bool restore();

  const char *_host;
  const char *_token;
  const char *_device;
  const char *_err;
  uint32_t _next;
  uint32_t _acked;
  uint32_t _dropped;
  uint32_t _retryAt;
  uint32_t _backoff;
  uint32_t _backoffMin;
  uint32_t _backoffMax;
  uint16_t _port;
  uint16_t _used;  // bytes of _buf holding readings
  uint16_t _sent;  // bytes of _buf sent on this connection (TCP) or in this round (UDP)
  uint16_t _budget;
  uint8_t _count;  // readings in _buf
  bool _begun;
  bool _resumed;
  bool _dirty;     // changed since the last save to RTC memory
  char _boot[17];
  // Readings, oldest first, each [seq:4][len:2][bytes], packed (memmove on ack).
  uint8_t _buf[INLET_BUFFER_BYTES];
};

// InletClient speaks INLET/1 over one TCP (or TLS) connection at a time.
class InletClient : public InletBase {
public:
  explicit InletClient(Client &client);

  // begin keeps host, device and token as pointers: pass string literals or
  // buffers that outlive the InletClient (not a temporary String's c_str()).
  // Returns false (and sets
  // lastError) for a device id or token the protocol does not allow. begin
  // resumes the boot kept in RTC memory if there is a valid one.
  bool begin(const char *host, uint16_t port, const char *device, const char *token = nullptr);
  // loop does a bounded slice of work: connects when a reading is pending and
  // the back-off allows (the connect itself blocks, see README), reads the
  // server's lines, sends buffered readings pipelined. Call it often.
  void loop();
  // flush runs loop() until every reading is acknowledged or timeoutMs passed,
  // then closes the connection cleanly; true if nothing is pending.
  bool flush(uint32_t timeoutMs);
  // connected reports an open connection whose hello the server accepted.
  bool connected() const { return _state == Ready; }
  // end reads every line the server has sent, then closes the connection.
  void end();

private:
  enum State : uint8_t { Idle, Hello, Ready };
  void connect();
  const char *readLines(uint32_t start, bool budgeted, bool *hard);
  const char *line(bool *hard);
  void writeReadings(uint32_t start);
  void stop();
  void close(const char *why, bool hard);

  Client &_c;
  uint32_t _since;  // hello sent, or last progress while readings are in flight
  uint8_t _rxLen;
  bool _rxOver;
  State _state;
  char _rx[48];
};

// InletUDP sends each reading as one acknowledged datagram as soon as it is
// taken, and repeats every unacknowledged one each retry interval until its
// ACK arrives.
class InletUDP : public InletBase {
public:
  explicit InletUDP(UDP &udp);

  // As InletClient::begin. localPort 0 picks one at random (49152-65535).
  bool begin(const char *host, uint16_t port, const char *device, const char *token = nullptr,
             uint16_t localPort = 0);
  // loop sends what is due and reads ACKs, within the loop budget.
  void loop();
  // flush runs loop() until every reading is acknowledged or timeoutMs passed.
  bool flush(uint32_t timeoutMs);
  // connected reports that the last round of datagrams got an ACK back.
  bool connected() const { return _heard; }
  // How long to wait for ACKs before repeating a datagram (default 300 ms).
  // Consecutive rounds without any ACK back off as setBackoff says.
  void setRetry(uint16_t ms) { _retry = ms; }
  // end closes the UDP socket.
  void end();

private:
  void receive(uint32_t start);
  void sendRound(uint32_t start);

  UDP &_u;
  uint32_t _roundAt;  // when the current round started
  uint16_t _retry;
  uint16_t _local;
  bool _round;   // a round is on: _sent is how far it got
  bool _gotAck;  // an ACK arrived during the current round
  bool _heard;
  bool _open;
};

#endif
