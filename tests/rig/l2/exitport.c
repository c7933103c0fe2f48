/* L2 helper: write a byte to the CI exit port (isa-debug-exit compatible) and end the VM. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/io.h>

int main(int argc, char **argv)
{
	unsigned long port = 0xf4;
	long v;

	if (argc < 2) {
		fprintf(stderr, "usage: exitport VALUE [PORT]\n");
		return 2;
	}
	v = strtol(argv[1], NULL, 0);
	if (argc > 2)
		port = strtoul(argv[2], NULL, 0);
	if (ioperm(port, 1, 1) < 0) {
		perror("ioperm");
		return 1;
	}
	outb((unsigned char)v, (unsigned short)port);
	/* Only reached when no VMM listens on the port. */
	fprintf(stderr, "exitport: still running after writing %ld to port %#lx\n", v, port);
	return 1;
}
