// For compiling the library's ESP32 branch on the host (not linked): the
// attribute the ESP32 core defines for RTC memory that start-up leaves alone.
#define RTC_NOINIT_ATTR __attribute__((section(".rtc_noinit")))
