# cython: language_level=3
"""glibc's malloc_trim and mallopt, for ``linkplugin.memory``, and Linux's renameat2 with
RENAME_EXCHANGE, for ``linkplugin.elf.write``: called here rather than through ctypes, whose
import and dlopen cost every command about 4 ms (a tenth of a small merge's Python start-up).
Elsewhere than glibc the first two do nothing and ``GLIBC`` is False; elsewhere than Linux
``exchange`` fails with ENOSYS."""
from libc.errno cimport errno
import os

cdef extern from *:
    """
    #if defined(__GLIBC__)
    #include <malloc.h>
    static int lp_trim(void) { return malloc_trim(0); }
    static int lp_mallopt(int param, int value) { return mallopt(param, value); }
    #define LP_GLIBC 1
    #else
    static int lp_trim(void) { return 0; }
    static int lp_mallopt(int param, int value) { (void) param; (void) value; return 0; }
    #define LP_GLIBC 0
    #endif
    """
    int lp_trim() nogil
    int lp_mallopt(int param, int value) nogil
    int LP_GLIBC

cdef extern from *:
    """
    #include <errno.h>
    #if defined(__linux__)
    #include <fcntl.h>
    #include <unistd.h>
    #include <sys/syscall.h>
    #endif
    #if defined(__linux__) && defined(SYS_renameat2)
    static int lp_exchange(const char *a, const char *b) {
        return (int) syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, 2 /* RENAME_EXCHANGE */);
    }
    #else
    static int lp_exchange(const char *a, const char *b) { (void) a; (void) b; errno = ENOSYS; return -1; }
    #endif
    """
    int lp_exchange(const char *a, const char *b) nogil

GLIBC = bool(LP_GLIBC)


def malloc_trim(size_t pad=0) -> int:
    """glibc's malloc_trim(0) (``pad`` is ignored: the callers pass 0)."""
    return lp_trim()


def mallopt(int param, int value) -> int:
    return lp_mallopt(param, value)


def exchange(a: str, b: str) -> None:
    """Swap the names ``a`` and ``b`` (both must exist) in one step; OSError if the system or
    the file system cannot (ENOSYS, EINVAL), or as rename would fail."""
    cdef bytes path_a = os.fsencode(a), path_b = os.fsencode(b)
    cdef const char *ca = path_a
    cdef const char *cb = path_b
    cdef int code = 0
    with nogil:
        if lp_exchange(ca, cb) != 0:
            code = errno  # (read before the GIL is taken again, which may set errno)
    if code != 0:
        raise OSError(code, os.strerror(code), a, None, b)
