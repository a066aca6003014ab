/* The hottest hooks in C: asyncio's Handle._run, BaseEventLoop._call_soon
   and create_task, the selector loop's _process_events, thread waits.

   Each mirrors the pure-Python hook in asyncio_hooks.py, which stays the
   reference (and runs where this module is not built, or when
   EXECTRACER_PURE_PYTHON is set); test_native_hooks checks that both record
   the same events.

   - Rows: a recording's events as three uint64 columns, stored by the C
     hooks without int objects and by the Python hooks through `extend`;
     the writer's thread sleeps without the GIL until a chunk's worth is
     there. Watch: the sampler's thread sleeps likewise while a busy loop
     takes its ticks (both sleeps are a Sleeper).
   - StepRunner replaces Handle._run. A task's step is run in its context and
     stored as [TASK_READY,] TASK_STEP, then the suspension (its await
     chain's code, from the chain cache) or the task's end; any other
     callback as CALLBACK_BEGIN/END. New chains, tasks, loops and names are
     defined by the Python side (define_chain, task_g, loop_id, name_id).
   - ReadySoon replaces BaseEventLoop._call_soon. It fills a _ReadyHandle's
     slots as Handle.__init__ does (when the loop is not in debug mode and a
     context is given) and stamps it with when and by whom it was queued.
   - TaskCreator replaces BaseEventLoop.create_task: the task is made by
     asyncio, then registered and described (what is new to the registry is
     defined by the Python side).
   - IoReady replaces BaseSelectorEventLoop._process_events: it notes which
     handles the loop's last select made ready.
   - Timed and LockWrapper: thread waits (see their sections), and
     kept_positions: the events a flight recorder's dropped chunk still
     describes.

   StepRunner, ReadySoon, TaskCreator and IoReady are method descriptors:
   `handle._run()` calls them with the handle first, with no bound method
   made. Errors in the recording are cleared, never raised into the
   program: an event that cannot be recorded is lost, the callback still
   runs. Only public C API is used (some of it outside the limited API:
   member descriptors, frames). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>   /* PyFrame_Type (3.10) */
#include <structmember.h>  /* T_OBJECT, T_OBJECT_EX, READONLY */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* Keep the exception being raised aside while other code runs */
#if PY_VERSION_HEX >= 0x030C0000
#define SET_ERROR_ASIDE PyObject *aside = PyErr_GetRaisedException()
#define PUT_ERROR_BACK PyErr_SetRaisedException(aside)
#else
#define SET_ERROR_ASIDE PyObject *aside_type, *aside_value, *aside_tb; PyErr_Fetch(&aside_type, &aside_value, &aside_tb)
#define PUT_ERROR_BACK PyErr_Restore(aside_type, aside_value, aside_tb)
#endif

static PyObject *s_asyncio_events, *s_get_running_loop, *s_selector;
static PyObject *s_io, *s_done, *s_timeout, *s_dict, *s_debug, *s_ready, *s_append, *s_due;
static PyObject *s_cancelled, *s_exception, *s_data, *s_qualname, *s_creating, *s_loop, *s_cr_code, *s_gi_code, *s_get_name, *s_fut_waiter;
static PyTypeObject *deque_type;  /* collections.deque, a loop's _ready */
static PyObject *deque_append;    /* its append method descriptor */

/* time.perf_counter_ns(), without a call into Python where the clock is known */
static int
now_ns(PyObject *clock, uint64_t *out)
{
#if PY_VERSION_HEX >= 0x030D0000
    (void)clock;
    PyTime_t t;
    if (PyTime_PerfCounterRaw(&t) < 0) {
        return -1;
    }
    *out = (uint64_t)t;
    return 0;
#elif defined(__linux__)
    /* perf_counter is CLOCK_MONOTONIC on Linux (3.10 to 3.12) */
    (void)clock;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    *out = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    return 0;
#else
    /* the clock passed in; any exception being raised is kept aside meanwhile */
    SET_ERROR_ASIDE;
    PyObject *value = PyObject_CallNoArgs(clock);
    int status = value == NULL ? -1 : 0;
    if (value != NULL) {
        *out = PyLong_AsUnsignedLongLongMask(value);
        status = PyErr_Occurred() ? -1 : 0;
        Py_DECREF(value);
    }
    PyErr_Clear();
    PUT_ERROR_BACK;
    return status;
#endif
}

/* ------------------------------------------------------------------- Sleeper */

/* A tracer thread's sleep without the GIL, which a thread holding the GIL
   can end (Rows.wait, Watch.wait). Every field is read and written holding
   the GIL; the lock is what the sleeping thread waits on. */
typedef struct {
    PyThread_type_lock lock; /* held, except to let the sleeping thread go */
    int sleeping;            /* a thread sleeps (or is about to) */
    int woken;               /* a wake came while nobody slept: the next sleep ends at once */
} Sleeper;

/* A no-argument constructor's check and its sleeper: 0, or -1 with an exception set */
static int
sleeper_init(Sleeper *sleeper, const char *type_name, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_Format(PyExc_TypeError, "%s() takes no arguments", type_name);
        return -1;
    }
    sleeper->lock = PyThread_allocate_lock();
    if (sleeper->lock == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    PyThread_acquire_lock(sleeper->lock, NOWAIT_LOCK);
    return 0;
}

static void
sleeper_free(Sleeper *sleeper)
{
    if (sleeper->lock != NULL) {
        PyThread_free_lock(sleeper->lock);
        sleeper->lock = NULL;
    }
}

/* End the sleep now, or the next one at once */
static void
sleeper_wake(Sleeper *sleeper)
{
    if (sleeper->sleeping) {
        sleeper->sleeping = 0;
        PyThread_release_lock(sleeper->lock);
    }
    else {
        sleeper->woken = 1;
    }
}

/* Before releasing the GIL to sleep: 1 if a wake already came (no sleep),
   -1 with an exception if another thread sleeps, else 0 */
static int
sleeper_enter(Sleeper *sleeper)
{
    if (sleeper->sleeping) {
        PyErr_SetString(PyExc_RuntimeError, "another thread already sleeps here");
        return -1;
    }
    if (sleeper->woken) {
        sleeper->woken = 0;
        return 1;
    }
    sleeper->sleeping = 1;
    return 0;
}

/* With the GIL back, `status` the last wait on the lock's: whether woken */
static int
sleeper_leave(Sleeper *sleeper, PyLockStatus status)
{
    if (status == PY_LOCK_ACQUIRED) {  /* let go by a wake, which cleared `sleeping`: the lock is held again */
        return 1;
    }
    if (!sleeper->sleeping) {  /* woken after the last wait ended, before the GIL came back: hold the lock again */
        PyThread_acquire_lock(sleeper->lock, NOWAIT_LOCK);
        return 1;
    }
    sleeper->sleeping = 0;
    return 0;
}

/* `seconds` as a lock timeout */
static PY_TIMEOUT_T
micros(double seconds)
{
    double us = seconds > 0 ? seconds * 1e6 : 0;
    return us < (double)PY_TIMEOUT_MAX ? (PY_TIMEOUT_T)us : PY_TIMEOUT_MAX;
}

/* ---------------------------------------------------------------------- Rows */

/* Events as three columns of unsigned 64-bit integers (code, ts, g), as the
   writer stages them: the C hooks store here, with no int objects made, and
   the writer takes them once a chunk's worth is there. The writer's thread
   waits for that in `wait`, without the GIL: the store that makes the count
   lets it go. Everything but that wait and the copy `take` makes of the
   columns it hands over runs holding the GIL. */
typedef struct {
    PyObject_HEAD
    uint64_t *columns[3];
    Py_ssize_t length, capacity;
    unsigned long long lost;  /* events not stored for want of memory, since the last take */
    Py_ssize_t wake_at;       /* the count the thread in `wait` waits for */
    Sleeper ready;            /* the writer's thread in `wait` */
    PyObject *handoff;        /* the recording's GilHandoff, told when that thread wants the GIL (NULL: none) */
    Py_ssize_t ask_again_at;  /* woken by the count, not there yet: the count at which to tell the handoff again (0: none) */
} Rows;

#define ROWS_KEPT_CAPACITY 65536  /* rows of capacity always kept after a take */

static int
rows_reserve(Rows *self, Py_ssize_t more)
{
    if (self->length + more <= self->capacity) {
        return 0;
    }
    Py_ssize_t capacity = self->capacity ? self->capacity : 1024;
    while (capacity < self->length + more) {
        capacity *= 2;
    }
    for (int i = 0; i < 3; i++) {
        uint64_t *grown = PyMem_RawRealloc(self->columns[i], (size_t)capacity * sizeof(uint64_t));
        if (grown == NULL) {
            return -1;
        }
        self->columns[i] = grown;
    }
    self->capacity = capacity;
    return 0;
}

/* The waiting thread, woken by the count, wants the GIL now: a busy event loop
   gives way once the handoff's `due` has passed (set here with no Python code
   run), and the thread plans anew when it has the GIL. Without this it would
   wait for its planned time, while the loop takes the GIL back at every
   select(0) and the events pile up. */
static void
rows_hand_over(Rows *self)
{
    SET_ERROR_ASIDE;
    PyObject *now = PyLong_FromLong(0);
    if (now == NULL || PyObject_SetAttr(self->handoff, s_due, now) < 0) {
        PyErr_Clear();
    }
    Py_XDECREF(now);
    PUT_ERROR_BACK;
}

/* After storing: let a waiter go once the count it waits for is there. If
   it has not taken the events by another such count later (the loop gave way
   for at most a moment, and the thread was not scheduled in time), the
   handoff is told again. */
static inline void
rows_stored(Rows *self)
{
    if (self->ready.sleeping && self->length >= self->wake_at) {
        sleeper_wake(&self->ready);
        if (self->handoff != NULL) {
            rows_hand_over(self);
            self->ask_again_at = self->length + self->wake_at;
        }
    }
    else if (self->ask_again_at != 0 && self->length >= self->ask_again_at) {
        rows_hand_over(self);
        self->ask_again_at = self->length + self->wake_at;
    }
}

/* Store `n` events, each (code, ts, g), from `values` (3 * n of them).
   Without the memory for them, they are counted as lost: this never raises. */
static void
rows_store(Rows *self, const uint64_t *values, int n)
{
    if (rows_reserve(self, n) < 0) {
        self->lost += (unsigned long long)n;
        return;
    }
    for (int i = 0; i < n; i++) {
        for (int c = 0; c < 3; c++) {
            self->columns[c][self->length] = values[3 * i + c];
        }
        self->length++;
    }
    rows_stored(self);
}

static void
rows_free(Rows *self)
{
    for (int i = 0; i < 3; i++) {
        PyMem_RawFree(self->columns[i]);
        self->columns[i] = NULL;
    }
    self->length = self->capacity = 0;
}

static PyObject *
rows_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    Rows *self = (Rows *)type->tp_alloc(type, 0);
    if (self != NULL && sleeper_init(&self->ready, "Rows", args, kwargs) < 0) {
        Py_CLEAR(self);
    }
    return (PyObject *)self;
}

static void
rows_dealloc(Rows *self)
{
    Py_CLEAR(self->handoff);
    rows_free(self);
    sleeper_free(&self->ready);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* rows.wait(count, timeout): block, without the GIL, until `count` events
   are stored, `wake` is called or `timeout` seconds have passed */
static PyObject *
rows_wait(Rows *self, PyObject *args)
{
    Py_ssize_t count;
    double timeout;
    if (!PyArg_ParseTuple(args, "nd:wait", &count, &timeout)) {
        return NULL;
    }
    if (self->length >= count && !self->ready.sleeping) {
        self->ready.woken = 0;
        Py_RETURN_TRUE;
    }
    int entered = sleeper_enter(&self->ready);
    if (entered != 0) {
        return entered < 0 ? NULL : Py_NewRef(Py_True);
    }
    self->wake_at = count;
    self->ask_again_at = 0;
    PyLockStatus status;
    Py_BEGIN_ALLOW_THREADS
    status = PyThread_acquire_lock_timed(self->ready.lock, micros(timeout), 0);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(sleeper_leave(&self->ready, status));
}

static PyObject *
rows_set_handoff(Rows *self, PyObject *handoff)
{
    Py_XSETREF(self->handoff, handoff == Py_None ? NULL : Py_NewRef(handoff));
    self->ask_again_at = 0;
    Py_RETURN_NONE;
}

static PyObject *
rows_wake(Rows *self, PyObject *unused)
{
    (void)unused;
    sleeper_wake(&self->ready);
    Py_RETURN_NONE;
}

/* Write `n` values as little-endian 64-bit integers at `out` */
static void
put_le64(char *out, const uint64_t *values, Py_ssize_t n)
{
#if PY_LITTLE_ENDIAN
    memcpy(out, values, (size_t)n * sizeof(uint64_t));
#else
    for (Py_ssize_t i = 0; i < n; i++) {
        for (int b = 0; b < 8; b++) {
            out[8 * i + b] = (char)(values[i] >> (8 * b));
        }
    }
#endif
}

/* rows.take(): remove every stored event as one EVENTS payload: every
   code, then every ts, then every g, each a little-endian 64-bit integer.
   Returns (payload, events taken, events lost since the last take).

   The columns are handed over and the hooks store into new ones from then
   on, so the copy into the payload is made without the GIL: the payload's
   pages are new, and faulting in a chunk's megabytes took milliseconds. */
static PyObject *
rows_take(Rows *self, PyObject *unused)
{
    (void)unused;
    Py_ssize_t n = self->length;
    self->ask_again_at = 0;
    PyObject *payload = PyBytes_FromStringAndSize(NULL, 3 * n * (Py_ssize_t)sizeof(uint64_t));
    if (payload == NULL) {
        return NULL;
    }
    unsigned long long lost = self->lost;
    uint64_t *taken[3] = {self->columns[0], self->columns[1], self->columns[2]};
    /* as much room again (its pages come as the hooks write them), but not what a burst took */
    Py_ssize_t capacity = self->capacity > ROWS_KEPT_CAPACITY && self->capacity > 2 * n ? 0 : self->capacity;
    for (int i = 0; i < 3; i++) {
        self->columns[i] = NULL;
    }
    self->length = self->capacity = 0;
    self->lost = 0;
    if (capacity > 0 && rows_reserve(self, capacity) < 0) {
        rows_free(self);  /* the hooks grow them again as they store */
    }
    char *out = PyBytes_AS_STRING(payload);
    Py_BEGIN_ALLOW_THREADS
    for (int i = 0; i < 3; i++) {
        put_le64(out + i * n * (Py_ssize_t)sizeof(uint64_t), taken[i], n);
        PyMem_RawFree(taken[i]);
    }
    Py_END_ALLOW_THREADS
    PyObject *result = Py_BuildValue("(NnK)", payload, n, lost);
    if (result == NULL) {
        self->lost += lost + (unsigned long long)n;
    }
    return result;
}

/* rows.extend(values): store the events in `values`, a sequence of ints,
   three per event (code, ts, g); negative ints keep their 64 bits. The
   Python hooks store here as the C hooks do, so that every event of a
   recording is in one stream, in the order it was recorded. */
static PyObject *
rows_extend(Rows *self, PyObject *values)
{
    PyObject *seq = PySequence_Fast(values, "events must be a sequence of ints");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n % 3 != 0) {
        Py_DECREF(seq);
        return PyErr_Format(PyExc_ValueError, "events come in threes (code, ts, g), got %zd values", n);
    }
    if (rows_reserve(self, n / 3) < 0) {
        self->lost += (unsigned long long)(n / 3);
        Py_DECREF(seq);
        Py_RETURN_NONE;
    }
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {  /* written past `length`: kept only once all are converted */
        uint64_t value = PyLong_AsUnsignedLongLongMask(items[i]);
        if (value == (uint64_t)-1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return NULL;
        }
        self->columns[i % 3][self->length + i / 3] = value;
    }
    self->length += n / 3;
    rows_stored(self);
    Py_DECREF(seq);
    Py_RETURN_NONE;
}

