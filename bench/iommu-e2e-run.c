/*
 * L1 side of bench/iommu-e2e.sh: runs one VMM and times exec -> the first guest console
 * line holding MARKER (the L2 guest prints it the moment its first edu DMA is verified).
 *
 *   iommu-e2e-run LOG TIMEOUT_S MARKER -- COMMAND [ARG...]
 *
 * The command's stdout (the guest console) goes through a pipe to this program, which
 * copies it to LOG and looks at it line by line; stderr goes to LOG.err, stdin is
 * /dev/null. After the marker the VMM is left to end by itself (the guest writes the exit
 * port); it is killed when TIMEOUT_S runs out. Prints one line:
 *   e2e_ms=M exit_ms=X status=S
 * e2e_ms: CLOCK_MONOTONIC from just before fork() to reading the marker line (-1: never);
 * exit_ms: to wait4() returning; status: exit code, or 128+signal.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	char errpath[4096], line[8192], buf[4096];
	size_t used = 0;
	double t0, marker = -1, limit;
	int p[2], status = 0, log, killed = 0;
	pid_t pid;

	if (argc < 6 || strcmp(argv[4], "--") != 0) {
		fprintf(stderr, "usage: iommu-e2e-run LOG TIMEOUT_S MARKER -- COMMAND [ARG...]\n");
		return 125;
	}
	limit = atof(argv[2]) * 1e3;
	snprintf(errpath, sizeof(errpath), "%s.err", argv[1]);
	log = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (log < 0 || pipe(p)) {
		perror("iommu-e2e-run");
		return 125;
	}
	t0 = now_ms();
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 125;
	}
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY),
		    err = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (in < 0 || err < 0 || dup2(in, 0) < 0 || dup2(p[1], 1) < 0 || dup2(err, 2) < 0)
			_exit(126);
		close(p[0]);
		execvp(argv[5], argv + 5);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		double left = limit - (now_ms() - t0);
		ssize_t n;

		if (left <= 0) {
			kill(pid, SIGKILL);
			killed = 1;
			break;
		}
		if (poll(&pfd, 1, (int)left + 1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (!pfd.revents)
			continue;
		n = read(p[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (write(log, buf, (size_t)n) != n)
			break;
		for (ssize_t i = 0; i < n && marker < 0; i++) {
			if (buf[i] == '\n' || used == sizeof(line) - 1) {
				line[used] = 0;
				if (strstr(line, argv[3]))
					marker = now_ms() - t0;
				used = 0;
			} else {
				line[used++] = buf[i];
			}
		}
	}
	/* Pipe closed but the VMM still up (or killed above): give it the rest of the limit. */
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (!killed && now_ms() - t0 > limit) {
			kill(pid, SIGKILL);
			killed = 1;
		}
		usleep(10000);
	}
	printf("e2e_ms=%.1f exit_ms=%.1f status=%d\n", marker, now_ms() - t0,
	       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return 0;
}
