/* Thread waits: Timed (StaticTimed for a builtin), what blocking.timed
   makes (a call that may block, timed, and recorded if it lasted the
   threshold), the wait sink (where a recording wants them: set_wait_sink)
   and the waits recorded in C, the
   sampler's due samples taken by a thread about to wait, and LockWrapper
   (threading.Lock and RLock while tracing: contended acquires recorded as
   sync waits). Their Python references are in blocking.py and
   sync_waits.py. */

#include "speedups.h"

/* -------------------------------------------------------------------- Timed */

/* What blocking.timed makes, in C: a wrapper that times a call that may
   block and hands a call that took the recording's threshold or more to
   `record(start, end, frame, args)` (blocking._record_call's work), with the
   caller's frame. A call on a non-blocking socket (timeout 0, as an event
   loop's are) never waits: it goes straight through, untimed. So does a call
   made inside another timed call of the same thread (os.waitpid in
   Popen.wait): the outer one records the whole wait; in_timed_call() tells
   the Python wait hooks so. */
#if defined(_MSC_VER)
static __declspec(thread) int timed_depth;
#else
static _Thread_local int timed_depth;
#endif
static uint64_t wait_threshold = UINT64_MAX;  /* ns; UINT64_MAX: no recording records waits */

/* Where a long call of a Timed wrapper without skip, waker or due (socket
   calls, select, os calls) is recorded, as blocking.Waits.record does it:
   its stack found by the frames' raw key (code objects and offsets) in a
   table, else through FrameStacks.of_key; the thread's goroutine from the
   registry; a THREAD_BLOCK/UNBLOCK pair stored in the recording's Rows. Set
   by Waits for its recording (set_wait_sink), cleared when it ends.

   Recording a wait may call Python (Registry.thread_g for a thread not seen
   yet, FrameStacks.of_key for a new stack), where the GIL can pass to a
   thread that stops the recording and clears the sink, or starts the next
   one: the wait holds its own references for those calls, and is dropped
   if `sink_generation` changed meanwhile (it belongs to a recording that
   has ended). */
#define MAX_STACK 128  /* thread_stacks.MAX_DEPTH */
static struct {
    PyObject *rows;     /* Rows; NULL: no sink, waits go through `record` */
    PyObject *threads;  /* dict: thread ident -> g */
    PyObject *thread_g;
    PyObject *of_key;
    ChainTable stacks;
} sink;
static uint64_t sink_generation;  /* changes each time the sink is set or cleared */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *func;
    PyObject *record;
    PyObject *clock;
    PyObject *wakers;  /* dict: a weak reference to the call's first argument -> the wait's waker (NULL: none) */
    int socket_method;
    int samples;    /* takes the sampler's due sample (see sample_from_hook) */
    int loop_selector;  /* a selector's select: a wait of the running event loop's own selector is not recorded */
    long category;  /* >= 0: the wait's category, and `record` has no more to add (no waker function or due; `wakers` is looked up in C) */
} Timed;

static int
timed_traverse(Timed *self, visitproc visit, void *arg)
{
    Py_VISIT(self->func);
    Py_VISIT(self->record);
    Py_VISIT(self->clock);
    Py_VISIT(self->wakers);
    return 0;
}

static int
timed_clear(Timed *self)
{
    Py_CLEAR(self->func);
    Py_CLEAR(self->record);
    Py_CLEAR(self->clock);
    Py_CLEAR(self->wakers);
    return 0;
}

