/*
 * The command line. Firecracker's flags are those of its src/firecracker/src/main.rs;
 * the rules between them (--no-api requires --config-file, --seccomp-filter and
 * --no-seccomp exclude each other) are its ArgParser's. Every error is one line on stderr
 * and exit 64: logging is not set up yet.
 */
#include "vmm/cli.h"
#include "vmm/mmds/mmds.h"
#include "vmm/base/file.h"
#include "vmm/caps.h"
#include "vmm/base/exitcode.h"
#include "vmm/jail.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef FLINT_VERSION
#define FLINT_VERSION "0.0.0-dev"
#endif

enum {
	OPT_NO_CONSOLE = 256,
	OPT_EXIT_PORT,
	OPT_UID,
	OPT_GID,
	OPT_SECCOMP,
	OPT_API_SOCK,
	OPT_NO_API,
	OPT_ID,
	OPT_BOOT_TIMER,
	OPT_METADATA,
	OPT_LEVEL,
	OPT_SHOW_LEVEL,
	OPT_SHOW_LOG_ORIGIN,
	OPT_MODULE,
	OPT_METRICS_PATH,
	OPT_NO_SECCOMP,
	OPT_SECCOMP_FILTER,
	OPT_MAX_PAYLOAD,
	OPT_MMDS_SIZE_LIMIT,
	OPT_START_TIME_US,
	OPT_START_TIME_CPU_US,
	OPT_PARENT_CPU_TIME_US,
	OPT_ENABLE_PCI,
	OPT_SNAPSHOT_VERSION,
	OPT_DESCRIBE_SNAPSHOT,
	OPT_CHROOT,
	OPT_CGROUP,
	OPT_CGROUP_SET,
	OPT_RESOURCE_LIMIT,
};

