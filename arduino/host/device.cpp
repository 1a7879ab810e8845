// device: the host stand-in for an ESP8266 running a sketch with the Inlet
// library, driven line by line on stdin by the Go tests (internal/arduinotest).
//
//   device tcp|udp HOST PORT DEVICE-ID [TOKEN]
//
// Commands (one per line; each answers one JSON status line on stdout):
//   send N wait|drop EVERY_US  take N readings "r=<seq>", calling loop() between
//                              them and sleeping EVERY_US; wait: a reading is
//                              taken only when the buffer has room (a sketch
//                              that checks pending()); drop: regardless
//   sendlen L                  one reading "r=<seq> pad=xxx..." of L bytes
//   loop MS                    call loop() for MS milliseconds
//   flush MS                   flush(MS)
//   backoff MIN MAX            setBackoff
//   retry MS                   InletUDP::setRetry
//   status                     just the status
//   sleep                      ESP.deepSleep: exit, RTC memory (the file) kept
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <Inlet.h>

#include "posix.h"

static PosixClient tcp;
static PosixUDP udp;
static InletClient itcp(tcp);
static InletUDP iudp(udp);
static InletBase *inlet;
static bool useUdp;

static void loopOnce() {
  if (useUdp)
    iudp.loop();
  else
    itcp.loop();
}

static void status(const char *cmd, bool ok) {
  bool conn = useUdp ? iudp.connected() : itcp.connected();
  printf("{\"cmd\":\"%s\",\"ok\":%s,\"boot\":\"%s\",\"next\":%u,\"pending\":%u,\"acked\":%u,\"dropped\":%u,"
         "\"resumed\":%s,\"connected\":%s,\"error\":\"%s\",\"capacity\":%d}\n",
         cmd, ok ? "true" : "false", inlet->bootId(), (unsigned)inlet->nextSeq(), (unsigned)inlet->pending(),
         (unsigned)inlet->acked(), (unsigned)inlet->dropped(), inlet->resumed() ? "true" : "false",
         conn ? "true" : "false", inlet->lastError(), INLET_BUFFER_READINGS);
  fflush(stdout);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: device tcp|udp HOST PORT DEVICE-ID [TOKEN]\n");
    return 2;
  }
  useUdp = strcmp(argv[1], "udp") == 0;
  const char *token = argc > 5 ? argv[5] : nullptr;
  uint16_t port = (uint16_t)atoi(argv[3]);
  bool ok;
  if (useUdp) {
    inlet = &iudp;
    ok = iudp.begin(argv[2], port, argv[4], token);
  } else {
    inlet = &itcp;
    ok = itcp.begin(argv[2], port, argv[4], token);
  }
  status("begin", ok);
  if (!ok) return 1;

  char line[256];
  while (fgets(line, sizeof line, stdin)) {
    char cmd[32] = "", mode[16] = "";
    unsigned long a = 0, b = 0;
    int n = sscanf(line, "%31s %lu %15s %lu", cmd, &a, mode, &b);
    if (n < 1) continue;
    if (strcmp(cmd, "send") == 0) {
      bool wait = strcmp(mode, "wait") == 0;
      bool all = true;
      for (unsigned long i = 0; i < a; i++) {
        while (wait && inlet->pending() >= INLET_BUFFER_READINGS) {
          loopOnce();
          delay(1);
        }
        char r[24];
        snprintf(r, sizeof r, "r=%u", (unsigned)inlet->nextSeq());
        if (!inlet->send(r)) all = false;
        loopOnce();
        if (b) delay(b / 1000 ? b / 1000 : 1);
      }
      status("send", all);
    } else if (strcmp(cmd, "sendlen") == 0) {
      char r[512];
      int k = snprintf(r, sizeof r, "r=%u pad=", (unsigned)inlet->nextSeq());
      while (k < (int)a && k < (int)sizeof r - 1) r[k++] = 'x';
      r[k] = 0;
      bool sent = inlet->send(r) != 0;
      loopOnce();
      status("sendlen", sent);
    } else if (strcmp(cmd, "loop") == 0) {
      unsigned long t0 = millis();
      while (millis() - t0 < a) {
        loopOnce();
        delay(1);
      }
      status("loop", true);
    } else if (strcmp(cmd, "flush") == 0) {
      status("flush", useUdp ? iudp.flush(a) : itcp.flush(a));
    } else if (strcmp(cmd, "backoff") == 0) {
      unsigned long mx = 0;
      sscanf(line, "%*s %lu %lu", &a, &mx);
      inlet->setBackoff(a, mx);
      status("backoff", true);
    } else if (strcmp(cmd, "retry") == 0) {
      iudp.setRetry((uint16_t)a);
      status("retry", true);
    } else if (strcmp(cmd, "status") == 0) {
      status("status", true);
    } else if (strcmp(cmd, "sleep") == 0) {
      status("sleep", true);
      ESP.deepSleep(60000000);
    } else {
      status("unknown", false);
    }
  }
  return 0;
}
