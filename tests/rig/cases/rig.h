/* Small helpers shared by the rig cases (static programs that /init runs
 * inside the L1 kernel, prefixing their output with the case name). A case
 * exits 0 on success; on failure it prints one line saying why and exits 1.
 * /init prints the PASS/FAIL line itself. */
#ifndef FLINT_RIG_H
#define FLINT_RIG_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noreturn, format(printf, 4, 5))) static inline void
rig_failf(const char *file, int line, const char *what, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "FAIL at %s:%d: ", file, line);
    if (what)
        fprintf(stderr, "%s: ", what);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

#define rig_fail(...) rig_failf(__FILE__, __LINE__, NULL, __VA_ARGS__)

/* CHECK_SYS(expr): expr is a syscall-like call returning -1 + errno on error;
 * evaluates to its result. */
#define CHECK_SYS(expr)                                                       \
    ({                                                                        \
        long rig_rc_ = (long)(expr);                                          \
        if (rig_rc_ == -1)                                                    \
            rig_failf(__FILE__, __LINE__, #expr, "%s", strerror(errno));      \
        rig_rc_;                                                              \
    })

/* CHECK(cond, fmt, ...): fail with the condition's text and a message. */
#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond))                                                          \
            rig_failf(__FILE__, __LINE__, #cond, __VA_ARGS__);                \
    } while (0)

/* Progress/result lines; flushed so they interleave sanely with stderr. */
#define rig_info(...)                                                         \
    do {                                                                      \
        printf(__VA_ARGS__);                                                  \
        putchar('\n');                                                        \
        fflush(stdout);                                                       \
    } while (0)

#endif