static void
timed_dealloc(Timed *self)
{
    PyObject_GC_UnTrack(self);
    timed_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
non_blocking(PyObject *sock)
{
    PyObject *timeout = PyObject_GetAttr(sock, xt_s_timeout);
    int result = timeout != NULL && PyFloat_CheckExact(timeout) && PyFloat_AS_DOUBLE(timeout) == 0.0;
    Py_XDECREF(timeout);
    PyErr_Clear();
    return result;
}

/* Whether `selector` is the running asyncio loop's own (blocking.running_loop_selector in Python): its waits
   are the loop's idle time, which the asyncio hooks record. Keeps any exception the call raised. */
static int
running_loop_selector(PyObject *selector)
{
    SET_ERROR_ASIDE;
    int result = 0;
    PyObject *events = PyImport_GetModule(xt_s_asyncio_events);  /* not imported: no loop runs */
    PyObject *loop = events == NULL ? NULL : PyObject_CallMethodNoArgs(events, xt_s_get_running_loop);
    if (loop != NULL && loop != Py_None) {
        PyObject *own = PyObject_GetAttr(loop, xt_s_selector);
        result = own == selector;
        Py_XDECREF(own);
    }
    Py_XDECREF(loop);
    Py_XDECREF(events);
    PyErr_Clear();
    PUT_ERROR_BACK;
    return result;
}

/* The waker a long call's `wakers` name for its first argument (a condition's last notifier), 0 if none.
   Keeps any exception the call raised. */
static uint64_t
waker_of(Timed *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (self->wakers == NULL || nargs < 1) {
        return 0;
    }
    SET_ERROR_ASIDE;
    uint64_t waker = 0;
    PyObject *ref = PyWeakref_NewRef(args[0], NULL);  /* equal to the key a notify stored: same referent */
    PyObject *value = ref == NULL ? NULL : PyDict_GetItemWithError(self->wakers, ref);
    if (value != NULL) {
        waker = xt_as_u64(value);
    }
    Py_XDECREF(ref);
    PyErr_Clear();
    PUT_ERROR_BACK;
    return waker;
}

/* Hand a long call to `record`, keeping any exception the call raised */
static void
record_wait(Timed *self, uint64_t start, uint64_t end, PyObject *const *args, Py_ssize_t nargs)
{
    SET_ERROR_ASIDE;
    PyObject *frame = (PyObject *)PyEval_GetFrame();  /* the caller's: this wrapper has none */
    PyObject *positional = PyTuple_New(nargs);
    if (positional != NULL) {
        for (Py_ssize_t i = 0; i < nargs; i++) {
            PyTuple_SET_ITEM(positional, i, Py_NewRef(args[i]));
        }
        PyObject *done = PyObject_CallFunction(self->record, "KKOO", (unsigned long long)start, (unsigned long long)end,
                                               frame != NULL ? frame : Py_None, positional);
        Py_XDECREF(done);
        Py_DECREF(positional);
    }
    xt_hook_error("thread_wait");
    PUT_ERROR_BACK;
}

/* The stack id of the calling thread's stack, from `frame` out (as FrameStacks.of gives it); -1 on error.
   The sink must be set, as it was at `generation`. */
static int
wait_stack(PyObject *frame, uint64_t *sid, uint64_t generation)
{
    uintptr_t parts[2 * MAX_STACK];
    Py_ssize_t n = 0;
    PyFrameObject *f = (PyFrameObject *)Py_XNewRef(frame);
    while (f != NULL && n < 2 * MAX_STACK) {
        PyCodeObject *code = PyFrame_GetCode(f);
        parts[n++] = (uintptr_t)code;  /* alive: the frame holds it */
        Py_DECREF(code);
        long lasti = xt_frame_lasti_of((PyObject *)f);
        if (lasti == -1 && PyErr_Occurred()) {
            Py_DECREF(f);
            return -1;
        }
        parts[n++] = (uintptr_t)lasti;
        Py_SETREF(f, PyFrame_GetBack(f));
    }
    Py_XDECREF(f);
    uint64_t hash = xt_hash_parts(parts, n);
    ChainEntry *known = xt_chain_find(&sink.stacks, parts, n, hash);
    if (known != NULL) {
        *sid = known->code;
        return 0;
    }
    PyObject *key = PyTuple_New(n);  /* thread_stacks.stack_key's */
    for (Py_ssize_t i = 0; key != NULL && i < n; i++) {
        PyObject *item = i % 2 ? PyLong_FromLong((long)parts[i]) : PyLong_FromVoidPtr((void *)parts[i]);
        if (item == NULL) {
            Py_CLEAR(key);
            break;
        }
        PyTuple_SET_ITEM(key, i, item);
    }
    PyObject *of_key = Py_NewRef(sink.of_key);  /* the sink may be cleared during the call */
    PyObject *value = key == NULL ? NULL : PyObject_CallFunctionObjArgs(of_key, key, frame != NULL ? frame : Py_None, NULL);
    Py_DECREF(of_key);
    Py_XDECREF(key);
    if (value == NULL) {
        return -1;
    }
    *sid = xt_as_u64(value);
    Py_DECREF(value);
    if (PyErr_Occurred()) {
        return -1;
    }
    if (sink_generation == generation) {  /* else the table is another recording's, or gone */
        xt_chain_insert(&sink.stacks, parts, n, hash, *sid);  /* the interner now keeps those code objects */
    }
    return 0;
}

/* The calling thread's goroutine (the running task's, with `task`), as
   Registry.thread_g (current_g) gives it (0: one of the tracer's own
   threads); -1 on error. The sink must be set. */
static int
caller_goroutine(uint64_t *g, int task)
{
    PyObject *threads = Py_NewRef(sink.threads), *thread_g = Py_NewRef(sink.thread_g);  /* see sink_generation */
    int status = task ? xt_current_goroutine(threads, thread_g, g) : xt_thread_goroutine(threads, thread_g, g);
    Py_DECREF(threads);
    Py_DECREF(thread_g);
    return status;
}

/* Record a wait at `frame` as Waits.record does (it is no timed call's inner one); -1 on error. A wait
   whose recording ends meanwhile (see sink_generation), or had ended, is dropped (0). */
static int
record_wait_in_c(uint64_t start, uint64_t end, uint64_t category, PyObject *frame, uint64_t waker)
{
    if (sink.rows == NULL) {
        return 0;
    }
    SET_ERROR_ASIDE;
    int status = -1;
    uint64_t sid = 0, g = 0, generation = sink_generation;
    PyObject *rows = Py_NewRef(sink.rows);
    if (caller_goroutine(&g, 0) == 0
        && (g == 0 || sink_generation != generation || wait_stack(frame, &sid, generation) == 0)) {
        status = 0;
    }
    if (status == 0 && g != 0 && sink_generation == generation) {  /* 0: one of the tracer's own threads */
        uint64_t row[6] = {XT_KIND_THREAD_BLOCK | (sid << XT_CATEGORY_SHIFT | category) << XT_ARG_SHIFT, start, g,
                           XT_KIND_THREAD_UNBLOCK | waker << XT_ARG_SHIFT, end, g};
        xt_rows_store((Rows *)rows, row, 2);
    }
    Py_DECREF(rows);
    xt_hook_error("thread_wait");
    PUT_ERROR_BACK;
    return status;
}

/* While a recording samples, the sampler's due sample may be taken by any
   thread that reaches a Timed call made with `samples` (I/O, sleeps, system
   calls) once it is due: that thread holds the GIL already and is about to
   wait, so it takes the sample itself (the sampler's `sample_from_hook`), and
   the sampler's thread need not take the GIL from a busy program. Not in the
   waits on locks and conditions, which are entered holding a lock: the
   sample would hold it longer. Set by the sampler (set_hook_sampler,
   set_hook_sample_due); one sample at a time. */
static PyObject *hook_sampler;                 /* called with no arguments; NULL: none */
uint64_t xt_hook_sample_due = UINT64_MAX;      /* perf_counter ns */
static int hook_sampling;                      /* a hook is taking a sample now */

/* Take the due sample if `now` is past it; 1 if one was taken (the caller's clock reading is stale). Also called
   by the step runner between the steps and callbacks of a loop (xt_sample_between_steps). */
static int
sample_from_hook(uint64_t now)
{
    if (now < xt_hook_sample_due || hook_sampler == NULL || hook_sampling) {
        return 0;
    }
    xt_hook_sample_due = UINT64_MAX;  /* the sampler sets the next one */
    hook_sampling = 1;
    SET_ERROR_ASIDE;
    PyObject *result = PyObject_CallNoArgs(hook_sampler);
    Py_XDECREF(result);
    xt_hook_error("sampler.inline");
    PUT_ERROR_BACK;
    hook_sampling = 0;
    return 1;
}

void
xt_sample_between_steps(void)
{
    uint64_t now = xt_now_ns_nogil();
    if (now != 0) {
        sample_from_hook(now);
    }
}

PyObject *
xt_set_hook_sampler(PyObject *module, PyObject *sampler)
{
    (void)module;
    Py_CLEAR(hook_sampler);
    xt_hook_sample_due = UINT64_MAX;
    if (sampler != Py_None) {
        hook_sampler = Py_NewRef(sampler);
    }
    Py_RETURN_NONE;
}

PyObject *
xt_set_hook_sample_due(PyObject *module, PyObject *due)
{
    (void)module;
    uint64_t value = PyLong_AsUnsignedLongLongMask(due);
    if (PyErr_Occurred()) {
        return NULL;
    }
    xt_hook_sample_due = value;
    Py_RETURN_NONE;
}

static PyObject *
timed_vectorcall(PyObject *obj, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Timed *self = (Timed *)obj;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    uint64_t start = 0, end = 0;
    if (timed_depth > 0 || wait_threshold == UINT64_MAX || (self->socket_method && nargs >= 1 && non_blocking(args[0]))
        || xt_now_ns(self->clock, &start) < 0) {
        xt_hook_error("thread_wait");
        return PyObject_Vectorcall(self->func, args, nargsf, kwnames);
    }
    if (self->samples && sample_from_hook(start) && xt_now_ns(self->clock, &start) < 0) {
        xt_hook_error("thread_wait");
        return PyObject_Vectorcall(self->func, args, nargsf, kwnames);
    }
    timed_depth++;
    PyObject *result = PyObject_Vectorcall(self->func, args, nargsf, kwnames);
    timed_depth--;
    if (xt_now_ns(self->clock, &end) == 0 && end - start >= wait_threshold
        && !(self->loop_selector && nargs >= 1 && running_loop_selector(args[0]))) {
        if (self->category < 0 || sink.rows == NULL
            || record_wait_in_c(start, end, (uint64_t)self->category, (PyObject *)PyEval_GetFrame(), waker_of(self, args, nargs)) < 0) {
            record_wait(self, start, end, args, nargs);
        }
    }
    return result;
}

static PyObject *
timed_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"func", "record", "clock", "socket_method", "category", "samples", "loop_selector", "wakers", NULL};
    PyObject *func, *record, *clock, *wakers = Py_None;
    int socket_method = 0, samples = 0, loop_selector = 0;
    long category = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO|plppO:Timed", names, &func, &record, &clock, &socket_method, &category,
                                     &samples, &loop_selector, &wakers)) {
        return NULL;
    }
    if (wakers != Py_None && !PyDict_Check(wakers)) {
        PyErr_SetString(PyExc_TypeError, "Timed: wakers must be a dict or None");
        return NULL;
    }
    if (type == &xt_TimedType && Py_TYPE(func)->tp_descr_get == NULL) {
        type = &xt_StaticTimedType;  /* a builtin: not bound when found on an instance's class, as it is not */
    }
    Timed *self = (Timed *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = timed_vectorcall;
    self->func = Py_NewRef(func);
    self->record = Py_NewRef(record);
    self->clock = Py_NewRef(clock);
    self->socket_method = socket_method;
    self->samples = samples;
    self->loop_selector = loop_selector;
    self->wakers = wakers != Py_None ? Py_NewRef(wakers) : NULL;
    self->category = category;
    return (PyObject *)self;
}

