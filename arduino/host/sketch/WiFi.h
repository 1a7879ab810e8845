#include "ESP8266WiFi.h"
