/* exectracer.format._planes: the byte planes of an EVENTS payload (planes.c) for Python, without the GIL.
   Its Python reference is format/planes.py; format/planes.py's functions use these where they are built. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "planes.h"

/* to_planes(data) or from_planes(data): the transform or its inverse */
static PyObject *
transform(PyObject *data, void (*apply)(const unsigned char *, unsigned char *, size_t))
{
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *out = NULL;
    if (view.len % XT_EVENT_BYTES != 0) {
        PyErr_Format(PyExc_ValueError, "an EVENTS payload of %zd bytes is not a whole number of %d-byte events",
                     view.len, XT_EVENT_BYTES);
    }
    else if ((out = PyBytes_FromStringAndSize(NULL, view.len)) != NULL) {
        Py_BEGIN_ALLOW_THREADS  /* `out` is ours alone, `data` is held by the buffer */
        apply(view.buf, (unsigned char *)PyBytes_AS_STRING(out), (size_t)(view.len / XT_EVENT_BYTES));
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&view);
    return out;
}

static PyObject *
to_planes(PyObject *module, PyObject *data)
{
    (void)module;
    return transform(data, xt_to_planes);
}

static PyObject *
from_planes(PyObject *module, PyObject *data)
{
    (void)module;
    return transform(data, xt_from_planes);
}

static PyMethodDef methods[] = {
    {"to_planes", to_planes, METH_O, "to_planes(payload): the byte planes of an EVENTS payload (format.planes)."},
    {"from_planes", from_planes, METH_O, "from_planes(planes): the EVENTS payload to_planes made them of."},
    {NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "exectracer.format._planes",
    .m_doc = "The byte planes of an EVENTS payload, in C (see format/planes.py).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__planes(void)
{
    return PyModule_Create(&module);
}