static PyObject *
rows_clear(Rows *self, PyObject *unused)
{
    (void)unused;
    rows_free(self);
    self->ask_again_at = 0;
    Py_RETURN_NONE;
}

static Py_ssize_t
rows_len(Rows *self)
{
    return self->length;
}

static PyMethodDef rows_methods[] = {
    {"take", (PyCFunction)rows_take, METH_NOARGS,
     "Remove every stored event as one EVENTS payload (code, ts and g columns, little-endian 64-bit);\n"
     "returns (payload, events taken, events lost since the last take for want of memory)."},
    {"extend", (PyCFunction)rows_extend, METH_O,
     "Store the events in a sequence of ints, three per event (code, ts, g)."},
    {"wait", (PyCFunction)rows_wait, METH_VARARGS,
     "wait(count, timeout)\n--\n\nBlock, without the GIL, until `count` events are stored, `wake()` is called,\n"
     "or `timeout` seconds have passed; whether it was not the timeout. One waiting thread at a time."},
    {"wake", (PyCFunction)rows_wake, METH_NOARGS, "Let the thread in `wait` go now (or the next `wait` return at once)."},
    {"set_handoff", (PyCFunction)rows_set_handoff, METH_O,
     "set_handoff(handoff): when the count wakes the thread in `wait`, set handoff.due to 0 (None: nothing to tell)."},
    {"clear", (PyCFunction)rows_clear, METH_NOARGS, "Forget the stored events."},
    {NULL},
};

static PySequenceMethods rows_as_sequence = {.sq_length = (lenfunc)rows_len};

static PyTypeObject RowsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "exectracer.record._speedups.Rows",
    .tp_doc = "Rows()\n--\n\nA recording's events, as three uint64 columns, until the writer takes them.",
    .tp_basicsize = sizeof(Rows),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = rows_new,
    .tp_dealloc = (destructor)rows_dealloc,
    .tp_methods = rows_methods,
    .tp_as_sequence = &rows_as_sequence,
};

/* --------------------------------------------------------------------- Watch */

/* What the sampler's thread sleeps on while a busy event loop takes its
   ticks: the loop marks it at each sample it takes, and the thread, without
   the GIL, looks at the marks every `check_every` seconds, waking only when
   they stop (or when woken, or at its timeout). So a loop that keeps
   sampling is never asked for the GIL by the sampler's thread. */
typedef struct {
    PyObject_HEAD
    Sleeper sleeper;              /* the sampler's thread in `wait` */
    volatile unsigned long marks; /* counted by `mark`; read without the GIL */
} Watch;

static PyObject *
watch_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    Watch *self = (Watch *)type->tp_alloc(type, 0);
    if (self != NULL && sleeper_init(&self->sleeper, "Watch", args, kwargs) < 0) {
        Py_CLEAR(self);
    }
    return (PyObject *)self;
}

static void
watch_dealloc(Watch *self)
{
    sleeper_free(&self->sleeper);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* watch.wait(timeout, check_every, stale_checks, first_check=check_every) */
static PyObject *
watch_wait(Watch *self, PyObject *args)
{
    double timeout, check_every, first_check = -1;
    int stale_checks;
    if (!PyArg_ParseTuple(args, "ddi|d:wait", &timeout, &check_every, &stale_checks, &first_check)) {
        return NULL;
    }
    int entered = sleeper_enter(&self->sleeper);
    if (entered != 0) {
        return entered < 0 ? NULL : Py_NewRef(Py_True);
    }
    PY_TIMEOUT_T remaining = micros(timeout), every = check_every > 0 ? micros(check_every) : remaining;
    PY_TIMEOUT_T next = first_check >= 0 && check_every > 0 ? micros(first_check) : every;
    PyLockStatus status = PY_LOCK_FAILURE;
    Py_BEGIN_ALLOW_THREADS
    unsigned long seen = self->marks;
    int unchanged = 0;
    while (remaining > 0) {
        PY_TIMEOUT_T step = next < remaining ? next : remaining;
        next = every;
        status = PyThread_acquire_lock_timed(self->sleeper.lock, step, 0);
        if (status == PY_LOCK_ACQUIRED) {
            break;
        }
        remaining -= step;
        if (check_every > 0) {
            unsigned long now = self->marks;
            unchanged = now == seen ? unchanged + 1 : 0;
            seen = now;
            if (unchanged >= stale_checks) {
                break;
            }
        }
    }
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(sleeper_leave(&self->sleeper, status));
}

static PyObject *
watch_wake(Watch *self, PyObject *unused)
{
    (void)unused;
    sleeper_wake(&self->sleeper);
    Py_RETURN_NONE;
}

static PyObject *
watch_mark(Watch *self, PyObject *unused)
{
    (void)unused;
    self->marks++;
    Py_RETURN_NONE;
}

static PyMethodDef watch_methods[] = {
    {"wait", (PyCFunction)watch_wait, METH_VARARGS,
     "wait(timeout, check_every, stale_checks, first_check=check_every)\n--\n\n"
     "Sleep, without the GIL, until `wake()` (True), `timeout` seconds, or, with `check_every` > 0, until\n"
     "`stale_checks` looks that many seconds apart (the first after `first_check` seconds) saw no new `mark()`\n"
     "(False). One waiting thread at a time."},
    {"wake", (PyCFunction)watch_wake, METH_NOARGS, "Let the thread in `wait` go now (or the next `wait` return at once)."},
    {"mark", (PyCFunction)watch_mark, METH_NOARGS, "Note that the work watched for was done."},
    {NULL},
};

static PyTypeObject WatchType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "exectracer.record._speedups.Watch",
    .tp_doc = "Watch()\n--\n\nA sleep without the GIL that ends when woken, at a timeout, or when the marks stop.",
    .tp_basicsize = sizeof(Watch),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = watch_new,
    .tp_dealloc = (destructor)watch_dealloc,
    .tp_methods = watch_methods,
};

static uint64_t
as_u64(PyObject *value)
{
    return PyLong_AsUnsignedLongLongMask(value);
}

/* `value` (a new reference, or NULL after an error) as an unsigned 64-bit
   integer at `out`, the reference given up; -1 on error */
static int
consume_u64(PyObject *value, uint64_t *out)
{
    if (value == NULL) {
        return -1;
    }
    *out = as_u64(value);
    Py_DECREF(value);
    return PyErr_Occurred() ? -1 : 0;
}

/* The calling thread's goroutine, as Registry.thread_g gives it: looked up
   in `threads` (ident -> g), else from thread_g(); -1 on error */
static int
thread_goroutine(PyObject *threads, PyObject *thread_g, uint64_t *g)
{
    PyObject *ident = PyLong_FromUnsignedLong(PyThread_get_thread_ident());
    PyObject *known = ident == NULL ? NULL : PyDict_GetItemWithError(threads, ident);
    Py_XDECREF(ident);
    if (known == NULL && !PyErr_Occurred()) {
        known = PyObject_CallNoArgs(thread_g);
    }
    else {
        Py_XINCREF(known);
    }
    return consume_u64(known, g);
}

/* The offset of the object slot (a __slots__ entry, or a C type's T_OBJECT
   member) that `descr` reads (and, if `writable`, writes), or -1;
   `none_if_unset` says whether an unset slot reads as None (T_OBJECT)
   rather than missing. */
static Py_ssize_t
slot_offset(PyObject *descr, int writable, int *none_if_unset)
{
    if (Py_TYPE(descr) != &PyMemberDescr_Type) {
        return -1;
    }
    PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
    if ((writable && member->flags & READONLY) || (member->type != T_OBJECT_EX && member->type != T_OBJECT)) {
        return -1;
    }
    *none_if_unset = member->type == T_OBJECT;
    return member->offset;
}

/* An attribute read through the data descriptor found once on a type, for
   objects of exactly that type (else the usual lookup): no lookup by name,
   and for an object slot, no call either. */
typedef struct {
    PyTypeObject *owner;
    PyObject *descr;  /* NULL: always look up by name */
    PyObject *name;
    Py_ssize_t offset;  /* >= 0: the slot's offset */
    int none_if_unset;
} FastAttr;

static int
fast_attr_init(FastAttr *attr, PyObject *owner, const char *name)
{
    attr->owner = (PyTypeObject *)owner;
    attr->descr = NULL;
    attr->offset = -1;
    if ((attr->name = PyUnicode_InternFromString(name)) == NULL) {
        return -1;
    }
    if (owner == NULL || !PyType_Check(owner)) {
        attr->owner = NULL;
        return 0;
    }
    PyObject *descr = PyObject_GetAttr(owner, attr->name);
    if (descr == NULL) {
        PyErr_Clear();
    }
    else if (Py_TYPE(descr)->tp_descr_get != NULL && Py_TYPE(descr)->tp_descr_set != NULL) {
        attr->descr = descr;  /* a data descriptor: an instance's __dict__ cannot shadow it */
        attr->offset = slot_offset(descr, 0, &attr->none_if_unset);
        Py_INCREF(owner);
        return 0;
    }
    Py_XDECREF(descr);
    attr->owner = NULL;
    return 0;
}

static void
fast_attr_clear(FastAttr *attr)
{
    if (attr->descr != NULL) {
        Py_CLEAR(attr->descr);
        Py_CLEAR(attr->owner);
    }
    Py_CLEAR(attr->name);
}

static PyObject *
fast_get(FastAttr *attr, PyObject *obj)
{
    if (attr->descr != NULL && Py_TYPE(obj) == attr->owner) {
        if (attr->offset >= 0) {
            PyObject *value = *(PyObject **)((char *)obj + attr->offset);
            if (value != NULL) {
                return Py_NewRef(value);
            }
            if (attr->none_if_unset) {
                Py_RETURN_NONE;
            }
            return PyObject_GetAttr(obj, attr->name);  /* raises as the slot does */
        }
        return Py_TYPE(attr->descr)->tp_descr_get(attr->descr, obj, (PyObject *)attr->owner);
    }
    return PyObject_GetAttr(obj, attr->name);
}

static FastAttr coro_code, coro_frame, coro_await, gen_frame, gen_yieldfrom, frame_code, frame_lasti;

/* The hooks' thread-local state (a threading.local, HookState) keeps
   ``io`` (the ids of the handles the loop's last select made ready) in
   each thread's own __dict__ of it. A hook object remembers the dict of the
   last thread it ran in, by the thread state's id (never reused): reading
   ``io`` is then one dict lookup instead of threading.local's attribute
   protocol. */
typedef struct {
    PyObject *local;
    uint64_t thread;  /* PyThreadState_GetID of the thread whose dict is in `dict`; 0: none */
    PyObject *dict;
} HookState;

/* The calling thread's dict of the hook state (borrowed) */
static PyObject *
hook_dict(HookState *state)
{
    uint64_t thread = PyThreadState_GetID(PyThreadState_Get());
    if (thread == state->thread && state->dict != NULL) {
        return state->dict;
    }
    PyObject *dict = PyObject_GetAttr(state->local, s_dict);
    if (dict == NULL) {
        return NULL;
    }
    if (!PyDict_CheckExact(dict)) {
        Py_DECREF(dict);
        PyErr_SetString(PyExc_TypeError, "the hooks' thread-local state has no plain __dict__");
        return NULL;
    }
    Py_XSETREF(state->dict, dict);
    state->thread = thread;
    return dict;
}

/* HookState.cur while the C hooks run: the waker code of the step or
   callback the calling thread runs (0: none), a C thread-local the hooks
   read and write with no object made; Python reads and writes it through
   the ``cur`` property of native.NativeHookState (current_waker and
   set_current_waker below). */
#if defined(_MSC_VER)
static __declspec(thread) unsigned long long current_waker;
#else
static _Thread_local unsigned long long current_waker;
#endif

static PyObject *
get_current_waker(PyObject *module, PyObject *state)
{
    (void)module;
    (void)state;
    return PyLong_FromUnsignedLongLong(current_waker);
}

static PyObject *
set_current_waker(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "set_current_waker(state, value)");
        return NULL;
    }
    unsigned long long value = PyLong_AsUnsignedLongLong(args[1]);
    if (value == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    current_waker = value;
    Py_RETURN_NONE;
}

/* The goroutine the caller runs in, as Registry.current_g gives it: the
   running task's (current_waker names it as `task_waker`), else the
   thread's; -1 on error */
static int
current_goroutine(unsigned long long task_waker, unsigned long long waker_shift, PyObject *threads, PyObject *thread_g, uint64_t *g)
{
    if ((current_waker & 7) == task_waker) {
        *g = current_waker >> waker_shift;
        return 0;
    }
    return thread_goroutine(threads, thread_g, g);
}

/* Method descriptor plumbing shared by the hook types: bound like a function */
static PyObject *
bind(PyObject *self, PyObject *obj, PyObject *type)
{
    (void)type;
    if (obj == NULL || obj == Py_None) {
        return Py_NewRef(self);
    }
    return PyMethod_New(self, obj);
}

/* The object members of a hook type, listed by an X-macro (its *_OBJECTS):
   what each one's traverse, clear, dealloc and constructor do with them */
#define VISIT_MEMBER(name) Py_VISIT(self->name);
#define CLEAR_MEMBER(name) Py_CLEAR(self->name);
#define FORGET_MEMBER(name) self->name = NULL;  /* PyArg_Parse* left borrowed pointers: not ours yet */
#define KEEP_MEMBER(name) Py_XINCREF(self->name);

/* traverse, clear and dealloc of a hook type whose object members are all in OBJECTS */
#define GC_FUNCTIONS(prefix, Type, OBJECTS)                              \
    static int prefix##_traverse(Type *self, visitproc visit, void *arg) \
    {                                                                    \
        OBJECTS(VISIT_MEMBER)                                            \
        return 0;                                                        \
    }                                                                    \
    static int prefix##_clear(Type *self)                                \
    {                                                                    \
        OBJECTS(CLEAR_MEMBER)                                            \
        return 0;                                                        \
    }                                                                    \
    static void prefix##_dealloc(Type *self)                             \
    {                                                                    \
        PyObject_GC_UnTrack(self);                                       \
        prefix##_clear(self);                                            \
        Py_TYPE(self)->tp_free((PyObject *)self);                        \
    }

/* The type object of a hook type: a method descriptor with vectorcall, its
   object members collected (GC_FUNCTIONS) */
#define HOOK_TYPE(Name, prefix, doc)                                          \
    static PyTypeObject Name##Type = {                                        \
        PyVarObject_HEAD_INIT(NULL, 0)                                        \
        .tp_name = "exectracer.record._speedups." #Name,                      \
        .tp_doc = doc,                                                        \
        .tp_basicsize = sizeof(Name),                                         \
        .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_METHOD_DESCRIPTOR, \
        .tp_vectorcall_offset = offsetof(Name, vectorcall),                   \
        .tp_call = PyVectorcall_Call,                                         \
        .tp_descr_get = bind,                                                 \
        .tp_new = prefix##_new,                                               \
        .tp_traverse = (traverseproc)prefix##_traverse,                       \
        .tp_clear = (inquiry)prefix##_clear,                                  \
        .tp_dealloc = (destructor)prefix##_dealloc,                           \
    };

