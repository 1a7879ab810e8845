// A sensor with named fields, read every minute and sent over one kept-open
// TCP connection. inlet stores the payload as sent and derives one field per
// key (temp, hum, vbat) for its charts and queries.
#include <Arduino.h>
#if defined(ESP8266)
#include <ESP8266WiFi.h>
#else
#include <WiFi.h>
#endif
#include <Inlet.h>

const char* ssid = "your-wifi";
const char* password = "your-password";
const char* host = "192.168.1.10";
const uint16_t port = 3000;
const char* token = nullptr;  // set if the server runs with --token

WiFiClient client;
InletClient inlet(client);
unsigned long lastReading = 0;
unsigned long lastReport = 0;

// Stand-ins for your sensor driver.
float readTemperature() { return 21.5; }
float readHumidity() { return 40.0; }

void setup() {
  Serial.begin(115200);
  WiFi.begin(ssid, password);  // the library waits for WiFi by itself:
  // readings taken before it connects are buffered and sent later.
  if (!inlet.begin(host, port, "greenhouse-3", token)) {
    Serial.println(inlet.lastError());
  }
}

void loop() {
  inlet.loop();
  unsigned long now = millis();
  if (now - lastReading >= 60000UL || lastReading == 0) {
    lastReading = now;
    char reading[64];
    // Numbers with two decimals without printf("%f") (not in every core's libc):
    int t = (int)(readTemperature() * 100), h = (int)(readHumidity() * 100);
    snprintf(reading, sizeof reading, "temp=%d.%02d hum=%d.%02d vbat=%d", t / 100, abs(t % 100), h / 100,
             abs(h % 100), analogRead(A0));
    uint32_t seq = inlet.send(reading);
    if (!seq) Serial.println(inlet.lastError());
  }
  if (now - lastReport >= 10000UL) {
    lastReport = now;
    Serial.printf("pending %u acked %u dropped %u connected %d %s\n", inlet.pending(), (unsigned)inlet.acked(),
                  (unsigned)inlet.dropped(), inlet.connected(), inlet.lastError());
  }
}
