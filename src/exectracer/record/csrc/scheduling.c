/* The loop's hooks that see work being scheduled: ReadySoon replaces
   BaseEventLoop._call_soon (a handle filled as Handle.__init__ does and
   stamped with when and by whom it was queued), TaskCreator replaces
   BaseEventLoop.create_task (a new task registered and described), IoReady
   replaces BaseSelectorEventLoop._process_events (which handles I/O made
   ready). Their Python references are call_soon, create_task and
   process_events in asyncio_hooks.py. */

#include "speedups.h"

/* ----------------------------------------------------------------- ReadySoon */

enum { SLOT_CONTEXT, SLOT_LOOP, SLOT_CALLBACK, SLOT_ARGS, SLOT_CANCELLED, SLOT_REPR,
       SLOT_SOURCE_TRACEBACK, SLOT_XT_TS, SLOT_XT_WAKER, SLOT_COUNT };

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *fallback;        /* the Python hook: call_soon(loop, callback, args, context) */
    PyObject *wrapped;         /* the method it replaced (Patcher sets it through __wrapped__); NULL: not yet */
    PyObject *ready_type;      /* _ReadyHandle */
    PyObject *slots;           /* tuple of the slot descriptors set below, in SLOT_* order */
    Py_ssize_t offsets[SLOT_COUNT];     /* each slot's offset, or -1: set through its descriptor */
    PyObject *thread_waker;    /* thread_waker() -> waker code of the calling thread */
    PyObject *clock;
    int fill_directly;
} ReadySoon;


#define READY_SOON_OBJECTS(X) X(fallback) X(ready_type) X(slots) X(thread_waker) X(clock) X(wrapped)

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

/* A _ReadyHandle as Handle(callback, args, loop, context) makes it in non-debug mode, stamped with the running
   step's or callback's waker, else the calling thread's */
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
        && xt_now_ns(self->clock, &now) == 0
        && (ts = PyLong_FromUnsignedLongLong(now)) != NULL
        && set_slot(self, handle, SLOT_XT_TS, ts) == 0
        && (waker = xt_current_waker ? PyLong_FromUnsignedLongLong(xt_current_waker)
                    : PyObject_CallNoArgs(self->thread_waker)) != NULL;
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
    PyObject *debug = PyObject_GetAttr(loop, xt_s_debug);
    if (debug != Py_False) {
        Py_XDECREF(debug);
        PyErr_Clear();
        return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
    }
    Py_DECREF(debug);
    PyObject *handle = new_ready_handle(self, loop, args[1], args[2], args[3]);
    if (handle == NULL) {
        PyErr_Clear();  /* the Python hook takes over (and counts its own failure) */
        return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
    }
    PyObject *ready = PyObject_GetAttr(loop, xt_s_ready);
    int status = -1;
    if (ready != NULL && Py_TYPE(ready) == xt_deque_type) {  /* asyncio's: append without a lookup */
        PyObject *call[2] = {ready, handle};
        PyObject *appended = PyObject_Vectorcall(xt_deque_append, call, 2, NULL);
        status = appended == NULL ? -1 : 0;
        Py_XDECREF(appended);
    }
    else if (ready != NULL && PyList_CheckExact(ready)) {
        status = PyList_Append(ready, handle);
    }
    else if (ready != NULL) {
        PyObject *appended = PyObject_CallMethodOneArg(ready, xt_s_append, handle);
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
        self->offsets[i] = xt_slot_offset(descr, 1, &none_if_unset);
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

STAND_IN_FUNCTIONS(ready_soon, ReadySoon, wrapped, 0)

static PyGetSetDef ready_soon_getset[] = {
    {"fill_directly", (getter)ready_soon_get_fill_directly, (setter)ready_soon_set_fill_directly,
     "Whether handles are filled here (else the Python hook makes them).", NULL},
    {NULL},
};

PyTypeObject xt_ReadySoonType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "exectracer.record._speedups.ReadySoon",
    .tp_doc = "BaseEventLoop._call_soon for the recording: queues a stamped handle.",
    .tp_basicsize = sizeof(ReadySoon),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_vectorcall_offset = offsetof(ReadySoon, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_descr_get = xt_bind,
    .tp_getset = ready_soon_getset,
    .tp_getattro = ready_soon_getattro,
    .tp_repr = ready_soon_repr,
    .tp_methods = ready_soon_methods,
    .tp_members = ready_soon_members,
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
    PyObject *wrapped;         /* the method it replaced (Patcher sets it through __wrapped__); NULL: not yet */
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
} TaskCreator;

#define TASK_CREATOR_OBJECTS(X) \
    X(fallback) X(create_task) X(tasks) X(hook_state.local) X(hook_state.dict) X(threads) X(thread_g) X(new_g) \
    X(loops) X(loop_id) X(task_funcs) X(task_func) X(name_code) X(eager_step) X(rows) X(clock) X(wrapped)

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
    PyObject *dict = xt_hook_dict(&self->hook_state);
    if (dict == NULL) {
        return -1;
    }
    PyObject *old = PyDict_GetItemWithError(dict, xt_s_creating);
    if (old == NULL && PyErr_Occurred()) {
        return -1;
    }
    *prev = Py_XNewRef(old);
    return PyDict_SetItem(dict, xt_s_creating, value != NULL ? value : Py_None);
}

/* The TASK_NAME code of a task's name: asyncio's default "Task-N" as -N, as task_name_code does; -1 on error */
static int
name_code_of(TaskCreator *self, PyObject *task, uint64_t *out)
{
    PyObject *name = PyObject_CallMethodNoArgs(task, xt_s_get_name);
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
        *out = XT_KIND_TASK_NAME | (uint64_t)(-number) << XT_ARG_SHIFT;
        Py_DECREF(name);
        return 0;
    }
    PyObject *code = PyObject_CallOneArg(self->name_code, name);
    Py_DECREF(name);
    return xt_consume_u64(code, out);
}

