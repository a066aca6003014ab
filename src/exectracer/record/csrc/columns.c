/* An EVENTS payload as byte planes: what the ZLIB_PLANES codec compresses
   (format/planes.py is the Python reference; tests compare the two).

   The payload is three columns of n little-endian 64-bit values (code, ts,
   g). The time column becomes differences (its first value, then each value
   minus the one before, modulo 2^64), then each column is split into 8
   planes of n bytes: byte 0 of every value, then byte 1, and so on. Times a
   few microseconds apart and small ids leave most planes nearly all zeros,
   which zlib compresses faster and smaller than the values themselves. */

#include "speedups.h"

#define COLUMNS 3
#define TIME_COLUMN 1

static inline uint64_t
load_le(const unsigned char *p)
{
    uint64_t v = 0;
    for (int b = 7; b >= 0; b--) {
        v = v << 8 | p[b];
    }
    return v;
}

static inline void
store_le(unsigned char *p, uint64_t v)
{
    for (int b = 0; b < 8; b++) {
        p[b] = (unsigned char)(v >> 8 * b);
    }
}

void
xt_to_planes(const unsigned char *raw, unsigned char *out, size_t n)
{
    for (size_t c = 0; c < COLUMNS; c++) {
        const unsigned char *column = raw + c * n * 8;
        unsigned char *planes = out + c * n * 8;
        uint64_t prev = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t v = load_le(column + i * 8);
            if (c == TIME_COLUMN) {
                uint64_t value = v;
                v -= prev;
                prev = value;
            }
            for (size_t b = 0; b < 8; b++) {
                planes[b * n + i] = (unsigned char)(v >> 8 * b);
            }
        }
    }
}

void
xt_from_planes(const unsigned char *planes_in, unsigned char *raw, size_t n)
{
    for (size_t c = 0; c < COLUMNS; c++) {
        const unsigned char *planes = planes_in + c * n * 8;
        unsigned char *column = raw + c * n * 8;
        uint64_t prev = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t v = 0;
            for (size_t b = 0; b < 8; b++) {
                v |= (uint64_t)planes[b * n + i] << 8 * b;
            }
            if (c == TIME_COLUMN) {
                v += prev;
                prev = v;
            }
            store_le(column + i * 8, v);
        }
    }
}

/* The count of events in a payload of `len` bytes; -1 (ValueError set) if it is not a whole number of them */
Py_ssize_t
xt_payload_events(Py_ssize_t len)
{
    if (len % (COLUMNS * 8) != 0) {
        PyErr_Format(PyExc_ValueError, "an EVENTS payload of %zd bytes is not a whole number of 24-byte events", len);
        return -1;
    }
    return len / (COLUMNS * 8);
}

/* to_planes(data) or from_planes(data): the transform or its inverse, without the GIL */
static PyObject *
transform(PyObject *data, void (*apply)(const unsigned char *, unsigned char *, size_t))
{
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    Py_ssize_t n = xt_payload_events(view.len);
    PyObject *out = n < 0 ? NULL : PyBytes_FromStringAndSize(NULL, view.len);
    if (out != NULL) {
        Py_BEGIN_ALLOW_THREADS  /* `out` is ours alone, `data` is held by the buffer */
        apply(view.buf, (unsigned char *)PyBytes_AS_STRING(out), (size_t)n);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&view);
    return out;
}

PyObject *
xt_to_planes_py(PyObject *module, PyObject *data)
{
    (void)module;
    return transform(data, xt_to_planes);
}

PyObject *
xt_from_planes_py(PyObject *module, PyObject *data)
{
    (void)module;
    return transform(data, xt_from_planes);
}
