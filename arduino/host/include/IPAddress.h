#ifndef IPAddress_h
#define IPAddress_h

#include <stdint.h>

// IPAddress: an IPv4 address (all the host build needs).
class IPAddress {
public:
  IPAddress() : _a(0) {}
  explicit IPAddress(uint32_t a) : _a(a) {}
  IPAddress(uint8_t a, uint8_t b, uint8_t c, uint8_t d) : _a((uint32_t)a | (uint32_t)b << 8 | (uint32_t)c << 16 | (uint32_t)d << 24) {}
  operator uint32_t() const { return _a; }
  uint8_t *raw_address() { return (uint8_t *)&_a; }
  const uint8_t *raw_address() const { return (const uint8_t *)&_a; }

private:
  uint32_t _a;
};

#endif
