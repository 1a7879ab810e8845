#ifndef Stream_h
#define Stream_h

#include "Print.h"

// Stream: a Print that can also be read (the part the library uses).
class Stream : public Print {
public:
  Stream() : _timeout(1000) {}
  virtual int available() = 0;
  virtual int read() = 0;
  virtual int peek() = 0;
  void setTimeout(unsigned long timeout) { _timeout = timeout; }
  unsigned long getTimeout() { return _timeout; }

protected:
  unsigned long _timeout;
};

#endif