static const struct option options[] = {
	/* flint's */
	{ "config-file", required_argument, NULL, 'c' },
	{ "config", required_argument, NULL, 'c' },
	{ "dry-run", no_argument, NULL, 'n' },
	{ "log-level", required_argument, NULL, 'l' },
	{ "log-file", required_argument, NULL, 'L' },
	{ "timeout", required_argument, NULL, 't' },
	{ "serial-log", required_argument, NULL, 's' },
	{ "no-console", no_argument, NULL, OPT_NO_CONSOLE },
	{ "exit-port", required_argument, NULL, OPT_EXIT_PORT },
	{ "uid", required_argument, NULL, OPT_UID },
	{ "gid", required_argument, NULL, OPT_GID },
	{ "seccomp", required_argument, NULL, OPT_SECCOMP },
	{ "chroot", required_argument, NULL, OPT_CHROOT },
	{ "cgroup", required_argument, NULL, OPT_CGROUP },
	{ "cgroup-set", required_argument, NULL, OPT_CGROUP_SET },
	{ "resource-limit", required_argument, NULL, OPT_RESOURCE_LIMIT },
	{ "version", no_argument, NULL, 'V' },
	{ "help", no_argument, NULL, 'h' },
	/* Firecracker's (--config-file, --version and --help are above) */
	{ "api-sock", required_argument, NULL, OPT_API_SOCK },
	{ "no-api", no_argument, NULL, OPT_NO_API },
	{ "id", required_argument, NULL, OPT_ID },
	{ "boot-timer", no_argument, NULL, OPT_BOOT_TIMER },
	{ "metadata", required_argument, NULL, OPT_METADATA },
	{ "log-path", required_argument, NULL, 'L' },
	{ "level", required_argument, NULL, OPT_LEVEL },
	{ "show-level", no_argument, NULL, OPT_SHOW_LEVEL },
	{ "show-log-origin", no_argument, NULL, OPT_SHOW_LOG_ORIGIN },
	{ "module", required_argument, NULL, OPT_MODULE },
	{ "metrics-path", required_argument, NULL, OPT_METRICS_PATH },
	{ "no-seccomp", no_argument, NULL, OPT_NO_SECCOMP },
	{ "seccomp-filter", required_argument, NULL, OPT_SECCOMP_FILTER },
	{ "http-api-max-payload-size", required_argument, NULL, OPT_MAX_PAYLOAD },
	{ "mmds-size-limit", required_argument, NULL, OPT_MMDS_SIZE_LIMIT },
	{ "start-time-us", required_argument, NULL, OPT_START_TIME_US },
	{ "start-time-cpu-us", required_argument, NULL, OPT_START_TIME_CPU_US },
	{ "parent-cpu-time-us", required_argument, NULL, OPT_PARENT_CPU_TIME_US },
	{ "enable-pci", no_argument, NULL, OPT_ENABLE_PCI },
	{ "snapshot-version", no_argument, NULL, OPT_SNAPSHOT_VERSION },
	{ "describe-snapshot", required_argument, NULL, OPT_DESCRIBE_SNAPSHOT },
	{ NULL, 0, NULL, 0 },
};

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: flint --config-file FILE [options]\n"
	        "\n"
	        "  -c, --config-file FILE  VM config (Firecracker JSON schema); alias --config\n"
	        "  -n, --dry-run           validate the config, print the resolved VM, exit\n"
	        "  -l, --log-level LEVEL   error, warn, info (default), debug, trace or off;\n"
	        "                          alias --level (Firecracker's Error, Warning, ...)\n"
	        "  -L, --log-file FILE     log there instead of stderr; alias --log-path\n"
	        "  -t, --timeout SECONDS   stop the guest after SECONDS and exit 124\n"
	        "  -s, --serial-log FILE   also write the guest console to FILE\n"
	        "      --no-console        do not write the guest console to stdout\n"
	        "      --exit-port PORT    turn on the CI exit port (isa-debug-exit) at PORT,\n"
	        "                          e.g. 0xf4; it is off unless asked for\n"
	        "      --uid UID --gid GID become this user and group (numbers) once the VM's\n"
	        "                          files and devices are open; capabilities are\n"
	        "                          dropped then in any case\n"
	        "      --seccomp MODE      on (default): each thread's seccomp allow-list, a\n"
	        "                          refused call ends flint with 148; log: the kernel\n"
	        "                          logs refused calls and they go on; off: none\n"
	        "      --chroot DIR        jail: new PID, mount, IPC and UTS namespaces (flint\n"
	        "                          forks; the parent waits), DIR the root once the VM's\n"
	        "                          files are open; the API socket's and vsock uds_path's\n"
	        "                          directories are bound in at the same path\n"
	        "      --cgroup PATH       jail: run in this cgroup v2 (under /sys/fs/cgroup,\n"
	        "                          made if missing)\n"
	        "      --cgroup-set FILE=VALUE  jail: write VALUE to the cgroup's FILE, e.g.\n"
	        "                          cpu.max=\"50000 100000\" or memory.max=1G (repeatable)\n"
	        "      --resource-limit NAME=VALUE  jail: fsize or no-file (default 2048), as the\n"
	        "                          jailer's; core is always 0\n"
	        "  -V, --version           print the version and exit\n"
	        "  -h, --help              this text\n"
	        "\n"
	        "Firecracker's flags, taken as Firecracker takes them:\n"
	        "  --id ID  --boot-timer  --show-level  --metadata FILE  --metrics-path FILE\n"
	        "  --no-seccomp  --seccomp-filter FILE  --http-api-max-payload-size BYTES\n"
	        "  --mmds-size-limit BYTES  --start-time-us US  --start-time-cpu-us US\n"
	        "  --parent-cpu-time-us US  --api-sock PATH  --no-api (needs --config-file)\n"
	        "Without --config-file flint serves Firecracker's API on --api-sock "
	        "(default\n" CLI_DEFAULT_API_SOCK
	        "); with both, it runs the file's VM and serves the API.\n"
	        "--no-seccomp is --seccomp off; --seccomp-filter FILE is checked, and flint\n"
	        "keeps its own filters (Firecracker's compiled format is for its threads).\n"
	        "Not supported yet: --module, --show-log-origin, --enable-pci,\n"
	        "--snapshot-version, --describe-snapshot.\n"
	        "\n"
	        "Exit codes: 0 guest shut down, 64 usage, 70 internal error, 78 config error,\n"
	        "80 guest crashed, 124 timeout, 130/143 SIGINT/SIGTERM, 148 a system call\n"
	        "refused by seccomp, odd codes from the guest's CI exit port ((value << 1) | "
	        "1).\n");
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("flint: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return FLINT_EXIT_USAGE;
}

