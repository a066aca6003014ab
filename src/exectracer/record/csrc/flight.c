/* kept_positions: which events of a flight recorder's dropped chunk the
   live descriptions take in (LiveDescriptions.absorb; its Python reference
   is _kept_positions in live/alive.py). */

#include "speedups.h"

/* --------------------------------------------------------- flight ring drops */

/* A 64-bit integer column (array('q') or 'Q'), as a buffer; -1 on error */
static int
int64_column(PyObject *obj, Py_buffer *view)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        return -1;
    }
    if (view->itemsize != 8 || view->format == NULL || (strcmp(view->format, "q") != 0 && strcmp(view->format, "Q") != 0)) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_TypeError, "columns of 64-bit integers expected");
        return -1;
    }
    return 0;
}

/* kept_positions(codes, gs, wanted, of_task, live): what
   LiveDescriptions.absorb takes in from a dropped chunk, as the positions of
   its events: those whose kind is marked in `wanted` (a 256-byte table),
   except that an event whose kind is marked in `of_task` is passed over if
   its goroutine has a later TASK_DONE in the chunk (that end forgets it),
   and so is a TASK_DONE whose goroutine is not in the set `live` (it has
   nothing to forget). */
PyObject *
xt_kept_positions(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *codes_obj, *gs_obj;
    Py_buffer wanted, of_task, codes, gs;
    PyObject *live;
    if (!PyArg_ParseTuple(args, "OOy*y*O!:kept_positions", &codes_obj, &gs_obj, &wanted, &of_task, &PySet_Type, &live)) {
        return NULL;
    }
    PyObject *out = NULL;
    int have_codes = 0, have_gs = 0;
    PtrMap last_done = {0};
    if (wanted.len != 256 || of_task.len != 256) {
        PyErr_SetString(PyExc_ValueError, "wanted and of_task are 256-byte tables");
        goto done;
    }
    if (int64_column(codes_obj, &codes) < 0) {
        goto done;
    }
    have_codes = 1;
    if (int64_column(gs_obj, &gs) < 0) {
        goto done;
    }
    have_gs = 1;
    Py_ssize_t n = codes.len / 8;
    if (gs.len / 8 != n) {
        PyErr_SetString(PyExc_ValueError, "codes and gs differ in length");
        goto done;
    }
    const uint64_t *code = codes.buf, *g = gs.buf;
    const unsigned char *want = wanted.buf, *task_kind = of_task.buf;
    for (Py_ssize_t i = 0; i < n; i++) {  /* each goroutine's last end; keys moved past PtrMap's reserved 0 and 1 */
        if ((code[i] & XT_KIND_MASK) == XT_KIND_TASK_DONE && xt_ptr_map_store(&last_done, (uintptr_t)(g[i] + 2), (uint64_t)i) < 0) {
            goto done;
        }
    }
    if ((out = PyList_New(0)) == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned kind = (unsigned)(code[i] & XT_KIND_MASK);
        uint64_t end;
        if (!want[kind] || (task_kind[kind] && xt_ptr_map_lookup(&last_done, (uintptr_t)(g[i] + 2), &end) && (uint64_t)i < end)) {
            continue;
        }
        if (kind == XT_KIND_TASK_DONE) {
            PyObject *goroutine = PyLong_FromLongLong((long long)g[i]);
            int known = goroutine == NULL ? -1 : PySet_Contains(live, goroutine);
            Py_XDECREF(goroutine);
            if (known < 0) {
                Py_CLEAR(out);
                goto done;
            }
            if (!known) {
                continue;
            }
        }
        PyObject *position = PyLong_FromSsize_t(i);
        if (position == NULL || PyList_Append(out, position) < 0) {
            Py_XDECREF(position);
            Py_CLEAR(out);
            goto done;
        }
        Py_DECREF(position);
    }
done:
    xt_ptr_map_free(&last_done);
    if (have_codes) {
        PyBuffer_Release(&codes);
    }
    if (have_gs) {
        PyBuffer_Release(&gs);
    }
    PyBuffer_Release(&wanted);
    PyBuffer_Release(&of_task);
    return out;
}
