/*
 * What the libFuzzer targets share: reading typed values off the input, a check that
 * aborts (libFuzzer keeps the input that made it), flint's log sent to /dev/null (at
 * debug level, so every message is still formatted), and a scratch directory to run in.
 */
#ifndef FLINT_FUZZ_COMMON_H
#define FLINT_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The input as a stream: reads past its end give zeros. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

uint8_t fin_u8(struct fuzz_in *in);
uint16_t fin_u16(struct fuzz_in *in);
uint32_t fin_u32(struct fuzz_in *in);
uint64_t fin_u64(struct fuzz_in *in);
/* Up to @len bytes into @dst, the rest zeroed. Returns the bytes the input had. */
size_t fin_bytes(struct fuzz_in *in, void *dst, size_t len);
static inline bool fin_empty(const struct fuzz_in *in)
{
	return in->n == 0;
}

/* A property the target checks: on failure, one line naming it, then abort(). */
#define FUZZ_CHECK(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                         \
	} while (0)
void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
        __attribute__((noreturn, format(printf, 4, 5)));

/*
 * Once per process: the log to /dev/null at debug level (FLINT_FUZZ_LOG=1: to stderr), and
 * a scratch directory, a fresh one under /tmp removed at exit.
 */
void fuzz_setup(void);
/* That directory. */
const char *fuzz_dir(void);
/*
 * Into it, around the code under test, so that a relative path an input names finds
 * nothing of the tree's; and back (libFuzzer's own paths are relative to where it runs).
 */
void fuzz_enter_dir(void);
void fuzz_leave_dir(void);
/*
 * The files configs name (kernel_image_path, path_on_host, ...) made there, 4 KiB each,
 * so that parsing goes on past them: the seeds' names (configs/, tests/configs/) and a few
 * short ones a mutation finds easily.
 */
void fuzz_make_files(void);
/* The lowest free file descriptor: the same before and after a run when none leaked. */
int fuzz_lowest_fd(void);

#endif
