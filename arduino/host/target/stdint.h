/* Debian's gcc-xtensa-lx106 ships no C library: the compiler's own fixed-width types. */
#include <stdint-gcc.h>
