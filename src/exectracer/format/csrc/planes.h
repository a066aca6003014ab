/* Byte planes of an EVENTS payload (planes.c): no Python in them, so they run without the GIL */

#ifndef EXECTRACER_PLANES_H
#define EXECTRACER_PLANES_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define XT_PLANES_API __attribute__((visibility("hidden")))
#else
#define XT_PLANES_API
#endif

#define XT_EVENT_BYTES 24  /* an event in an EVENTS payload: three 64-bit values */

/* The byte planes of the payload `raw` of n events into `out` (as many bytes), and back */
XT_PLANES_API void xt_to_planes(const unsigned char *raw, unsigned char *out, size_t n);
XT_PLANES_API void xt_from_planes(const unsigned char *planes, unsigned char *raw, size_t n);

#endif
