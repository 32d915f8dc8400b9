// The door to Debian's zlib (zlib1g-dev): streamed gzip inflate/deflate with CRC-32 and
// length checks (VolumeIO), deflate and CRC-32 for PNG figures (Reports).
#ifndef ADWB_CZLIB_SHIM_H
#define ADWB_CZLIB_SHIM_H
#include <zlib.h>
#endif
