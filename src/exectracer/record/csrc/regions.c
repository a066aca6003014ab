/* Region, annotations.region's base in C: entering and leaving a region
   stores its REGION_BEGIN (REGION_TASK) and REGION_END rows straight into
   the running recording's Rows, where set_annotation_sink says. Its Python
   reference is _PythonRegion in annotations.py. */

#include "speedups.h"

/* ------------------------------------------------------------------ Region */

/* annotations.region's __enter__ and __exit__: the same REGION_BEGIN
   (REGION_TASK) and REGION_END rows as its Python version, stored in the
   running recording's Rows. Recorder sets where (set_annotation_sink) as the
   recording starts and clears it as it stops; without it a region records
   nothing. Like the hooks, a region never raises: what it cannot record, it
   leaves out.

   Entering a region may call Python (Registry.thread_g for a thread not
   seen yet, Interner.string for a new name), where the GIL can pass to a
   thread that stops the recording and clears the sink, or starts the next
   one: the region holds its own references for those calls, and records
   nothing if `notes_generation` changed meanwhile. */
static struct {
    PyObject *rows;       /* Rows; NULL: no recording with these hooks */
    PyObject *threads;    /* dict: thread ident -> g */
    PyObject *thread_g;   /* Registry.thread_g, for a thread not in it */
    PyObject *strings;    /* the interner's dict: text -> string id */
    PyObject *intern;     /* Interner.string, for a text not in it yet */
    PyObject *user_task;  /* the ContextVar holding the current user task's id */
} notes;
static uint64_t notes_generation;  /* changes each time the sink is set or cleared */

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
region_string_id(PyObject *name, PyObject *strings, PyObject *intern, uint64_t *sid)
{
    PyObject *text = PyUnicode_CheckExact(name) ? Py_NewRef(name) : PyObject_Str(name);
    if (text == NULL) {
        return -1;
    }
    PyObject *known = PyDict_GetItemWithError(strings, text);
    if (known != NULL) {
        Py_INCREF(known);
    }
    else if (!PyErr_Occurred()) {
        known = PyObject_CallOneArg(intern, text);
    }
    Py_DECREF(text);
    return xt_consume_u64(known, sid);
}

/* The current user task's id (0: none); -1 on error */
static int
region_user_task(PyObject *user_task, uint64_t *id)
{
    PyObject *value = NULL;
    if (PyContextVar_Get(user_task, NULL, &value) < 0) {
        return -1;
    }
    *id = value == NULL ? 0 : xt_as_u64(value);
    Py_XDECREF(value);
    return PyErr_Occurred() ? -1 : 0;
}

static PyObject *
region_enter(Region *self, PyObject *unused)
{
    (void)unused;
    uint64_t ts, g, sid, parent;
    self->g = 0;
    if (notes.rows != NULL && xt_now_ns(xt_perf_clock, &ts) == 0) {
        uint64_t generation = notes_generation;
        PyObject *rows = Py_NewRef(notes.rows), *threads = Py_NewRef(notes.threads);  /* see notes_generation */
        PyObject *thread_g = Py_NewRef(notes.thread_g), *strings = Py_NewRef(notes.strings);
        PyObject *intern = Py_NewRef(notes.intern), *user_task = Py_NewRef(notes.user_task);
        if (xt_current_goroutine(threads, thread_g, &g) == 0 && region_string_id(self->name, strings, intern, &sid) == 0
            && region_user_task(user_task, &parent) == 0 && notes_generation == generation) {
            uint64_t row[6] = {XT_KIND_REGION_BEGIN | sid << XT_ARG_SHIFT, ts, g, XT_KIND_REGION_TASK | parent << XT_ARG_SHIFT, ts, g};
            xt_rows_store((Rows *)rows, row, parent ? 2 : 1);
            self->g = g;
            self->sid = sid;
        }
        Py_DECREF(rows);
        Py_DECREF(threads);
        Py_DECREF(thread_g);
        Py_DECREF(strings);
        Py_DECREF(intern);
        Py_DECREF(user_task);
    }
    xt_hook_error("region");
    return Py_NewRef(self);
}

static PyObject *
region_exit(Region *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    uint64_t ts;
    if (notes.rows != NULL && self->g != 0 && xt_now_ns(xt_perf_clock, &ts) == 0) {
        uint64_t row[3] = {XT_KIND_REGION_END | self->sid << XT_ARG_SHIFT, ts, self->g};
        xt_rows_store((Rows *)notes.rows, row, 1);
    }
    xt_hook_error("region");
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

PyTypeObject xt_RegionType = {
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
    notes_generation++;
    Py_CLEAR(notes.rows);
    Py_CLEAR(notes.threads);
    Py_CLEAR(notes.thread_g);
    Py_CLEAR(notes.strings);
    Py_CLEAR(notes.intern);
    Py_CLEAR(notes.user_task);
}

PyObject *
xt_set_annotation_sink(PyObject *module, PyObject *args, PyObject *kwargs)
{
    (void)module;
    static char *names[] = {"rows", "threads", "thread_g", "strings", "intern", "user_task", NULL};
    PyObject *rows, *threads, *thread_g, *strings, *intern, *user_task;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$O!O!OO!OO!:set_annotation_sink", names, &xt_RowsType, &rows, &PyDict_Type,
                                     &threads, &thread_g, &PyDict_Type, &strings, &intern, &PyContextVar_Type, &user_task)) {
        return NULL;
    }
    clear_notes();
    notes.rows = Py_NewRef(rows);
    notes.threads = Py_NewRef(threads);
    notes.thread_g = Py_NewRef(thread_g);
    notes.strings = Py_NewRef(strings);
    notes.intern = Py_NewRef(intern);
    notes.user_task = Py_NewRef(user_task);
    Py_RETURN_NONE;
}

PyObject *
xt_clear_annotation_sink(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    clear_notes();
    Py_RETURN_NONE;
}