/* ------------------------------------------------------------------ PtrMap */

/* A map from object addresses to 64-bit values, by open addressing: the
   registry's task ids (TaskIds below) and the await chains' code flags. */
typedef struct {
    uintptr_t *keys;   /* 0: empty; TOMBSTONE: removed */
    uint64_t *values;
    Py_ssize_t capacity, used, filled;  /* used: live keys; filled: live keys and tombstones */
} PtrMap;

#define TOMBSTONE ((uintptr_t)1)  /* no object lives at address 1 */

static uint64_t mix(uint64_t h);

/* The slot of `key`, or of the slot where it would go; -1 if the map is empty */
static Py_ssize_t
ptr_map_slot(PtrMap *map, uintptr_t key, int for_insert)
{
    if (map->capacity == 0) {
        return -1;
    }
    Py_ssize_t mask = map->capacity - 1, reuse = -1;
    for (Py_ssize_t i = (Py_ssize_t)(mix(key) & (uint64_t)mask);; i = (i + 1) & mask) {
        uintptr_t found = map->keys[i];
        if (found == key) {
            return i;
        }
        if (found == 0) {
            return for_insert && reuse >= 0 ? reuse : i;
        }
        if (found == TOMBSTONE && reuse < 0) {
            reuse = i;
        }
    }
}

static int
ptr_map_lookup(PtrMap *map, uintptr_t key, uint64_t *value)
{
    Py_ssize_t i = ptr_map_slot(map, key, 0);
    if (i < 0 || map->keys[i] != key) {
        return 0;
    }
    *value = map->values[i];
    return 1;
}

static int
ptr_map_resize(PtrMap *map, Py_ssize_t capacity)
{
    uintptr_t *keys = PyMem_Calloc((size_t)capacity, sizeof(uintptr_t)), *old_keys = map->keys;
    uint64_t *values = PyMem_Calloc((size_t)capacity, sizeof(uint64_t)), *old_values = map->values;
    if (keys == NULL || values == NULL) {
        PyMem_Free(keys);
        PyMem_Free(values);
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t old_capacity = map->capacity;
    map->keys = keys;
    map->values = values;
    map->capacity = capacity;
    map->used = map->filled = 0;
    for (Py_ssize_t i = 0; i < old_capacity; i++) {
        if (old_keys[i] > TOMBSTONE) {
            Py_ssize_t j = ptr_map_slot(map, old_keys[i], 1);
            map->keys[j] = old_keys[i];
            map->values[j] = old_values[i];
            map->used++;
            map->filled++;
        }
    }
    PyMem_Free(old_keys);
    PyMem_Free(old_values);
    return 0;
}

/* -1 (MemoryError set) if the map cannot grow */
static int
ptr_map_store(PtrMap *map, uintptr_t key, uint64_t value)
{
    if ((map->filled + 1) * 2 > map->capacity) {
        Py_ssize_t capacity = map->capacity ? map->capacity : 256;
        while ((map->used + 1) * 4 > capacity) {  /* room to grow without another resize soon */
            capacity *= 2;
        }
        if (ptr_map_resize(map, capacity) < 0) {
            return -1;
        }
    }
    Py_ssize_t i = ptr_map_slot(map, key, 1);
    if (map->keys[i] != key) {
        map->filled += map->keys[i] == 0;
        map->used++;
        map->keys[i] = key;
    }
    map->values[i] = value;
    return 0;
}

static int
ptr_map_remove(PtrMap *map, uintptr_t key, uint64_t *value)
{
    Py_ssize_t i = ptr_map_slot(map, key, 0);
    if (i < 0 || map->keys[i] != key) {
        return 0;
    }
    *value = map->values[i];
    map->keys[i] = TOMBSTONE;
    map->used--;
    return 1;
}

static void
ptr_map_free(PtrMap *map)
{
    PyMem_Free(map->keys);
    PyMem_Free(map->values);
    map->keys = NULL;
    map->values = NULL;
    map->capacity = map->used = map->filled = 0;
}

/* ------------------------------------------------------------------ TaskIds */

/* The registry's map from id(task) to goroutine id, as a dict-like object
   the C hooks read by address, with no int made: get, pop, [], in, len. */
typedef struct {
    PyObject_HEAD
    PtrMap map;
} TaskIds;

static int
task_ids_key(PyObject *key, uintptr_t *out)
{
    unsigned long long address = PyLong_Check(key) ? PyLong_AsUnsignedLongLong(key) : 0;
    if (address == (unsigned long long)-1 && PyErr_Occurred()) {
        return -1;
    }
    if (address <= TOMBSTONE || address > (unsigned long long)UINTPTR_MAX) {
        PyErr_SetString(PyExc_TypeError, "TaskIds keys are ids of objects");
        return -1;
    }
    *out = (uintptr_t)address;
    return 0;
}

/* The key of a get or pop call, whose arguments are (key[, default]) */
static int
task_ids_call_key(PyObject *const *args, Py_ssize_t nargs, const char *usage, uintptr_t *key)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, usage);
        return -1;
    }
    return task_ids_key(args[0], key);
}

static PyObject *
task_ids_get(TaskIds *self, PyObject *const *args, Py_ssize_t nargs)
{
    uintptr_t key;
    uint64_t value;
    if (task_ids_call_key(args, nargs, "get(key, default=None)", &key) < 0) {
        return NULL;
    }
    if (ptr_map_lookup(&self->map, key, &value)) {
        return PyLong_FromUnsignedLongLong(value);
    }
    return Py_NewRef(nargs == 2 ? args[1] : Py_None);
}

static PyObject *
task_ids_pop(TaskIds *self, PyObject *const *args, Py_ssize_t nargs)
{
    uintptr_t key;
    uint64_t value;
    if (task_ids_call_key(args, nargs, "pop(key[, default])", &key) < 0) {
        return NULL;
    }
    if (ptr_map_remove(&self->map, key, &value)) {
        return PyLong_FromUnsignedLongLong(value);
    }
    if (nargs == 2) {
        return Py_NewRef(args[1]);
    }
    PyErr_SetObject(PyExc_KeyError, args[0]);
    return NULL;
}

static PyObject *
task_ids_subscript(TaskIds *self, PyObject *key_object)
{
    uintptr_t key;
    uint64_t value;
    if (task_ids_key(key_object, &key) < 0) {
        return NULL;
    }
    if (!ptr_map_lookup(&self->map, key, &value)) {
        PyErr_SetObject(PyExc_KeyError, key_object);
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(value);
}

static int
task_ids_ass_subscript(TaskIds *self, PyObject *key_object, PyObject *value_object)
{
    uintptr_t key;
    uint64_t value;
    if (task_ids_key(key_object, &key) < 0) {
        return -1;
    }
    if (value_object == NULL) {
        if (!ptr_map_remove(&self->map, key, &value)) {
            PyErr_SetObject(PyExc_KeyError, key_object);
            return -1;
        }
        return 0;
    }
    value = PyLong_AsUnsignedLongLong(value_object);
    if (value == (uint64_t)-1 && PyErr_Occurred()) {
        return -1;
    }
    return ptr_map_store(&self->map, key, value);
}

static int
task_ids_contains(TaskIds *self, PyObject *key_object)
{
    uintptr_t key;
    uint64_t value;
    if (task_ids_key(key_object, &key) < 0) {
        return -1;
    }
    return ptr_map_lookup(&self->map, key, &value);
}

static Py_ssize_t
task_ids_len(TaskIds *self)
{
    return self->map.used;
}

static void
task_ids_dealloc(TaskIds *self)
{
    ptr_map_free(&self->map);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef task_ids_methods[] = {
    {"get", (PyCFunction)(void (*)(void))task_ids_get, METH_FASTCALL, "get(key, default=None): the goroutine id of the task with id `key`."},
    {"pop", (PyCFunction)(void (*)(void))task_ids_pop, METH_FASTCALL, "pop(key[, default]): remove the task with id `key`; its goroutine id."},
    {NULL},
};

static PyMappingMethods task_ids_as_mapping = {
    .mp_length = (lenfunc)task_ids_len,
    .mp_subscript = (binaryfunc)task_ids_subscript,
    .mp_ass_subscript = (objobjargproc)task_ids_ass_subscript,
};

static PySequenceMethods task_ids_as_sequence = {.sq_contains = (objobjproc)task_ids_contains};

static PyTypeObject TaskIdsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "exectracer.record._speedups.TaskIds",
    .tp_doc = "TaskIds()\n--\n\nid(task) -> goroutine id, for the registry and the C hooks.",
    .tp_basicsize = sizeof(TaskIds),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)task_ids_dealloc,
    .tp_methods = task_ids_methods,
    .tp_as_mapping = &task_ids_as_mapping,
    .tp_as_sequence = &task_ids_as_sequence,
};

/* ------------------------------------------------------------- chain table */

/* Known await chains by their raw key: the waiter's type, then each level's
   code object and offset, as machine words (no objects made, no dict). The
   code objects stay alive (the interner keeps every defined chain's), and
   the waiter types are held by StepRunner.chain_types, so no address is
   reused while its entry is here. A miss goes to the Python cache and
   define_chain, with the same key as a flat tuple. */
typedef struct {
    uint64_t hash;
    uint64_t code;
    Py_ssize_t length;
    uintptr_t *parts;  /* NULL: an empty slot */
} ChainEntry;

typedef struct {
    ChainEntry *entries;
    Py_ssize_t capacity;  /* a power of two, or 0 */
    Py_ssize_t used;
} ChainTable;

static uint64_t
mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static uint64_t
hash_parts(const uintptr_t *parts, Py_ssize_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)n;
    for (Py_ssize_t i = 0; i < n; i++) {
        h = mix(h ^ (uint64_t)parts[i]) + (uint64_t)i;
    }
    return h;
}

static ChainEntry *
chain_find(ChainTable *table, const uintptr_t *parts, Py_ssize_t n, uint64_t hash)
{
    if (table->capacity == 0) {
        return NULL;
    }
    Py_ssize_t mask = table->capacity - 1;
    for (Py_ssize_t i = (Py_ssize_t)(hash & (uint64_t)mask);; i = (i + 1) & mask) {
        ChainEntry *entry = &table->entries[i];
        if (entry->parts == NULL) {
            return NULL;
        }
        if (entry->hash == hash && entry->length == n && memcmp(entry->parts, parts, (size_t)n * sizeof(uintptr_t)) == 0) {
            return entry;
        }
    }
}

static void
chain_place(ChainTable *table, ChainEntry entry)
{
    Py_ssize_t mask = table->capacity - 1;
    Py_ssize_t i = (Py_ssize_t)(entry.hash & (uint64_t)mask);
    while (table->entries[i].parts != NULL) {
        i = (i + 1) & mask;
    }
    table->entries[i] = entry;
    table->used++;
}

/* Remember a chain's code; on failure (memory) it is just not remembered */
static void
chain_insert(ChainTable *table, const uintptr_t *parts, Py_ssize_t n, uint64_t hash, uint64_t code)
{
    if ((table->used + 1) * 2 > table->capacity) {
        Py_ssize_t capacity = table->capacity ? table->capacity * 2 : 256;
        ChainEntry *old = table->entries;
        Py_ssize_t old_capacity = table->capacity;
        ChainEntry *entries = PyMem_Calloc((size_t)capacity, sizeof(ChainEntry));
        if (entries == NULL) {
            return;
        }
        table->entries = entries;
        table->capacity = capacity;
        table->used = 0;
        for (Py_ssize_t i = 0; i < old_capacity; i++) {
            if (old[i].parts != NULL) {
                chain_place(table, old[i]);
            }
        }
        PyMem_Free(old);
    }
    uintptr_t *copy = PyMem_Malloc((size_t)n * sizeof(uintptr_t));
    if (copy == NULL) {
        return;
    }
    memcpy(copy, parts, (size_t)n * sizeof(uintptr_t));
    chain_place(table, (ChainEntry){hash, code, n, copy});
}

static void
chain_table_free(ChainTable *table)
{
    for (Py_ssize_t i = 0; i < table->capacity; i++) {
        PyMem_Free(table->entries[i].parts);
    }
    PyMem_Free(table->entries);
    table->entries = NULL;
    table->capacity = table->used = 0;
}

/* ---------------------------------------------------------------- StepRunner */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *fallback;        /* the Python hook: handle_run(handle) */
    PyObject *run_callback;    /* the Python hook for other callbacks, where the C path cannot go on: run_callback(handle, cb) */
    PyObject *step_types;      /* set of callback types a task's step comes in */
    PyObject *task_classes;    /* tuple of task classes */
    PyObject *is_task_type;    /* dict: type -> bool, filled here */
    PyObject *tasks;           /* TaskIds: id(task) -> g */
    PyObject *task_g;          /* task_g(task) -> g, registering it */
    HookState hook_state;      /* the hooks' thread-local state (``io``) */
    PyObject *rows;            /* Rows: where steps are recorded */
    PyObject *one_await;       /* set: ids of codes with one suspension point */
    PyObject *chain_cache;     /* dict: chain key -> event code */
    PyObject *define_chain;    /* define_chain(key, coro, waiter) -> code */
    PyObject *executor_futures;
    PyObject *ready_type;      /* _ReadyHandle */
    PyObject *report_error;    /* report_callback_error(handle, exc) */
    PyObject *clock;
    PyObject *code_for;        /* code_for(coro, waiter) -> code: chains too deep for chain_key */
    PyObject *loops;           /* dict: id(loop) -> loop id */
    PyObject *loop_id;         /* loop_id(loop) -> loop id, registering it */
    PyObject *name_cache;      /* dict: a callback's function (or code) -> string id of its name */
    PyObject *name_id;         /* name_id(callback) -> string id, caching it */
    PyObject *timer_type;      /* asyncio.TimerHandle */
    PyObject *looked_at;       /* set: ids of codes AwaitChains has counted the suspension points of */
    PyObject *chain_types;     /* set: the waiter types in the chain table's keys, kept alive */
    ChainTable chains;
    ChainTable builtin_names;  /* (method def, type of its self) of a builtin callback -> string id of its name */
    PtrMap code_flags;         /* code object -> 2: one suspension point, 1: more */
    PyObject *last_task_type;  /* borrowed (is_task_type holds it): the type is_task saw last */
    int last_is_task;
    FastAttr handle_callback, handle_context, handle_args, handle_loop, handle_waker, handle_queued, task_fut_waiter, task_coro, wrapper_self;
    unsigned long long task_waker, waker_shift, step, ready, shift, cat_mask, syscall_bits;
    unsigned long long done_cancelled, done_returned, done_raised;
    unsigned long long callback_begin, callback_end, callback_shift, source_timer, source_io, source_soon,
        waker_timer, waker_io, waker_callback;
} StepRunner;

#define STEP_RUNNER_OBJECTS(X) \
    X(fallback) X(run_callback) X(step_types) X(task_classes) X(is_task_type) X(tasks) X(task_g) \
    X(hook_state.local) X(hook_state.dict) X(rows) X(one_await) X(chain_cache) X(define_chain) X(executor_futures) \
    X(ready_type) X(report_error) X(clock) X(code_for) X(loops) X(loop_id) X(name_cache) X(name_id) X(timer_type) \
    X(looked_at)