/* It passes for `func`: its names, doc, repr, type for isinstance, pickling (see shared.c) */
STAND_IN_FUNCTIONS(timed, Timed, func, READONLY)

#define TIMED_DOC                                                                                                      \
    "Timed(func, record, clock, socket_method=False, category=-1, samples=False, loop_selector=False, wakers=None)\n"   \
    "--\n\n"                                                                                                           \
    "`func`, timed: a call that took the wait threshold or more goes to record(start, end, frame, args),\n"            \
    "or with a category (0 or more) is recorded in C where set_wait_sink has set where.\n"                             \
    "With loop_selector, a call on the running asyncio loop's own selector is not recorded.\n"                         \
    "With wakers (a dict keyed by weak references), the wait's waker is the value for the first argument.\n"           \
    "Where func is not bound as a method (a builtin function), the object made is a StaticTimed."

/* Timed, where `func` binds as a method does (a function, a method descriptor) */
PyTypeObject xt_TimedType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "exectracer.record._speedups.Timed",
    .tp_doc = TIMED_DOC,
    .tp_basicsize = sizeof(Timed),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_vectorcall_offset = offsetof(Timed, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_descr_get = xt_bind,
    .tp_getattro = timed_getattro,
    .tp_repr = timed_repr,
    .tp_methods = timed_methods,
    .tp_members = timed_members,
    .tp_new = timed_new,
    .tp_traverse = (traverseproc)timed_traverse,
    .tp_clear = (inquiry)timed_clear,
    .tp_dealloc = (destructor)timed_dealloc,
};

