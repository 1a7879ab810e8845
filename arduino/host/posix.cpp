// A small POSIX implementation of the Arduino API the Inlet library uses:
// millis, delay, the random register, RTC user memory kept in a file (the
// environment variable INLET_RTC_FILE), deep sleep as process exit, and
// Client/UDP over sockets. For the host tests only.
#include "posix.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

EspClass ESP;

static uint64_t nowUs() {
  static uint64_t t0;
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
  if (!t0) t0 = us - 1000;
  return us - t0;
}

unsigned long millis(void) { return (unsigned long)(uint32_t)(nowUs() / 1000); }
unsigned long micros(void) { return (unsigned long)(uint32_t)nowUs(); }
void yield(void) {}

void delay(unsigned long ms) {
  timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

uint32_t inletHostRandom(void) {
  uint32_t v = 0;
  if (getrandom(&v, sizeof v, 0) != sizeof v) abort();
  return v;
}

// ---- RTC user memory: 512 bytes, kept in a file across process restarts (deep
// sleep); a missing file is a power-up, where RTC memory holds noise.

static uint8_t rtc[512];
static int rtcFd = -2;

static void rtcOpen() {
  if (rtcFd != -2) return;
  const char *path = getenv("INLET_RTC_FILE");
  rtcFd = -1;
  for (size_t i = 0; i < sizeof rtc; i += 4) {
    uint32_t r = inletHostRandom();
    memcpy(rtc + i, &r, 4);
  }
  if (!path || !*path) return;
  rtcFd = open(path, O_RDWR | O_CREAT, 0644);
  if (rtcFd < 0) {
    perror("rtc file");
    exit(3);
  }
  uint8_t buf[sizeof rtc];
  if (pread(rtcFd, buf, sizeof buf, 0) == (ssize_t)sizeof buf) memcpy(rtc, buf, sizeof rtc);
}

bool EspClass::rtcUserMemoryRead(uint32_t offset, uint32_t *data, size_t size) {
  if (offset * 4 + size > 512 || size == 0) return false;
  rtcOpen();
  memcpy(data, rtc + offset * 4, size);
  return true;
}

bool EspClass::rtcUserMemoryWrite(uint32_t offset, uint32_t *data, size_t size) {
  if (offset * 4 + size > 512 || size == 0) return false;
  rtcOpen();
  memcpy(rtc + offset * 4, data, size);
  if (rtcFd >= 0 && pwrite(rtcFd, rtc, sizeof rtc, 0) != (ssize_t)sizeof rtc) {
    perror("rtc write");
    exit(3);
  }
  return true;
}

void EspClass::deepSleep(uint64_t, RFMode) {
  // The chip powers down; RTC memory (the file) stays. The test restarts us.
  fflush(stdout);
  _exit(0);
}

// ---- name resolution (IPv4, as lwIP on the ESP8266 by default)

static bool resolve(const char *host, uint32_t *addr) {
  in_addr a;
  if (inet_pton(AF_INET, host, &a) == 1) {
    *addr = a.s_addr;
    return true;
  }
  addrinfo hints = {}, *res = nullptr;
  hints.ai_family = AF_INET;
  if (getaddrinfo(host, nullptr, &hints, &res) != 0 || !res) return false;
  *addr = ((sockaddr_in *)res->ai_addr)->sin_addr.s_addr;
  freeaddrinfo(res);
  return true;
}

// ---- PosixClient

int PosixClient::connect(IPAddress ip, uint16_t port) {
  stop();
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in sa = {};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = (uint32_t)ip;
  if (::connect(fd, (sockaddr *)&sa, sizeof sa) != 0) {
    if (errno != EINPROGRESS) {
      close(fd);
      return 0;
    }
    pollfd p = {fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    if (poll(&p, 1, (int)_timeout) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      close(fd);
      return 0;
    }
  }
  _fd = fd;
  _eof = false;
  return 1;
}

int PosixClient::connect(const char *host, uint16_t port) {
  uint32_t a;
  if (!resolve(host, &a)) return 0;
  return connect(IPAddress(a), port);
}

size_t PosixClient::write(const uint8_t *buf, size_t size) {
  size_t done = 0;
  unsigned long t0 = millis();
  while (_fd >= 0 && done < size) {
    ssize_t n = send(_fd, buf + done, size - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += (size_t)n;
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) break;
    if (millis() - t0 >= _timeout) break;
    pollfd p = {_fd, POLLOUT, 0};
    poll(&p, 1, 10);
  }
  return done;
}

int PosixClient::availableForWrite() {
  if (_fd < 0) return 0;
  int sndbuf = 0, queued = 0;
  socklen_t len = sizeof sndbuf;
  if (getsockopt(_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) != 0 || ioctl(_fd, SIOCOUTQ, &queued) != 0) return 0;
  return sndbuf / 2 > queued ? sndbuf / 2 - queued : 0;  // the kernel doubles SO_SNDBUF for its bookkeeping
}

int PosixClient::available() {
  if (_fd < 0) return 0;
  int n = 0;
  if (ioctl(_fd, FIONREAD, &n) != 0) return 0;
  return n;
}

int PosixClient::read(uint8_t *buf, size_t size) {
  if (_fd < 0) return -1;
  ssize_t n = recv(_fd, buf, size, 0);
  if (n == 0) _eof = true;
  if (n < 0 && errno != EAGAIN && errno != EINTR) _eof = true;
  return n > 0 ? (int)n : -1;
}

int PosixClient::read() {
  uint8_t b;
  return read(&b, 1) == 1 ? b : -1;
}

int PosixClient::peek() {
  uint8_t b;
  if (_fd < 0) return -1;
  return recv(_fd, &b, 1, MSG_PEEK) == 1 ? b : -1;
}

void PosixClient::stop() {
  if (_fd >= 0) close(_fd);
  _fd = -1;
}

// connected is true while the connection is open or unread bytes remain, as on
// the ESP8266 core.
uint8_t PosixClient::connected() {
  if (_fd < 0) return 0;
  if (available() > 0) return 1;
  if (_eof) return 0;
  uint8_t b;
  ssize_t n = recv(_fd, &b, 1, MSG_PEEK);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) _eof = true;
  return !_eof;
}

// ---- PosixUDP

uint8_t PosixUDP::begin(uint16_t port) {
  stop();
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in sa = {};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return 0;
  }
  _fd = fd;
  return 1;
}

