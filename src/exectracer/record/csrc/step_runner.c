/* StepRunner, which replaces asyncio's Handle._run for a recording: a
   task's step is run in its context and stored as [TASK_READY,] TASK_STEP,
   then the suspension (its await chain's code, found by the chain's raw key
   in the chain table, else from the Python cache or define_chain) or the
   task's end; any other callback is run and stored as CALLBACK_BEGIN/END,
   its name found by its function, code or builtin's method def. Its Python
   reference is handle_run in asyncio_hooks.py.

   It also runs and records the queued calls of a loop that keeps its own
   queue (uvloop's UvCall, xt_run_queued): the same rules, with the stamps
   and the callback read from the call instead of a handle, the context
   already entered by the loop, and an exception raised to the loop once
   the run is recorded (the loop reports it, as untraced). */

#include "speedups.h"

/* What a StepRunner runs: asyncio's handle, or (`handle` NULL) a queued call a loop runs in its context */
typedef struct {
    PyObject *handle;
    QueuedCall *queued;
} Job;

/* ---------------------------------------------------------------- StepRunner */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *fallback;        /* the Python hook: handle_run(handle) */
    PyObject *wrapped;         /* the method it replaced (Patcher sets it through __wrapped__); NULL: not yet */
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
    PyObject *last_cb_type;    /* the type of the callback seen last, and whether step_types holds it */
    int last_stepping;
    int context_entered;       /* the loop entered the handle's context before calling (UvSoon hands it over) */
    FastAttr handle_callback, handle_context, handle_args, handle_loop, handle_waker, handle_queued, task_fut_waiter, task_coro, wrapper_self;
} StepRunner;

#define STEP_RUNNER_OBJECTS(X) \
    X(fallback) X(run_callback) X(step_types) X(task_classes) X(is_task_type) X(tasks) X(task_g) \
    X(hook_state.local) X(hook_state.dict) X(rows) X(one_await) X(chain_cache) X(define_chain) X(executor_futures) \
    X(ready_type) X(report_error) X(clock) X(code_for) X(loops) X(loop_id) X(name_cache) X(name_id) X(timer_type) \
    X(looked_at) X(wrapped) X(last_cb_type)

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
#define CLEAR_ATTR(name) xt_fast_attr_clear(&self->name);
    STEP_RUNNER_ATTRS(CLEAR_ATTR)
#undef CLEAR_ATTR
    return 0;
}