/* Timed, where `func` is not bound (a builtin function: `nap = time.sleep` in a class body stays time.sleep
   for its instances): no descriptor, so neither attribute lookup nor a method call binds it */
PyTypeObject xt_StaticTimedType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "exectracer.record._speedups.StaticTimed",
    .tp_doc = "A Timed whose function is not bound as a method (made by Timed(...) for such a function).",
    .tp_basicsize = sizeof(Timed),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(Timed, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_getattro = timed_getattro,
    .tp_repr = timed_repr,
    .tp_methods = timed_methods,
    .tp_members = timed_members,
    .tp_traverse = (traverseproc)timed_traverse,
    .tp_clear = (inquiry)timed_clear,
    .tp_dealloc = (destructor)timed_dealloc,
};

static void
clear_sink(void)
{
    sink_generation++;
    wait_threshold = UINT64_MAX;
    Py_CLEAR(sink.rows);
    Py_CLEAR(sink.threads);
    Py_CLEAR(sink.thread_g);
    Py_CLEAR(sink.of_key);
    xt_chain_table_free(&sink.stacks);
}

PyObject *
xt_set_wait_sink(PyObject *module, PyObject *args, PyObject *kwargs)
{
    (void)module;
    static char *names[] = {"threshold", "rows", "threads", "thread_g", "of_key", NULL};
    unsigned long long threshold;
    PyObject *rows, *threads, *thread_g, *of_key;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$KOO!OO:set_wait_sink", names, &threshold, &rows, &PyDict_Type, &threads,
                                     &thread_g, &of_key)) {
        return NULL;
    }
    if (rows != Py_None && !PyObject_TypeCheck(rows, &xt_RowsType)) {
        PyErr_SetString(PyExc_TypeError, "rows must be a Rows or None");
        return NULL;
    }
    clear_sink();
    sink.rows = rows == Py_None ? NULL : Py_NewRef(rows);
    sink.threads = Py_NewRef(threads);
    sink.thread_g = Py_NewRef(thread_g);
    sink.of_key = Py_NewRef(of_key);
    wait_threshold = threshold;
    Py_RETURN_NONE;
}