void PosixUDP::stop() {
  if (_fd >= 0) close(_fd);
  _fd = -1;
}

int PosixUDP::beginPacket(IPAddress ip, uint16_t port) {
  _txAddr = (uint32_t)ip;
  _txPort = port;
  _txLen = 0;
  _txOk = _fd >= 0;
  return _txOk;
}

int PosixUDP::beginPacket(const char *host, uint16_t port) {
  uint32_t a;
  if (!resolve(host, &a)) return 0;
  return beginPacket(IPAddress(a), port);
}

size_t PosixUDP::write(const uint8_t *buffer, size_t size) {
  if (!_txOk || _txLen + size > sizeof _tx) {
    _txOk = false;
    return 0;
  }
  memcpy(_tx + _txLen, buffer, size);
  _txLen += size;
  return size;
}

int PosixUDP::endPacket() {
  if (!_txOk) return 0;
  _txOk = false;
  sockaddr_in sa = {};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(_txPort);
  sa.sin_addr.s_addr = _txAddr;
  return sendto(_fd, _tx, _txLen, 0, (sockaddr *)&sa, sizeof sa) == (ssize_t)_txLen;
}

int PosixUDP::parsePacket() {
  _rxLen = _rxPos = 0;
  if (_fd < 0) return 0;
  sockaddr_in sa = {};
  socklen_t len = sizeof sa;
  ssize_t n = recvfrom(_fd, _rx, sizeof _rx, 0, (sockaddr *)&sa, &len);
  if (n <= 0) return 0;
  _rxLen = (size_t)n;
  _remote = sa.sin_addr.s_addr;
  _remotePort = ntohs(sa.sin_port);
  return (int)n;
}

int PosixUDP::read() { return _rxPos < _rxLen ? _rx[_rxPos++] : -1; }

int PosixUDP::read(unsigned char *buffer, size_t len) {
  size_t n = _rxLen - _rxPos < len ? _rxLen - _rxPos : len;
  memcpy(buffer, _rx + _rxPos, n);
  _rxPos += n;
  return (int)n;
}
