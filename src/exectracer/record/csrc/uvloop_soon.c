/* UvSoon, which replaces uvloop.Loop's call_soon, call_soon_threadsafe
   (`when` 0) and call_later, call_at (`when` 1: a delay or a time comes
   before the callback): the callback and its arguments become a stamped
   _ReadyHandle (made by a ReadySoon, `maker`), handed to uvloop's own
   method (`orig`) as `runner(handle)` in a new empty context, the runner
   (a StepRunner) entering the handle's context itself. Anything else (a
   callback that is not callable, a context that is not a Context, other
   keywords) goes to the Python hook, which hands it over unwrapped. Its
   Python reference is call_soon / call_later in uvloop_hooks.py. */

#include "speedups.h"

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *fallback;        /* the Python hook: fallback(loop, [when,] callback, *args, context=None) */
    PyObject *wrapped;         /* the method it replaced (Patcher sets it through __wrapped__); NULL: not yet */
    PyObject *orig;            /* uvloop's method */
    PyObject *runner;          /* StepRunner: runs a handle and records it */
    PyObject *maker;           /* ReadySoon: makes the stamped handle */
    PyObject *noted;           /* noted(): called once, when the first callback is handed over */
    int when;                  /* 1: a time comes before the callback */
} UvSoon;

#define UV_SOON_OBJECTS(X) X(fallback) X(orig) X(runner) X(maker) X(noted) X(wrapped)

GC_FUNCTIONS(uv_soon, UvSoon, UV_SOON_OBJECTS)

static PyObject *context_name;  /* "context" */

/* The handle's pieces from a call (loop, [when,] callback, *args[, context=...]); 0, or 1: not ours to wrap */
static int
parse_call(UvSoon *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **context)
{
    *context = Py_None;
    if (nargs < 2 + self->when) {
        return 1;
    }
    if (kwnames != NULL) {
        if (PyTuple_GET_SIZE(kwnames) != 1 || PyUnicode_Compare(PyTuple_GET_ITEM(kwnames, 0), context_name) != 0) {
            PyErr_Clear();
            return 1;
        }
        *context = args[nargs];
    }
    if (*context != Py_None && !PyContext_CheckExact(*context)) {
        return 1;
    }
    return PyCallable_Check(args[1 + self->when]) ? 0 : 1;
}

static PyObject *
uv_soon_vectorcall(PyObject *obj, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    UvSoon *self = (UvSoon *)obj;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *context = NULL;
    if (parse_call(self, args, nargs, kwnames, &context) != 0) {
        return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
    }
    if (self->noted != NULL && self->noted != Py_None) {
        PyObject *done = PyObject_CallNoArgs(self->noted);
        Py_XDECREF(done);
        PyErr_Clear();
        Py_CLEAR(self->noted);
    }
    Py_ssize_t first = 2 + self->when;  /* the callback's own arguments start here */
    PyObject *handle = NULL, *new_context = NULL;
    PyObject *cb_args = PyTuple_New(nargs - first);
    PyObject *ctx = cb_args == NULL ? NULL : context == Py_None ? PyContext_CopyCurrent() : Py_NewRef(context);
    if (ctx != NULL) {
        for (Py_ssize_t i = first; i < nargs; i++) {
            PyTuple_SET_ITEM(cb_args, i - first, Py_NewRef(args[i]));
        }
        handle = xt_ready_handle(self->maker, args[0], args[1 + self->when], cb_args, ctx);
    }
    if (handle != NULL) {
        new_context = PyContext_New();
    }
    Py_XDECREF(cb_args);
    Py_XDECREF(ctx);
    if (new_context == NULL) {
        Py_XDECREF(handle);
        xt_hook_error("uvloop.call_soon");
        return PyObject_Vectorcall(self->orig, args, nargsf, kwnames);
    }
    PyObject *call[5] = {args[0], args[1], self->runner, handle, new_context};  /* loop, [when,] runner, handle */
    if (!self->when) {
        call[1] = self->runner;
        call[2] = handle;
        call[3] = new_context;
    }
    PyObject *names = PyTuple_Pack(1, context_name);
    PyObject *result = names == NULL ? NULL : PyObject_Vectorcall(self->orig, call, 3 + self->when, names);
    Py_XDECREF(names);
    Py_DECREF(handle);
    Py_DECREF(new_context);
    return result;
}

static PyObject *
uv_soon_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"fallback", "orig", "runner", "maker", "noted", "when", NULL};
    UvSoon *self = (UvSoon *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = uv_soon_vectorcall;
    if (context_name == NULL && (context_name = PyUnicode_InternFromString("context")) == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$O!OOO!Op:UvSoon", names, &PyFunction_Type, &self->fallback,
                                     &self->orig, &self->runner, &xt_ReadySoonType, &self->maker, &self->noted,
                                     &self->when)) {
        UV_SOON_OBJECTS(FORGET_MEMBER)
        Py_DECREF(self);
        return NULL;
    }
    UV_SOON_OBJECTS(KEEP_MEMBER)
    return (PyObject *)self;
}

HOOK_TYPE(UvSoon, uv_soon,
          "uvloop.Loop's call_soon, call_soon_threadsafe, call_later and call_at for the recording: "
          "the callback handed over as a stamped handle that a StepRunner runs.")
