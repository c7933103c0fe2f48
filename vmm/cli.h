/*
 * flint's command line: Firecracker's flags as its main.rs takes them (names, values, which
 * go together), so an orchestrator's or the jailer's command line works unchanged, and
 * flint's own. What it says of the API and the MMDS is kept here for the API to use.
 */
#ifndef FLINT_CLI_H
#define FLINT_CLI_H

#include "vmm/base/log.h"
#include "vmm/jail.h"
#include "vmm/vmm.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The Firecracker release whose command line, config file and API flint follows: what
 * --version says (and what GET /version should say). v1.13 is also the release whose
 * default boot args flint uses.
 */
#define CLI_FIRECRACKER_VERSION "1.13.0"
/* Firecracker's defaults: DEFAULT_API_SOCK_PATH, DEFAULT_INSTANCE_ID, HTTP_MAX_PAYLOAD_SIZE. */
#define CLI_DEFAULT_API_SOCK    "/run/firecracker.socket"
#define CLI_DEFAULT_ID          "anonymous-instance"
#define CLI_DEFAULT_MAX_PAYLOAD 51200
/* Firecracker's validate_instance_id(): 1 to 64 letters, digits and '-'. */
#define CLI_ID_MAX 64
/* A --metadata file is read whole: a bound, whatever --mmds-size-limit says. */
#define CLI_MAX_METADATA_FILE (64u << 20)

/* A time the jailer hands over (--start-time-us, ...): microseconds. */
struct cli_time {
	bool set;
	uint64_t us;
};

struct cli {
	/* flint's own */
	const char *config; /* --config-file */
	bool dry_run;
	long exit_port;      /* --exit-port, or -1 */
	struct run_opts run; /* --timeout, --serial-log, --no-console, --uid/--gid */
	bool uid_set, gid_set;
	struct jail_opts jail; /* --chroot, --cgroup, --cgroup-set, --resource-limit */
	/* the log: flint's and Firecracker's spellings */
	const char *log_file; /* --log-file, --log-path */
	const char *log_flag; /* which of the two, for messages: "log-file" or "log-path" */
	bool level_set;
	enum log_level level; /* --log-level, --level */
	/* Firecracker's */
	const char *id;         /* --id, as Firecracker checks it; CLI_DEFAULT_ID when absent */
	const char *api_sock;   /* --api-sock; NULL when not given */
	bool no_api;            /* --no-api */
	size_t max_payload;     /* --http-api-max-payload-size */
	size_t mmds_size_limit; /* --mmds-size-limit, else max_payload (as Firecracker) */
	bool mmds_size_limit_set;
	const char *metadata_path;
	json_t *metadata; /* --metadata's JSON, within mmds_size_limit: the MMDS store's first */
	bool boot_timer;  /* --boot-timer: flint's boot timer device is always there */
	bool show_level;  /* --show-level: flint's log lines always show their level */
	const char *metrics_path;   /* --metrics-path: opened when the process starts */
	const char *seccomp_filter; /* --seccomp-filter: checked, not applied (flint's own) */
	bool no_seccomp;            /* --no-seccomp: run.seccomp off */
	bool seccomp_set;           /* --seccomp given (run.seccomp) */
	struct cli_time start_time, start_time_cpu, parent_cpu_time;
};

/* flint's defaults: console on stdout, no exit port, Firecracker's id and limits. */
void cli_init(struct cli *cli);
/*
 * Parses and checks the command line (and reads --metadata). Returns -1 to go on, or the
 * exit code to leave with: 0 after --help or --version, 64 after an error said on stderr.
 */
int cli_parse(int argc, char **argv, struct cli *cli);
/*
 * The socket the API should serve, NULL for none: --api-sock, or Firecracker's default
 * when there is no --config-file (then only the API can make a VM); not with --no-api.
 * With --config-file and neither flag Firecracker would also serve its default socket;
 * flint runs the file's VM without an API (as it did before it had one; a CI job running
 * many VMs at once needs no socket path for each).
 */
const char *cli_api_sock(const struct cli *cli);
/* Logs what the command line asked for that flint takes but does not do. After logging is set up.
 */
void cli_report(const struct cli *cli);
void cli_free(struct cli *cli);

#endif
