/* The module exectracer.record._speedups as Python sees it: its functions
   (a few small ones defined here, the others in the files named in
   speedups.h), its types, the names it interns and the objects it looks up
   once, and its init. _speedups.pyi describes the same for Python. */

#include "speedups.h"

PyObject *xt_s_asyncio_events, *xt_s_get_running_loop, *xt_s_selector;
PyObject *xt_s_io, *xt_s_done, *xt_s_timeout, *xt_s_dict, *xt_s_debug, *xt_s_ready, *xt_s_append, *xt_s_due;
PyObject *xt_s_cancelled, *xt_s_exception, *xt_s_data, *xt_s_qualname, *xt_s_creating, *xt_s_loop, *xt_s_cr_code, *xt_s_gi_code, *xt_s_get_name, *xt_s_fut_waiter;
PyObject *xt_s_acquire, *xt_s_enter, *xt_s_release, *xt_s_locked, *xt_s_make, *xt_s_at_fork_reinit;
PyTypeObject *xt_deque_type;  /* collections.deque, a loop's _ready */
PyObject *xt_deque_append;    /* its append method descriptor */
PyObject *xt_perf_clock;      /* time.perf_counter_ns, for xt_now_ns where it reads no clock of its own */

/* -------------------------------------------------------------------- module */

#if PY_VERSION_HEX < 0x030B0000
/* A live frame's first local variable (None if unset), read without `f_locals`: on 3.10 that
   copies every local into a dict the frame keeps, which would hold them alive after a `del` */
static PyObject *
first_local(PyObject *module, PyObject *frame)
{
    (void)module;
    if (!PyFrame_Check(frame)) {
        PyErr_SetString(PyExc_TypeError, "first_local: a frame is needed");
        return NULL;
    }
    PyFrameObject *f = (PyFrameObject *)frame;
    PyObject *value = f->f_code->co_nlocals > 0 ? f->f_localsplus[0] : NULL;
    return Py_NewRef(value != NULL ? value : Py_None);
}
#endif

/* func() with the collector held off while it runs; func must be a C function that runs no Python
   code, so the GIL stays with this thread throughout and no other thread ever sees the collector off */
static PyObject *
call_without_collections(PyObject *module, PyObject *func)
{
    (void)module;
    int was_enabled = PyGC_Disable();
    PyObject *result = PyObject_CallNoArgs(func);
    if (was_enabled) {
        PyGC_Enable();
    }
    return result;
}

/* current_frames(reader, depth): reader() (sys._current_frames) with the collector held off, and each
   thread's frame objects made `depth` levels down meanwhile. On 3.11, reading f_back of another thread's
   frame makes its caller's frame object, and a collection that allocation starts runs Python code
   (gc.callbacks), where the GIL can pass to that thread; if it returns from the caller meanwhile, the
   new object is left on the popped frame, and a walk up from it reads whatever came there since. Made
   here, with no Python code run, the frames are right; a walk of up to `depth` levels then makes none. */
static PyObject *
current_frames(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "current_frames(reader, depth)");
        return NULL;
    }
    Py_ssize_t depth = PyLong_AsSsize_t(args[1]);
    if (depth == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int was_enabled = PyGC_Disable();
    PyObject *frames = PyObject_CallNoArgs(args[0]);
    if (frames != NULL && PyDict_Check(frames)) {
        Py_ssize_t pos = 0;
        PyObject *ident, *top;
        while (PyDict_Next(frames, &pos, &ident, &top)) {
            PyObject *f = PyFrame_Check(top) ? Py_NewRef(top) : NULL;
            for (Py_ssize_t i = 0; f != NULL && i < depth; i++) {
                /* a new reference to an object its frame (or a frame object that took it over) keeps */
                Py_SETREF(f, (PyObject *)PyFrame_GetBack((PyFrameObject *)f));
            }
            Py_XDECREF(f);
            PyErr_Clear();  /* no memory for one: the walk makes it (as it did before) */
        }
    }
    if (was_enabled) {
        PyGC_Enable();
    }
    return frames;
}

