/* What the C files of exectracer.record._speedups share: the types, inline
   helpers, macros and declarations used by more than one file. Everything
   declared here is named xt_... (and hidden from other shared objects: the
   module exports PyInit__speedups alone); what one file keeps to itself
   stays static there.

   The hottest hooks in C: asyncio's Handle._run, BaseEventLoop._call_soon
   and create_task, the selector loop's _process_events, thread waits.

   Each mirrors the pure-Python hook in asyncio_hooks.py, which stays the
   reference (and runs where this module is not built, or when
   EXECTRACER_PURE_PYTHON is set); test_native_hooks checks that both record
   the same events, and test_native_rules compares the rules both write
   (await chain keys, task name codes, callback names, wait stacks,
   kept_positions) on generated inputs.

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
   - UvSoon replaces uvloop.Loop's call_soon, call_soon_threadsafe,
     call_later and call_at: the callback is handed to uvloop as a stamped
     handle (made by a ReadySoon) that a StepRunner runs.
   - Timed (StaticTimed where the function it times is a builtin) and
     LockWrapper: thread waits (see their sections), and kept_positions: the
     events a flight recorder's dropped chunk still describes.

   StepRunner, ReadySoon, TaskCreator and IoReady are method descriptors:
   `handle._run()` calls them with the handle first, with no bound method
   made. They and Timed pass for the original they replaced (its names,
   doc, repr, type for isinstance, pickling: STAND_IN_FUNCTIONS). Errors in the recording are cleared, never raised into the
   program: an event that cannot be recorded is lost, the callback still
   runs. Only public C API is used (some of it outside the limited API:
   member descriptors, frames).

   The files, in the order to read them:
   - speedups.h      this header
   - events.h        the event numbers, generated from format/events.py
                     (tools/gen_events_header.py; do not edit)
   - module.c        the module: its functions and types as Python sees them,
                     the names it interns, its init
   - shared.c        what the hooks share: attribute fast paths (FastAttr),
                     the hooks' thread-local state, the current goroutine,
                     counting the errors they catch, passing for an original
   - rows.c          Sleeper, Rows (the event columns) and Watch
   - tables.c        PtrMap (address -> value), TaskIds, the chain table
   - step_runner.c   StepRunner: task steps, suspensions, callbacks
   - scheduling.c    ReadySoon, TaskCreator, IoReady
   - uvloop_soon.c   UvSoon (uvloop's scheduling methods)
   - thread_waits.c  Timed, the wait sink, the hooks' samples, LockWrapper
   - regions.c       Region and its sink
   - flight.c        kept_positions (a flight recorder's dropped chunks)
   - platform.c      /proc reads, zlib's compress2 found at run time (events as
                     byte planes: ../../format/csrc/planes.c, built in too)
   - termination.c   SIGTERM under `exectracer run`: finish the trace, then die of it */

#ifndef EXECTRACER_SPEEDUPS_H
#define EXECTRACER_SPEEDUPS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>   /* PyFrame_Type (3.10) */
#include <structmember.h>  /* T_OBJECT, T_OBJECT_EX, READONLY */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "events.h"  /* XT_KIND_..., XT_WAKER_..., XT_ARG_SHIFT, ...: format/events.py's numbers */

/* A symbol shared by the module's files, not exported from it */
#if defined(__GNUC__) || defined(__clang__)
#define XT_INTERNAL __attribute__((visibility("hidden")))
#else
#define XT_INTERNAL
#endif

/* Keep the exception being raised aside while other code runs */
#if PY_VERSION_HEX >= 0x030C0000
#define SET_ERROR_ASIDE PyObject *aside = PyErr_GetRaisedException()
#define PUT_ERROR_BACK PyErr_SetRaisedException(aside)
#else
#define SET_ERROR_ASIDE PyObject *aside_type, *aside_value, *aside_tb; PyErr_Fetch(&aside_type, &aside_value, &aside_tb)
#define PUT_ERROR_BACK PyErr_Restore(aside_type, aside_value, aside_tb)
#endif