/*
 * FLINT_VERSION as semver build metadata: dot-separated non-empty identifiers of
 * [0-9A-Za-z-]; anything else becomes '-'.
 */
static void build_metadata(char *out, size_t len)
{
	size_t n = 0;

	for (const char *p = FLINT_VERSION; *p && n + 1 < len; p++) {
		if (*p == '.' && (n == 0 || out[n - 1] == '.' || !p[1]))
			continue;
		out[n++] = isalnum((unsigned char)*p) || *p == '.' ? *p : '-';
	}
	out[n] = 0;
}

/*
 * Tools read Firecracker's version from the first line, "Firecracker vX.Y.Z": Kata takes
 * its second space-separated word without the "v" and parses it as semver, others match
 * "Firecracker v(\d+)\.(\d+)\.(\d+)". "vX.Y.Z+flint.<version>" is semver with build
 * metadata, so every one of them reads X.Y.Z, and the line still says it is flint.
 */
static void print_version(void)
{
	char meta[128];

	build_metadata(meta, sizeof(meta));
	printf("Firecracker v%s+flint.%s\n\nflint %s, a microVM monitor that takes Firecracker "
	       "v%s's command line and config file\n",
	       CLI_FIRECRACKER_VERSION, meta, FLINT_VERSION, CLI_FIRECRACKER_VERSION);
}

/* A decimal count as Rust's str::parse::<u64> reads it: digits, an optional '+' first. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	const char *d = *s == '+' ? s + 1 : s;
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)*d))
		return -1;
	errno = 0;
	v = strtoull(d, &end, 10);
	if (*end || errno || v > max)
		return -1;
	*out = v;
	return 0;
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

/* Firecracker's validate_instance_id(), with ASCII letters and digits. */
static int check_id(const char *id)
{
	size_t len = strlen(id);

	if (len < 1 || len > CLI_ID_MAX)
		return usage_error("--id: %zu bytes; an id has 1 to %d", len, CLI_ID_MAX);
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)id[i]) && id[i] != '-')
			return usage_error("--id \"%s\": the character at position %zu is not a "
			                   "letter, a digit or '-'",
			                   MSG_ESC(id), i);
	return -1;
}

static int level_opt(struct cli *cli, const char *flag, const char *arg)
{
	if (log_level_parse(arg, &cli->level) < 0)
		return usage_error("%s: \"%s\" is not one of error, warn (warning), info, debug, "
		                   "trace, off (any case)",
		                   flag, MSG_ESC(arg));
	cli->level_set = true;
	return -1;
}

static int size_opt(const char *flag, const char *arg, size_t *out)
{
	uint64_t v;

	if (parse_u64(arg, SIZE_MAX, &v) < 0)
		return usage_error("%s: \"%s\" is not a number of bytes", flag, MSG_ESC(arg));
	*out = (size_t)v;
	return -1;
}

static int time_opt(const char *flag, const char *arg, struct cli_time *t)
{
	if (parse_u64(arg, UINT64_MAX, &t->us) < 0)
		return usage_error("%s: \"%s\" is not a number of microseconds", flag,
		                   MSG_ESC(arg));
	t->set = true;
	return -1;
}

static int not_yet(const char *flag, const char *why)
{
	return usage_error("%s: not supported yet (%s)", flag, why);
}

