#ifndef Print_h
#define Print_h

#include <stddef.h>
#include <stdint.h>
#include <string.h>

// Print: the byte sink of every Arduino stream (the part the library uses).
class Print {
public:
  Print() : write_error(0) {}
  virtual ~Print() {}
  virtual size_t write(uint8_t) = 0;
  virtual size_t write(const uint8_t *buffer, size_t size) {
    size_t n = 0;
    while (size-- && write(*buffer++)) n++;
    return n;
  }
  size_t write(const char *str) { return str ? write((const uint8_t *)str, strlen(str)) : 0; }
  size_t write(const char *buffer, size_t size) { return write((const uint8_t *)buffer, size); }
  // Bytes that can be written without blocking; 0 if unknown (ESP8266 core 3).
  virtual int availableForWrite() { return 0; }
  virtual void flush() {}
  int getWriteError() { return write_error; }
  void clearWriteError() { write_error = 0; }

protected:
  void setWriteError(int err = 1) { write_error = err; }

private:
  int write_error;
};

#endif