/* XT_SUSPENDED_LASTI_311(coro, &offset): on 3.11, true with the byte offset of a suspended coroutine's last
   instruction read from its interpreter frame, as PyFrame_GetLasti gives it, without making the frame object
   that `cr_frame` makes (and audits) on each call; false if the coroutine is not suspended, and on other
   versions. The struct is the leading fields of 3.11's _PyInterpreterFrame (Include/internal/pycore_frame.h);
   test_native_hooks compares the lines recorded from it with the Python hooks', which read f_lasti. */
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
typedef struct {
    PyObject *f_func, *f_globals, *f_builtins, *f_locals;
    PyCodeObject *f_code;
    PyObject *frame_obj;
    void *previous;
    _Py_CODEUNIT *prev_instr;
} XtInterpreterFrame311;
#define XT_FRAME_SUSPENDED_311 (-1)  /* FRAME_SUSPENDED */
static inline int
xt_suspended_lasti_311(PyObject *coro, long *offset)
{
    PyCoroObject *c = (PyCoroObject *)coro;
    if (c->cr_frame_state != XT_FRAME_SUSPENDED_311) {
        return 0;
    }
    const XtInterpreterFrame311 *frame = (const XtInterpreterFrame311 *)c->cr_iframe;
    *offset = (long)(frame->prev_instr - (_Py_CODEUNIT *)frame->f_code->co_code_adaptive) * (long)sizeof(_Py_CODEUNIT);
    return 1;
}
#define XT_SUSPENDED_LASTI_311(coro, offset) xt_suspended_lasti_311((coro), (offset))
#else
#define XT_SUSPENDED_LASTI_311(coro, offset) 0
#endif

/* ------------------------------------------------- module.c: interned names */

XT_INTERNAL extern PyObject *xt_s_asyncio_events, *xt_s_get_running_loop, *xt_s_selector;
XT_INTERNAL extern PyObject *xt_s_io, *xt_s_done, *xt_s_timeout, *xt_s_dict, *xt_s_debug, *xt_s_ready, *xt_s_append, *xt_s_due;
XT_INTERNAL extern PyObject *xt_s_cancelled, *xt_s_exception, *xt_s_data, *xt_s_qualname, *xt_s_creating, *xt_s_loop, *xt_s_cr_code,
    *xt_s_gi_code, *xt_s_get_name, *xt_s_fut_waiter;
XT_INTERNAL extern PyObject *xt_s_acquire, *xt_s_enter, *xt_s_release, *xt_s_locked, *xt_s_make, *xt_s_at_fork_reinit;
XT_INTERNAL extern PyTypeObject *xt_deque_type;  /* collections.deque, a loop's _ready */
XT_INTERNAL extern PyObject *xt_deque_append;    /* its append method descriptor */
XT_INTERNAL extern PyObject *xt_perf_clock;      /* time.perf_counter_ns, for xt_now_ns where it reads no clock of its own */