#define STEP_RUNNER_ATTRS(X) \
    X(handle_callback) X(handle_context) X(handle_args) X(handle_loop) X(handle_waker) X(handle_queued) X(task_fut_waiter) X(task_coro) \
    X(wrapper_self)

static int
step_runner_traverse(StepRunner *self, visitproc visit, void *arg)
{
    STEP_RUNNER_OBJECTS(VISIT_MEMBER)
    Py_VISIT(self->chain_types);
#define VISIT_ATTR(name) Py_VISIT(self->name.owner); Py_VISIT(self->name.descr);
    STEP_RUNNER_ATTRS(VISIT_ATTR)
#undef VISIT_ATTR
    return 0;
}

static int
step_runner_clear(StepRunner *self)
{
    STEP_RUNNER_OBJECTS(CLEAR_MEMBER)
    Py_CLEAR(self->chain_types);
#define CLEAR_ATTR(name) fast_attr_clear(&self->name);
    STEP_RUNNER_ATTRS(CLEAR_ATTR)
#undef CLEAR_ATTR
    return 0;
}

static void
step_runner_dealloc(StepRunner *self)
{
    PyObject_GC_UnTrack(self);
    step_runner_clear(self);
    chain_table_free(&self->chains);
    chain_table_free(&self->builtin_names);
    ptr_map_free(&self->code_flags);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Whether `task` is an instance of a task class (cached per type); -1 on error */
static int
is_task(StepRunner *self, PyObject *task)
{
    PyObject *type = (PyObject *)Py_TYPE(task);
    if (type == self->last_task_type) {  /* alive: a key of is_task_type */
        return self->last_is_task;
    }
    PyObject *known = PyDict_GetItemWithError(self->is_task_type, type);
    if (known != NULL) {
        self->last_task_type = type;
        self->last_is_task = known == Py_True;
        return self->last_is_task;
    }
    if (PyErr_Occurred()) {
        return -1;
    }
    int result = PyObject_IsInstance(task, self->task_classes);
    if (result < 0 || PyDict_SetItem(self->is_task_type, type, result ? Py_True : Py_False) < 0) {
        return -1;
    }
    return result;
}

/* The goroutine id of `task`, registering it if new; -1 on error */
static int
task_goroutine(StepRunner *self, PyObject *task, uint64_t *g)
{
    if (ptr_map_lookup(&((TaskIds *)self->tasks)->map, (uintptr_t)task, g) && *g != 0) {
        return 0;
    }
    PyObject *value = PyObject_CallOneArg(self->task_g, task);
    return consume_u64(value, g);
}

static PyObject *
run_in_context(StepRunner *self, PyObject *handle, PyObject *cb)
{
    PyObject *context = fast_get(&self->handle_context, handle);
    if (context == NULL) {
        return NULL;
    }
    PyObject *args = fast_get(&self->handle_args, handle);
    PyObject *result = NULL;
    if (args != NULL) {
        if (!PyContext_CheckExact(context)) {
            PyErr_SetString(PyExc_TypeError, "a handle's context is not a contextvars.Context");
        }
        else if (PyContext_Enter(context) == 0) {
            result = PyObject_Call(cb, args, NULL);
            if (PyContext_Exit(context) < 0) {
                Py_CLEAR(result);
            }
        }
        Py_DECREF(args);
    }
    Py_DECREF(context);
    return result;
}

/* The exception being raised, normalized, as one object; the error indicator is cleared */
static PyObject *
take_exception(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
#endif
}

/* Whether a coroutine's code has one suspension point, as AwaitChains.one_await
   says; remembered once AwaitChains has looked at the code. -1 on error. */
static int
one_suspension_point(StepRunner *self, PyObject *code)
{
    uint64_t flag;
    if (ptr_map_lookup(&self->code_flags, (uintptr_t)code, &flag)) {
        return flag == 2;
    }
    PyObject *cid = PyLong_FromVoidPtr(code);
    if (cid == NULL) {
        return -1;
    }
    int single = PySet_Contains(self->one_await, cid);
    int looked = single == 0 ? PySet_Contains(self->looked_at, cid) : 0;
    Py_DECREF(cid);
    if (single < 0 || looked < 0) {
        return -1;
    }
    if ((single || looked) && ptr_map_store(&self->code_flags, (uintptr_t)code, single ? 2 : 1) < 0) {
        PyErr_Clear();  /* not remembered: asked again next time */
    }
    return single;
}

/* f_lasti of a frame; -1 with an error set on failure */
static long
frame_lasti_of(PyObject *frame)
{
#if PY_VERSION_HEX >= 0x030B0000
    if (PyFrame_Check(frame)) {
        return (long)PyFrame_GetLasti((PyFrameObject *)frame);
    }
#endif
    PyObject *value = fast_get(&frame_lasti, frame);
    if (value == NULL) {
        return -1;
    }
    long lasti = PyLong_AsLong(value);
    Py_DECREF(value);
    return lasti;
}

#define MAX_CHAIN 64
#define MAX_PARTS (1 + 2 * MAX_CHAIN)

/* The raw key of the await chain of `coro` waiting on `waiter`: type(waiter),
   then the code object and offset of each level, outermost first (0 for a
   coroutine code with one suspension point: no frame object made).
   Returns 0, 1 for a chain deeper than MAX_CHAIN levels, -1 on error. */
static int
chain_parts(StepRunner *self, PyObject *coro, PyObject *waiter, uintptr_t *parts, Py_ssize_t *length)
{
    Py_ssize_t n = 0;
    int status = 0;
    parts[n++] = (uintptr_t)Py_TYPE(waiter);
    PyObject *c = Py_NewRef(coro);
    while (status == 0) {
        PyObject *code = NULL, *frame = NULL, *next = NULL;
        long offset = 0;
        if (PyCoro_CheckExact(c)) {
            int single = (code = fast_get(&coro_code, c)) == NULL ? -1 : one_suspension_point(self, code);
#if PY_VERSION_HEX >= 0x030C0000
            /* a suspended coroutine's offset, from its own interpreter frame: no frame object made */
            offset = single == 0 ? PyUnstable_InterpreterFrame_GetLasti((struct _PyInterpreterFrame *)((PyCoroObject *)c)->cr_iframe) : 0;
#else
            if (single == 0 && (frame = fast_get(&coro_frame, c)) == NULL) {
                single = -1;
            }
            offset = single == 0 ? frame_lasti_of(frame) : 0;
#endif
            if (single >= 0 && !(offset == -1 && PyErr_Occurred())) {
                next = fast_get(&coro_await, c);
            }
        }
        else if (PyGen_CheckExact(c)) {
            if ((frame = fast_get(&gen_frame, c)) == Py_None) {
                Py_DECREF(frame);
                break;
            }
            if (frame != NULL && (code = fast_get(&frame_code, frame)) != NULL) {
                offset = frame_lasti_of(frame);
                if (!(offset == -1 && PyErr_Occurred())) {
                    next = fast_get(&gen_yieldfrom, c);
                }
            }
        }
        else {
            break;
        }
        Py_XDECREF(frame);
        Py_XDECREF(code);  /* its address stays valid: `c` holds the code */
        if (next == NULL) {
            status = -1;
        }
        else if (n == MAX_PARTS) {
            Py_DECREF(next);
            status = 1;
        }
        else {
            parts[n++] = (uintptr_t)code;
            parts[n++] = (uintptr_t)offset;
            Py_SETREF(c, next);
        }
    }
    Py_DECREF(c);
    *length = n;
    return status;
}

/* The flat tuple key of a raw chain key, for the Python cache and define_chain */
static PyObject *
chain_key(const uintptr_t *parts, Py_ssize_t n)
{
    PyObject *key = PyTuple_New(n);
    if (key == NULL) {
        return NULL;
    }
    PyTuple_SET_ITEM(key, 0, Py_NewRef((PyObject *)parts[0]));
    for (Py_ssize_t i = 1; i < n; i++) {
        PyObject *item = i % 2 ? PyLong_FromVoidPtr((void *)parts[i]) : PyLong_FromLong((long)parts[i]);
        if (item == NULL) {
            Py_DECREF(key);
            return NULL;
        }
        PyTuple_SET_ITEM(key, i, item);
    }
    return key;
}

/* The code of a chain the table does not know yet: from the Python cache or define_chain; remembered */
static int
define_code(StepRunner *self, const uintptr_t *parts, Py_ssize_t n, uint64_t hash, PyObject *coro, PyObject *waiter, uint64_t *out)
{
    PyObject *key = chain_key(parts, n);
    if (key == NULL) {
        return -1;
    }
    PyObject *code = PyDict_GetItemWithError(self->chain_cache, key);
    if (code != NULL && PyObject_IsTrue(code) == 1) {
        Py_INCREF(code);
    }
    else {
        code = PyErr_Occurred() ? NULL : PyObject_CallFunctionObjArgs(self->define_chain, key, coro, waiter, NULL);
    }
    Py_DECREF(key);
    if (code == NULL) {
        return -1;
    }
    *out = as_u64(code);
    Py_DECREF(code);
    if (PyErr_Occurred() || PySet_Add(self->chain_types, (PyObject *)Py_TYPE(waiter)) < 0) {
        return -1;
    }
    chain_insert(&self->chains, parts, n, hash, *out);
    return 0;
}

/* The code of a step that left `task` done, as end_code gives it (and the task's id forgotten); -1 on error */
static int
done_code(StepRunner *self, PyObject *task, uint64_t *out)
{
    uint64_t g;
    ptr_map_remove(&((TaskIds *)self->tasks)->map, (uintptr_t)task, &g);
    PyObject *cancelled = PyObject_CallMethodNoArgs(task, s_cancelled);
    int was_cancelled = cancelled == NULL ? -1 : PyObject_IsTrue(cancelled);
    Py_XDECREF(cancelled);
    if (was_cancelled != 0) {
        *out = self->done_cancelled;
        return was_cancelled < 0 ? -1 : 0;
    }
    PyObject *exc = PyObject_GetAttr(task, s_exception);  /* not exception(): that would mark it retrieved */
    if (exc == NULL) {
        return -1;
    }
    *out = exc == Py_None ? self->done_returned : self->done_raised;
    Py_DECREF(exc);
    return 0;
}

/* The event code for the end of a step of `task`: its suspension, or its end; -1 on error */
static int
end_of_step(StepRunner *self, PyObject *task, uint64_t *out)
{
    PyObject *waiter = fast_get(&self->task_fut_waiter, task);
    if (waiter == NULL) {
        return -1;
    }
    PyObject *code = NULL, *coro = NULL;
    int status = -1, done = 0;
    if (waiter == Py_None) {  /* the task ended, or yielded bare (asyncio.sleep(0)) and is runnable */
        PyObject *result = PyObject_CallMethodNoArgs(task, s_done);
        done = result == NULL ? -1 : PyObject_IsTrue(result);
        Py_XDECREF(result);
    }
    if (done == 1) {
        status = done_code(self, task, out);
    }
    else if (done == 0 && (coro = fast_get(&self->task_coro, task)) != NULL) {
        uintptr_t parts[MAX_PARTS];
        Py_ssize_t n = 0;
        int walked = chain_parts(self, coro, waiter, parts, &n);
        if (walked == 0) {
            uint64_t hash = hash_parts(parts, n);
            ChainEntry *known = chain_find(&self->chains, parts, n, hash);
            if (known != NULL) {
                *out = known->code;
                status = 0;
            }
            else {
                status = define_code(self, parts, n, hash, coro, waiter, out);
            }
        }
        else if (walked == 1) {  /* deeper than the table's keys go */
            code = PyObject_CallFunctionObjArgs(self->code_for, coro, waiter, NULL);
        }
    }
    if (code != NULL) {
        *out = as_u64(code);
        Py_DECREF(code);
        status = PyErr_Occurred() ? -1 : 0;
    }
    if (status == 0 && waiter != Py_None && !(*out & self->cat_mask)) {
        int from_executor = PySequence_Contains(self->executor_futures, waiter);
        if (from_executor < 0) {
            status = -1;
        }
        else if (from_executor) {
            *out |= self->syscall_bits;
        }
    }
    Py_XDECREF(coro);
    Py_DECREF(waiter);
    return status;
}

/* Store the step's events: [ready,] step start, step end */
static int
record_step(StepRunner *self, PyObject *handle, PyObject *task, uint64_t g, uint64_t start)
{
    uint64_t end = 0, code_bits = 0;
    if (end_of_step(self, task, &code_bits) < 0 || now_ns(self->clock, &end) < 0) {
        return -1;
    }
    if ((PyObject *)Py_TYPE(handle) == self->ready_type) {
        PyObject *waker = fast_get(&self->handle_waker, handle);
        PyObject *queued = waker == NULL ? NULL : fast_get(&self->handle_queued, handle);
        uint64_t row[9] = {0, 0, g, self->step, start, g, code_bits, end, g};
        if (queued != NULL) {
            row[0] = self->ready | as_u64(waker) << self->shift;
            row[1] = as_u64(queued);
        }
        Py_XDECREF(waker);
        Py_XDECREF(queued);
        if (queued == NULL || PyErr_Occurred()) {
            return -1;
        }
        rows_store((Rows *)self->rows, row, 3);
        return 0;
    }
    uint64_t row[6] = {self->step, start, g, code_bits, end, g};
    rows_store((Rows *)self->rows, row, 2);
    return 0;
}

/* A task's step: run it as Handle._run does, then record it */
static PyObject *
run_step(StepRunner *self, PyObject *handle, PyObject *cb, PyObject *task, uint64_t gbits)
{
    uint64_t start = 0, prev = current_waker;
    if (now_ns(self->clock, &start) < 0) {
        PyErr_Clear();
        return PyObject_CallOneArg(self->fallback, handle);
    }
    current_waker = self->task_waker | gbits << self->waker_shift;
    PyObject *result = run_in_context(self, handle, cb);
    if (result == NULL && !PyErr_ExceptionMatches(PyExc_SystemExit) && !PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
        PyObject *exc = take_exception();
        result = PyObject_CallFunctionObjArgs(self->report_error, handle, exc, NULL);
        Py_XDECREF(exc);
    }
    current_waker = prev;
    if (result == NULL) {  /* SystemExit, KeyboardInterrupt, or the loop's exception handler raised */
        return NULL;
    }
    Py_DECREF(result);
    if (record_step(self, handle, task, gbits, start) < 0) {
        PyErr_Clear();
    }
    Py_RETURN_NONE;
}

/* The value of `dict[PyLong(id(obj))]` as uint64, or (if missing or 0) of
   make(obj); -1 on error */
static int
id_lookup(PyObject *dict, PyObject *obj, PyObject *make, uint64_t *out)
{
    PyObject *key = PyLong_FromVoidPtr(obj);
    if (key == NULL) {
        return -1;
    }
    PyObject *value = PyDict_GetItemWithError(dict, key);
    Py_DECREF(key);
    if (value != NULL && PyObject_IsTrue(value) == 1) {
        *out = as_u64(value);
        return 0;
    }
    return PyErr_Occurred() ? -1 : consume_u64(PyObject_CallOneArg(make, obj), out);
}

/* A builtin callback's name is its method def's and its self's type's (a
   builtin method's __qualname__ is formatted anew at each look): those two
   pointers key it in `builtin_names`, where the type cannot be freed and
   its address reused (not a heap type); 0 parts otherwise */
static Py_ssize_t
builtin_name_parts(PyObject *cb, uintptr_t parts[2])
{
    PyObject *owner = PyCFunction_GET_SELF(cb);
    PyTypeObject *type = owner != NULL ? Py_TYPE(owner) : NULL;
    if (type != NULL && PyType_HasFeature(type, Py_TPFLAGS_HEAPTYPE)) {
        return 0;
    }
    parts[0] = (uintptr_t)((PyCFunctionObject *)cb)->m_ml;
    parts[1] = (uintptr_t)type;
    return 2;
}

/* The string id of a callback's name, as CallbackNames.name_id gives it; -1 on error */
static int
callback_name(StepRunner *self, PyObject *cb, uint64_t *out)
{
    PyObject *key = NULL;  /* borrowed: the function of a method, the code of a function */
    PyObject *made = NULL;  /* (type, __qualname__) of a builtin, as CallbackNames keys it */
    uintptr_t parts[2];
    Py_ssize_t n = 0;
    uint64_t hash = 0;
    if (Py_TYPE(cb) == &PyMethod_Type) {
        key = PyMethod_GET_FUNCTION(cb);
    }
    else if (Py_TYPE(cb) == &PyFunction_Type) {
        key = PyFunction_GET_CODE(cb);
    }
    else if (PyCFunction_CheckExact(cb)) {
        if ((n = builtin_name_parts(cb, parts)) > 0) {
            hash = hash_parts(parts, n);
            ChainEntry *known = chain_find(&self->builtin_names, parts, n, hash);
            if (known != NULL) {
                *out = known->code;
                return 0;
            }
        }
        PyObject *qualname = PyObject_GetAttr(cb, s_qualname);
        if (qualname != NULL && PyUnicode_Check(qualname) && PyUnicode_GET_LENGTH(qualname) > 0) {
            key = made = PyTuple_Pack(2, (PyObject *)Py_TYPE(cb), qualname);
        }
        Py_XDECREF(qualname);
        PyErr_Clear();  /* no key: the Python side names it */
    }
    PyObject *sid = key == NULL ? NULL : PyDict_GetItemWithError(self->name_cache, key);
    Py_XDECREF(made);
    if (sid != NULL) {
        *out = as_u64(sid);
    }
    else if (!PyErr_Occurred() && consume_u64(PyObject_CallOneArg(self->name_id, cb), out) < 0) {
        return -1;
    }
    if (PyErr_Occurred()) {
        return -1;
    }
    if (n > 0) {
        chain_insert(&self->builtin_names, parts, n, hash, *out);
    }
    return 0;
}

/* Which source queued `handle` and which waker that makes it, as the Python hook tells them */
static int
callback_source(StepRunner *self, PyObject *handle, PyObject *ldict, uint64_t *source, uint64_t *waker)
{
    if ((PyObject *)Py_TYPE(handle) == self->timer_type) {
        *source = self->source_timer;
        *waker = self->waker_timer;
        return 0;
    }
    PyObject *io = PyDict_GetItemWithError(ldict, s_io);  /* HookState.io: empty unless set */
    int from_io = 0;
    if (io != NULL) {
        PyObject *key = PyLong_FromVoidPtr(handle);
        from_io = key == NULL ? -1 : PySequence_Contains(io, key);
        Py_XDECREF(key);
    }
    else if (PyErr_Occurred()) {
        return -1;
    }
    if (from_io < 0) {
        return -1;
    }
    *source = from_io ? self->source_io : self->source_soon;
    *waker = from_io ? self->waker_io : self->waker_callback;
    return 0;
}

/* A callback that is not a task's step: run as Handle._run does, recorded as CALLBACK_BEGIN/END */
static PyObject *
run_callback(StepRunner *self, PyObject *handle, PyObject *cb)
{
    uint64_t lid = 0, sid = 0, source = 0, waker = 0, now = 0;
    PyObject *loop = fast_get(&self->handle_loop, handle);
    PyObject *ldict = Py_XNewRef(hook_dict(&self->hook_state));
    int ok = loop != NULL && ldict != NULL && id_lookup(self->loops, loop, self->loop_id, &lid) == 0
        && callback_name(self, cb, &sid) == 0 && callback_source(self, handle, ldict, &source, &waker) == 0;
    Py_XDECREF(loop);
    Py_XDECREF(ldict);
    if (!ok || now_ns(self->clock, &now) < 0) {
        PyErr_Clear();
        return PyObject_CallFunctionObjArgs(self->run_callback, handle, cb, NULL);
    }
    uint64_t begin[3] = {self->callback_begin | (sid << self->callback_shift | source) << self->shift, now, lid};
    rows_store((Rows *)self->rows, begin, 1);

    uint64_t prev = current_waker;
    current_waker = sid << self->waker_shift | waker;
    PyObject *result = run_in_context(self, handle, cb);
    if (result == NULL && !PyErr_ExceptionMatches(PyExc_SystemExit) && !PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
        PyObject *exc = take_exception();
        result = PyObject_CallFunctionObjArgs(self->report_error, handle, exc, NULL);
        Py_XDECREF(exc);
    }
    current_waker = prev;
    uint64_t end[3] = {self->callback_end, 0, lid};
    if (now_ns(self->clock, &end[1]) == 0) {
        rows_store((Rows *)self->rows, end, 1);
    }
    if (result == NULL) {
        return NULL;
    }
    Py_DECREF(result);
    Py_RETURN_NONE;
}

/* The object a step callback is bound to (its task, if it is a step) */
static PyObject *
callback_self(StepRunner *self, PyObject *cb)
{
    if (PyCFunction_Check(cb)) {  /* a task's wakeup */
        PyObject *bound = PyCFunction_GET_SELF(cb);
        return Py_NewRef(bound != NULL ? bound : Py_None);
    }
    if (Py_TYPE(cb) == &PyMethod_Type) {  /* the Python task's steps */
        return Py_NewRef(PyMethod_GET_SELF(cb));
    }
    return fast_get(&self->wrapper_self, cb);
}

static PyObject *
step_runner_call_handle(StepRunner *self, PyObject *handle)
{
    PyObject *cb = fast_get(&self->handle_callback, handle);
    if (cb == NULL) {
        PyErr_Clear();
        return PyObject_CallOneArg(self->fallback, handle);
    }
    PyObject *result = NULL, *task = NULL;
    uint64_t g = 0;
    int known = 0, registered = 0;
    int stepping = PySet_Contains(self->step_types, (PyObject *)Py_TYPE(cb));
    if (stepping == 1) {
        task = callback_self(self, cb);
        known = task == NULL ? -1 : is_task(self, task);
    }
    if (known == 1) {
        registered = task_goroutine(self, task, &g);
    }
    if (stepping < 0 || known < 0 || registered < 0) {
        PyErr_Clear();
        result = PyObject_CallOneArg(self->fallback, handle);
    }
    else if (known == 1) {
        result = run_step(self, handle, cb, task, g);
    }
    else {
        result = run_callback(self, handle, cb);
    }
    Py_XDECREF(task);
    Py_DECREF(cb);
    return result;
}

static PyObject *
step_runner_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    StepRunner *runner = (StepRunner *)self;
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL) {
        return PyObject_Vectorcall(runner->fallback, args, nargsf, kwnames);
    }
    return step_runner_call_handle(runner, args[0]);
}

