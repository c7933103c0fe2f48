/* flint: command line, config, then hand over to vmm_run(). */
#include "vmm/base/clock.h"
#include "vmm/config/config.h"
#include "vmm/exitcode.h"
#include "vmm/base/log.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef FLINT_VERSION
#define FLINT_VERSION "0.0.0-dev"
#endif

struct cli {
	const char *config;
	const char *log_file;
	bool level_set;
	enum log_level level;
	bool dry_run;
	long exit_port; /* --exit-port, or -1 */
	struct run_opts run;
};

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: flint --config-file FILE [options]\n"
	        "\n"
	        "  -c, --config-file FILE  VM config (Firecracker JSON schema); alias --config\n"
	        "  -n, --dry-run           validate the config, print the resolved VM, exit\n"
	        "  -l, --log-level LEVEL   error | warn | info | debug (default info)\n"
	        "  -L, --log-file FILE     log there instead of stderr\n"
	        "  -t, --timeout SECONDS   stop the guest after SECONDS and exit 124\n"
	        "  -s, --serial-log FILE   also write the guest console to FILE\n"
	        "      --no-console        do not write the guest console to stdout\n"
	        "      --exit-port PORT    turn on the CI exit port (isa-debug-exit) at PORT,\n"
	        "                          e.g. 0xf4; it is off unless asked for\n"
	        "  -V, --version           print the version and exit\n"
	        "  -h, --help              this text\n"
	        "\n"
	        "Exit codes: 0 guest shut down, 64 usage, 70 internal error, 78 config error,\n"
	        "80 guest crashed, 124 timeout, 130/143 SIGINT/SIGTERM, odd codes from the\n"
	        "guest's CI exit port ((value << 1) | 1).\n");
}

static int parse_timeout(const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v > 0) || v > 1e7)
		return -1;
	*out = v;
	return 0;
}

static int parse_port(const char *s, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (end == s || *end || errno || v < 1 || v > 0xffff)
		return -1;
	*out = v;
	return 0;
}

/* The command line's --exit-port wins over the config's flint.ci.exit_port. */
static int apply_exit_port(const struct cli *cli, struct vm_config *cfg)
{
	const char *clash;

	if (cli->exit_port < 0)
		return -1;
	clash = config_exit_port_clash((uint64_t)cli->exit_port, cfg->ci.exit_port_size);
	if (clash) {
		log_error("--exit-port %#lx: ports %#lx-%#lx run into %s", cli->exit_port,
		          cli->exit_port, cli->exit_port + cfg->ci.exit_port_size - 1, clash);
		return FLINT_EXIT_USAGE;
	}
	cfg->ci.exit_port_enabled = true;
	cfg->ci.exit_port = (uint16_t)cli->exit_port;
	return -1;
}