/* time.perf_counter_ns() read without the GIL: 0 where that clock cannot be read so (then the time is unknown) */
static inline uint64_t
xt_now_ns_nogil(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyTime_t t;
    return PyTime_PerfCounterRaw(&t) < 0 ? 0 : (uint64_t)t;
#elif defined(__linux__)
    struct timespec ts; /* perf_counter is CLOCK_MONOTONIC on Linux (3.10 to 3.12) */
    return clock_gettime(CLOCK_MONOTONIC, &ts) < 0 ? 0 : (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#else
    return 0;
#endif
}

/* time.perf_counter_ns(), without a call into Python where the clock is known */
static inline int
xt_now_ns(PyObject *clock, uint64_t *out)
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

static inline uint64_t
xt_as_u64(PyObject *value)
{
    return PyLong_AsUnsignedLongLongMask(value);
}

/* `value` (a new reference, or NULL after an error) as an unsigned 64-bit
   integer at `out`, the reference given up; -1 on error */
static inline int
xt_consume_u64(PyObject *value, uint64_t *out)
{
    if (value == NULL) {
        return -1;
    }
    *out = xt_as_u64(value);
    Py_DECREF(value);
    return PyErr_Occurred() ? -1 : 0;
}

/* ------------------------------------------------------------------ rows.c */

typedef struct Rows Rows;  /* a recording's event columns (rows.c) */

XT_INTERNAL extern PyTypeObject xt_RowsType, xt_WatchType;

/* Store `n` events (code, ts, g) from `values`; never raises (see rows.c) */
XT_INTERNAL void xt_rows_store(Rows *self, const uint64_t *values, int n);

/* ---------------------------------------------------------------- tables.c */

/* A map from object addresses to 64-bit values, by open addressing: the
   registry's task ids (TaskIds below) and the await chains' code flags. */
typedef struct {
    uintptr_t *keys;   /* 0: empty; TOMBSTONE: removed */
    uint64_t *values;
    Py_ssize_t capacity, used, filled;  /* used: live keys; filled: live keys and tombstones */
} PtrMap;

#define TOMBSTONE ((uintptr_t)1)  /* no object lives at address 1 */

XT_INTERNAL int xt_ptr_map_lookup(PtrMap *map, uintptr_t key, uint64_t *value);
XT_INTERNAL int xt_ptr_map_store(PtrMap *map, uintptr_t key, uint64_t value);  /* -1 (MemoryError set) if the map cannot grow */
XT_INTERNAL int xt_ptr_map_remove(PtrMap *map, uintptr_t key, uint64_t *value);
XT_INTERNAL void xt_ptr_map_free(PtrMap *map);

/* The registry's map from id(task) to goroutine id, as a dict-like object
   the C hooks read by address, with no int made: get, pop, [], in, len. */
typedef struct {
    PyObject_HEAD
    PtrMap map;
} TaskIds;

XT_INTERNAL extern PyTypeObject xt_TaskIdsType;

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

static inline uint64_t
xt_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static inline uint64_t
xt_hash_parts(const uintptr_t *parts, Py_ssize_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)n;
    for (Py_ssize_t i = 0; i < n; i++) {
        h = xt_mix(h ^ (uint64_t)parts[i]) + (uint64_t)i;
    }
    return h;
}

static inline ChainEntry *
xt_chain_find(ChainTable *table, const uintptr_t *parts, Py_ssize_t n, uint64_t hash)
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

/* Remember a chain's code (not if memory runs short) */
XT_INTERNAL void xt_chain_insert(ChainTable *table, const uintptr_t *parts, Py_ssize_t n, uint64_t hash, uint64_t code);
XT_INTERNAL void xt_chain_table_free(ChainTable *table);

/* ---------------------------------------------------------------- shared.c */

/* The calling thread's goroutine, as Registry.thread_g gives it; -1 on error */
XT_INTERNAL int xt_thread_goroutine(PyObject *threads, PyObject *thread_g, uint64_t *g);

/* dict[id(obj)] as uint64, or (if missing or 0) make(obj); -1 on error */
XT_INTERNAL int xt_id_lookup(PyObject *dict, PyObject *obj, PyObject *make, uint64_t *out);

/* The goroutine the caller runs in, as Registry.current_g gives it; -1 on error */
XT_INTERNAL int xt_current_goroutine(PyObject *threads, PyObject *thread_g, uint64_t *g);

/* A hook failed: count the exception being raised, if any, under the hook's
   name (hook_errors.caught, as the Python hooks do) and clear it */
XT_INTERNAL void xt_hook_error(const char *where);

/* The offset of the object slot `descr` reads (and, if `writable`, writes), or -1 */
XT_INTERNAL Py_ssize_t xt_slot_offset(PyObject *descr, int writable, int *none_if_unset);

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

XT_INTERNAL int xt_fast_attr_init(FastAttr *attr, PyObject *owner, const char *name);
XT_INTERNAL void xt_fast_attr_clear(FastAttr *attr);

static inline PyObject *
xt_fast_get(FastAttr *attr, PyObject *obj)
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

/* Coroutines', generators' and frames' attributes (set up by module.c) */
XT_INTERNAL extern FastAttr xt_coro_code, xt_coro_frame, xt_coro_await, xt_gen_frame, xt_gen_yieldfrom, xt_frame_code, xt_frame_lasti;

/* f_lasti of a frame; -1 with an error set on failure */
XT_INTERNAL long xt_frame_lasti_of(PyObject *frame);

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
XT_INTERNAL PyObject *xt_hook_dict(HookState *state);

