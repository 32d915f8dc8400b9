// The door to Debian's zlib (zlib1g-dev): streamed gzip inflate/deflate with CRC-32 and
// length checks. Only VolumeIO imports this module.
#ifndef ADWB_CZLIB_SHIM_H
#define ADWB_CZLIB_SHIM_H
#include <zlib.h>
#endif