/* --uid, --gid: numbers, as the jailer takes them (no name lookup in a jail). */
static int id_opt(struct cli *cli, bool uid, const char *arg)
{
	if (caps_parse_id(arg, uid ? &cli->run.run_as.uid : &cli->run.run_as.gid) < 0)
		return usage_error("--%s: \"%s\" is not a %s id (a number 0-4294967294)",
		                   uid ? "uid" : "gid", MSG_ESC(arg), uid ? "user" : "group");
	if (uid)
		cli->uid_set = true;
	else
		cli->gid_set = true;
	return -1;
}

/* Firecracker's flags that take a value. */
static int firecracker_value(struct cli *cli, int opt, const char *arg)
{
	switch (opt) {
	case OPT_API_SOCK:
		cli->api_sock = arg;
		return -1;
	case OPT_ID:
		cli->id = arg;
		return check_id(arg);
	case OPT_METADATA:
		cli->metadata_path = arg;
		return -1;
	case OPT_LEVEL:
		return level_opt(cli, "--level", arg);
	case OPT_METRICS_PATH:
		cli->metrics_path = arg;
		return -1;
	case OPT_SECCOMP_FILTER:
		cli->seccomp_filter = arg;
		return -1;
	case OPT_MAX_PAYLOAD:
		return size_opt("--http-api-max-payload-size", arg, &cli->max_payload);
	case OPT_MMDS_SIZE_LIMIT:
		cli->mmds_size_limit_set = true;
		return size_opt("--mmds-size-limit", arg, &cli->mmds_size_limit);
	case OPT_START_TIME_US:
		return time_opt("--start-time-us", arg, &cli->start_time);
	case OPT_START_TIME_CPU_US:
		return time_opt("--start-time-cpu-us", arg, &cli->start_time_cpu);
	case OPT_PARENT_CPU_TIME_US:
		return time_opt("--parent-cpu-time-us", arg, &cli->parent_cpu_time);
	case OPT_MODULE:
		return not_yet("--module", "flint has no Rust module paths to filter by");
	case OPT_DESCRIBE_SNAPSHOT:
		return not_yet("--describe-snapshot", "flint has no snapshots");
	}
	return usage_error("internal error: option %d", opt);
}

/* Firecracker's flags that take none. */
static int firecracker_flag(struct cli *cli, int opt, const char *arg)
{
	switch (opt) {
	case OPT_NO_API:
		cli->no_api = true;
		return -1;
	case OPT_BOOT_TIMER:
		cli->boot_timer = true;
		return -1;
	case OPT_SHOW_LEVEL:
		cli->show_level = true;
		return -1;
	case OPT_NO_SECCOMP:
		cli->no_seccomp = true;
		return -1;
	case OPT_SHOW_LOG_ORIGIN:
		return not_yet("--show-log-origin", "flint's log lines do not carry their origin");
	case OPT_ENABLE_PCI:
		return not_yet("--enable-pci", "flint's virtio devices are virtio-mmio");
	case OPT_SNAPSHOT_VERSION:
		return not_yet("--snapshot-version", "flint has no snapshots");
	}
	return firecracker_value(cli, opt, arg);
}

static int jail_opt(struct cli *cli, int opt, const char *arg);

/* flint's own options. */
static int flint_opt(struct cli *cli, int opt, const char *arg)
{
	switch (opt) {
	case 'c':
		cli->config = arg;
		return -1;
	case 'n':
		cli->dry_run = true;
		return -1;
	case 'l':
		return level_opt(cli, "--log-level", arg);
	case 'L':
		cli->log_file = arg;
		return -1;
	case 't':
		if (parse_timeout(arg, &cli->run.timeout_s) < 0)
			return usage_error("--timeout: \"%s\" is not a positive number of seconds",
			                   MSG_ESC(arg));
		return -1;
	case 's':
		cli->run.serial_log = arg;
		return -1;
	case OPT_NO_CONSOLE:
		cli->run.console_stdout = false;
		return -1;
	case OPT_EXIT_PORT:
		if (parse_port(arg, &cli->exit_port) < 0)
			return usage_error("--exit-port: \"%s\" is not a port number 1-0xffff",
			                   MSG_ESC(arg));
		return -1;
	case OPT_UID:
	case OPT_GID:
		return id_opt(cli, opt == OPT_UID, arg);
	case OPT_SECCOMP:
		cli->seccomp_set = true;
		if (sandbox_mode_parse(arg, &cli->run.seccomp) < 0)
			return usage_error("--seccomp: \"%s\" is not on, log or off", MSG_ESC(arg));
		return -1;
	}
	return jail_opt(cli, opt, arg);
}