/* A thread-local of the module's own, reached as a static one would be
   (local-dynamic: defined in this module, wherever it is used) */
#if defined(_MSC_VER)
#define XT_THREAD_LOCAL __declspec(thread)
#elif defined(__GNUC__) || defined(__clang__)
#define XT_THREAD_LOCAL _Thread_local __attribute__((tls_model("local-dynamic")))
#else
#define XT_THREAD_LOCAL _Thread_local
#endif

/* HookState.cur while the C hooks run (see shared.c) */
XT_INTERNAL extern XT_THREAD_LOCAL unsigned long long xt_current_waker;

/* Method descriptor plumbing shared by the hook types: bound like a function */
XT_INTERNAL PyObject *xt_bind(PyObject *self, PyObject *obj, PyObject *type);

/* A hook passing for the original it replaced (`wrapped`, NULL if not known): see shared.c */
XT_INTERNAL PyObject *xt_stand_in_getattr(PyObject *self, PyObject *name, PyObject *wrapped);
XT_INTERNAL PyObject *xt_stand_in_repr(PyObject *self, PyObject *wrapped);
XT_INTERNAL PyObject *xt_stand_in_reduce(PyObject *self, PyObject *wrapped, PyObject *protocol);

/* The getattro, repr, methods (__reduce_ex__, __reduce__) and members (__wrapped__, the original: `member`,
   with `flags` 0 where Patcher sets it, READONLY where the constructor does) of a hook type that passes for
   the original it replaced */
#define STAND_IN_FUNCTIONS(prefix, Type, member, flags)                                                    \
    static PyObject *prefix##_getattro(PyObject *self, PyObject *name)                                     \
    {                                                                                                      \
        return xt_stand_in_getattr(self, name, ((Type *)self)->member);                                    \
    }                                                                                                      \
    static PyObject *prefix##_repr(PyObject *self)                                                         \
    {                                                                                                      \
        return xt_stand_in_repr(self, ((Type *)self)->member);                                             \
    }                                                                                                      \
    static PyObject *prefix##_reduce_ex(PyObject *self, PyObject *protocol)                                \
    {                                                                                                      \
        return xt_stand_in_reduce(self, ((Type *)self)->member, protocol);                                 \
    }                                                                                                      \
    static PyObject *prefix##_reduce(PyObject *self, PyObject *unused)                                     \
    {                                                                                                      \
        (void)unused;                                                                                      \
        return xt_stand_in_reduce(self, ((Type *)self)->member, NULL);                                     \
    }                                                                                                      \
    static PyMethodDef prefix##_methods[] = {                                                              \
        {"__reduce_ex__", (PyCFunction)prefix##_reduce_ex, METH_O, "Pickled as the original it replaced."}, \
        {"__reduce__", (PyCFunction)prefix##_reduce, METH_NOARGS, "Pickled as the original it replaced."},  \
        {NULL},                                                                                            \
    };                                                                                                     \
    static PyMemberDef prefix##_members[] = {                                                              \
        {"__wrapped__", T_OBJECT_EX, offsetof(Type, member), flags, "The original this hook replaced."},   \
        {NULL},                                                                                            \
    };

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

/* The type object xt_<Name>Type of a hook type: a method descriptor with
   vectorcall, its object members collected (GC_FUNCTIONS), passing for the
   original it replaced (STAND_IN_FUNCTIONS, with its `wrapped`) */
#define HOOK_TYPE(Name, prefix, doc)                                          \
    STAND_IN_FUNCTIONS(prefix, Name, wrapped, 0)                              \
    PyTypeObject xt_##Name##Type = {                                          \
        PyVarObject_HEAD_INIT(NULL, 0)                                        \
        .tp_name = "exectracer.record._speedups." #Name,                      \
        .tp_doc = doc,                                                        \
        .tp_basicsize = sizeof(Name),                                         \
        .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_METHOD_DESCRIPTOR, \
        .tp_vectorcall_offset = offsetof(Name, vectorcall),                   \
        .tp_call = PyVectorcall_Call,                                         \
        .tp_descr_get = xt_bind,                                              \
        .tp_getattro = prefix##_getattro,                                     \
        .tp_repr = prefix##_repr,                                             \
        .tp_methods = prefix##_methods,                                       \
        .tp_members = prefix##_members,                                       \
        .tp_new = prefix##_new,                                               \
        .tp_traverse = (traverseproc)prefix##_traverse,                       \
        .tp_clear = (inquiry)prefix##_clear,                                  \
        .tp_dealloc = (destructor)prefix##_dealloc,                           \
    };

