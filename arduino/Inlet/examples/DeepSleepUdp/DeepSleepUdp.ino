// A deep-sleep sensor: wake, take one reading, send it over acknowledged UDP,
// sleep. The boot id, the next seq and any reading not yet acknowledged stay
// in RTC memory across the sleep, so the next wake-up resends it and the
// server counts one boot (not one per wake-up) and stores every reading once.
// ESP8266: connect GPIO16 (D0) to RST so the RTC timer can wake the chip.
#include <Arduino.h>
#if defined(ESP8266)
#include <ESP8266WiFi.h>
#else
#include <WiFi.h>
#endif
#include <WiFiUdp.h>
#include <Inlet.h>

const char* ssid = "your-wifi";
const char* password = "your-password";
const char* host = "192.168.1.10";
const uint16_t port = 3001;  // inlet's UDP port
const uint64_t sleepUs = 60ULL * 1000000;

WiFiUDP udp;
InletUDP inlet(udp);

void setup() {
  Serial.begin(115200);
  inlet.begin(host, port, "cellar-1");  // resumes the boot kept in RTC memory
  inlet.setRetry(200);                  // repeat an unacknowledged datagram every 200 ms

  char reading[32];
  snprintf(reading, sizeof reading, "mv=%d", analogRead(A0));
  inlet.send(reading);  // kept in RTC memory until acknowledged

  WiFi.begin(ssid, password);
  unsigned long t0 = millis();
  while (WiFi.status() != WL_CONNECTED && millis() - t0 < 8000) delay(50);
  if (WiFi.status() == WL_CONNECTED) {
    inlet.flush(2000);  // one datagram, one ACK; a few retries if one is lost
  }
  Serial.printf("boot %s seq %u pending %u acked %u %s\n", inlet.bootId(), (unsigned)inlet.nextSeq() - 1,
                inlet.pending(), (unsigned)inlet.acked(), inlet.lastError());
  inlet.end();
#if defined(ESP8266)
  ESP.deepSleep(sleepUs);
#else
  esp_deep_sleep(sleepUs);
#endif
}

void loop() {}