static void
step_runner_dealloc(StepRunner *self)
{
    PyObject_GC_UnTrack(self);
    step_runner_clear(self);
    xt_chain_table_free(&self->chains);
    xt_chain_table_free(&self->builtin_names);
    xt_ptr_map_free(&self->code_flags);
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

/* Whether a callback of `type` may be a task's step (step_types holds it); -1 on error */
static int
is_step_type(StepRunner *self, PyObject *type)
{
    if (type == self->last_cb_type) {
        return self->last_stepping;
    }
    int stepping = PySet_Contains(self->step_types, type);
    if (stepping >= 0) {
        Py_XSETREF(self->last_cb_type, Py_NewRef(type));
        self->last_stepping = stepping;
    }
    return stepping;
}

/* The goroutine id of `task`, registering it if new; -1 on error */
static int
task_goroutine(StepRunner *self, PyObject *task, uint64_t *g)
{
    if (xt_ptr_map_lookup(&((TaskIds *)self->tasks)->map, (uintptr_t)task, g) && *g != 0) {
        return 0;
    }
    PyObject *value = PyObject_CallOneArg(self->task_g, task);
    return xt_consume_u64(value, g);
}

static PyObject *
run_in_context(StepRunner *self, const Job *job, PyObject *cb)
{
    if (job->handle == NULL) {  /* the loop entered the callback's context */
        PyObject *args = job->queued->args;
        return args == NULL ? PyObject_CallNoArgs(cb) : PyObject_Call(cb, args, NULL);
    }
    PyObject *handle = job->handle;
    PyObject *context = xt_fast_get(&self->handle_context, handle);
    if (context == NULL) {
        return NULL;
    }
    PyObject *args = xt_fast_get(&self->handle_args, handle);
    PyObject *result = NULL;
    if (args != NULL) {
        if (!PyContext_CheckExact(context)) {
            PyErr_SetString(PyExc_TypeError, "a handle's context is not a contextvars.Context");
        }
        else if (self->context_entered && PyThreadState_Get()->context == context) {
            result = PyObject_Call(cb, args, NULL);  /* uvloop runs us in it already (UvSoon) */
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

/* Raise `exc` (a reference taken by take_exception, stolen) again */
static void
give_back_exception(PyObject *exc)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    PyErr_Restore(exc == NULL ? NULL : Py_NewRef((PyObject *)Py_TYPE(exc)), exc, exc == NULL ? NULL : PyException_GetTraceback(exc));
#endif
}

/* After a callback ran (`result` NULL: it raised). An exception other than SystemExit and KeyboardInterrupt
   goes to the loop's handler as Handle._run does (asyncio's handles), or is kept in *error, to be raised to the
   loop once the run is recorded (a queued call: the loop reports it, as untraced). NULL: raise now. */
static PyObject *
after_run(StepRunner *self, const Job *job, PyObject *result, PyObject **error)
{
    *error = NULL;
    if (result != NULL || PyErr_ExceptionMatches(PyExc_SystemExit) || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
        return result;
    }
    PyObject *exc = take_exception();
    if (job->handle == NULL) {
        *error = exc;
        Py_RETURN_NONE;
    }
    result = PyObject_CallFunctionObjArgs(self->report_error, job->handle, exc, NULL);
    Py_XDECREF(exc);
    return result;
}

/* What the run returns once recorded: None, or the kept exception raised */
static PyObject *
recorded(PyObject *error)
{
    if (error != NULL) {
        give_back_exception(error);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Whether a coroutine's code has one suspension point, as AwaitChains.one_await
   says; remembered once AwaitChains has looked at the code. -1 on error. */
static int
one_suspension_point(StepRunner *self, PyObject *code)
{
    uint64_t flag;
    if (xt_ptr_map_lookup(&self->code_flags, (uintptr_t)code, &flag)) {
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
    if ((single || looked) && xt_ptr_map_store(&self->code_flags, (uintptr_t)code, single ? 2 : 1) < 0) {
        PyErr_Clear();  /* not remembered: asked again next time */
    }
    return single;
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
            int single = (code = xt_fast_get(&xt_coro_code, c)) == NULL ? -1 : one_suspension_point(self, code);
#if PY_VERSION_HEX >= 0x030C0000
            /* a suspended coroutine's offset, from its own interpreter frame: no frame object made */
            offset = single == 0 ? PyUnstable_InterpreterFrame_GetLasti((struct _PyInterpreterFrame *)((PyCoroObject *)c)->cr_iframe) : 0;
#else
            if (single == 0 && XT_SUSPENDED_LASTI_311(c, &offset)) {
                /* 3.11: read from its interpreter frame, as on 3.12: no frame object made (see speedups.h) */
            }
            else if (single == 0 && (frame = xt_fast_get(&xt_coro_frame, c)) == NULL) {
                single = -1;
            }
            else {
                offset = single == 0 ? xt_frame_lasti_of(frame) : 0;
            }
#endif
            if (single >= 0 && !(offset == -1 && PyErr_Occurred())) {
                next = xt_fast_get(&xt_coro_await, c);
            }
        }
        else if (PyGen_CheckExact(c)) {
            if ((frame = xt_fast_get(&xt_gen_frame, c)) == Py_None) {
                Py_DECREF(frame);
                break;
            }
            if (frame != NULL && (code = xt_fast_get(&xt_frame_code, frame)) != NULL) {
                offset = xt_frame_lasti_of(frame);
                if (!(offset == -1 && PyErr_Occurred())) {
                    next = xt_fast_get(&xt_gen_yieldfrom, c);
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
    *out = xt_as_u64(code);
    Py_DECREF(code);
    if (PyErr_Occurred() || PySet_Add(self->chain_types, (PyObject *)Py_TYPE(waiter)) < 0) {
        return -1;
    }
    xt_chain_insert(&self->chains, parts, n, hash, *out);
    return 0;
}

/* The code of a step that left `task` done, as end_code gives it (and the task's id forgotten); -1 on error */
static int
done_code(StepRunner *self, PyObject *task, uint64_t *out)
{
    uint64_t g;
    xt_ptr_map_remove(&((TaskIds *)self->tasks)->map, (uintptr_t)task, &g);
    PyObject *cancelled = PyObject_CallMethodNoArgs(task, xt_s_cancelled);
    int was_cancelled = cancelled == NULL ? -1 : PyObject_IsTrue(cancelled);
    Py_XDECREF(cancelled);
    if (was_cancelled != 0) {
        *out = XT_KIND_TASK_DONE | XT_OUTCOME_CANCELLED << XT_ARG_SHIFT;
        return was_cancelled < 0 ? -1 : 0;
    }
    PyObject *exc = PyObject_GetAttr(task, xt_s_exception);  /* not exception(): that would mark it retrieved */
    if (exc == NULL) {
        return -1;
    }
    *out = XT_KIND_TASK_DONE | (exc == Py_None ? XT_OUTCOME_RETURNED : XT_OUTCOME_RAISED) << XT_ARG_SHIFT;
    Py_DECREF(exc);
    return 0;
}

/* The event code for the end of a step of `task`: its suspension, or its end; -1 on error */
static int
end_of_step(StepRunner *self, PyObject *task, uint64_t *out)
{
    PyObject *waiter = xt_fast_get(&self->task_fut_waiter, task);
    if (waiter == NULL) {
        return -1;
    }
    PyObject *code = NULL, *coro = NULL;
    int status = -1, done = 0;
    if (waiter == Py_None) {  /* the task ended, or yielded bare (asyncio.sleep(0)) and is runnable */
        PyObject *result = PyObject_CallMethodNoArgs(task, xt_s_done);
        done = result == NULL ? -1 : PyObject_IsTrue(result);
        Py_XDECREF(result);
    }
    if (done == 1) {
        status = done_code(self, task, out);
    }
    else if (done == 0 && (coro = xt_fast_get(&self->task_coro, task)) != NULL) {
        uintptr_t parts[MAX_PARTS];
        Py_ssize_t n = 0;
        int walked = chain_parts(self, coro, waiter, parts, &n);
        if (walked == 0) {
            uint64_t hash = xt_hash_parts(parts, n);
            ChainEntry *known = xt_chain_find(&self->chains, parts, n, hash);
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
        *out = xt_as_u64(code);
        Py_DECREF(code);
        status = PyErr_Occurred() ? -1 : 0;
    }
    if (status == 0 && waiter != Py_None && !(*out & XT_CATEGORY_MASK << XT_ARG_SHIFT)) {
        int from_executor = PySequence_Contains(self->executor_futures, waiter);
        if (from_executor < 0) {
            status = -1;
        }
        else if (from_executor) {
            *out |= XT_CATEGORY_SYSCALL << XT_ARG_SHIFT;
        }
    }
    Py_XDECREF(coro);
    Py_DECREF(waiter);
    return status;
}

/* Store the step's events: [ready,] step start, step end */
static int
record_step(StepRunner *self, const Job *job, PyObject *task, uint64_t g, uint64_t start)
{
    uint64_t end = 0, code_bits = 0;
    if (end_of_step(self, task, &code_bits) < 0 || xt_now_ns(self->clock, &end) < 0) {
        return -1;
    }
    /* stamped when queued (not a timer's callback: what the timer's handle was stamped with is not a wake-up) */
    if (job->handle == NULL ? !job->queued->timer : (PyObject *)Py_TYPE(job->handle) == self->ready_type) {
        uint64_t waker = 0, queued = 0;
        if (job->handle == NULL) {
            waker = job->queued->waker;
            queued = job->queued->queued;
        }
        else if (xt_consume_u64(xt_fast_get(&self->handle_waker, job->handle), &waker) < 0
                 || xt_consume_u64(xt_fast_get(&self->handle_queued, job->handle), &queued) < 0) {
            return -1;
        }
        uint64_t row[9] = {XT_KIND_TASK_READY | waker << XT_ARG_SHIFT, queued, g, XT_KIND_TASK_STEP, start, g,
                           code_bits, end, g};
        xt_rows_store((Rows *)self->rows, row, 3);
        return 0;
    }
    uint64_t row[6] = {XT_KIND_TASK_STEP, start, g, code_bits, end, g};
    xt_rows_store((Rows *)self->rows, row, 2);
    return 0;
}

/* Where the C path cannot go on: the Python hook runs the handle (and counts its own failure). Not when the loop
   entered the handle's context already (UvSoon's handles): the Python hook would enter it again and fail, so the
   callback runs here, reported as Handle._run would, and is not recorded. */
static PyObject *
run_fallback(StepRunner *self, const Job *job)
{
    if (!self->context_entered) {
        return PyObject_CallOneArg(self->fallback, job->handle);
    }
    xt_hook_error("uvloop.run");
    PyErr_Clear();
    PyObject *cb = job->handle != NULL ? xt_fast_get(&self->handle_callback, job->handle) : Py_NewRef(job->queued->callback);
    PyObject *error = NULL;
    PyObject *result = after_run(self, job, cb == NULL ? NULL : run_in_context(self, job, cb), &error);
    Py_XDECREF(cb);
    if (result == NULL) {
        return NULL;
    }
    Py_DECREF(result);
    return recorded(error);
}

/* A task's step: run it as Handle._run does, then record it */
static PyObject *
run_step(StepRunner *self, const Job *job, PyObject *cb, PyObject *task, uint64_t gbits)
{
    uint64_t start = 0, prev = xt_current_waker;
    if (xt_now_ns(self->clock, &start) < 0) {
        xt_hook_error("asyncio.step");
        return run_fallback(self, job);
    }
    xt_current_waker = XT_WAKER_TASK | gbits << XT_WAKER_SHIFT;
    PyObject *error = NULL;
    PyObject *result = after_run(self, job, run_in_context(self, job, cb), &error);
    xt_current_waker = prev;
    if (result == NULL) {  /* SystemExit, KeyboardInterrupt, or the loop's exception handler raised */
        return NULL;
    }
    Py_DECREF(result);
    if (record_step(self, job, task, gbits, start) < 0) {
        xt_hook_error("asyncio.step");
    }
    return recorded(error);
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
            hash = xt_hash_parts(parts, n);
            ChainEntry *known = xt_chain_find(&self->builtin_names, parts, n, hash);
            if (known != NULL) {
                *out = known->code;
                return 0;
            }
        }
        PyObject *qualname = PyObject_GetAttr(cb, xt_s_qualname);
        if (qualname != NULL && PyUnicode_Check(qualname) && PyUnicode_GET_LENGTH(qualname) > 0) {
            key = made = PyTuple_Pack(2, (PyObject *)Py_TYPE(cb), qualname);
        }
        Py_XDECREF(qualname);
        PyErr_Clear();  /* no key: the Python side names it */
    }
    PyObject *sid = key == NULL ? NULL : PyDict_GetItemWithError(self->name_cache, key);
    Py_XDECREF(made);
    if (sid != NULL) {
        *out = xt_as_u64(sid);
    }
    else if (!PyErr_Occurred() && xt_consume_u64(PyObject_CallOneArg(self->name_id, cb), out) < 0) {
        return -1;
    }
    if (PyErr_Occurred()) {
        return -1;
    }
    if (n > 0) {
        xt_chain_insert(&self->builtin_names, parts, n, hash, *out);
    }
    return 0;
}

/* Which source queued `handle` (named `sid`) and the waker code it runs as, as the Python hook tells them:
   a timer or I/O callback wakes as itself; another one on behalf of what queued it, if known */
static int
callback_source(StepRunner *self, const Job *job, uint64_t sid, uint64_t *source, uint64_t *waker)
{
    PyObject *handle = job->handle;
    if (handle == NULL ? job->queued->timer : (PyObject *)Py_TYPE(handle) == self->timer_type) {
        *source = XT_CALLBACK_SOURCE_TIMER;
        *waker = sid << XT_WAKER_SHIFT | XT_WAKER_TIMER;
        return 0;
    }
    int from_io = 0;  /* a handle the loop's last select made ready (asyncio's: a queued call never is) */
    if (handle != NULL) {
        PyObject *ldict = xt_hook_dict(&self->hook_state);
        PyObject *io = ldict == NULL ? NULL : Py_XNewRef(PyDict_GetItemWithError(ldict, xt_s_io));  /* HookState.io */
        if (io != NULL) {
            PyObject *key = PyLong_FromVoidPtr(handle);
            from_io = key == NULL ? -1 : PySequence_Contains(io, key);
            Py_XDECREF(key);
            Py_DECREF(io);
        }
        else if (ldict == NULL || PyErr_Occurred()) {
            return -1;
        }
    }
    if (from_io < 0) {
        return -1;
    }
    *source = from_io ? XT_CALLBACK_SOURCE_IO : XT_CALLBACK_SOURCE_SOON;
    *waker = sid << XT_WAKER_SHIFT | (from_io ? XT_WAKER_IO : XT_WAKER_CALLBACK);
    if (handle == NULL) {
        if (job->queued->waker != 0) {
            *waker = job->queued->waker;
        }
    }
    else if (!from_io && (PyObject *)Py_TYPE(handle) == self->ready_type) {
        uint64_t code = 0;
        if (xt_consume_u64(xt_fast_get(&self->handle_waker, handle), &code) < 0) {
            return -1;
        }
        if (code != 0) {
            *waker = code;
        }
    }
    return 0;
}

/* A callback that is not a task's step: run as Handle._run does, recorded as CALLBACK_BEGIN/END */
static PyObject *
run_callback(StepRunner *self, const Job *job, PyObject *cb)
{
    uint64_t lid = 0, sid = 0, source = 0, waker = 0, now = 0;
    PyObject *loop = job->handle != NULL ? xt_fast_get(&self->handle_loop, job->handle) : Py_NewRef(job->queued->loop);
    int ok = loop != NULL && xt_id_lookup(self->loops, loop, self->loop_id, &lid) == 0
        && callback_name(self, cb, &sid) == 0 && callback_source(self, job, sid, &source, &waker) == 0;
    Py_XDECREF(loop);
    if (!ok || xt_now_ns(self->clock, &now) < 0) {
        PyErr_Clear();  /* the Python hook takes over (and counts its own failure) */
        return self->context_entered ? run_fallback(self, job)
                                     : PyObject_CallFunctionObjArgs(self->run_callback, job->handle, cb, NULL);
    }
    uint64_t begin[3] = {XT_KIND_CALLBACK_BEGIN | (sid << XT_CALLBACK_SHIFT | source) << XT_ARG_SHIFT, now, lid};
    xt_rows_store((Rows *)self->rows, begin, 1);

    uint64_t prev = xt_current_waker;
    xt_current_waker = waker;
    PyObject *error = NULL;
    PyObject *result = after_run(self, job, run_in_context(self, job, cb), &error);
    xt_current_waker = prev;
    uint64_t end[3] = {XT_KIND_CALLBACK_END, 0, lid};
    if (result == NULL) {  /* SystemExit, KeyboardInterrupt, or the loop's exception handler raised */
        SET_ERROR_ASIDE;
        if (xt_now_ns(self->clock, &end[1]) == 0) {
            xt_rows_store((Rows *)self->rows, end, 1);
        }
        PUT_ERROR_BACK;
        return NULL;
    }
    Py_DECREF(result);
    if (xt_now_ns(self->clock, &end[1]) == 0) {
        xt_rows_store((Rows *)self->rows, end, 1);
    }
    else {
        PyErr_Clear();
    }
    return recorded(error);
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
    return xt_fast_get(&self->wrapper_self, cb);
}

static PyObject *
step_runner_run(StepRunner *self, const Job *job)
{
    PyObject *cb = job->handle != NULL ? xt_fast_get(&self->handle_callback, job->handle) : Py_NewRef(job->queued->callback);
    if (cb == NULL) {
        PyErr_Clear();  /* the Python hook takes over (and counts its own failure) */
        return run_fallback(self, job);
    }
    PyObject *result = NULL, *task = NULL;
    uint64_t g = 0;
    int known = 0, registered = 0;
    int stepping = is_step_type(self, (PyObject *)Py_TYPE(cb));
    if (stepping == 1) {
        task = callback_self(self, cb);
        known = task == NULL ? -1 : is_task(self, task);
    }
    if (known == 1) {
        registered = task_goroutine(self, task, &g);
    }
    if (stepping < 0 || known < 0 || registered < 0) {
        PyErr_Clear();  /* the Python hook takes over (and counts its own failure) */
        result = run_fallback(self, job);
    }
    else if (known == 1) {
        result = run_step(self, job, cb, task, g);
    }
    else {
        result = run_callback(self, job, cb);
    }
    Py_XDECREF(task);
    Py_DECREF(cb);
    if (result != NULL && xt_hook_sample_due != UINT64_MAX) {
        xt_sample_between_steps();  /* the sampler's due sample, if due: the loop need not hand the GIL over for it */
    }
    return result;
}

static PyObject *
step_runner_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    StepRunner *runner = (StepRunner *)self;
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL) {
        return PyObject_Vectorcall(runner->fallback, args, nargsf, kwnames);
    }
    Job job = {args[0], NULL};
    return step_runner_run(runner, &job);
}

PyObject *
xt_run_queued(PyObject *runner, QueuedCall *call)
{
    if (Py_TYPE(runner) != &xt_StepRunnerType || !((StepRunner *)runner)->context_entered) {
        PyErr_SetString(PyExc_TypeError, "a StepRunner made with context_entered runs queued calls");
        return NULL;
    }
    Job job = {NULL, call};
    return step_runner_run((StepRunner *)runner, &job);
}

static PyObject *
step_runner_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {
        "fallback", "run_callback", "step_types", "task_classes", "is_task_type", "tasks", "task_g",
        "local", "rows", "one_await", "chain_cache", "define_chain", "executor_futures",
        "ready_type", "report_error", "clock", "code_for", "task_type", "step_wrapper_type",
        "loops", "loop_id", "name_cache", "name_id", "timer_type", "looked_at", "context_entered", NULL};
    PyObject *task_type = NULL, *wrapper_type = NULL;
    StepRunner *self = (StepRunner *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = step_runner_vectorcall;
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "$O!OO!O!O!O!OOO!O!O!OOO!OOOO!OO!OO!OO!O!p:StepRunner", names,
            &PyFunction_Type, &self->fallback, &self->run_callback, &PySet_Type, &self->step_types,
            &PyTuple_Type, &self->task_classes, &PyDict_Type, &self->is_task_type,
            &xt_TaskIdsType, &self->tasks, &self->task_g, &self->hook_state.local, &xt_RowsType, &self->rows,
            &PySet_Type, &self->one_await, &PyDict_Type, &self->chain_cache, &self->define_chain,
            &self->executor_futures, &PyType_Type, &self->ready_type,
            &self->report_error, &self->clock, &self->code_for, &PyType_Type, &task_type, &wrapper_type,
            &PyDict_Type, &self->loops, &self->loop_id, &PyDict_Type, &self->name_cache, &self->name_id,
            &PyType_Type, &self->timer_type, &PySet_Type, &self->looked_at, &self->context_entered)) {
        /* the borrowed pointers are not ours yet */
        STEP_RUNNER_OBJECTS(FORGET_MEMBER)
        Py_DECREF(self);
        return NULL;
    }
    STEP_RUNNER_OBJECTS(KEEP_MEMBER)
    if ((self->chain_types = PySet_New(NULL)) == NULL
        || xt_fast_attr_init(&self->handle_callback, self->ready_type, "_callback") < 0
        || xt_fast_attr_init(&self->handle_context, self->ready_type, "_context") < 0
        || xt_fast_attr_init(&self->handle_args, self->ready_type, "_args") < 0
        || xt_fast_attr_init(&self->handle_loop, self->ready_type, "_loop") < 0
        || xt_fast_attr_init(&self->handle_waker, self->ready_type, "_xt_waker") < 0
        || xt_fast_attr_init(&self->handle_queued, self->ready_type, "_xt_ts") < 0
        || xt_fast_attr_init(&self->task_fut_waiter, task_type, "_fut_waiter") < 0
        || xt_fast_attr_init(&self->task_coro, task_type, "_coro") < 0
        || xt_fast_attr_init(&self->wrapper_self, wrapper_type, "__self__") < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

HOOK_TYPE(StepRunner, step_runner,
          "Handle._run for the recording: runs a task step or another callback and records it.")
