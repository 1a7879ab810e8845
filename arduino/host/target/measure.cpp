// For the ESP8266 size check: the static RAM a sketch's global InletClient or
// InletUDP takes (the library's own statics are measured from Inlet.o).
#include <Inlet.h>

alignas(4) unsigned char inlet_client_size[sizeof(InletClient)];
alignas(4) unsigned char inlet_udp_size[sizeof(InletUDP)];