/* The TASK_FUNC code of a coroutine's (or generator's) function, or 0 if it has none; -1 on error */
static int
func_code_of(TaskCreator *self, PyObject *coro, uint64_t *out)
{
    *out = 0;
    PyObject *code = NULL;
    if (optional_attr(coro, xt_s_cr_code, &code) < 0) {
        return -1;
    }
    if (code == NULL || code == Py_None) {
        Py_XDECREF(code);
        if (optional_attr(coro, xt_s_gi_code, &code) < 0) {
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
        *out = xt_as_u64(known);
    }
    else if (!PyErr_Occurred() && (known = PyObject_CallFunctionObjArgs(self->task_func, coro, code, NULL)) != NULL) {
        *out = xt_as_u64(known);
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
    *g = xt_as_u64(value);
    Py_DECREF(value);
    if (PyErr_Occurred() || xt_ptr_map_store(&((TaskIds *)self->tasks)->map, (uintptr_t)task, *g) < 0) {
        return -1;
    }
    uint64_t row[12] = {XT_KIND_TASK_CREATE | parent << XT_ARG_SHIFT, ts, *g};
    int n = 1;
    PyObject *loop = NULL;
    if (optional_attr(task, xt_s_loop, &loop) < 0) {
        return -1;
    }
    uint64_t lid = 0, func = 0, name = 0;
    int failed = loop != NULL && loop != Py_None && xt_id_lookup(self->loops, loop, self->loop_id, &lid) < 0;
    if (!failed && loop != NULL && loop != Py_None) {
        row[3 * n] = XT_KIND_TASK_LOOP | lid << XT_ARG_SHIFT, row[3 * n + 1] = ts, row[3 * n + 2] = *g;
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
    xt_rows_store((Rows *)self->rows, row, n);
    return 0;
}

/* After the real create_task returned `task`: its id and description if new, and an eager first step; -1 on error */
static int
record_created(TaskCreator *self, PyObject *task, PyObject *coro, uint64_t parent, uint64_t ts)
{
    uint64_t g = 0;
    if (!(xt_ptr_map_lookup(&((TaskIds *)self->tasks)->map, (uintptr_t)task, &g) && g != 0)
        && describe_new_task(self, task, coro, parent, ts, &g) < 0) {
        return -1;
    }
#if PY_VERSION_HEX < 0x030C0000
    return 0;  /* eager tasks came with 3.12 */
#else
    PyObject *done = PyObject_CallMethodNoArgs(task, xt_s_done);
    int eager = done == NULL ? -1 : PyObject_IsTrue(done);
    Py_XDECREF(done);
    if (eager == 0) {
        PyObject *waiter = NULL;
        eager = optional_attr(task, xt_s_fut_waiter, &waiter) < 0 ? -1 : waiter != NULL && waiter != Py_None;
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
    if (xt_now_ns(self->clock, &ts) < 0 || xt_current_goroutine(self->threads, self->thread_g, &parent) < 0
        || (creating = Py_BuildValue("(OKK)", coro, (unsigned long long)parent, (unsigned long long)ts)) == NULL
        || swap_creating(self, creating, &prev) < 0) {
        Py_XDECREF(creating);
        Py_XDECREF(prev);
        xt_hook_error("asyncio.create_task");
        return PyObject_Vectorcall(self->create_task, args, nargsf, kwnames);
    }
    Py_DECREF(creating);
    PyObject *task = PyObject_Vectorcall(self->create_task, args, nargsf, kwnames);
    SET_ERROR_ASIDE;
    PyObject *ours = NULL;
    if (swap_creating(self, prev, &ours) < 0 || (task != NULL && record_created(self, task, coro, parent, ts) < 0)) {
        xt_hook_error("asyncio.create_task");  /* the recording's error: the program gets its task */
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
        "task_funcs", "task_func", "name_code", "eager_step", "rows", "clock", NULL};
    TaskCreator *self = (TaskCreator *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = task_creator_vectorcall;
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "$O!OO!OO!OOO!OO!OOOO!O:TaskCreator", names,
            &PyFunction_Type, &self->fallback, &self->create_task, &xt_TaskIdsType, &self->tasks, &self->hook_state.local,
            &PyDict_Type, &self->threads, &self->thread_g, &self->new_g, &PyDict_Type, &self->loops, &self->loop_id,
            &PyDict_Type, &self->task_funcs, &self->task_func, &self->name_code, &self->eager_step,
            &xt_RowsType, &self->rows, &self->clock)) {
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
    PyObject *wrapped;         /* the method it replaced (Patcher sets it through __wrapped__); NULL: not yet */
    HookState hook_state;
} IoReady;

#define IO_READY_OBJECTS(X) X(fallback) X(process_events) X(hook_state.local) X(hook_state.dict) X(wrapped)

GC_FUNCTIONS(io_ready, IoReady, IO_READY_OBJECTS)

/* Add id(handle) to `io` for each handle of a ready key's data; -1 on error */
static int
note_key(PyObject *io, PyObject *item)
{
    if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2) {
        PyErr_SetString(PyExc_TypeError, "selector events are (key, mask) pairs");
        return -1;
    }
    PyObject *data = PyObject_GetAttr(PyTuple_GET_ITEM(item, 0), xt_s_data);
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
    PyObject *dict = status == 0 ? xt_hook_dict(&self->hook_state) : NULL;
    status = dict == NULL ? -1 : PyDict_SetItem(dict, xt_s_io, io);
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
        xt_hook_error("asyncio.process_events");
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