PyObject *
xt_clear_wait_sink(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    clear_sink();
    Py_RETURN_NONE;
}

PyObject *
xt_record_wait_py(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    unsigned long long start, end, category, waker;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "record_wait(start, end, category, frame, waker)");
        return NULL;
    }
    start = PyLong_AsUnsignedLongLong(args[0]);
    end = PyLong_AsUnsignedLongLong(args[1]);
    category = PyLong_AsUnsignedLongLong(args[2]);
    waker = PyLong_AsUnsignedLongLong(args[4]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    PyObject *frame = args[3] == Py_None ? NULL : args[3];
    if (frame != NULL && !PyFrame_Check(frame)) {
        PyErr_SetString(PyExc_TypeError, "record_wait: frame must be a frame or None");
        return NULL;
    }
    return PyBool_FromLong(sink.rows != NULL && record_wait_in_c(start, end, category, frame, waker) == 0);
}

PyObject *
xt_in_timed_call(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return PyBool_FromLong(timed_depth > 0);
}

/* -------------------------------------------------------------- LockWrapper */

/* What sync_waits' Lock and RLock are made of where this module is built: a
   real lock (made by the subclass's `_make`: _thread.allocate_lock or
   _thread.RLock) wrapped so that a free lock is taken with one non-blocking
   attempt and nothing recorded. A contended acquire is timed and, if it
   lasted the threshold or more, recorded as a sync wait at the caller's
   frame where set_wait_sink says, unless it is inside a timed call (a lock
   taken back in Condition.wait: that call records the whole wait). Its
   waker is the goroutine that last released the lock while others waited.
   Any other attribute is the real lock's (RLock's _is_owned,
   _release_save, ... for Condition). */
