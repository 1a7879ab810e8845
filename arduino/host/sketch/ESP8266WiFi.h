// The WiFi API the examples use, for compiling them on the host (not linked).
#ifndef INLET_SKETCH_WIFI_H
#define INLET_SKETCH_WIFI_H
#include <Arduino.h>

#include "../posix.h"

typedef PosixClient WiFiClient;

#define WL_CONNECTED 3
class WiFiClass {
public:
  int begin(const char *ssid, const char *password);
  int status();
};
extern WiFiClass WiFi;
#endif