/* Returns -1 to continue, or the exit code to leave with. */
static int parse_cli(int argc, char **argv, struct cli *cli)
{
	enum { OPT_NO_CONSOLE = 256, OPT_EXIT_PORT };
	static const struct option opts[] = {
		{ "config-file", required_argument, NULL, 'c' },
		{ "config", required_argument, NULL, 'c' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "log-file", required_argument, NULL, 'L' },
		{ "timeout", required_argument, NULL, 't' },
		{ "serial-log", required_argument, NULL, 's' },
		{ "no-console", no_argument, NULL, OPT_NO_CONSOLE },
		{ "exit-port", required_argument, NULL, OPT_EXIT_PORT },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:nl:L:t:s:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cli->config = optarg;
			break;
		case 'n':
			cli->dry_run = true;
			break;
		case 'l':
			if (log_level_parse(optarg, &cli->level) < 0) {
				fprintf(stderr,
				        "flint: --log-level: \"%s\" is not one of error, warn, "
				        "info, debug\n",
				        MSG_ESC(optarg));
				return FLINT_EXIT_USAGE;
			}
			cli->level_set = true;
			break;
		case 'L':
			cli->log_file = optarg;
			break;
		case 't':
			if (parse_timeout(optarg, &cli->run.timeout_s) < 0) {
				fprintf(stderr,
				        "flint: --timeout: \"%s\" is not a positive number of "
				        "seconds\n",
				        MSG_ESC(optarg));
				return FLINT_EXIT_USAGE;
			}
			break;
		case 's':
			cli->run.serial_log = optarg;
			break;
		case OPT_NO_CONSOLE:
			cli->run.console_stdout = false;
			break;
		case OPT_EXIT_PORT:
			if (parse_port(optarg, &cli->exit_port) < 0) {
				fprintf(stderr, "flint: --exit-port: \"%s\" is not a port number 1-0xffff\n",
				        MSG_ESC(optarg));
				return FLINT_EXIT_USAGE;
			}
			break;
		case 'V':
			printf("flint %s\n", FLINT_VERSION);
			return FLINT_EXIT_OK;
		case 'h':
			usage(stdout);
			return FLINT_EXIT_OK;
		case ':':
			fprintf(stderr, "flint: %s needs a value\n", MSG_ESC(argv[optind - 1]));
			usage(stderr);
			return FLINT_EXIT_USAGE;
		default:
			fprintf(stderr, "flint: unknown option %s\n", MSG_ESC(argv[optind - 1]));
			usage(stderr);
			return FLINT_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "flint: unexpected argument \"%s\"\n", MSG_ESC(argv[optind]));
		return FLINT_EXIT_USAGE;
	}
	if (!cli->config) {
		fprintf(stderr, "flint: --config-file is required\n");
		usage(stderr);
		return FLINT_EXIT_USAGE;
	}
	return -1;
}

/*
 * The config's logger section applies unless the command line said otherwise. Returns -1,
 * or the exit code to leave with: a log file that cannot be used is the fault of whoever
 * named it, the command line or the config.
 */
static int apply_logging(const struct cli *cli, const struct vm_config *cfg)
{
	const char *file = cli->log_file ? cli->log_file : cfg->logger.path;
	enum log_level level = LOG_INFO;
	char why[160];

	if (cli->level_set)
		level = cli->level;
	else if (cfg->logger.level) {
		const char *l = cfg->logger.level;
		level = !strcmp(l, "Error") || !strcmp(l, "Off") ? LOG_ERROR
		        : !strcmp(l, "Warning")                  ? LOG_WARN
		        : !strcmp(l, "Info")                     ? LOG_INFO
		                                                 : LOG_DEBUG;
	}
	log_set_level(level);
	if (!file || log_set_file(file, why, sizeof(why)) == 0)
		return -1;
	if (cli->log_file) {
		log_error("--log-file %s: %s", MSG_ESC(file), why);
		return FLINT_EXIT_USAGE;
	}
	log_error("%s: logger.log_path: %s: %s", MSG_ESC(cli->config), MSG_ESC(file), why);
	return FLINT_EXIT_CONFIG;
}

int main(int argc, char **argv)
{
	struct cli cli = { .exit_port = -1, .run = { .console_stdout = true } };
	struct vm_config cfg;
	char err[1024];
	int code;

	cli.run.start_ns = clock_now_ns();
	/* A closed console pipe must be an error on write, not the end of the VM. */
	signal(SIGPIPE, SIG_IGN);
	code = parse_cli(argc, argv, &cli);
	if (code >= 0)
		return code;
	if (cli.level_set)
		log_set_level(cli.level);
	if (config_load(cli.config, &cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return FLINT_EXIT_CONFIG;
	}
	code = apply_logging(&cli, &cfg);
	if (code < 0)
		code = apply_exit_port(&cli, &cfg);
	if (code >= 0) {
		config_free(&cfg);
		return code;
	}
	if (cli.dry_run) {
		char *text = NULL;
		code = vmm_check(&cfg);
		if (!code) {
			text = config_describe(&cfg);
			code = text ? FLINT_EXIT_OK : FLINT_EXIT_INTERNAL;
		}
		if (text)
			printf("%s\n", text);
		free(text);
	} else {
		code = vmm_run(&cfg, &cli.run);
	}
	config_free(&cfg);
	log_close();
	return code;
}