typedef struct {
    PyObject_HEAD
    PyObject *lock;
    PyObject *weakrefs;
    Py_ssize_t waiters;  /* threads blocked in acquire: counted holding the GIL */
    unsigned long long releaser;
} LockWrapper;

/* The goroutine that runs the caller: the running task's, else the thread's; 0 if unknown */
static uint64_t
caller_g(void)
{
    uint64_t g = 0;
    if (sink.threads != NULL && caller_goroutine(&g, 1) < 0) {
        xt_hook_error("thread_wait.lock");
        return 0;
    }
    return g;
}

/* lock.<name>(*args, **kwargs) with the arguments of a vectorcall */
static PyObject *
call_lock(LockWrapper *self, PyObject *name, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs == 0 && kwnames == NULL) {
        return PyObject_CallMethodNoArgs(self->lock, name);
    }
    PyObject *method = PyObject_GetAttr(self->lock, name);
    if (method == NULL) {
        return NULL;
    }
    PyObject *result = PyObject_Vectorcall(method, args, nargs, kwnames);
    Py_DECREF(method);
    return result;
}

/* Block in the real lock's `name` (acquire, or __enter__ for `with lock:`, as untraced), recording the wait */
static PyObject *
lock_contended(LockWrapper *self, PyObject *name, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    uint64_t start = 0, end = 0;
    int timed = xt_now_ns(xt_perf_clock, &start) == 0;
    self->waiters++;
    PyObject *got = call_lock(self, name, args, nargs, kwnames);
    self->waiters--;
    if (timed && xt_now_ns(xt_perf_clock, &end) == 0 && end - start >= wait_threshold && timed_depth == 0 && sink.rows != NULL) {
        record_wait_in_c(start, end, XT_CATEGORY_SYNC, (PyObject *)PyEval_GetFrame(), self->releaser);
    }
    return got;  /* with the call's own error, if any (the clock and the record keep it aside) */
}

/* A blocking acquire: taken at once if free, else blocked for in the real lock's `name` */
static PyObject *
lock_attempt(LockWrapper *self, PyObject *name, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *attempt[2] = {self->lock, Py_False};
    PyObject *got = PyObject_VectorcallMethod(xt_s_acquire, attempt, 2, NULL);
    if (got != Py_False) {
        return got;  /* taken, or an error */
    }
    Py_DECREF(got);
    return lock_contended(self, name, args, nargs, kwnames);
}

static PyObject *
lock_acquire(LockWrapper *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *blocking_arg = nargs >= 1 ? args[0] : NULL;
    int refused = nargs > 2;  /* arguments the real lock refuses: let it say so */
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_CompareWithASCIIString(name, "blocking") == 0) {
            blocking_arg = args[nargs + i];
        }
        else if (PyUnicode_CompareWithASCIIString(name, "timeout") != 0) {
            refused = 1;
        }
    }
    if (refused) {
        return call_lock(self, xt_s_acquire, args, nargs, kwnames);
    }
    if (blocking_arg != NULL) {
        int blocking = PyObject_IsTrue(blocking_arg);
        if (blocking < 0) {
            return NULL;
        }
        if (!blocking) {  /* same result and errors as the real lock */
            return call_lock(self, xt_s_acquire, args, nargs, kwnames);
        }
    }
    return lock_attempt(self, xt_s_acquire, args, nargs, kwnames);
}

