/* What the hooks share: attributes read through descriptors found once
   (FastAttr, and the coroutines', generators' and frames' own), the hooks'
   thread-local state (HookState's dict, and the current step's waker as a C
   thread-local), the calling thread's and the current goroutine, the
   binding of the hook types as methods, and what makes a hook pass for the
   original it replaced. */

#include "speedups.h"

/* The calling thread's goroutine, as Registry.thread_g gives it: looked up
   in `threads` (ident -> g), else from thread_g(); -1 on error */
int
xt_thread_goroutine(PyObject *threads, PyObject *thread_g, uint64_t *g)
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
    return xt_consume_u64(known, g);
}

/* The value of `dict[PyLong(id(obj))]` as uint64, or (if missing or 0) of
   make(obj); -1 on error */
int
xt_id_lookup(PyObject *dict, PyObject *obj, PyObject *make, uint64_t *out)
{
    PyObject *key = PyLong_FromVoidPtr(obj);
    if (key == NULL) {
        return -1;
    }
    PyObject *value = PyDict_GetItemWithError(dict, key);
    Py_DECREF(key);
    if (value != NULL && PyObject_IsTrue(value) == 1) {
        *out = xt_as_u64(value);
        return 0;
    }
    return PyErr_Occurred() ? -1 : xt_consume_u64(PyObject_CallOneArg(make, obj), out);
}

/* The offset of the object slot (a __slots__ entry, or a C type's T_OBJECT
   member) that `descr` reads (and, if `writable`, writes), or -1;
   `none_if_unset` says whether an unset slot reads as None (T_OBJECT)
   rather than missing. */
Py_ssize_t
xt_slot_offset(PyObject *descr, int writable, int *none_if_unset)
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

/* An attribute read through the data descriptor found once on `owner`
   (FastAttr, speedups.h; xt_fast_get reads it) */
int
xt_fast_attr_init(FastAttr *attr, PyObject *owner, const char *name)
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
        attr->offset = xt_slot_offset(descr, 0, &attr->none_if_unset);
        Py_INCREF(owner);
        return 0;
    }
    Py_XDECREF(descr);
    attr->owner = NULL;
    return 0;
}

void
xt_fast_attr_clear(FastAttr *attr)
{
    if (attr->descr != NULL) {
        Py_CLEAR(attr->descr);
        Py_CLEAR(attr->owner);
    }
    Py_CLEAR(attr->name);
}

FastAttr xt_coro_code, xt_coro_frame, xt_coro_await, xt_gen_frame, xt_gen_yieldfrom, xt_frame_code, xt_frame_lasti;  /* set up by module.c */

/* f_lasti of a frame; -1 with an error set on failure */
long
xt_frame_lasti_of(PyObject *frame)
{
#if PY_VERSION_HEX >= 0x030B0000
    if (PyFrame_Check(frame)) {
        return (long)PyFrame_GetLasti((PyFrameObject *)frame);
    }
#endif
    PyObject *value = xt_fast_get(&xt_frame_lasti, frame);
    if (value == NULL) {
        return -1;
    }
    long lasti = PyLong_AsLong(value);
    Py_DECREF(value);
    return lasti;
}