static PyObject *
step_runner_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {
        "fallback", "run_callback", "step_types", "task_classes", "is_task_type", "tasks", "task_g",
        "local", "rows", "one_await", "chain_cache", "define_chain", "executor_futures",
        "ready_type", "report_error", "clock", "code_for", "task_type", "step_wrapper_type",
        "loops", "loop_id", "name_cache", "name_id", "timer_type", "looked_at",
        "task_waker", "waker_shift", "step", "ready", "shift", "cat_mask", "syscall_bits",
        "done_cancelled", "done_returned", "done_raised", "callback_begin", "callback_end", "callback_shift", "source_timer", "source_io", "source_soon",
        "waker_timer", "waker_io", "waker_callback", NULL};
    PyObject *task_type = NULL, *wrapper_type = NULL;
    StepRunner *self = (StepRunner *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = step_runner_vectorcall;
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "$O!OO!O!O!O!OOO!O!O!OOO!OOOO!OO!OO!OO!O!KKKKKKKKKKKKKKKKKKK:StepRunner", names,
            &PyFunction_Type, &self->fallback, &self->run_callback, &PySet_Type, &self->step_types,
            &PyTuple_Type, &self->task_classes, &PyDict_Type, &self->is_task_type,
            &TaskIdsType, &self->tasks, &self->task_g, &self->hook_state.local, &RowsType, &self->rows,
            &PySet_Type, &self->one_await, &PyDict_Type, &self->chain_cache, &self->define_chain,
            &self->executor_futures, &PyType_Type, &self->ready_type,
            &self->report_error, &self->clock, &self->code_for, &PyType_Type, &task_type, &wrapper_type,
            &PyDict_Type, &self->loops, &self->loop_id, &PyDict_Type, &self->name_cache, &self->name_id,
            &PyType_Type, &self->timer_type, &PySet_Type, &self->looked_at,
            &self->task_waker, &self->waker_shift, &self->step, &self->ready, &self->shift,
            &self->cat_mask, &self->syscall_bits, &self->done_cancelled, &self->done_returned, &self->done_raised,
            &self->callback_begin, &self->callback_end,
            &self->callback_shift, &self->source_timer, &self->source_io, &self->source_soon,
            &self->waker_timer, &self->waker_io, &self->waker_callback)) {
        /* the borrowed pointers are not ours yet */
        STEP_RUNNER_OBJECTS(FORGET_MEMBER)
        Py_DECREF(self);
        return NULL;
    }
    STEP_RUNNER_OBJECTS(KEEP_MEMBER)
    if ((self->chain_types = PySet_New(NULL)) == NULL
        || fast_attr_init(&self->handle_callback, self->ready_type, "_callback") < 0
        || fast_attr_init(&self->handle_context, self->ready_type, "_context") < 0
        || fast_attr_init(&self->handle_args, self->ready_type, "_args") < 0
        || fast_attr_init(&self->handle_loop, self->ready_type, "_loop") < 0
        || fast_attr_init(&self->handle_waker, self->ready_type, "_xt_waker") < 0
        || fast_attr_init(&self->handle_queued, self->ready_type, "_xt_ts") < 0
        || fast_attr_init(&self->task_fut_waiter, task_type, "_fut_waiter") < 0
        || fast_attr_init(&self->task_coro, task_type, "_coro") < 0
        || fast_attr_init(&self->wrapper_self, wrapper_type, "__self__") < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

HOOK_TYPE(StepRunner, step_runner,
          "Handle._run for the recording: runs a task step or another callback and records it.")

/* ----------------------------------------------------------------- ReadySoon */

enum { SLOT_CONTEXT, SLOT_LOOP, SLOT_CALLBACK, SLOT_ARGS, SLOT_CANCELLED, SLOT_REPR,
       SLOT_SOURCE_TRACEBACK, SLOT_XT_TS, SLOT_XT_WAKER, SLOT_COUNT };

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *fallback;        /* the Python hook: call_soon(loop, callback, args, context) */
    PyObject *ready_type;      /* _ReadyHandle */
    PyObject *slots;           /* tuple of the slot descriptors set below, in SLOT_* order */
    Py_ssize_t offsets[SLOT_COUNT];     /* each slot's offset, or -1: set through its descriptor */
    PyObject *thread_waker;    /* thread_waker() -> waker code of the calling thread */
    PyObject *clock;
    int fill_directly;
} ReadySoon;


#define READY_SOON_OBJECTS(X) X(fallback) X(ready_type) X(slots) X(thread_waker) X(clock)

GC_FUNCTIONS(ready_soon, ReadySoon, READY_SOON_OBJECTS)

static int
set_slot(ReadySoon *self, PyObject *handle, int slot, PyObject *value)
{
    if (self->offsets[slot] >= 0) {
        Py_XSETREF(*(PyObject **)((char *)handle + self->offsets[slot]), Py_NewRef(value));
        return 0;
    }
    PyObject *descr = PyTuple_GET_ITEM(self->slots, slot);
    return Py_TYPE(descr)->tp_descr_set(descr, handle, value);
}

/* A _ReadyHandle as Handle(callback, args, loop, context) makes it in non-debug mode, stamped */
static PyObject *
new_ready_handle(ReadySoon *self, PyObject *loop, PyObject *callback, PyObject *args, PyObject *context)
{
    PyTypeObject *type = (PyTypeObject *)self->ready_type;
    PyObject *handle = type->tp_alloc(type, 0);  /* what object.__new__ does for it */
    if (handle == NULL) {
        return NULL;
    }
    uint64_t now = 0;
    PyObject *waker = NULL, *ts = NULL;
    int ok = set_slot(self, handle, SLOT_CONTEXT, context) == 0
        && set_slot(self, handle, SLOT_LOOP, loop) == 0
        && set_slot(self, handle, SLOT_CALLBACK, callback) == 0
        && set_slot(self, handle, SLOT_ARGS, args) == 0
        && set_slot(self, handle, SLOT_CANCELLED, Py_False) == 0
        && set_slot(self, handle, SLOT_REPR, Py_None) == 0
        && set_slot(self, handle, SLOT_SOURCE_TRACEBACK, Py_None) == 0
        && now_ns(self->clock, &now) == 0
        && (ts = PyLong_FromUnsignedLongLong(now)) != NULL
        && set_slot(self, handle, SLOT_XT_TS, ts) == 0
        && (waker = current_waker ? PyLong_FromUnsignedLongLong(current_waker) : PyObject_CallNoArgs(self->thread_waker)) != NULL;
    ok = ok && set_slot(self, handle, SLOT_XT_WAKER, waker) == 0;
    Py_XDECREF(ts);
    Py_XDECREF(waker);
    if (!ok) {
        Py_CLEAR(handle);
    }
    return handle;
}

static PyObject *
ready_soon_vectorcall(PyObject *obj, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    ReadySoon *self = (ReadySoon *)obj;
    if (!self->fill_directly || PyVectorcall_NARGS(nargsf) != 4 || kwnames != NULL || args[3] == Py_None) {
        return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
    }
    PyObject *loop = args[0];
    PyObject *debug = PyObject_GetAttr(loop, s_debug);
    if (debug != Py_False) {
        Py_XDECREF(debug);
        PyErr_Clear();
        return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
    }
    Py_DECREF(debug);
    PyObject *handle = new_ready_handle(self, loop, args[1], args[2], args[3]);
    if (handle == NULL) {
        PyErr_Clear();
        return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
    }
    PyObject *ready = PyObject_GetAttr(loop, s_ready);
    int status = -1;
    if (ready != NULL && Py_TYPE(ready) == deque_type) {  /* asyncio's: append without a lookup */
        PyObject *call[2] = {ready, handle};
        PyObject *appended = PyObject_Vectorcall(deque_append, call, 2, NULL);
        status = appended == NULL ? -1 : 0;
        Py_XDECREF(appended);
    }
    else if (ready != NULL && PyList_CheckExact(ready)) {
        status = PyList_Append(ready, handle);
    }
    else if (ready != NULL) {
        PyObject *appended = PyObject_CallMethodOneArg(ready, s_append, handle);
        status = appended == NULL ? -1 : 0;
        Py_XDECREF(appended);
    }
    Py_XDECREF(ready);
    if (status < 0) {  /* as asyncio would: the program sees why its loop cannot queue */
        Py_DECREF(handle);
        return NULL;
    }
    return handle;
}

