# cython: language_level=3
"""glibc's malloc_trim and mallopt, for ``linkplugin.memory``: called here rather than through
ctypes, whose import and dlopen cost every command about 4 ms (a tenth of a small merge's
Python start-up). Elsewhere than glibc both do nothing and ``GLIBC`` is False."""

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

GLIBC = bool(LP_GLIBC)


def malloc_trim(size_t pad=0) -> int:
    """glibc's malloc_trim(0) (``pad`` is ignored: the callers pass 0)."""
    return lp_trim()


def mallopt(int param, int value) -> int:
    return lp_mallopt(param, value)