static PyObject *
lock_enter(LockWrapper *self, PyObject *unused)
{
    (void)unused;
    return lock_attempt(self, xt_s_enter, NULL, 0, NULL);
}

static PyObject *
lock_release(LockWrapper *self, PyObject *unused)
{
    (void)unused;
    if (self->waiters > 0) {
        self->releaser = caller_g();
    }
    return PyObject_CallMethodNoArgs(self->lock, xt_s_release);
}

static PyObject *
lock_exit(LockWrapper *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    return lock_release(self, NULL);
}

static PyObject *
lock_locked(LockWrapper *self, PyObject *unused)
{
    (void)unused;
    return PyObject_CallMethodNoArgs(self->lock, xt_s_locked);
}

static PyObject *
lock_at_fork_reinit(LockWrapper *self, PyObject *unused)
{
    (void)unused;
    self->waiters = 0;
    return PyObject_CallMethodNoArgs(self->lock, xt_s_at_fork_reinit);
}

static PyObject *
lock_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *make = PyObject_GetAttr((PyObject *)type, xt_s_make);
    PyObject *lock = make == NULL ? NULL : PyObject_Call(make, args, kwargs);
    Py_XDECREF(make);
    if (lock == NULL) {
        return NULL;
    }
    LockWrapper *self = (LockWrapper *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(lock);
        return NULL;
    }
    self->lock = lock;
    return (PyObject *)self;
}

/* Its own attribute `name`, else the real lock's */
static PyObject *
lock_getattro(LockWrapper *self, PyObject *name)
{
    PyObject *found = PyObject_GenericGetAttr((PyObject *)self, name);
    if (found == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        found = PyObject_GetAttr(self->lock, name);
    }
    return found;
}

static int
lock_traverse(LockWrapper *self, visitproc visit, void *arg)
{
    Py_VISIT(self->lock);
    return 0;
}

static int
lock_clear(LockWrapper *self)
{
    Py_CLEAR(self->lock);
    return 0;
}

/* (a Python subclass's dealloc calls this one, then lets go of its type) */
static void
lock_dealloc(LockWrapper *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakrefs != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    lock_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef lock_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))lock_acquire, METH_FASTCALL | METH_KEYWORDS,
     "acquire(blocking=True, timeout=-1): acquire the lock, like the real lock's acquire."},
    {"__enter__", (PyCFunction)lock_enter, METH_NOARGS, "Acquire the lock."},
    {"release", (PyCFunction)lock_release, METH_NOARGS, "Release the lock, noting the releaser if anyone waits for it."},
    {"__exit__", (PyCFunction)(void (*)(void))lock_exit, METH_FASTCALL, "Release the lock."},
    {"locked", (PyCFunction)lock_locked, METH_NOARGS, "Whether the lock is held."},
    {"_at_fork_reinit", (PyCFunction)lock_at_fork_reinit, METH_NOARGS, NULL},
    {NULL},
};

static PyMemberDef lock_members[] = {
    {"_lock", T_OBJECT_EX, offsetof(LockWrapper, lock), READONLY, "the real lock"},
    {"_waiters", T_PYSSIZET, offsetof(LockWrapper, waiters), READONLY, "threads blocked in acquire"},
    {"_releaser", T_ULONGLONG, offsetof(LockWrapper, releaser), READONLY, "the goroutine that last released it while others waited"},
    {NULL},
};

PyTypeObject xt_LockWrapperType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "exectracer.record._speedups.LockWrapper",
    .tp_doc = "A real lock, made by the subclass's _make(), whose contended acquires are recorded as sync waits.",
    .tp_basicsize = sizeof(LockWrapper),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .tp_weaklistoffset = offsetof(LockWrapper, weakrefs),
    .tp_getattro = (getattrofunc)lock_getattro,
    .tp_methods = lock_methods,
    .tp_members = lock_members,
    .tp_new = lock_new,
    .tp_traverse = (traverseproc)lock_traverse,
    .tp_clear = (inquiry)lock_clear,
    .tp_dealloc = (destructor)lock_dealloc,
};