static PyObject *
ready_soon_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"fallback", "ready_type", "slots", "thread_waker", "clock", NULL};
    ReadySoon *self = (ReadySoon *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = ready_soon_vectorcall;
    self->fill_directly = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$O!O!O!OO:ReadySoon", names,
                                     &PyFunction_Type, &self->fallback, &PyType_Type, &self->ready_type,
                                     &PyTuple_Type, &self->slots, &self->thread_waker,
                                     &self->clock)) {
        READY_SOON_OBJECTS(FORGET_MEMBER)
        Py_DECREF(self);
        return NULL;
    }
    if (PyTuple_GET_SIZE(self->slots) != SLOT_COUNT) {
        PyErr_Format(PyExc_ValueError, "ReadySoon needs %d slot descriptors", SLOT_COUNT);
    }
    for (Py_ssize_t i = 0; !PyErr_Occurred() && i < PyTuple_GET_SIZE(self->slots); i++) {
        PyObject *descr = PyTuple_GET_ITEM(self->slots, i);
        int none_if_unset;
        if (Py_TYPE(descr)->tp_descr_set == NULL) {
            PyErr_SetString(PyExc_TypeError, "ReadySoon's slots must be data descriptors");
        }
        self->offsets[i] = slot_offset(descr, 1, &none_if_unset);
    }
    READY_SOON_OBJECTS(KEEP_MEMBER)
    if (PyErr_Occurred()) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static PyObject *
ready_soon_get_fill_directly(ReadySoon *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->fill_directly);
}

static int
ready_soon_set_fill_directly(ReadySoon *self, PyObject *value, void *closure)
{
    (void)closure;
    int truth = value == NULL ? -1 : PyObject_IsTrue(value);
    if (truth < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "cannot delete fill_directly");
        }
        return -1;
    }
    self->fill_directly = truth;
    return 0;
}

static PyGetSetDef ready_soon_getset[] = {
    {"fill_directly", (getter)ready_soon_get_fill_directly, (setter)ready_soon_set_fill_directly,
     "Whether handles are filled here (else the Python hook makes them).", NULL},
    {NULL},
};

static PyTypeObject ReadySoonType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "exectracer.record._speedups.ReadySoon",
    .tp_doc = "BaseEventLoop._call_soon for the recording: queues a stamped handle.",
    .tp_basicsize = sizeof(ReadySoon),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_vectorcall_offset = offsetof(ReadySoon, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_descr_get = bind,
    .tp_getset = ready_soon_getset,
    .tp_new = ready_soon_new,
    .tp_traverse = (traverseproc)ready_soon_traverse,
    .tp_clear = (inquiry)ready_soon_clear,
    .tp_dealloc = (destructor)ready_soon_dealloc,
};

/* --------------------------------------------------------------- TaskCreator */

/* BaseEventLoop.create_task for the recording, as the Python hook does it:
   while the real create_task runs, the hook state's `creating` says which
   coroutine is being made a task, by whom and when; then a new task is given
   its goroutine id and described (TASK_CREATE, TASK_LOOP, TASK_FUNC,
   TASK_NAME, stored in the rows), and an eager first step is recorded by the
   Python side. What is new to the registry (a loop, a function, a name that
   is not asyncio's default "Task-N") is defined by the Python side too. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *fallback;        /* the Python hook: create_task(loop, coro, *args, **kwargs) */
    PyObject *create_task;     /* the real BaseEventLoop.create_task */
    PyObject *tasks;           /* TaskIds: id(task) -> g */
    HookState hook_state;      /* the hooks' thread-local state (``creating``) */
    PyObject *threads;         /* dict: thread ident -> g */
    PyObject *thread_g;        /* thread_g() -> the calling thread's g */
    PyObject *new_g;           /* new_g() -> a fresh goroutine id */
    PyObject *loops;           /* dict: id(loop) -> loop id */
    PyObject *loop_id;         /* loop_id(loop) -> loop id, registering it */
    PyObject *task_funcs;      /* dict: id(code) -> TASK_FUNC code */
    PyObject *task_func;       /* task_func(coro, code) -> TASK_FUNC code, defining it */
    PyObject *name_code;       /* name_code(name) -> TASK_NAME code */
    PyObject *eager_step;      /* eager_step(task, coro, g, ts): records a first step that ran in create_task */
    PyObject *rows;
    PyObject *clock;
    unsigned long long task_create, task_loop, task_name, arg_shift, task_waker, waker_shift;
} TaskCreator;

#define TASK_CREATOR_OBJECTS(X) \
    X(fallback) X(create_task) X(tasks) X(hook_state.local) X(hook_state.dict) X(threads) X(thread_g) X(new_g) \
    X(loops) X(loop_id) X(task_funcs) X(task_func) X(name_code) X(eager_step) X(rows) X(clock)

GC_FUNCTIONS(task_creator, TaskCreator, TASK_CREATOR_OBJECTS)

/* getattr(obj, name, None) without the None: 1 and a new reference in *out,
   0 and NULL if there is no such attribute, -1 on another error */
static int
optional_attr(PyObject *obj, PyObject *name, PyObject **out)
{
    *out = PyObject_GetAttr(obj, name);
    if (*out != NULL) {
        return 1;
    }
    if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
        return -1;
    }
    PyErr_Clear();
    return 0;
}

/* Swap the calling thread's `creating` for `value` (borrowed; NULL for None); a new reference to the old value (or NULL) in *prev */
static int
swap_creating(TaskCreator *self, PyObject *value, PyObject **prev)
{
    PyObject *dict = hook_dict(&self->hook_state);
    if (dict == NULL) {
        return -1;
    }
    PyObject *old = PyDict_GetItemWithError(dict, s_creating);
    if (old == NULL && PyErr_Occurred()) {
        return -1;
    }
    *prev = Py_XNewRef(old);
    return PyDict_SetItem(dict, s_creating, value != NULL ? value : Py_None);
}

/* The TASK_NAME code of a task's name: asyncio's default "Task-N" as -N, as task_name_code does; -1 on error */
static int
name_code_of(TaskCreator *self, PyObject *task, uint64_t *out)
{
    PyObject *name = PyObject_CallMethodNoArgs(task, s_get_name);
    if (name == NULL) {
        return -1;
    }
    Py_ssize_t n = PyUnicode_CheckExact(name) && PyUnicode_IS_ASCII(name) ? PyUnicode_GET_LENGTH(name) : 0;
    const char *text = n ? (const char *)PyUnicode_DATA(name) : NULL;
    int plain = n > 5 && n < 5 + 18 && memcmp(text, "Task-", 5) == 0 && text[5] != '0';
    int64_t number = 0;
    for (Py_ssize_t i = 5; plain && i < n; i++) {
        plain = text[i] >= '0' && text[i] <= '9';
        number = number * 10 + (text[i] - '0');
    }
    if (plain) {
        *out = self->task_name | (uint64_t)(-number) << self->arg_shift;
        Py_DECREF(name);
        return 0;
    }
    PyObject *code = PyObject_CallOneArg(self->name_code, name);
    Py_DECREF(name);
    return consume_u64(code, out);
}

/* The TASK_FUNC code of a coroutine's (or generator's) function, or 0 if it has none; -1 on error */
static int
func_code_of(TaskCreator *self, PyObject *coro, uint64_t *out)
{
    *out = 0;
    PyObject *code = NULL;
    if (optional_attr(coro, s_cr_code, &code) < 0) {
        return -1;
    }
    if (code == NULL || code == Py_None) {
        Py_XDECREF(code);
        if (optional_attr(coro, s_gi_code, &code) < 0) {
            return -1;
        }
    }
    if (code == NULL || code == Py_None) {
        Py_XDECREF(code);
        return 0;
    }
    PyObject *key = PyLong_FromVoidPtr(code);
    PyObject *known = key == NULL ? NULL : PyDict_GetItemWithError(self->task_funcs, key);
    Py_XDECREF(key);
    if (known != NULL) {
        *out = as_u64(known);
    }
    else if (!PyErr_Occurred() && (known = PyObject_CallFunctionObjArgs(self->task_func, coro, code, NULL)) != NULL) {
        *out = as_u64(known);
        Py_DECREF(known);
    }
    Py_DECREF(code);
    return PyErr_Occurred() ? -1 : 0;
}

/* Register a new task as goroutine `*g` and store the events describing it, as Registry.describe_task does; -1 on error */
static int
describe_new_task(TaskCreator *self, PyObject *task, PyObject *coro, uint64_t parent, uint64_t ts, uint64_t *g)
{
    PyObject *value = PyObject_CallNoArgs(self->new_g);
    if (value == NULL) {
        return -1;
    }
    *g = as_u64(value);
    Py_DECREF(value);
    if (PyErr_Occurred() || ptr_map_store(&((TaskIds *)self->tasks)->map, (uintptr_t)task, *g) < 0) {
        return -1;
    }
    uint64_t row[12] = {self->task_create | parent << self->arg_shift, ts, *g};
    int n = 1;
    PyObject *loop = NULL;
    if (optional_attr(task, s_loop, &loop) < 0) {
        return -1;
    }
    uint64_t lid = 0, func = 0, name = 0;
    int failed = loop != NULL && loop != Py_None && id_lookup(self->loops, loop, self->loop_id, &lid) < 0;
    if (!failed && loop != NULL && loop != Py_None) {
        row[3 * n] = self->task_loop | lid << self->arg_shift, row[3 * n + 1] = ts, row[3 * n + 2] = *g;
        n++;
    }
    Py_XDECREF(loop);
    if (failed || func_code_of(self, coro, &func) < 0) {
        return -1;
    }
    if (func) {
        row[3 * n] = func, row[3 * n + 1] = ts, row[3 * n + 2] = *g;
        n++;
    }
    if (name_code_of(self, task, &name) < 0) {
        return -1;
    }
    row[3 * n] = name, row[3 * n + 1] = ts, row[3 * n + 2] = *g;
    n++;
    rows_store((Rows *)self->rows, row, n);
    return 0;
}

/* After the real create_task returned `task`: its id and description if new, and an eager first step; -1 on error */
static int
record_created(TaskCreator *self, PyObject *task, PyObject *coro, uint64_t parent, uint64_t ts)
{
    uint64_t g = 0;
    if (!(ptr_map_lookup(&((TaskIds *)self->tasks)->map, (uintptr_t)task, &g) && g != 0)
        && describe_new_task(self, task, coro, parent, ts, &g) < 0) {
        return -1;
    }
#if PY_VERSION_HEX < 0x030C0000
    return 0;  /* eager tasks came with 3.12 */
#else
    PyObject *done = PyObject_CallMethodNoArgs(task, s_done);
    int eager = done == NULL ? -1 : PyObject_IsTrue(done);
    Py_XDECREF(done);
    if (eager == 0) {
        PyObject *waiter = NULL;
        eager = optional_attr(task, s_fut_waiter, &waiter) < 0 ? -1 : waiter != NULL && waiter != Py_None;
        Py_XDECREF(waiter);
    }
    if (eager != 1) {
        return eager;
    }
    PyObject *recorded = PyObject_CallFunction(self->eager_step, "OOKK", task, coro, (unsigned long long)g, (unsigned long long)ts);
    Py_XDECREF(recorded);
    return recorded == NULL ? -1 : 0;
#endif
}

static PyObject *
task_creator_vectorcall(PyObject *obj, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    TaskCreator *self = (TaskCreator *)obj;
    if (PyVectorcall_NARGS(nargsf) < 2) {
        return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
    }
    PyObject *coro = args[1];
    uint64_t ts = 0, parent = 0;
    PyObject *creating = NULL, *prev = NULL;
    if (now_ns(self->clock, &ts) < 0 || current_goroutine(self->task_waker, self->waker_shift, self->threads, self->thread_g, &parent) < 0
        || (creating = Py_BuildValue("(OKK)", coro, (unsigned long long)parent, (unsigned long long)ts)) == NULL
        || swap_creating(self, creating, &prev) < 0) {
        Py_XDECREF(creating);
        Py_XDECREF(prev);
        PyErr_Clear();
        return PyObject_Vectorcall(self->create_task, args, nargsf, kwnames);
    }
    Py_DECREF(creating);
    PyObject *task = PyObject_Vectorcall(self->create_task, args, nargsf, kwnames);
    SET_ERROR_ASIDE;
    PyObject *ours = NULL;
    if (swap_creating(self, prev, &ours) < 0 || (task != NULL && record_created(self, task, coro, parent, ts) < 0)) {
        PyErr_Clear();  /* the recording's error: the program gets its task */
    }
    Py_XDECREF(ours);
    Py_XDECREF(prev);
    PUT_ERROR_BACK;
    return task;
}

static PyObject *
task_creator_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {
        "fallback", "create_task", "tasks", "local", "threads", "thread_g", "new_g", "loops", "loop_id",
        "task_funcs", "task_func", "name_code", "eager_step", "rows", "clock",
        "task_create", "task_loop", "task_name", "arg_shift", "task_waker", "waker_shift", NULL};
    TaskCreator *self = (TaskCreator *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = task_creator_vectorcall;
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "$O!OO!OO!OOO!OO!OOOO!OKKKKKK:TaskCreator", names,
            &PyFunction_Type, &self->fallback, &self->create_task, &TaskIdsType, &self->tasks, &self->hook_state.local,
            &PyDict_Type, &self->threads, &self->thread_g, &self->new_g, &PyDict_Type, &self->loops, &self->loop_id,
            &PyDict_Type, &self->task_funcs, &self->task_func, &self->name_code, &self->eager_step,
            &RowsType, &self->rows, &self->clock,
            &self->task_create, &self->task_loop, &self->task_name, &self->arg_shift, &self->task_waker, &self->waker_shift)) {
        TASK_CREATOR_OBJECTS(FORGET_MEMBER)
        Py_DECREF(self);
        return NULL;
    }
    TASK_CREATOR_OBJECTS(KEEP_MEMBER)
    return (PyObject *)self;
}

HOOK_TYPE(TaskCreator, task_creator,
          "BaseEventLoop.create_task for the recording: makes the task, then registers and describes it.")

/* -------------------------------------------------------------------- IoReady */

/* BaseSelectorEventLoop._process_events for the recording, as the Python
   hook does it: the ids of the handles the loop's last select made ready go
   to the hook state's ``io`` (StepRunner reads it to tell I/O callbacks from
   others), then asyncio's own runs. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *fallback;        /* the Python hook: process_events(loop, event_list) */
    PyObject *process_events;  /* the real one */
    HookState hook_state;
} IoReady;

#define IO_READY_OBJECTS(X) X(fallback) X(process_events) X(hook_state.local) X(hook_state.dict)

GC_FUNCTIONS(io_ready, IoReady, IO_READY_OBJECTS)

/* Add id(handle) to `io` for each handle of a ready key's data; -1 on error */
static int
note_key(PyObject *io, PyObject *item)
{
    if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2) {
        PyErr_SetString(PyExc_TypeError, "selector events are (key, mask) pairs");
        return -1;
    }
    PyObject *data = PyObject_GetAttr(PyTuple_GET_ITEM(item, 0), s_data);
    if (data == NULL) {
        return -1;
    }
    int status = 0;
    if (PyTuple_CheckExact(data)) {
        for (Py_ssize_t i = 0; status == 0 && i < PyTuple_GET_SIZE(data); i++) {
            PyObject *handle = PyTuple_GET_ITEM(data, i);
            PyObject *id = handle == Py_None ? NULL : PyLong_FromVoidPtr(handle);
            status = handle == Py_None ? 0 : id == NULL ? -1 : PySet_Add(io, id);
            Py_XDECREF(id);
        }
    }
    Py_DECREF(data);
    return status;
}

