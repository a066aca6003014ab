/* The tables keyed by addresses: PtrMap (an object's address -> a 64-bit
   value), TaskIds (the registry's id(task) -> goroutine map, a PtrMap
   Python reads like a dict), and the chain table (a run of machine words ->
   a code: await chains, builtin callbacks' names, wait stacks). Their types
   and the chain table's lookup are in speedups.h. */

#include "speedups.h"

/* ------------------------------------------------------------------ PtrMap */

/* The slot of `key`, or of the slot where it would go; -1 if the map is empty */
static Py_ssize_t
ptr_map_slot(PtrMap *map, uintptr_t key, int for_insert)
{
    if (map->capacity == 0) {
        return -1;
    }
    Py_ssize_t mask = map->capacity - 1, reuse = -1;
    for (Py_ssize_t i = (Py_ssize_t)(xt_mix(key) & (uint64_t)mask);; i = (i + 1) & mask) {
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

int
xt_ptr_map_lookup(PtrMap *map, uintptr_t key, uint64_t *value)
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
int
xt_ptr_map_store(PtrMap *map, uintptr_t key, uint64_t value)
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

int
xt_ptr_map_remove(PtrMap *map, uintptr_t key, uint64_t *value)
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

void
xt_ptr_map_free(PtrMap *map)
{
    PyMem_Free(map->keys);
    PyMem_Free(map->values);
    map->keys = NULL;
    map->values = NULL;
    map->capacity = map->used = map->filled = 0;
}

/* ------------------------------------------------------------------ TaskIds */

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
    if (xt_ptr_map_lookup(&self->map, key, &value)) {
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
    if (xt_ptr_map_remove(&self->map, key, &value)) {
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
    if (!xt_ptr_map_lookup(&self->map, key, &value)) {
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
        if (!xt_ptr_map_remove(&self->map, key, &value)) {
            PyErr_SetObject(PyExc_KeyError, key_object);
            return -1;
        }
        return 0;
    }
    value = PyLong_AsUnsignedLongLong(value_object);
    if (value == (uint64_t)-1 && PyErr_Occurred()) {
        return -1;
    }
    return xt_ptr_map_store(&self->map, key, value);
}

static int
task_ids_contains(TaskIds *self, PyObject *key_object)
{
    uintptr_t key;
    uint64_t value;
    if (task_ids_key(key_object, &key) < 0) {
        return -1;
    }
    return xt_ptr_map_lookup(&self->map, key, &value);
}

static Py_ssize_t
task_ids_len(TaskIds *self)
{
    return self->map.used;
}

static void
task_ids_dealloc(TaskIds *self)
{
    xt_ptr_map_free(&self->map);
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

PyTypeObject xt_TaskIdsType = {
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
void
xt_chain_insert(ChainTable *table, const uintptr_t *parts, Py_ssize_t n, uint64_t hash, uint64_t code)
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

void
xt_chain_table_free(ChainTable *table)
{
    for (Py_ssize_t i = 0; i < table->capacity; i++) {
        PyMem_Free(table->entries[i].parts);
    }
    PyMem_Free(table->entries);
    table->entries = NULL;
    table->capacity = table->used = 0;
}
