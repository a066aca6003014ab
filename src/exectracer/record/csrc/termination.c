/* SIGTERM under `exectracer run`: a handler set at the OS level only (Python's signal module
   still says SIG_DFL, and a handler the program sets replaces it), which puts the default
   action back and tells the runner's thread through a pipe; that thread finishes the trace
   and sends the signal again, so the process dies of it as untraced. */

#include "speedups.h"

#ifndef _WIN32
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t term_fd = -1;  /* the pipe's write end (non-blocking) */
static volatile pid_t term_pid = 0;         /* the process that set it: a forked child dies as untraced */

static void
set_default(int signum)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    sigaction(signum, &action, NULL);
}

/* Async-signal-safe: sigaction, getpid, write and kill only. A second SIGTERM kills at once. */
static void
on_term(int signum)
{
    int saved = errno;
    set_default(signum);
    unsigned char byte = (unsigned char)signum;
    if (getpid() != term_pid || term_fd < 0 || write(term_fd, &byte, 1) != 1) {
        kill(getpid(), signum);  /* nobody to tell: die now, of the default action */
    }
    errno = saved;
}

static int
handler_is(void (*handler)(int))
{
    struct sigaction current;
    return sigaction(SIGTERM, NULL, &current) == 0 && !(current.sa_flags & SA_SIGINFO) && current.sa_handler == handler;
}

PyObject *
xt_term_notify(PyObject *module, PyObject *fd_object)
{
    (void)module;
    long fd = PyLong_AsLong(fd_object);
    if (fd == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (fd < 0 || fd > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "term_notify: a file descriptor is needed");
        return NULL;
    }
    if (!handler_is(SIG_DFL)) {
        Py_RETURN_FALSE;
    }
    term_pid = getpid();
    term_fd = (int)fd;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_term;
    action.sa_flags = SA_RESTART;  /* the program's calls are not interrupted by it */
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGTERM, &action, NULL) != 0) {
        term_fd = -1;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_TRUE;
}

/* Whether a signal's action restarts the calls it interrupts (SA_RESTART: signal.siginterrupt(signum, False)),
   which Python's signal.signal clears: whoever swaps a handler and puts it back puts the flag back too */
PyObject *
xt_signal_restarts(PyObject *module, PyObject *signum_object)
{
    (void)module;
    long signum = PyLong_AsLong(signum_object);
    if (signum == -1 && PyErr_Occurred()) {
        return NULL;
    }
    struct sigaction current;
    if (signum < 1 || signum > INT32_MAX || sigaction((int)signum, NULL, &current) != 0) {
        errno = EINVAL;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyBool_FromLong((current.sa_flags & SA_RESTART) != 0);
}

PyObject *
xt_term_release(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    if (handler_is(on_term)) {
        set_default(SIGTERM);
    }
    term_fd = -1;
    Py_RETURN_NONE;
}
#endif