/* The calling thread's dict of the hook state (borrowed): see HookState in speedups.h */
PyObject *
xt_hook_dict(HookState *state)
{
    uint64_t thread = PyThreadState_GetID(PyThreadState_Get());
    if (thread == state->thread && state->dict != NULL) {
        return state->dict;
    }
    PyObject *dict = PyObject_GetAttr(state->local, xt_s_dict);
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
   the ``cur`` property of native.NativeHookState (the module's current_waker
   and set_current_waker: xt_get_current_waker and xt_set_current_waker). */
XT_THREAD_LOCAL unsigned long long xt_current_waker;

PyObject *
xt_get_current_waker(PyObject *module, PyObject *state)
{
    (void)module;
    (void)state;
    return PyLong_FromUnsignedLongLong(xt_current_waker);
}

PyObject *
xt_set_current_waker(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
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
    xt_current_waker = value;
    Py_RETURN_NONE;
}

/* The goroutine the caller runs in, as Registry.current_g gives it: the
   running task's (xt_current_waker names it as a Waker.TASK), else the
   thread's; -1 on error */
int
xt_current_goroutine(PyObject *threads, PyObject *thread_g, uint64_t *g)
{
    if ((xt_current_waker & XT_WAKER_MASK) == XT_WAKER_TASK) {
        *g = xt_current_waker >> XT_WAKER_SHIFT;
        return 0;
    }
    return xt_thread_goroutine(threads, thread_g, g);
}

/* hook_errors.caught, found at the first error */
static PyObject *hook_error_counter;

/* A hook failed: the exception being raised (if any) is counted by
   hook_errors.caught(where, error), then cleared. The program never sees
   it, and the recording reports the count; an error while counting is
   dropped too (never raised). */
void
xt_hook_error(const char *where)
{
    if (!PyErr_Occurred()) {
        return;
    }
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *error = PyErr_GetRaisedException();
#else
    PyObject *type, *error, *traceback;
    PyErr_Fetch(&type, &error, &traceback);
    PyErr_NormalizeException(&type, &error, &traceback);
    Py_XDECREF(type);
    Py_XDECREF(traceback);
#endif
    if (hook_error_counter == NULL) {
        PyObject *module = PyImport_ImportModule("exectracer.record.hook_errors");
        if (module != NULL) {
            hook_error_counter = PyObject_GetAttrString(module, "caught");
            Py_DECREF(module);
        }
    }
    if (hook_error_counter != NULL) {
        PyObject *counted = PyObject_CallFunction(hook_error_counter, "sO", where, error != NULL ? error : Py_None);
        Py_XDECREF(counted);
    }
    PyErr_Clear();
    Py_XDECREF(error);
}

/* Method descriptor plumbing shared by the hook types: bound like a function */
PyObject *
xt_bind(PyObject *self, PyObject *obj, PyObject *type)
{
    (void)type;
    if (obj == NULL || obj == Py_None) {
        return Py_NewRef(self);
    }
    return PyMethod_New(self, obj);
}

/* A hook that replaced an original (its `wrapped`: a function, a builtin, a method descriptor) passes for it,
   as record/stand_in.py says: its __class__ (isinstance), __doc__, repr and any attribute it has not itself
   (__module__, __qualname__, __name__, ...) are the original's, and pickle and copy take it as they take the
   original. Without `wrapped` (an asyncio hook not yet put in place), it is an object of its own type. */
PyObject *
xt_stand_in_getattr(PyObject *self, PyObject *name, PyObject *wrapped)
{
    if (wrapped != NULL && PyUnicode_Check(name)) {
        if (PyUnicode_CompareWithASCIIString(name, "__class__") == 0) {
            return Py_NewRef((PyObject *)Py_TYPE(wrapped));
        }
        if (PyUnicode_CompareWithASCIIString(name, "__doc__") == 0) {  /* not the hook type's own */
            return PyObject_GetAttr(wrapped, name);
        }
    }
    PyObject *found = PyObject_GenericGetAttr(self, name);
    if (found == NULL && wrapped != NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        found = PyObject_GetAttr(wrapped, name);
    }
    return found;
}

PyObject *
xt_stand_in_repr(PyObject *self, PyObject *wrapped)
{
    if (wrapped != NULL) {
        return PyObject_Repr(wrapped);
    }
    return PyUnicode_FromFormat("<%s object at %p>", Py_TYPE(self)->tp_name, self);
}

/* What pickle and copy get from the hook's __reduce_ex__(protocol) (protocol NULL: __reduce__()): what they
   would make of the original. A function or class is taken by its qualified name (which finds the hook while
   it is in place, and the original anywhere else), a builtin or method descriptor by its own reduction. */
PyObject *
xt_stand_in_reduce(PyObject *self, PyObject *wrapped, PyObject *protocol)
{
    if (wrapped == NULL) {
        PyErr_Format(PyExc_TypeError, "cannot pickle '%.200s' object", Py_TYPE(self)->tp_name);
        return NULL;
    }
    if (PyFunction_Check(wrapped) || PyType_Check(wrapped)) {
        return PyObject_GetAttrString(wrapped, "__qualname__");
    }
    PyObject *reduced = protocol == NULL ? PyObject_CallMethod(wrapped, "__reduce__", NULL)
                                         : PyObject_CallMethod(wrapped, "__reduce_ex__", "O", protocol);
    if (reduced == NULL || !PyUnicode_Check(reduced)) {
        return reduced;
    }
    /* a global name ("Loop.call_soon", a Cython method's): pickle would find the name's holder of it, which may be
       this hook, not the original; as getattr(owner, name) it unpickles to the original (stand_in.by_attribute) */
    PyObject *helper = PyImport_ImportModule("exectracer.record.stand_in");
    PyObject *by_attribute = helper == NULL ? NULL : PyObject_CallMethod(helper, "by_attribute", "OO", wrapped, reduced);
    Py_XDECREF(helper);
    Py_DECREF(reduced);
    return by_attribute;
}
