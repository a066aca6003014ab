/* UvSoon, which replaces uvloop.Loop's call_soon, call_soon_threadsafe
   (`when` 0) and call_later, call_at (`when` 1: a delay or a time comes
   before the callback): the callback and its arguments become a UvCall
   stamped with when and by whom it was queued, handed to uvloop's own
   method (`orig`) with the context given (none: uvloop copies the current
   one, as untraced). uvloop calls it with no arguments inside that
   context, and it has the StepRunner (`runner`, made with
   context_entered) run and record it as a stamped handle: xt_run_queued.
   So a callback costs one small object of ours besides uvloop's handle.

   A UvCall passes for its callback where uvloop shows it (the repr of its
   handles, the message of a callback's exception, its debug mode's names):
   attributes, repr and str are the callback's. An exception of the
   callback reaches uvloop, which reports it as untraced.

   The waker of a callback queued while no step or callback of ours runs on
   the loop's thread (uvloop called a protocol method from C, say) is named
   after the outermost Python function below the loop's run (`boundaries`:
   the code objects of the functions that run a loop), remembered per code
   object; one uvloop's C code queued with no Python function in between (a future its sock_recv completed, say)
   is I/O, named once by the Python rule; another thread's is thread_waker(). Anything else (a callback
   that is not callable, a context that is not a Context, other keywords)
   goes to the Python hook, which hands it over unwrapped. Its Python
   reference is call_soon / call_later and _Wakers.outside in
   uvloop_hooks.py. */

#include "speedups.h"

/* ------------------------------------------------------------------- UvCall */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *runner;  /* the StepRunner that runs and records it */
    QueuedCall call;
} UvCall;

static int
uv_call_traverse(UvCall *self, visitproc visit, void *arg)
{
    Py_VISIT(self->runner);
    Py_VISIT(self->call.callback);
    Py_VISIT(self->call.args);
    Py_VISIT(self->call.loop);
    return 0;
}

static int
uv_call_clear(UvCall *self)
{
    Py_CLEAR(self->runner);
    Py_CLEAR(self->call.callback);
    Py_CLEAR(self->call.args);
    Py_CLEAR(self->call.loop);
    return 0;
}

/* Freed UvCalls kept for the next ones (the GIL guards it): one is made and freed per callback */
#define UV_CALL_KEPT 32
static UvCall *uv_call_kept[UV_CALL_KEPT];
static int uv_calls_kept;

static void
uv_call_dealloc(UvCall *self)
{
    PyObject_GC_UnTrack(self);
    uv_call_clear(self);
    if (uv_calls_kept < UV_CALL_KEPT) {
        uv_call_kept[uv_calls_kept++] = self;
        return;
    }
    PyObject_GC_Del(self);
}

/* A UvCall of `callback` with `args` (a tuple, stolen; NULL: none) */
static PyObject *
uv_call_new(PyObject *runner, PyObject *loop, PyObject *callback, PyObject *args, uint64_t queued, uint64_t waker,
            int timer)
{
    UvCall *self = NULL;
    if (uv_calls_kept > 0) {
        self = uv_call_kept[--uv_calls_kept];
        PyObject_Init((PyObject *)self, &xt_UvCallType);
    }
    else {
        self = PyObject_GC_New(UvCall, &xt_UvCallType);
    }
    if (self == NULL) {
        Py_XDECREF(args);
        return NULL;
    }
    self->vectorcall = xt_UvCallType.tp_vectorcall;
    self->runner = Py_NewRef(runner);
    self->call = (QueuedCall){Py_NewRef(callback), args, Py_NewRef(loop), queued, waker, timer};
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static PyObject *
uv_call_vectorcall(PyObject *obj, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    UvCall *self = (UvCall *)obj;
    if (PyVectorcall_NARGS(nargsf) != 0 || kwnames != NULL || self->call.callback == NULL) {
        PyErr_SetString(PyExc_TypeError, "a queued call takes no arguments");
        return NULL;
    }
    Py_INCREF(obj);  /* the callback may cancel the loop's handle, its last owner */
    PyObject *result = xt_run_queued(self->runner, &self->call);
    Py_DECREF(obj);
    return result;
}

static PyObject *
uv_call_getattro(PyObject *self, PyObject *name)
{
    PyObject *callback = ((UvCall *)self)->call.callback;
    return callback != NULL ? PyObject_GetAttr(callback, name) : PyObject_GenericGetAttr(self, name);
}

static PyObject *
uv_call_repr(PyObject *self)
{
    PyObject *callback = ((UvCall *)self)->call.callback;
    return callback != NULL ? PyObject_Repr(callback) : PyUnicode_FromString("<queued call>");
}

static PyObject *
uv_call_str(PyObject *self)
{
    PyObject *callback = ((UvCall *)self)->call.callback;
    return callback != NULL ? PyObject_Str(callback) : uv_call_repr(self);
}

PyTypeObject xt_UvCallType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "exectracer.record._speedups.UvCall",
    .tp_doc = "A callback queued on a uvloop loop, stamped: run and recorded when uvloop calls it.",
    .tp_basicsize = sizeof(UvCall),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(UvCall, vectorcall),
    .tp_vectorcall = uv_call_vectorcall,
    .tp_call = PyVectorcall_Call,
    .tp_getattro = uv_call_getattro,
    .tp_repr = uv_call_repr,
    .tp_str = uv_call_str,
    .tp_traverse = (traverseproc)uv_call_traverse,
    .tp_clear = (inquiry)uv_call_clear,
    .tp_dealloc = (destructor)uv_call_dealloc,
};

