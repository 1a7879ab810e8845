// The Arduino API as the Inlet library uses it, for two builds that are not an
// Arduino core: the host tests (INLET_HOST: implemented in ../posix.cpp over
// POSIX sockets and files) and the ESP8266 size check (declarations only,
// compiled with xtensa-lx106-elf-g++ against ../target/). Signatures follow
// the ESP8266 Arduino core (cores/esp8266); written for inlet, not copied.
#ifndef Arduino_h
#define Arduino_h

#include <stddef.h>
#include <stdint.h>
#include <string.h>

// The ESP8266 unless the build says ESP32 (arduino/host/esp32 then stands in
// for the ESP32 core's headers, to compile the library's ESP32 branch).
#if !defined(ESP8266) && !defined(ESP32)
#define ESP8266 1
#endif

unsigned long millis(void);
unsigned long micros(void);
void delay(unsigned long ms);
void yield(void);

#ifdef INLET_HOST
// The hardware random number generator: a fresh random word at every read.
uint32_t inletHostRandom(void);
#define RANDOM_REG32 (inletHostRandom())
#else
#define ESP8266_DREG(addr) *((volatile uint32_t *)(0x3FF00000 + (addr)))
#define RANDOM_REG32 ESP8266_DREG(0x20E44)
#endif

enum RFMode { RF_DEFAULT = 0, RF_CAL = 1, RF_NO_CAL = 2, RF_DISABLED = 4 };

class EspClass {
public:
  // 512 bytes of user RTC memory: offset in 4-byte words, size in bytes.
  static bool rtcUserMemoryRead(uint32_t offset, uint32_t *data, size_t size);
  static bool rtcUserMemoryWrite(uint32_t offset, uint32_t *data, size_t size);
  static void deepSleep(uint64_t time_us, RFMode mode = RF_DEFAULT);
};

extern EspClass ESP;

#include "Print.h"
#include "Stream.h"

#ifdef INLET_SKETCH
// What the examples use beyond the library's needs (declarations only: the
// examples are compiled, not linked). The library is built without
// INLET_SKETCH, so it cannot use String or Serial by accident.
#include <stdio.h>
#include <stdlib.h>

class String {
public:
  String(int v) { snprintf(_b, sizeof _b, "%d", v); }
  const char *c_str() const { return _b; }

private:
  char _b[12];
};

class HardwareSerial : public Print {
public:
  void begin(unsigned long baud);
  size_t write(uint8_t c) override;
  size_t println(const char *s);
  size_t printf(const char *format, ...) __attribute__((format(printf, 2, 3)));
};
extern HardwareSerial Serial;

int analogRead(uint8_t pin);
#define A0 17
#endif

#endif