/* ------------------------------------------ the types and functions module.c lists */

XT_INTERNAL extern PyTypeObject xt_StepRunnerType;                                  /* step_runner.c */
XT_INTERNAL extern PyTypeObject xt_ReadySoonType, xt_TaskCreatorType, xt_IoReadyType;  /* scheduling.c */
XT_INTERNAL extern PyTypeObject xt_TimedType, xt_StaticTimedType, xt_LockWrapperType;  /* thread_waits.c */
XT_INTERNAL extern PyTypeObject xt_RegionType;                                      /* regions.c */
XT_INTERNAL extern PyTypeObject xt_UvSoonType, xt_UvCallType;                      /* uvloop_soon.c */

/* A callback queued on a loop that keeps its own queue and enters the callback's context itself (uvloop's), as
   UvCall (uvloop_soon.c) holds it, stamped with when and by whom it was queued */
typedef struct {
    PyObject *callback;
    PyObject *args;    /* a tuple, or NULL: none */
    PyObject *loop;
    uint64_t queued;   /* when it was queued (perf_counter_ns) */
    uint64_t waker;    /* the waker code of what queued it */
    int timer;         /* a timer's callback (call_later, call_at) */
} QueuedCall;

/* step_runner.c: run `call` as `runner` (a StepRunner made with context_entered) runs a stamped handle, and record
   it the same way; an exception of the callback is raised once recorded (the loop reports it, as untraced) */
XT_INTERNAL PyObject *xt_run_queued(PyObject *runner, QueuedCall *call);

/* shared.c */
XT_INTERNAL PyObject *xt_get_current_waker(PyObject *module, PyObject *state);
XT_INTERNAL PyObject *xt_set_current_waker(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
/* thread_waits.c */
XT_INTERNAL PyObject *xt_set_wait_sink(PyObject *module, PyObject *args, PyObject *kwargs);
XT_INTERNAL PyObject *xt_clear_wait_sink(PyObject *module, PyObject *unused);
XT_INTERNAL PyObject *xt_record_wait_py(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
XT_INTERNAL PyObject *xt_in_timed_call(PyObject *module, PyObject *unused);
XT_INTERNAL PyObject *xt_set_hook_sampler(PyObject *module, PyObject *sampler);
/* The sampler's next due time (perf_counter ns; UINT64_MAX: none), and taking that sample on the calling thread, which
   holds the GIL between a loop's steps: a busy event loop takes its samples itself, without handing the GIL over */
XT_INTERNAL extern uint64_t xt_hook_sample_due;
XT_INTERNAL void xt_sample_between_steps(void);
XT_INTERNAL PyObject *xt_set_hook_sample_due(PyObject *module, PyObject *due);
/* regions.c */
XT_INTERNAL PyObject *xt_set_annotation_sink(PyObject *module, PyObject *args, PyObject *kwargs);
XT_INTERNAL PyObject *xt_clear_annotation_sink(PyObject *module, PyObject *unused);
/* flight.c */
XT_INTERNAL PyObject *xt_kept_positions(PyObject *module, PyObject *args);
/* platform.c */
#ifndef _WIN32
XT_INTERNAL PyObject *xt_pread_start(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
XT_INTERNAL int xt_find_loaded_zlib(void);  /* 1 if compress_whole can be defined */
XT_INTERNAL extern PyMethodDef xt_compress_whole_def;
#endif
/* termination.c */
#ifndef _WIN32
XT_INTERNAL PyObject *xt_term_notify(PyObject *module, PyObject *fd);
XT_INTERNAL PyObject *xt_term_release(PyObject *module, PyObject *unused);
XT_INTERNAL PyObject *xt_signal_restarts(PyObject *module, PyObject *signum);
#endif

#endif /* EXECTRACER_SPEEDUPS_H */