/* The hook state's io: the handles `events` made ready; -1 on error (io left as it was) */
static int
note_ready(IoReady *self, PyObject *events)
{
    PyObject *seq = PySequence_Fast(events, "selector events are a sequence");
    PyObject *io = seq == NULL ? NULL : PySet_New(NULL);
    int status = io == NULL ? -1 : 0;
    for (Py_ssize_t i = 0; status == 0 && i < PySequence_Fast_GET_SIZE(seq); i++) {
        status = note_key(io, PySequence_Fast_GET_ITEM(seq, i));
    }
    PyObject *dict = status == 0 ? hook_dict(&self->hook_state) : NULL;
    status = dict == NULL ? -1 : PyDict_SetItem(dict, s_io, io);
    Py_XDECREF(io);
    Py_XDECREF(seq);
    return status;
}

static PyObject *
io_ready_vectorcall(PyObject *obj, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    IoReady *self = (IoReady *)obj;
    if (PyVectorcall_NARGS(nargsf) != 2 || kwnames != NULL) {
        return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
    }
    int any = PyObject_IsTrue(args[1]);
    if (any < 0 || (any && note_ready(self, args[1]) < 0)) {
        PyErr_Clear();
    }
    return PyObject_Vectorcall(self->process_events, args, nargsf, kwnames);
}

static PyObject *
io_ready_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"fallback", "process_events", "local", NULL};
    IoReady *self = (IoReady *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = io_ready_vectorcall;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$O!OO:IoReady", names, &PyFunction_Type, &self->fallback,
                                     &self->process_events, &self->hook_state.local)) {
        IO_READY_OBJECTS(FORGET_MEMBER)
        Py_DECREF(self);
        return NULL;
    }
    IO_READY_OBJECTS(KEEP_MEMBER)
    return (PyObject *)self;
}

HOOK_TYPE(IoReady, io_ready,
          "BaseSelectorEventLoop._process_events for the recording: notes which handles I/O made ready.")

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
   by Waits for its recording (set_wait_sink), cleared when it ends. */
#define MAX_STACK 128  /* thread_stacks.MAX_DEPTH */
static struct {
    PyObject *rows;     /* Rows; NULL: no sink, waits go through `record` */
    PyObject *threads;  /* dict: thread ident -> g */
    PyObject *thread_g;
    PyObject *of_key;
    unsigned long long block, unblock, arg_shift, category_shift;
    unsigned long long sync, task_waker, waker_shift;  /* Category.SYNC; how current_waker names a task */
    ChainTable stacks;
} sink;

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
    PyObject *timeout = PyObject_GetAttr(sock, s_timeout);
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
    PyObject *events = PyImport_GetModule(s_asyncio_events);  /* not imported: no loop runs */
    PyObject *loop = events == NULL ? NULL : PyObject_CallMethodNoArgs(events, s_get_running_loop);
    if (loop != NULL && loop != Py_None) {
        PyObject *own = PyObject_GetAttr(loop, s_selector);
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
        waker = as_u64(value);
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
    PyErr_Clear();
    PUT_ERROR_BACK;
}

/* The stack id of the calling thread's stack, from `frame` out (as FrameStacks.of gives it); -1 on error */
static int
wait_stack(PyObject *frame, uint64_t *sid)
{
    uintptr_t parts[2 * MAX_STACK];
    Py_ssize_t n = 0;
    PyFrameObject *f = (PyFrameObject *)Py_XNewRef(frame);
    while (f != NULL && n < 2 * MAX_STACK) {
        PyCodeObject *code = PyFrame_GetCode(f);
        parts[n++] = (uintptr_t)code;  /* alive: the frame holds it */
        Py_DECREF(code);
        long lasti = frame_lasti_of((PyObject *)f);
        if (lasti == -1 && PyErr_Occurred()) {
            Py_DECREF(f);
            return -1;
        }
        parts[n++] = (uintptr_t)lasti;
        Py_SETREF(f, PyFrame_GetBack(f));
    }
    Py_XDECREF(f);
    uint64_t hash = hash_parts(parts, n);
    ChainEntry *known = chain_find(&sink.stacks, parts, n, hash);
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
    PyObject *value = key == NULL ? NULL : PyObject_CallFunctionObjArgs(sink.of_key, key, frame != NULL ? frame : Py_None, NULL);
    Py_XDECREF(key);
    if (value == NULL) {
        return -1;
    }
    *sid = as_u64(value);
    Py_DECREF(value);
    if (PyErr_Occurred()) {
        return -1;
    }
    chain_insert(&sink.stacks, parts, n, hash, *sid);  /* the interner now keeps those code objects */
    return 0;
}

/* The calling thread's goroutine, as Registry.thread_g gives it (0: one of
   the tracer's own threads); -1 on error. The sink must be set. */
static int
caller_thread_g(uint64_t *g)
{
    return thread_goroutine(sink.threads, sink.thread_g, g);
}

/* Record a wait at `frame` as Waits.record does (it is no timed call's inner one); -1 on error */
static int
record_wait_in_c(uint64_t start, uint64_t end, uint64_t category, PyObject *frame, uint64_t waker)
{
    SET_ERROR_ASIDE;
    int status = -1;
    uint64_t sid = 0, g = 0;
    if (caller_thread_g(&g) == 0 && (g == 0 || wait_stack(frame, &sid) == 0)) {
        status = 0;
    }
    if (status == 0 && g != 0) {  /* 0: one of the tracer's own threads */
        uint64_t row[6] = {sink.block | (sid << sink.category_shift | category) << sink.arg_shift, start, g,
                           sink.unblock | waker << sink.arg_shift, end, g};
        rows_store((Rows *)sink.rows, row, 2);
    }
    PyErr_Clear();
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
static uint64_t hook_sample_due = UINT64_MAX;  /* perf_counter ns */
static int hook_sampling;                      /* a hook is taking a sample now */

/* Take the due sample if `now` is past it; 1 if one was taken (the caller's clock reading is stale) */
static int
sample_from_hook(uint64_t now)
{
    if (now < hook_sample_due || hook_sampler == NULL || hook_sampling) {
        return 0;
    }
    hook_sample_due = UINT64_MAX;  /* the sampler sets the next one */
    hook_sampling = 1;
    SET_ERROR_ASIDE;
    PyObject *result = PyObject_CallNoArgs(hook_sampler);
    Py_XDECREF(result);
    PyErr_Clear();
    PUT_ERROR_BACK;
    hook_sampling = 0;
    return 1;
}

static PyObject *
set_hook_sampler(PyObject *module, PyObject *sampler)
{
    (void)module;
    Py_CLEAR(hook_sampler);
    hook_sample_due = UINT64_MAX;
    if (sampler != Py_None) {
        hook_sampler = Py_NewRef(sampler);
    }
    Py_RETURN_NONE;
}

static PyObject *
set_hook_sample_due(PyObject *module, PyObject *due)
{
    (void)module;
    uint64_t value = PyLong_AsUnsignedLongLongMask(due);
    if (PyErr_Occurred()) {
        return NULL;
    }
    hook_sample_due = value;
    Py_RETURN_NONE;
}

static PyObject *
timed_vectorcall(PyObject *obj, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Timed *self = (Timed *)obj;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    uint64_t start = 0, end = 0;
    if (timed_depth > 0 || wait_threshold == UINT64_MAX || (self->socket_method && nargs >= 1 && non_blocking(args[0]))
        || now_ns(self->clock, &start) < 0) {
        PyErr_Clear();
        return PyObject_Vectorcall(self->func, args, nargsf, kwnames);
    }
    if (self->samples && sample_from_hook(start) && now_ns(self->clock, &start) < 0) {
        PyErr_Clear();
        return PyObject_Vectorcall(self->func, args, nargsf, kwnames);
    }
    timed_depth++;
    PyObject *result = PyObject_Vectorcall(self->func, args, nargsf, kwnames);
    timed_depth--;
    if (now_ns(self->clock, &end) == 0 && end - start >= wait_threshold
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

/* A wrapper's own attribute `name`, else the wrapped object's (Timed's function, LockWrapper's lock) */
static PyObject *
own_or_wrapped_attr(PyObject *self, PyObject *name, PyObject *wrapped)
{
    PyObject *found = PyObject_GenericGetAttr(self, name);
    if (found == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        found = PyObject_GetAttr(wrapped, name);
    }
    return found;
}

/* The wrapped function's name, doc and so on, as functools.wraps would copy them */
static PyObject *
timed_getattro(Timed *self, PyObject *name)
{
    if (PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, "__wrapped__") == 0) {  /* no attribute of its own */
        return Py_NewRef(self->func);
    }
    return own_or_wrapped_attr((PyObject *)self, name, self->func);
}

static PyTypeObject TimedType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "exectracer.record._speedups.Timed",
    .tp_doc = "Timed(func, record, clock, socket_method=False, category=-1, samples=False, loop_selector=False, wakers=None)\n--\n\n"
              "`func`, timed: a call that took the wait threshold or more goes to record(start, end, frame, args),\n"
              "or with a category (0 or more) is recorded in C where set_wait_sink has set where.\n"
              "With loop_selector, a call on the running asyncio loop's own selector is not recorded.\n"
              "With wakers (a dict keyed by weak references), the wait's waker is the value for the first argument.",
    .tp_basicsize = sizeof(Timed),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_vectorcall_offset = offsetof(Timed, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_descr_get = bind,
    .tp_getattro = (getattrofunc)timed_getattro,
    .tp_new = timed_new,
    .tp_traverse = (traverseproc)timed_traverse,
    .tp_clear = (inquiry)timed_clear,
    .tp_dealloc = (destructor)timed_dealloc,
};

static void
clear_sink(void)
{
    wait_threshold = UINT64_MAX;
    Py_CLEAR(sink.rows);
    Py_CLEAR(sink.threads);
    Py_CLEAR(sink.thread_g);
    Py_CLEAR(sink.of_key);
    chain_table_free(&sink.stacks);
}

static PyObject *
set_wait_sink(PyObject *module, PyObject *args, PyObject *kwargs)
{
    (void)module;
    static char *names[] = {"threshold", "rows", "threads", "thread_g", "of_key", "block", "unblock", "arg_shift", "category_shift",
                            "sync", "task_waker", "waker_shift", NULL};
    unsigned long long threshold, block, unblock, arg_shift, category_shift, sync, task_waker, waker_shift;
    PyObject *rows, *threads, *thread_g, *of_key;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$KOO!OOKKKKKKK:set_wait_sink", names, &threshold, &rows, &PyDict_Type, &threads,
                                     &thread_g, &of_key, &block, &unblock, &arg_shift, &category_shift, &sync, &task_waker,
                                     &waker_shift)) {
        return NULL;
    }
    if (rows != Py_None && !PyObject_TypeCheck(rows, &RowsType)) {
        PyErr_SetString(PyExc_TypeError, "rows must be a Rows or None");
        return NULL;
    }
    clear_sink();
    sink.rows = rows == Py_None ? NULL : Py_NewRef(rows);
    sink.threads = Py_NewRef(threads);
    sink.thread_g = Py_NewRef(thread_g);
    sink.of_key = Py_NewRef(of_key);
    sink.block = block;
    sink.unblock = unblock;
    sink.arg_shift = arg_shift;
    sink.category_shift = category_shift;
    sink.sync = sync;
    sink.task_waker = task_waker;
    sink.waker_shift = waker_shift;
    wait_threshold = threshold;
    Py_RETURN_NONE;
}

static PyObject *
clear_wait_sink(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    clear_sink();
    Py_RETURN_NONE;
}

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

