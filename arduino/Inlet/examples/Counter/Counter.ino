// The classic tutorial counter, made lossless with the Inlet library.
//
// The tutorial connects, prints the counter and disconnects every second; a
// reading sent while WiFi or the server is down is lost without a trace. Here
// each reading is kept until the inlet server has stored it on disk, resent
// after any failure, and stored exactly once. Lines marked "Inlet" are new or
// changed; the rest is the tutorial as it was.
#include <ESP8266WiFi.h>  // ESP32: #include <WiFi.h>
#include <Inlet.h>        // Inlet

const char* ssid = "your-wifi";
const char* password = "your-password";
const char* host = "192.168.1.10";  // the computer running inlet serve
const uint16_t port = 3000;
int counter = 0;

WiFiClient client;          // Inlet: global (was inside loop())
InletClient inlet(client);  // Inlet

void setup() {
  Serial.begin(115200);
  WiFi.begin(ssid, password);
  while (WiFi.status() != WL_CONNECTED) delay(500);
  inlet.begin(host, port, "counter-1");  // Inlet: a name for this device
}

void loop() {
  inlet.loop();                         // Inlet: was client.connect(host, port);
  inlet.send(String(counter).c_str());  // Inlet: was client.print(String(counter) + "\r\n");
  counter++;                            //        (client.stop(); removed)
  delay(1000);
}
