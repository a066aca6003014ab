/* An EVENTS payload as byte planes: what the ZLIB_PLANES codec compresses
   (format/planes.py is the Python reference; tests compare the two). Built
   into the module exectracer.format._planes (planes_module.c), which the
   flight recorder and the decoder use, and into the recorder's _speedups,
   whose compress_whole transforms and compresses in one call.

   The payload is three columns of n little-endian 64-bit values (code, ts,
   g). The time column becomes differences (its first value, then each value
   minus the one before, modulo 2^64), then each column is split into 8
   planes of n bytes: byte 0 of every value, then byte 1, and so on. Times a
   few microseconds apart and small ids leave most planes nearly all zeros,
   which zlib compresses faster and smaller than the values themselves. */

#include "planes.h"

#include <string.h>

#define COLUMNS 3
#define TIME_COLUMN 1

static inline uint64_t
load_le(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline void
store_le(unsigned char *p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    memcpy(p, &v, 8);
}

/* Transpose 8 values as an 8 x 8 matrix of bytes: afterwards, byte j of x[b] is what byte b of x[j] was. Its own
   inverse. Swaps 1-byte, then 2-byte, then 4-byte blocks across the diagonal. */
static inline void
transpose8(uint64_t x[8])
{
    for (int j = 0; j < 8; j += 2) {
        uint64_t t = ((x[j] >> 8) ^ x[j + 1]) & 0x00FF00FF00FF00FFull;
        x[j + 1] ^= t;
        x[j] ^= t << 8;
    }
    for (int j = 0; j < 8; j += (j & 1) ? 3 : 1) {  /* 0, 1, 4, 5 */
        uint64_t t = ((x[j] >> 16) ^ x[j + 2]) & 0x0000FFFF0000FFFFull;
        x[j + 2] ^= t;
        x[j] ^= t << 16;
    }
    for (int j = 0; j < 4; j++) {
        uint64_t t = ((x[j] >> 32) ^ x[j + 4]) & 0x00000000FFFFFFFFull;
        x[j + 4] ^= t;
        x[j] ^= t << 32;
    }
}

/* One column of n values (`column`, little-endian) into its 8 planes of n bytes; times: as differences */
static void
column_to_planes(const unsigned char *column, unsigned char *planes, size_t n, int times)
{
    uint64_t prev = 0, x[8];
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; j++) {
            uint64_t v = load_le(column + (i + j) * 8);
            x[j] = times ? v - prev : v;
            prev = v;
        }
        transpose8(x);
        for (int b = 0; b < 8; b++) {
            store_le(planes + b * n + i, x[b]);
        }
    }
    for (; i < n; i++) {
        uint64_t v = load_le(column + i * 8), d = times ? v - prev : v;
        prev = v;
        for (int b = 0; b < 8; b++) {
            planes[b * n + i] = (unsigned char)(d >> 8 * b);
        }
    }
}

/* The inverse of column_to_planes */
static void
column_from_planes(const unsigned char *planes, unsigned char *column, size_t n, int times)
{
    uint64_t prev = 0, x[8];
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int b = 0; b < 8; b++) {
            x[b] = load_le(planes + b * n + i);
        }
        transpose8(x);
        for (int j = 0; j < 8; j++) {
            uint64_t v = times ? (prev += x[j]) : x[j];
            store_le(column + (i + j) * 8, v);
        }
    }
    for (; i < n; i++) {
        uint64_t v = 0;
        for (int b = 0; b < 8; b++) {
            v |= (uint64_t)planes[b * n + i] << 8 * b;
        }
        store_le(column + i * 8, times ? (prev += v) : v);
    }
}

XT_PLANES_API void
xt_to_planes(const unsigned char *raw, unsigned char *out, size_t n)
{
    for (size_t c = 0; c < COLUMNS; c++) {
        column_to_planes(raw + c * n * 8, out + c * n * 8, n, c == TIME_COLUMN);
    }
}

XT_PLANES_API void
xt_from_planes(const unsigned char *planes, unsigned char *raw, size_t n)
{
    for (size_t c = 0; c < COLUMNS; c++) {
        column_from_planes(planes + c * n * 8, raw + c * n * 8, n, c == TIME_COLUMN);
    }
}
