/*
 * Opening the files a config or the command line names, so that no name can hang flint or
 * feed it without end: a FIFO or device where a file is expected is refused (never waited
 * on), and the check is an fstat of the very fd the caller goes on to use, so nothing can
 * be swapped in between a check and an open. Knows nothing of VMs.
 */
#ifndef FLINT_FILE_H
#define FLINT_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The kinds of file a caller accepts; a symlink counts as what it points to. */
#define FILE_REG  (1u << 0) /* regular file */
#define FILE_BLK  (1u << 1) /* block device */
#define FILE_CHR  (1u << 2) /* character device: /dev/null, a tty */
#define FILE_FIFO (1u << 3) /* for writing only: one with no reader is an error, not a wait */

/*
 * Opens @path with @flags (O_RDONLY, O_RDWR, or O_WRONLY plus O_CREAT, O_APPEND, O_TRUNC)
 * and checks that it is one of @kinds and, when @max_bytes is not 0, that a regular file
 * is no larger. O_CREAT makes a missing file (0644), but never through a symlink.
 * Returns the fd (close-on-exec; blocking, except a FIFO: a reader that stops reading
 * must not stall flint) or -errno with the reason, fit for "<name>: <why>", in @why:
 * -EINVAL for a kind not in @kinds, -EFBIG for a file over @max_bytes, -ENXIO for a FIFO
 * with no reader, -ELOOP for a symlink to nothing where a file would be made.
 */
int file_open(const char *path, int flags, unsigned kinds, uint64_t max_bytes, char *why,
              size_t whylen);

/*
 * Reads the regular file @fd from offset 0 to its end into a fresh buffer (NUL-terminated
 * past *len). Returns 0, -EFBIG when it holds more than @max bytes (it grew after the
 * check), or -errno.
 */
int file_read_all(int fd, size_t max, uint8_t **buf, size_t *len);

/*
 * For output flint must never wait on (the console, the log): an fd whose writes to what
 * @fd refers to cannot block. @fd itself for a regular file or block device; for a pipe,
 * FIFO, terminal or other character device a description of flint's own, opened with
 * O_NONBLOCK through /proc, so a shell sharing @fd's description never finds it
 * non-blocking. For a socket, *@sock is set and @fd is returned: send() it MSG_DONTWAIT.
 * Returns the fd (the caller closes it when it is not @fd) or -errno (-EBADF: @fd is not
 * open; -ENOENT and others: no /proc, the caller decides).
 */
int file_nonblocking_writer(int fd, bool *sock);

#endif