/* ------------------------------------------------------------------- UvSoon */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *fallback;        /* the Python hook: fallback(loop, [when,] callback, *args, context=None) */
    PyObject *wrapped;         /* the method it replaced (Patcher sets it through __wrapped__); NULL: not yet */
    PyObject *orig;            /* uvloop's method */
    PyObject *runner;          /* StepRunner made with context_entered: runs a UvCall and records it */
    PyObject *clock;
    PyObject *noted;           /* noted(): called once, when the first callback is handed over */
    PyObject *boundaries;      /* tuple of the code objects of the functions that run a loop */
    PyObject *running_loop;    /* asyncio.events._get_running_loop */
    PyObject *thread_waker;    /* thread_waker() -> the calling thread's waker code */
    PyObject *outside;         /* outside(loop, frame) -> waker code of what uvloop called from C (Python) */
    PyObject *named_codes;     /* list: the code objects `named` holds, kept alive */
    PyObject *kwnames;         /* the last ("context",) tuple a caller passed (the C Task's is not interned) */
    PtrMap named;              /* outermost code object -> its waker code */
    uint64_t from_c;           /* the waker code of what uvloop's C code queued itself; 0: not yet named */
    int when;                  /* 1: a time comes before the callback */
} UvSoon;

#define UV_SOON_OBJECTS(X) \
    X(fallback) X(orig) X(runner) X(clock) X(noted) X(boundaries) X(running_loop) X(thread_waker) X(outside) \
    X(named_codes) X(wrapped) X(kwnames)
#define NAMED_MAX 4096  /* outermost functions remembered; past that, each is named again by the Python rule */

static int
uv_soon_traverse(UvSoon *self, visitproc visit, void *arg)
{
    UV_SOON_OBJECTS(VISIT_MEMBER)
    return 0;
}

static int
uv_soon_clear(UvSoon *self)
{
    UV_SOON_OBJECTS(CLEAR_MEMBER)
    return 0;
}

static void
uv_soon_dealloc(UvSoon *self)
{
    PyObject_GC_UnTrack(self);
    uv_soon_clear(self);
    xt_ptr_map_free(&self->named);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *context_kwnames;  /* ("context",) */

static int
is_boundary(UvSoon *self, PyCodeObject *code)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(self->boundaries); i++) {
        if (PyTuple_GET_ITEM(self->boundaries, i) == (PyObject *)code) {
            return 1;
        }
    }
    return 0;
}

/* The waker of what uvloop called from C on the loop's thread: the outermost function below the loop's run; if
   the call comes from the loop's run itself (uvloop's C code, no Python function in between), the I/O waker the
   Python rule names for that; 0 (no error) if no loop's run is below (the loop's thread itself), -1 on error */
static int
outside_waker(UvSoon *self, PyObject *loop, uint64_t *waker)
{
    *waker = 0;
    PyFrameObject *frame = PyEval_GetFrame();  /* borrowed: the caller's (this hook has no frame) */
    PyFrameObject *outermost = NULL;
    Py_XINCREF(frame);
    while (frame != NULL) {
        PyCodeObject *code = PyFrame_GetCode(frame);
        int stop = is_boundary(self, code);
        Py_DECREF(code);
        if (stop) {
            break;
        }
        Py_XSETREF(outermost, frame);
        frame = PyFrame_GetBack(outermost);
    }
    int status = 0;
    if (frame != NULL && outermost != NULL) {
        PyCodeObject *code = PyFrame_GetCode(outermost);
        if (!xt_ptr_map_lookup(&self->named, (uintptr_t)code, waker)) {
            PyObject *named = PyObject_CallFunctionObjArgs(self->outside, loop, (PyObject *)outermost, NULL);
            status = xt_consume_u64(named, waker);
            if (status == 0 && PyList_GET_SIZE(self->named_codes) < NAMED_MAX) {
                if (PyList_Append(self->named_codes, (PyObject *)code) < 0
                    || xt_ptr_map_store(&self->named, (uintptr_t)code, *waker) < 0) {
                    PyErr_Clear();  /* not remembered: named again next time */
                }
            }
        }
        Py_DECREF(code);
    }
    else if (frame != NULL) {  /* uvloop's own C code queued it: named once by the Python rule */
        if (!self->from_c) {
            status = xt_consume_u64(PyObject_CallFunctionObjArgs(self->outside, loop, (PyObject *)frame, NULL),
                                    &self->from_c);
        }
        *waker = self->from_c;
    }
    Py_XDECREF(frame);
    Py_XDECREF(outermost);
    return status;
}