/* The jail's options (vmm/jail.h); how they go together is checked once all are read. */
static int jail_opt(struct cli *cli, int opt, const char *arg)
{
	char why[JAIL_WHY_MAX];

	switch (opt) {
	case OPT_CHROOT:
		cli->jail.root = arg;
		return -1;
	case OPT_CGROUP:
		cli->jail.cgroup = arg;
		return -1;
	case OPT_CGROUP_SET:
		if (jail_parse_cgroup_set(&cli->jail, arg, why, sizeof(why)) < 0)
			return usage_error("--cgroup-set \"%s\": %s", MSG_ESC(arg), why);
		return -1;
	case OPT_RESOURCE_LIMIT:
		if (jail_parse_limit(&cli->jail, arg, why, sizeof(why)) < 0)
			return usage_error("--resource-limit \"%s\": %s", MSG_ESC(arg), why);
		return -1;
	}
	return firecracker_flag(cli, opt, arg);
}

static int one_option(struct cli *cli, int opt, char **argv)
{
	switch (opt) {
	case 'V':
		print_version();
		return FLINT_EXIT_OK;
	case 'h':
		usage(stdout);
		return FLINT_EXIT_OK;
	case ':':
		usage_error("%s needs a value", MSG_ESC(argv[optind - 1]));
		usage(stderr);
		return FLINT_EXIT_USAGE;
	case '?':
		usage_error("unknown option %s", MSG_ESC(argv[optind - 1]));
		usage(stderr);
		return FLINT_EXIT_USAGE;
	}
	return flint_opt(cli, opt, optarg);
}

/*
 * --metadata: JSON of any kind (Firecracker's MMDS store takes a serde Value), no larger
 * written compactly (as Firecracker writes it: mmds_json_dump()) than the MMDS limit, as
 * Mmds::put_data() measures it.
 */
