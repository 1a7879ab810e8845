// Host implementations of the Arduino Client and UDP over POSIX sockets, for
// the host tests of the Inlet library (see posix.cpp).
#ifndef INLET_HOST_POSIX_H
#define INLET_HOST_POSIX_H

#include <Arduino.h>
#include <Client.h>
#include <Udp.h>

// PosixClient is a WiFiClient over a TCP socket: connect blocks (up to the
// Stream timeout), reads never block, writes block until the kernel takes the
// bytes (up to the timeout), like the ESP8266 core's WiFiClient.
class PosixClient : public Client {
public:
  PosixClient() : _fd(-1), _eof(false) { _timeout = 5000; }
  ~PosixClient() { stop(); }
  int connect(IPAddress ip, uint16_t port) override;
  int connect(const char *host, uint16_t port) override;
  size_t write(uint8_t b) override { return write(&b, 1); }
  size_t write(const uint8_t *buf, size_t size) override;
  int availableForWrite() override;
  int available() override;
  int read() override;
  int read(uint8_t *buf, size_t size) override;
  int peek() override;
  void flush() override {}
  void stop() override;
  uint8_t connected() override;
  operator bool() override { return _fd >= 0; }
  using Print::write;

private:
  int _fd;
  bool _eof;
};

// PosixUDP is a WiFiUDP over a UDP socket bound to 127.0.0.1.
class PosixUDP : public UDP {
public:
  PosixUDP() : _fd(-1), _txLen(0), _rxLen(0), _rxPos(0), _remote(0), _txAddr(0), _remotePort(0), _txPort(0), _txOk(false) {}
  ~PosixUDP() { stop(); }
  uint8_t begin(uint16_t port) override;
  void stop() override;
  int beginPacket(IPAddress ip, uint16_t port) override;
  int beginPacket(const char *host, uint16_t port) override;
  int endPacket() override;
  size_t write(uint8_t b) override { return write(&b, 1); }
  size_t write(const uint8_t *buffer, size_t size) override;
  int parsePacket() override;
  int available() override { return (int)(_rxLen - _rxPos); }
  int read() override;
  int read(unsigned char *buffer, size_t len) override;
  int read(char *buffer, size_t len) override { return read((unsigned char *)buffer, len); }
  int peek() override { return _rxPos < _rxLen ? _rx[_rxPos] : -1; }
  void flush() override { _rxPos = _rxLen; }
  IPAddress remoteIP() const override { return IPAddress(_remote); }
  uint16_t remotePort() const override { return _remotePort; }
  using Print::write;

private:
  int _fd;
  size_t _txLen, _rxLen, _rxPos;
  uint32_t _remote, _txAddr;
  uint16_t _remotePort, _txPort;
  bool _txOk;
  uint8_t _tx[1472], _rx[1472];
};

#endif
