// For compiling the library's ESP32 branch on the host (not linked).
#include <stdint.h>
extern "C" uint32_t esp_random(void);
