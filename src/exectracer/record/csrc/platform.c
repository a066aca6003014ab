/* What the tracer's own threads read from the system: the start of a
   /proc file by fd (the sampler's), and zlib's compress2, found at run time
   in the libz the zlib module loaded (the collector's compress_whole). */

#include "speedups.h"

#include "../../format/csrc/planes.h"

/* --------------------------------------------------------------- /proc reads */

#ifndef _WIN32
#include <errno.h>
#include <unistd.h>

/* The start of a file by fd (the sampler's /proc files), read with the GIL
   held on purpose: the read takes microseconds, and a thread that let go of
   the GIL while others run Python would wait a switch interval or more to
   get it back. */
PyObject *
xt_pread_start(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    char buf[256];
    if (nargs != 1) {
        PyErr_SetString(PyExc_TypeError, "pread_start(fd)");
        return NULL;
    }
    long fd = PyLong_AsLong(args[0]);
    if (fd == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (fd < 0 || fd > INT32_MAX) {
        errno = EBADF;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    ssize_t got = pread((int)fd, buf, sizeof buf, 0);
    if (got < 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyBytes_FromStringAndSize(buf, got);
}
#endif

/* ------------------------------------------------------------ zlib in one go */

#ifndef _WIN32
#include <dlfcn.h>

/* zlib.compress lets go of the GIL once per block of its growing output
   buffer, and each time the collector must win the GIL back from a busy
   program. compress2 does the whole chunk without the GIL, once. It is taken
   from the libz the zlib module loaded (by name, so no zlib headers are
   needed to build): the same library, the same output. Where that libz is not
   a shared library of its own, compress_whole is not defined. */
typedef int (*compress2_fn)(unsigned char *dest, unsigned long *dest_len, const unsigned char *source,
                            unsigned long source_len, int level);
typedef unsigned long (*compress_bound_fn)(unsigned long source_len);
static compress2_fn z_compress2;
static compress_bound_fn z_compress_bound;

/* Find compress2 and compressBound in the libz already loaded; 1 if found */
int
xt_find_loaded_zlib(void)
{
    PyObject *zlib = PyImport_ImportModule("zlib");  /* loads its libz, if it links one */
    if (zlib == NULL) {
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(zlib);
    void *lib = dlopen("libz.so.1", RTLD_NOW | RTLD_NOLOAD);  /* only if loaded already; kept open */
    if (lib == NULL) {
        return 0;
    }
    z_compress2 = (compress2_fn)dlsym(lib, "compress2");
    z_compress_bound = (compress_bound_fn)dlsym(lib, "compressBound");
    return z_compress2 != NULL && z_compress_bound != NULL;
}

static PyObject *
compress_whole(PyObject *module, PyObject *args, PyObject *kwargs)
{
    (void)module;
    static char *names[] = {"data", "level", "planes", NULL};
    Py_buffer data;
    int level, planes = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*i|$p:compress_whole", names, &data, &level, &planes)) {
        return NULL;
    }
    if (planes && data.len % XT_EVENT_BYTES != 0) {
        PyErr_Format(PyExc_ValueError, "an EVENTS payload of %zd bytes is not a whole number of %d-byte events",
                     data.len, XT_EVENT_BYTES);
        PyBuffer_Release(&data);
        return NULL;
    }
    Py_ssize_t events = planes ? data.len / XT_EVENT_BYTES : 0;
    unsigned char *source = events > 0 ? PyMem_RawMalloc((size_t)data.len) : NULL;
    unsigned long size = z_compress_bound((unsigned long)data.len);
    PyObject *out = (events > 0 && source == NULL) || (uint64_t)data.len > (uint64_t)ULONG_MAX
                            || size > PY_SSIZE_T_MAX
                        ? NULL
                        : PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
    if (out == NULL) {
        PyMem_RawFree(source);
        PyBuffer_Release(&data);
        return PyErr_Occurred() ? NULL : PyErr_NoMemory();
    }
    int err;
    Py_BEGIN_ALLOW_THREADS  /* `out` and `source` are ours alone, `data` is held by the buffer */
    if (source != NULL) {
        xt_to_planes(data.buf, source, (size_t)events);
    }
    err = z_compress2((unsigned char *)PyBytes_AS_STRING(out), &size, source != NULL ? source : data.buf,
                      (unsigned long)data.len, level);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(source);
    PyBuffer_Release(&data);
    if (err != 0) {  /* Z_OK */
        Py_DECREF(out);
        PyErr_Format(PyExc_ValueError, "zlib's compress2 failed (error %d; level %d)", err, level);
        return NULL;
    }
    if (_PyBytes_Resize(&out, (Py_ssize_t)size) < 0) {
        return NULL;
    }
    return out;
}

PyMethodDef xt_compress_whole_def = {
    "compress_whole", (PyCFunction)(void (*)(void))compress_whole, METH_VARARGS | METH_KEYWORDS,
    "compress_whole(data, level, *, planes=False): zlib.compress(data, level), letting go of the GIL once for the "
    "whole call; with planes, of the EVENTS payload data as byte planes (to_planes)."};
#endif
