/* The few <string.h> functions the library calls, for the ESP8266 size check
   (Debian's gcc-xtensa-lx106 ships no C library; the real core uses newlib). */
#ifndef INLET_TARGET_STRING_H
#define INLET_TARGET_STRING_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
#ifdef __cplusplus
}
#endif
#endif