/* Who queues a callback now: the running step or callback, what uvloop called from C, or the thread */
static int
queuer(UvSoon *self, PyObject *loop, uint64_t *waker)
{
    if (xt_current_waker) {
        *waker = xt_current_waker;
        return 0;
    }
    PyObject *running = PyObject_CallNoArgs(self->running_loop);
    if (running == NULL) {
        return -1;
    }
    int ours = running == loop;
    Py_DECREF(running);
    if (ours && (outside_waker(self, loop, waker) < 0 || *waker != 0)) {
        return *waker != 0 ? 0 : -1;
    }
    return xt_consume_u64(PyObject_CallNoArgs(self->thread_waker), waker);
}

/* The handle's pieces from a call (loop, [when,] callback, *args[, context=...]); 0, or 1: not ours to wrap */
static int
parse_call(UvSoon *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **context)
{
    *context = Py_None;
    if (nargs < 2 + self->when) {
        return 1;
    }
    if (kwnames != NULL) {
        PyObject *name = PyTuple_GET_SIZE(kwnames) == 1 ? PyTuple_GET_ITEM(kwnames, 0) : NULL;
        PyObject *context_name = PyTuple_GET_ITEM(context_kwnames, 0);
        if (kwnames != self->kwnames
            && (name == NULL || (name != context_name && PyUnicode_Compare(name, context_name) != 0))) {
            PyErr_Clear();
            return 1;
        }
        if (kwnames != self->kwnames) {  /* ("context",): the same tuple is known next time */
            Py_XSETREF(self->kwnames, Py_NewRef(kwnames));
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
    PyObject *loop = args[0], *call = NULL;
    uint64_t waker = 0, now = 0;
    PyObject *cb_args = nargs > first ? PyTuple_New(nargs - first) : NULL;
    if ((cb_args != NULL || nargs == first) && queuer(self, loop, &waker) == 0 && xt_now_ns(self->clock, &now) == 0) {
        for (Py_ssize_t i = first; i < nargs; i++) {
            PyTuple_SET_ITEM(cb_args, i - first, Py_NewRef(args[i]));
        }
        call = uv_call_new(self->runner, loop, args[1 + self->when], cb_args, now, waker, self->when);
        cb_args = NULL;
    }
    Py_XDECREF(cb_args);
    if (call == NULL) {
        xt_hook_error("uvloop.call_soon");
        return PyObject_Vectorcall(self->orig, args, nargsf, kwnames);
    }
    PyObject *pass[4] = {loop, args[1], call, context};  /* loop, [when,] call; context */
    if (!self->when) {
        pass[1] = call;
        pass[2] = context;
    }
    PyObject *result = PyObject_Vectorcall(self->orig, pass, 2 + self->when, context == Py_None ? NULL : context_kwnames);
    Py_DECREF(call);
    return result;
}

static PyObject *
uv_soon_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"fallback", "orig",         "runner",  "clock", "noted", "boundaries",
                            "running_loop", "thread_waker", "outside", "when", NULL};
    UvSoon *self = (UvSoon *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = uv_soon_vectorcall;
    if (context_kwnames == NULL && (context_kwnames = Py_BuildValue("(N)", PyUnicode_InternFromString("context"))) == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$O!OO!OOO!OOOp:UvSoon", names, &PyFunction_Type, &self->fallback,
                                     &self->orig, &xt_StepRunnerType, &self->runner, &self->clock, &self->noted,
                                     &PyTuple_Type, &self->boundaries, &self->running_loop, &self->thread_waker,
                                     &self->outside, &self->when)) {
        UV_SOON_OBJECTS(FORGET_MEMBER)
        Py_DECREF(self);
        return NULL;
    }
    UV_SOON_OBJECTS(KEEP_MEMBER)
    if ((self->named_codes = PyList_New(0)) == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

HOOK_TYPE(UvSoon, uv_soon,
          "uvloop.Loop's call_soon, call_soon_threadsafe, call_later and call_at for the recording: "
          "the callback handed over as a stamped handle that a StepRunner runs, in the callback's own context.")
