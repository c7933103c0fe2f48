/* flint's process exit codes: stable, documented in README.md. */
#ifndef FLINT_EXITCODE_H
#define FLINT_EXITCODE_H

enum flint_exit {
	FLINT_EXIT_OK = 0,           /* guest powered off / rebooted, or --dry-run succeeded */
	FLINT_EXIT_USAGE = 64,       /* bad command line (EX_USAGE) */
	FLINT_EXIT_INTERNAL = 70,    /* flint or host failure (EX_SOFTWARE) */
	FLINT_EXIT_CONFIG = 78,      /* configuration error (EX_CONFIG) */
	FLINT_EXIT_GUEST_CRASH = 80, /* triple fault, internal KVM error, unexpected exit */
	FLINT_EXIT_TIMEOUT = 124,    /* --timeout expired, as timeout(1) */
	FLINT_EXIT_SIGINT = 130,     /* 128 + SIGINT */
	FLINT_EXIT_SIGTERM = 143,    /* 128 + SIGTERM */
	/* A thread made a call its seccomp filter refuses (Firecracker's code for it). */
	FLINT_EXIT_BAD_SYSCALL = 148,
};

#endif