static PyObject *
record_wait_py(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
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

static PyObject *
in_timed_call(PyObject *module, PyObject *unused)
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

static PyObject *s_acquire, *s_release, *s_locked, *s_make, *s_at_fork_reinit;
static PyObject *perf_clock;  /* time.perf_counter_ns, for now_ns where it reads no clock of its own */

/* The goroutine that runs the caller: the running task's, else the thread's; 0 if unknown */
static uint64_t
caller_g(void)
{
    uint64_t g = 0;
    if (sink.threads != NULL && current_goroutine(sink.task_waker, sink.waker_shift, sink.threads, sink.thread_g, &g) < 0) {
        PyErr_Clear();
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

static PyObject *
lock_contended(LockWrapper *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    uint64_t start = 0, end = 0;
    int timed = now_ns(perf_clock, &start) == 0;
    self->waiters++;
    PyObject *got = call_lock(self, s_acquire, args, nargs, kwnames);
    self->waiters--;
    if (timed && now_ns(perf_clock, &end) == 0 && end - start >= wait_threshold && timed_depth == 0 && sink.rows != NULL) {
        record_wait_in_c(start, end, sink.sync, (PyObject *)PyEval_GetFrame(), self->releaser);
    }
    return got;  /* with the call's own error, if any (the clock and the record keep it aside) */
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
        return call_lock(self, s_acquire, args, nargs, kwnames);
    }
    if (blocking_arg != NULL) {
        int blocking = PyObject_IsTrue(blocking_arg);
        if (blocking < 0) {
            return NULL;
        }
        if (!blocking) {  /* same result and errors as the real lock */
            return call_lock(self, s_acquire, args, nargs, kwnames);
        }
    }
    PyObject *attempt[2] = {self->lock, Py_False};
    PyObject *got = PyObject_VectorcallMethod(s_acquire, attempt, 2, NULL);
    if (got != Py_False) {
        return got;  /* taken, or an error */
    }
    Py_DECREF(got);
    return lock_contended(self, args, nargs, kwnames);
}

static PyObject *
lock_enter(LockWrapper *self, PyObject *unused)
{
    (void)unused;
    return lock_acquire(self, NULL, 0, NULL);
}

static PyObject *
lock_release(LockWrapper *self, PyObject *unused)
{
    (void)unused;
    if (self->waiters > 0) {
        self->releaser = caller_g();
    }
    return PyObject_CallMethodNoArgs(self->lock, s_release);
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
    return PyObject_CallMethodNoArgs(self->lock, s_locked);
}

static PyObject *
lock_at_fork_reinit(LockWrapper *self, PyObject *unused)
{
    (void)unused;
    self->waiters = 0;
    return PyObject_CallMethodNoArgs(self->lock, s_at_fork_reinit);
}

static PyObject *
lock_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *make = PyObject_GetAttr((PyObject *)type, s_make);
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

static PyObject *
lock_getattro(LockWrapper *self, PyObject *name)
{
    return own_or_wrapped_attr((PyObject *)self, name, self->lock);
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

static PyTypeObject LockWrapperType = {
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

/* kept_positions(codes, gs, wanted, of_task, done, live): what
   LiveDescriptions.absorb takes in from a dropped chunk, as the positions of
   its events: those whose kind is marked in `wanted` (a 256-byte table),
   except that an event whose kind is marked in `of_task` is passed over if
   its goroutine has a later event of kind `done` in the chunk (that end
   forgets it), and so is an event of kind `done` whose goroutine is not in
   the set `live` (it has nothing to forget). */
static PyObject *
kept_positions(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *codes_obj, *gs_obj;
    Py_buffer wanted, of_task, codes, gs;
    PyObject *live;
    int done;
    if (!PyArg_ParseTuple(args, "OOy*y*iO!:kept_positions", &codes_obj, &gs_obj, &wanted, &of_task, &done, &PySet_Type, &live)) {
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
        if ((code[i] & 0xFF) == (uint64_t)done && ptr_map_store(&last_done, (uintptr_t)(g[i] + 2), (uint64_t)i) < 0) {
            goto done;
        }
    }
    if ((out = PyList_New(0)) == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned kind = (unsigned)(code[i] & 0xFF);
        uint64_t end;
        if (!want[kind] || (task_kind[kind] && ptr_map_lookup(&last_done, (uintptr_t)(g[i] + 2), &end) && (uint64_t)i < end)) {
            continue;
        }
        if (kind == (unsigned)done) {
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
    ptr_map_free(&last_done);
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

/* ------------------------------------------------------------------ Region */

/* annotations.region's __enter__ and __exit__: the same REGION_BEGIN
   (REGION_TASK) and REGION_END rows as its Python version, stored in the
   running recording's Rows. Recorder sets where (set_annotation_sink) as the
   recording starts and clears it as it stops; without it a region records
   nothing. Like the hooks, a region never raises: what it cannot record, it
   leaves out. */
static struct {
    PyObject *rows;       /* Rows; NULL: no recording with these hooks */
    PyObject *threads;    /* dict: thread ident -> g */
    PyObject *thread_g;   /* Registry.thread_g, for a thread not in it */
    PyObject *strings;    /* the interner's dict: text -> string id */
    PyObject *intern;     /* Interner.string, for a text not in it yet */
    PyObject *user_task;  /* the ContextVar holding the current user task's id */
    unsigned long long begin, task, end, arg_shift, task_waker, waker_shift;
} notes;

typedef struct {
    PyObject_HEAD
    PyObject *name;
    uint64_t g;    /* while entered in a recording: its goroutine (0: nothing to end) */
    uint64_t sid;  /* and the name's string id */
} Region;

#define REGION_OBJECTS(X) X(name)

GC_FUNCTIONS(region, Region, REGION_OBJECTS)

static PyObject *
region_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"name", NULL};
    PyObject *name;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:region", names, &name)) {
        return NULL;
    }
    Region *self = (Region *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->name = Py_NewRef(name);
    }
    return (PyObject *)self;
}

/* The string id of str(name), interned if new; -1 on error */
static int
region_string_id(PyObject *name, uint64_t *sid)
{
    PyObject *text = PyUnicode_CheckExact(name) ? Py_NewRef(name) : PyObject_Str(name);
    if (text == NULL) {
        return -1;
    }
    PyObject *known = PyDict_GetItemWithError(notes.strings, text);
    if (known != NULL) {
        Py_INCREF(known);
    }
    else if (!PyErr_Occurred()) {
        known = PyObject_CallOneArg(notes.intern, text);
    }
    Py_DECREF(text);
    return consume_u64(known, sid);
}

/* The current user task's id (0: none); -1 on error */
static int
region_user_task(uint64_t *id)
{
    PyObject *value = NULL;
    if (PyContextVar_Get(notes.user_task, NULL, &value) < 0) {
        return -1;
    }
    *id = value == NULL ? 0 : as_u64(value);
    Py_XDECREF(value);
    return PyErr_Occurred() ? -1 : 0;
}

static PyObject *
region_enter(Region *self, PyObject *unused)
{
    (void)unused;
    uint64_t ts, g, sid, parent;
    if (notes.rows != NULL && now_ns(perf_clock, &ts) == 0
        && current_goroutine(notes.task_waker, notes.waker_shift, notes.threads, notes.thread_g, &g) == 0
        && region_string_id(self->name, &sid) == 0 && region_user_task(&parent) == 0) {
        uint64_t row[6] = {notes.begin | sid << notes.arg_shift, ts, g, notes.task | parent << notes.arg_shift, ts, g};
        rows_store((Rows *)notes.rows, row, parent ? 2 : 1);
        self->g = g;
        self->sid = sid;
    }
    PyErr_Clear();
    return Py_NewRef(self);
}

static PyObject *
region_exit(Region *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    uint64_t ts;
    if (notes.rows != NULL && self->g != 0 && now_ns(perf_clock, &ts) == 0) {
        uint64_t row[3] = {notes.end | self->sid << notes.arg_shift, ts, self->g};
        rows_store((Rows *)notes.rows, row, 1);
    }
    PyErr_Clear();
    self->g = 0;
    Py_RETURN_NONE;
}

static PyMethodDef region_methods[] = {
    {"__enter__", (PyCFunction)region_enter, METH_NOARGS, "Begin the region (recorded if a recording runs)."},
    {"__exit__", (PyCFunction)(void (*)(void))region_exit, METH_FASTCALL, "End the region."},
    {NULL},
};

static PyMemberDef region_members[] = {
    {"name", T_OBJECT_EX, offsetof(Region, name), 0, "the region's name"},
    {NULL},
};

static PyTypeObject RegionType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "exectracer.record._speedups.Region",
    .tp_doc = "annotations.region's base: its __enter__ and __exit__ in C.",
    .tp_basicsize = sizeof(Region),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = region_new,
    .tp_traverse = (traverseproc)region_traverse,
    .tp_clear = (inquiry)region_clear,
    .tp_dealloc = (destructor)region_dealloc,
    .tp_methods = region_methods,
    .tp_members = region_members,
};

static void
clear_notes(void)
{
    Py_CLEAR(notes.rows);
    Py_CLEAR(notes.threads);
    Py_CLEAR(notes.thread_g);
    Py_CLEAR(notes.strings);
    Py_CLEAR(notes.intern);
    Py_CLEAR(notes.user_task);
}

static PyObject *
set_annotation_sink(PyObject *module, PyObject *args, PyObject *kwargs)
{
    (void)module;
    static char *names[] = {"rows", "threads", "thread_g", "strings", "intern", "user_task", "begin", "task", "end", "arg_shift",
                            "task_waker", "waker_shift", NULL};
    PyObject *rows, *threads, *thread_g, *strings, *intern, *user_task;
    unsigned long long begin, task, end, arg_shift, task_waker, waker_shift;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$O!O!OO!OO!KKKKKK:set_annotation_sink", names, &RowsType, &rows, &PyDict_Type,
                                     &threads, &thread_g, &PyDict_Type, &strings, &intern, &PyContextVar_Type, &user_task, &begin,
                                     &task, &end, &arg_shift, &task_waker, &waker_shift)) {
        return NULL;
    }
    clear_notes();
    notes.rows = Py_NewRef(rows);
    notes.threads = Py_NewRef(threads);
    notes.thread_g = Py_NewRef(thread_g);
    notes.strings = Py_NewRef(strings);
    notes.intern = Py_NewRef(intern);
    notes.user_task = Py_NewRef(user_task);
    notes.begin = begin;
    notes.task = task;
    notes.end = end;
    notes.arg_shift = arg_shift;
    notes.task_waker = task_waker;
    notes.waker_shift = waker_shift;
    Py_RETURN_NONE;
}

static PyObject *
clear_annotation_sink(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    clear_notes();
    Py_RETURN_NONE;
}

/* --------------------------------------------------------------- /proc reads */

#ifndef _WIN32
#include <errno.h>
#include <unistd.h>

/* The start of a file by fd (the sampler's /proc files), read with the GIL
   held on purpose: the read takes microseconds, and a thread that let go of
   the GIL while others run Python would wait a switch interval or more to
   get it back. */
static PyObject *
pread_start(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
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
static int
find_loaded_zlib(void)
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
compress_whole(PyObject *module, PyObject *args)
{
    (void)module;
    Py_buffer data;
    int level;
    if (!PyArg_ParseTuple(args, "y*i:compress_whole", &data, &level)) {
        return NULL;
    }
    unsigned long size = z_compress_bound((unsigned long)data.len);
    PyObject *out = (uint64_t)data.len > (uint64_t)ULONG_MAX || size > PY_SSIZE_T_MAX ? NULL
                    : PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
    if (out == NULL) {
        PyBuffer_Release(&data);
        return PyErr_Occurred() ? NULL : PyErr_NoMemory();
    }
    int err;
    Py_BEGIN_ALLOW_THREADS  /* `out` is ours alone, `data` is held by the buffer */
    err = z_compress2((unsigned char *)PyBytes_AS_STRING(out), &size, data.buf, (unsigned long)data.len, level);
    Py_END_ALLOW_THREADS
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

static PyMethodDef compress_whole_def = {
    "compress_whole", compress_whole, METH_VARARGS,
    "compress_whole(data, level): zlib.compress(data, level), letting go of the GIL once for the whole call."};
#endif

/* -------------------------------------------------------------------- module */

static PyObject *
clock_ns(PyObject *module, PyObject *clock)
{
    (void)module;
    uint64_t now;
    if (now_ns(clock, &now) < 0) {
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(now);
}

static PyMethodDef methods[] = {
    {"set_wait_sink", (PyCFunction)(void (*)(void))set_wait_sink, METH_VARARGS | METH_KEYWORDS,
     "Record the waits Timed wrappers see that last `threshold` ns or more, there (Waits sets it for its recording)."},
    {"clear_wait_sink", clear_wait_sink, METH_NOARGS, "No recording records waits any more."},
    {"in_timed_call", in_timed_call, METH_NOARGS, "Whether the calling thread is inside a Timed call."},
#if PY_VERSION_HEX < 0x030B0000
    {"first_local", (PyCFunction)first_local, METH_O, "first_local(frame): a live frame's first local variable, without f_locals (3.10)."},
#endif
    {"call_without_collections", call_without_collections, METH_O,
     "call_without_collections(func): func() with the collector held off, unseen by other threads (func must run no Python code)."},
    {"record_wait", (PyCFunction)(void (*)(void))record_wait_py, METH_FASTCALL,
     "record_wait(start, end, category, frame, waker): record a thread's wait where set_wait_sink says; False if it cannot."},
    {"current_waker", get_current_waker, METH_O, "The calling thread's HookState.cur (the getter of a property: takes the state)."},
    {"set_current_waker", (PyCFunction)(void (*)(void))set_current_waker, METH_FASTCALL,
     "Set the calling thread's HookState.cur (the setter of a property: takes the state and the value)."},
#ifndef _WIN32
    {"pread_start", (PyCFunction)(void (*)(void))pread_start, METH_FASTCALL,
     "pread_start(fd): the first 256 bytes of the file at fd (from offset 0), read holding the GIL."},
#endif
    {"kept_positions", kept_positions, METH_VARARGS,
     "kept_positions(codes, gs, wanted, of_task, done, live): the positions of the events LiveDescriptions.absorb takes in."},
    {"set_hook_sampler", set_hook_sampler, METH_O,
     "set_hook_sampler(func): Timed calls call func() once the due sample is (None: never)."},
    {"set_hook_sample_due", set_hook_sample_due, METH_O, "set_hook_sample_due(ns): when the next sample is due (perf_counter ns)."},
    {"set_annotation_sink", (PyCFunction)(void (*)(void))set_annotation_sink, METH_VARARGS | METH_KEYWORDS,
     "Store the regions' events in `rows` (Recorder sets it as its recording starts)."},
    {"clear_annotation_sink", clear_annotation_sink, METH_NOARGS, "Regions record nothing any more."},
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
    INTERN(s_dict, "__dict__")
    INTERN(s_io, "io") INTERN(s_done, "done") INTERN(s_timeout, "timeout") INTERN(s_debug, "_debug") INTERN(s_ready, "_ready")
    INTERN(s_append, "append") INTERN(s_due, "due")
    INTERN(s_cancelled, "cancelled") INTERN(s_exception, "_exception") INTERN(s_data, "data") INTERN(s_qualname, "__qualname__") INTERN(s_creating, "creating") INTERN(s_loop, "_loop") INTERN(s_cr_code, "cr_code") INTERN(s_gi_code, "gi_code")
    INTERN(s_get_name, "get_name") INTERN(s_fut_waiter, "_fut_waiter")
    INTERN(s_acquire, "acquire") INTERN(s_release, "release") INTERN(s_locked, "locked") INTERN(s_make, "_make")
    INTERN(s_at_fork_reinit, "_at_fork_reinit")
    INTERN(s_asyncio_events, "asyncio.events") INTERN(s_get_running_loop, "_get_running_loop") INTERN(s_selector, "_selector")
#undef INTERN
    return 0;
}

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (intern_names() < 0 || PyType_Ready(&RowsType) < 0 || PyType_Ready(&WatchType) < 0 || PyType_Ready(&TaskIdsType) < 0 || PyType_Ready(&StepRunnerType) < 0
        || PyType_Ready(&ReadySoonType) < 0 || PyType_Ready(&TaskCreatorType) < 0 || PyType_Ready(&IoReadyType) < 0
        || PyType_Ready(&TimedType) < 0 || PyType_Ready(&LockWrapperType) < 0 || PyType_Ready(&RegionType) < 0) {
        return NULL;
    }
    PyObject *time_module = PyImport_ImportModule("time");
    if (time_module == NULL || (perf_clock = PyObject_GetAttrString(time_module, "perf_counter_ns")) == NULL) {
        Py_XDECREF(time_module);
        return NULL;
    }
    Py_DECREF(time_module);
    PyObject *collections = PyImport_ImportModule("collections");
    if (collections == NULL) {
        return NULL;
    }
    deque_type = (PyTypeObject *)PyObject_GetAttrString(collections, "deque");
    Py_DECREF(collections);
    if (deque_type == NULL || (deque_append = PyObject_GetAttrString((PyObject *)deque_type, "append")) == NULL) {
        return NULL;
    }
    if (fast_attr_init(&coro_code, (PyObject *)&PyCoro_Type, "cr_code") < 0
        || fast_attr_init(&coro_frame, (PyObject *)&PyCoro_Type, "cr_frame") < 0
        || fast_attr_init(&coro_await, (PyObject *)&PyCoro_Type, "cr_await") < 0
        || fast_attr_init(&gen_frame, (PyObject *)&PyGen_Type, "gi_frame") < 0
        || fast_attr_init(&gen_yieldfrom, (PyObject *)&PyGen_Type, "gi_yieldfrom") < 0
        || fast_attr_init(&frame_code, (PyObject *)&PyFrame_Type, "f_code") < 0
        || fast_attr_init(&frame_lasti, (PyObject *)&PyFrame_Type, "f_lasti") < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "Rows", (PyObject *)&RowsType) < 0
        || PyModule_AddObjectRef(m, "Watch", (PyObject *)&WatchType) < 0
        || PyModule_AddObjectRef(m, "TaskIds", (PyObject *)&TaskIdsType) < 0
        || PyModule_AddObjectRef(m, "StepRunner", (PyObject *)&StepRunnerType) < 0
        || PyModule_AddObjectRef(m, "ReadySoon", (PyObject *)&ReadySoonType) < 0
        || PyModule_AddObjectRef(m, "TaskCreator", (PyObject *)&TaskCreatorType) < 0
        || PyModule_AddObjectRef(m, "IoReady", (PyObject *)&IoReadyType) < 0
        || PyModule_AddObjectRef(m, "Timed", (PyObject *)&TimedType) < 0
        || PyModule_AddObjectRef(m, "LockWrapper", (PyObject *)&LockWrapperType) < 0
        || PyModule_AddObjectRef(m, "Region", (PyObject *)&RegionType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#ifndef _WIN32
    if (find_loaded_zlib()) {
        PyObject *func = PyCFunction_NewEx(&compress_whole_def, NULL, NULL);
        if (func == NULL || PyModule_AddObject(m, "compress_whole", func) < 0) {
            Py_XDECREF(func);
            Py_DECREF(m);
            return NULL;
        }
    }
#endif
    return m;
}