static int load_metadata(struct cli *cli)
{
	const char *path = cli->metadata_path;
	char why[160], *compact;
	json_error_t jerr;
	uint8_t *buf;
	size_t len;
	int fd = file_open(path, O_RDONLY, FILE_REG, CLI_MAX_METADATA_FILE, why, sizeof(why));
	int r;

	if (fd < 0)
		return usage_error("--metadata %s: %s", MSG_ESC(path), why);
	r = file_read_all(fd, CLI_MAX_METADATA_FILE, &buf, &len);
	close(fd);
	if (r)
		return usage_error("--metadata %s: %s", MSG_ESC(path), strerror(-r));
	cli->metadata = json_loadb((char *)buf, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	free(buf);
	if (!cli->metadata)
		return usage_error("--metadata %s: line %d, column %d: invalid JSON: %s",
		                   MSG_ESC(path), jerr.line, jerr.column, MSG_ESC(jerr.text));
	compact = mmds_json_dump(cli->metadata, &len);
	if (!compact)
		len = SIZE_MAX;
	free(compact);
	if (len > cli->mmds_size_limit)
		return usage_error("--metadata %s: %zu bytes of JSON, more than the MMDS limit of "
		                   "%zu (--mmds-size-limit, else --http-api-max-payload-size)",
		                   MSG_ESC(path), len, cli->mmds_size_limit);
	return -1;
}

/* Firecracker reads the filter at start: flint checks it is a file it could read. */
static int check_seccomp_filter(const char *path)
{
	char why[160];
	int fd = file_open(path, O_RDONLY, FILE_REG, 0, why, sizeof(why));

	if (fd < 0)
		return usage_error("--seccomp-filter %s: %s", MSG_ESC(path), why);
	close(fd);
	return -1;
}

/* The rules between options, once all are read; then the files they name. */
static int check_options(struct cli *cli)
{
	char why[JAIL_WHY_MAX + 64];
	int r = -1;

	if (cli->no_seccomp && cli->seccomp_filter)
		return usage_error("--no-seccomp and --seccomp-filter exclude each other");
	if (cli->no_seccomp && cli->seccomp_set)
		return usage_error("--no-seccomp and --seccomp exclude each other (--no-seccomp is "
		                   "--seccomp off)");
	if (cli->seccomp_filter && cli->run.seccomp == SANDBOX_OFF)
		return usage_error("--seccomp off and --seccomp-filter exclude each other");
	if (cli->no_seccomp)
		cli->run.seccomp = SANDBOX_OFF;
	if (cli->no_api && !cli->config)
		return usage_error("--no-api needs --config-file");
	if (cli->dry_run && !cli->config)
		return usage_error("--dry-run needs --config-file");
	if (cli->uid_set != cli->gid_set)
		return usage_error("--uid and --gid go together: one alone would keep the group "
		                   "or the user flint started as");
	cli->run.run_as.set = cli->uid_set;
	if (jail_check(&cli->jail, why, sizeof(why)) < 0)
		return usage_error("%s", why);
	if (!cli->mmds_size_limit_set)
		cli->mmds_size_limit = cli->max_payload;
	if (cli->seccomp_filter)
		r = check_seccomp_filter(cli->seccomp_filter);
	if (r < 0 && cli->metadata_path)
		r = load_metadata(cli);
	return r;
}

void cli_init(struct cli *cli)
{
	memset(cli, 0, sizeof(*cli));
	cli->exit_port = -1;
	cli->run.console_stdout = true;
	cli->id = CLI_DEFAULT_ID;
	cli->max_payload = CLI_DEFAULT_MAX_PAYLOAD;
	jail_opts_init(&cli->jail);
}

int cli_parse(int argc, char **argv, struct cli *cli)
{
	int opt, idx, code = -1;

	opterr = 0;
	optind = 1;
	while (code < 0 &&
	       (idx = -1, opt = getopt_long(argc, argv, ":c:nl:L:t:s:Vh", options, &idx)) != -1) {
		code = one_option(cli, opt, argv);
		if (opt == 'L')
			cli->log_flag = idx >= 0 ? options[idx].name : "log-file";
	}
	if (code >= 0)
		return code;
	if (optind < argc)
		return usage_error("unexpected argument \"%s\"", MSG_ESC(argv[optind]));
	return check_options(cli);
}

const char *cli_api_sock(const struct cli *cli)
{
	if (cli->no_api)
		return NULL;
	if (cli->api_sock)
		return cli->api_sock;
	return cli->config ? NULL : CLI_DEFAULT_API_SOCK;
}

void cli_report(const struct cli *cli)
{
	/*
	 * Firecracker's file is a compiled map from its own thread names to BPF for the calls
	 * its Rust code makes: applied to flint it would refuse what flint needs and allow
	 * what it does not. Refusing the flag would break a drop-in; flint's filters are on.
	 */
	if (cli->seccomp_filter)
		log_warn("--seccomp-filter %s: Firecracker's compiled filter is for Firecracker's "
		         "threads and calls, not applied; flint installs its own filters "
		         "(--seccomp %s)",
		         MSG_ESC(cli->seccomp_filter), sandbox_mode_name(cli->run.seccomp));
	else if (cli->no_seccomp)
		log_info("--no-seccomp: flint installs no seccomp filter (as --seccomp off)");
}

void cli_free(struct cli *cli)
{
	json_decref(cli->metadata);
	cli->metadata = NULL;
}
