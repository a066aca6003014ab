/* The event store and the tracer threads' sleeps: Rows, a recording's
   events as three uint64 columns (the C hooks store there with
   xt_rows_store, the Python hooks through `extend`, the writer takes them);
   Watch, what the sampler's thread sleeps on while a busy loop takes its
   ticks; and Sleeper, the sleep without the GIL both are made of. */

#include "speedups.h"

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
struct Rows {
    PyObject_HEAD
    uint64_t *columns[3];
    Py_ssize_t length, capacity;
    unsigned long long lost;  /* events not stored for want of memory, since the last take */
    Py_ssize_t wake_at;       /* the count the thread in `wait` waits for */
    Sleeper ready;            /* the writer's thread in `wait` */
    PyObject *handoff;        /* the recording's GilHandoff, told when that thread wants the GIL (NULL: none) */
    Py_ssize_t ask_again_at;  /* woken by the count, not there yet: the count at which to tell the handoff again (0: none) */
};

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
    if (now == NULL || PyObject_SetAttr(self->handoff, xt_s_due, now) < 0) {
        xt_hook_error("store.handoff");
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
void
xt_rows_store(Rows *self, const uint64_t *values, int n)
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

PyTypeObject xt_RowsType = {
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
    unsigned long long woke_ns;   /* when the last `wait` ended in the OS, before taking the GIL back (0: unknown) */
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
        self->woke_ns = xt_now_ns_nogil();
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
    self->woke_ns = xt_now_ns_nogil();
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

static PyMemberDef watch_members[] = {
    {"woke_ns", T_ULONGLONG, offsetof(Watch, woke_ns), READONLY,
     "When the last `wait` ended in the OS (perf_counter_ns), before the GIL was taken back; 0 if unknown."},
    {NULL},
};

PyTypeObject xt_WatchType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "exectracer.record._speedups.Watch",
    .tp_doc = "Watch()\n--\n\nA sleep without the GIL that ends when woken, at a timeout, or when the marks stop.",
    .tp_basicsize = sizeof(Watch),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = watch_new,
    .tp_dealloc = (destructor)watch_dealloc,
    .tp_methods = watch_methods,
    .tp_members = watch_members,
};