static PyObject *
clock_ns(PyObject *module, PyObject *clock)
{
    (void)module;
    uint64_t now;
    if (xt_now_ns(clock, &now) < 0) {
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(now);
}

static PyMethodDef methods[] = {
    {"set_wait_sink", (PyCFunction)(void (*)(void))xt_set_wait_sink, METH_VARARGS | METH_KEYWORDS,
     "Record the waits Timed wrappers see that last `threshold` ns or more, there (Waits sets it for its recording)."},
    {"clear_wait_sink", xt_clear_wait_sink, METH_NOARGS, "No recording records waits any more."},
    {"in_timed_call", xt_in_timed_call, METH_NOARGS, "Whether the calling thread is inside a Timed call."},
#if PY_VERSION_HEX < 0x030B0000
    {"first_local", (PyCFunction)first_local, METH_O, "first_local(frame): a live frame's first local variable, without f_locals (3.10)."},
#endif
    {"current_frames", (PyCFunction)(void (*)(void))current_frames, METH_FASTCALL,
     "current_frames(reader, depth): reader() (sys._current_frames) with the collector held off, each thread's frame objects "
     "made depth levels down meanwhile."},
    {"call_without_collections", call_without_collections, METH_O,
     "call_without_collections(func): func() with the collector held off, unseen by other threads (func must run no Python code)."},
    {"record_wait", (PyCFunction)(void (*)(void))xt_record_wait_py, METH_FASTCALL,
     "record_wait(start, end, category, frame, waker): record a thread's wait where set_wait_sink says; False if it cannot."},
    {"current_waker", xt_get_current_waker, METH_O, "The calling thread's HookState.cur (the getter of a property: takes the state)."},
    {"set_current_waker", (PyCFunction)(void (*)(void))xt_set_current_waker, METH_FASTCALL,
     "Set the calling thread's HookState.cur (the setter of a property: takes the state and the value)."},
#ifndef _WIN32
    {"pread_start", (PyCFunction)(void (*)(void))xt_pread_start, METH_FASTCALL,
     "pread_start(fd): the first 256 bytes of the file at fd (from offset 0), read holding the GIL."},
    {"term_notify", xt_term_notify, METH_O,
     "term_notify(fd): if SIGTERM's action is the default, catch it at the OS level: write its number to fd "
     "(non-blocking) and put the default back; False if its action was not the default."},
    {"term_release", xt_term_release, METH_NOARGS, "Put SIGTERM's default action back if term_notify's handler is still set."},
    {"signal_restarts", xt_signal_restarts, METH_O,
     "signal_restarts(signum): whether the signal's action restarts the calls it interrupts (SA_RESTART)."},
#endif
    {"kept_positions", xt_kept_positions, METH_VARARGS,
     "kept_positions(codes, gs, wanted, of_task, live): the positions of the events LiveDescriptions.absorb takes in."},
    {"set_hook_sampler", xt_set_hook_sampler, METH_O,
     "set_hook_sampler(func): Timed calls call func() once the due sample is (None: never)."},
    {"set_hook_sample_due", xt_set_hook_sample_due, METH_O, "set_hook_sample_due(ns): when the next sample is due (perf_counter ns)."},
    {"set_annotation_sink", (PyCFunction)(void (*)(void))xt_set_annotation_sink, METH_VARARGS | METH_KEYWORDS,
     "Store the regions' events in `rows` (Recorder sets it as its recording starts)."},
    {"clear_annotation_sink", xt_clear_annotation_sink, METH_NOARGS, "Regions record nothing any more."},
    {"clock_ns", clock_ns, METH_O, "The clock the hooks read (time.perf_counter_ns, passed in, where it is not read directly)."},
    {NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "exectracer.record._speedups",
    .m_doc = "The hottest asyncio hooks, in C (see asyncio_hooks for their Python reference).",
    .m_size = -1,
    .m_methods = methods,
};

static int
intern_names(void)
{
#define INTERN(var, text) if ((var = PyUnicode_InternFromString(text)) == NULL) return -1;
    INTERN(xt_s_dict, "__dict__")
    INTERN(xt_s_io, "io") INTERN(xt_s_done, "done") INTERN(xt_s_timeout, "timeout") INTERN(xt_s_debug, "_debug") INTERN(xt_s_ready, "_ready")
    INTERN(xt_s_append, "append") INTERN(xt_s_due, "due")
    INTERN(xt_s_cancelled, "cancelled") INTERN(xt_s_exception, "_exception") INTERN(xt_s_data, "data") INTERN(xt_s_qualname, "__qualname__") INTERN(xt_s_creating, "creating") INTERN(xt_s_loop, "_loop") INTERN(xt_s_cr_code, "cr_code") INTERN(xt_s_gi_code, "gi_code")
    INTERN(xt_s_get_name, "get_name") INTERN(xt_s_fut_waiter, "_fut_waiter")
    INTERN(xt_s_acquire, "acquire") INTERN(xt_s_enter, "__enter__") INTERN(xt_s_release, "release") INTERN(xt_s_locked, "locked") INTERN(xt_s_make, "_make")
    INTERN(xt_s_at_fork_reinit, "_at_fork_reinit")
    INTERN(xt_s_asyncio_events, "asyncio.events") INTERN(xt_s_get_running_loop, "_get_running_loop") INTERN(xt_s_selector, "_selector")
#undef INTERN
    return 0;
}

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (intern_names() < 0 || PyType_Ready(&xt_RowsType) < 0 || PyType_Ready(&xt_WatchType) < 0 || PyType_Ready(&xt_TaskIdsType) < 0 || PyType_Ready(&xt_StepRunnerType) < 0
        || PyType_Ready(&xt_ReadySoonType) < 0 || PyType_Ready(&xt_TaskCreatorType) < 0 || PyType_Ready(&xt_IoReadyType) < 0
        || PyType_Ready(&xt_UvSoonType) < 0 || PyType_Ready(&xt_UvCallType) < 0
        || PyType_Ready(&xt_TimedType) < 0 || PyType_Ready(&xt_StaticTimedType) < 0 || PyType_Ready(&xt_LockWrapperType) < 0 || PyType_Ready(&xt_RegionType) < 0) {
        return NULL;
    }
    PyObject *time_module = PyImport_ImportModule("time");
    if (time_module == NULL || (xt_perf_clock = PyObject_GetAttrString(time_module, "perf_counter_ns")) == NULL) {
        Py_XDECREF(time_module);
        return NULL;
    }
    Py_DECREF(time_module);
    PyObject *collections = PyImport_ImportModule("collections");
    if (collections == NULL) {
        return NULL;
    }
    xt_deque_type = (PyTypeObject *)PyObject_GetAttrString(collections, "deque");
    Py_DECREF(collections);
    if (xt_deque_type == NULL || (xt_deque_append = PyObject_GetAttrString((PyObject *)xt_deque_type, "append")) == NULL) {
        return NULL;
    }
    if (xt_fast_attr_init(&xt_coro_code, (PyObject *)&PyCoro_Type, "cr_code") < 0
        || xt_fast_attr_init(&xt_coro_frame, (PyObject *)&PyCoro_Type, "cr_frame") < 0
        || xt_fast_attr_init(&xt_coro_await, (PyObject *)&PyCoro_Type, "cr_await") < 0
        || xt_fast_attr_init(&xt_gen_frame, (PyObject *)&PyGen_Type, "gi_frame") < 0
        || xt_fast_attr_init(&xt_gen_yieldfrom, (PyObject *)&PyGen_Type, "gi_yieldfrom") < 0
        || xt_fast_attr_init(&xt_frame_code, (PyObject *)&PyFrame_Type, "f_code") < 0
        || xt_fast_attr_init(&xt_frame_lasti, (PyObject *)&PyFrame_Type, "f_lasti") < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "Rows", (PyObject *)&xt_RowsType) < 0
        || PyModule_AddObjectRef(m, "Watch", (PyObject *)&xt_WatchType) < 0
        || PyModule_AddObjectRef(m, "TaskIds", (PyObject *)&xt_TaskIdsType) < 0
        || PyModule_AddObjectRef(m, "StepRunner", (PyObject *)&xt_StepRunnerType) < 0
        || PyModule_AddObjectRef(m, "ReadySoon", (PyObject *)&xt_ReadySoonType) < 0
        || PyModule_AddObjectRef(m, "UvSoon", (PyObject *)&xt_UvSoonType) < 0
        || PyModule_AddObjectRef(m, "TaskCreator", (PyObject *)&xt_TaskCreatorType) < 0
        || PyModule_AddObjectRef(m, "IoReady", (PyObject *)&xt_IoReadyType) < 0
        || PyModule_AddObjectRef(m, "Timed", (PyObject *)&xt_TimedType) < 0
        || PyModule_AddObjectRef(m, "StaticTimed", (PyObject *)&xt_StaticTimedType) < 0
        || PyModule_AddObjectRef(m, "LockWrapper", (PyObject *)&xt_LockWrapperType) < 0
        || PyModule_AddObjectRef(m, "Region", (PyObject *)&xt_RegionType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#ifndef _WIN32
    if (xt_find_loaded_zlib()) {
        PyObject *func = PyCFunction_NewEx(&xt_compress_whole_def, NULL, NULL);
        if (func == NULL || PyModule_AddObject(m, "compress_whole", func) < 0) {
            Py_XDECREF(func);
            Py_DECREF(m);
            return NULL;
        }
    }
#endif
    return m;
}
