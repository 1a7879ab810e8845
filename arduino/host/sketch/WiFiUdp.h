// WiFiUDP for compiling the examples on the host.
#include "../posix.h"
typedef PosixUDP WiFiUDP;
