/* flint: command line, config, then hand over to vmm_run(), or serve the API. */
#include "vmm/api/api.h"
#include "vmm/base/clock.h"
#include "vmm/cli.h"
#include "vmm/config/config.h"
#include "vmm/base/exitcode.h"
#include "vmm/jail.h"
#include "vmm/base/log.h"
#include "vmm/base/phases.h"
#include "vmm/metrics.h"
#include "vmm/mmds/mmds.h"
#include "vmm/vm_early.h"
#include "vmm/vmm.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <sys/random.h>

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

/*
 * The config's logger section applies unless the command line said otherwise (Firecracker
 * applies its flags first and the file's logger after; flint's command line wins, as its
 * README says). Returns -1, or the exit code to leave with: a log file that cannot be used
 * is the fault of whoever named it, the command line or the config.
 */
static int apply_logging(const struct cli *cli, const struct vm_config *cfg)
{
	const char *file = cli->log_file ? cli->log_file : cfg->logger.path;
	enum log_level level = LOG_INFO;
	char why[160];

	if (cli->level_set)
		level = cli->level;
	else if (cfg->logger.has_level)
		level = cfg->logger.level;
	log_set_level(level);
	if (!file || log_set_file(file, why, sizeof(why)) == 0)
		return -1;
	if (cli->log_file) {
		log_error("--%s %s: %s", cli->log_flag, MSG_ESC(file), why);
		return FLINT_EXIT_USAGE;
	}
	log_error("%s: logger.log_path: %s: %s", MSG_ESC(cli->config), MSG_ESC(file), why);
	return FLINT_EXIT_CONFIG;
}

/* Keys Firecracker ignores are ignored, but not silently: a typo would go unseen. */
static void report_ignored(const struct cli *cli, const struct vm_config *cfg)
{
	for (size_t i = 0; i < cfg->ignored.n; i++)
		log_warn("%s: %s: unknown key, ignored (as Firecracker ignores it)",
		         MSG_ESC(cli->config), MSG_ESC(cfg->ignored.paths[i]));
	if (cfg->ignored.more)
		log_warn("%s: %zu more unknown keys ignored", MSG_ESC(cli->config),
		         cfg->ignored.more);
}

/* With --chroot the dry run makes the jail too: one that cannot be made fails it. */
static int dry_run(const struct vm_config *cfg, struct jail *jail)
{
	int code = vmm_check(cfg);
	char *text;

	if (code)
		return code;
	if (jail_enter(jail, false, cfg->vsock.present ? cfg->vsock.uds_path : NULL))
		return FLINT_EXIT_INTERNAL;
	text = config_describe(cfg);
	if (!text)
		return FLINT_EXIT_INTERNAL;
	printf("%s\n", text);
	free(text);
	return FLINT_EXIT_OK;
}

/* Metrics are configured once (Firecracker's rule): --metrics-path, or the file's metrics. */
static int check_metrics(const struct cli *cli, const struct vm_config *cfg)
{
	if (!cli->metrics_path || !cfg->metrics_path)
		return -1;
	log_error("%s: metrics: %s (--metrics-path configured them already)", MSG_ESC(cli->config),
	          METRICS_REINIT_MSG);
	return FLINT_EXIT_CONFIG;
}

/*
 * The process's MMDS store, made on first need: the API (Firecracker's GET and PUT /mmds
 * work before mmds-config), --metadata, or a config's mmds-config (the only way a net
 * device answers the MMDS). A VM that uses none of them never has one: nothing asks for
 * it (cli->run.mmds stays NULL). -1 or an exit code.
 */
static int need_mmds(struct cli *cli)
{
	struct mmds_params p = { .size_limit = cli->mmds_size_limit, .instance_id = cli->id };

	if (cli->run.mmds)
		return -1;
	return mmds_new(&cli->run.mmds, &p) ? FLINT_EXIT_INTERNAL : -1;
}

/* The config's mmds-config takes effect in the process's store: -1 or an exit code. */
static int configure_mmds(struct cli *cli, const struct vm_config *cfg)
{
	int code;

	if (!cfg->mmds.present)
		return -1;
	code = need_mmds(cli);
	if (code >= 0 || !mmds_configure(cli->run.mmds, &cfg->mmds))
		return code;
	log_error("MMDS: out of memory");
	return FLINT_EXIT_INTERNAL;
}

/*
 * --metadata into the store (which it makes), and the API's store: before anything else,
 * as Firecracker fills the store first. -1 or an exit code.
 */
static int open_mmds(struct cli *cli)
{
	int r;

	if (!cli->metadata && !(cli_api_sock(cli) && !cli->dry_run))
		return -1;
	r = need_mmds(cli);
	if (r >= 0 || !cli->metadata)
		return r;
	/* cli_parse() measured it against the same limit: only memory can fail here. */
	r = mmds_put(cli->run.mmds, cli->metadata);
	if (!r) {
		log_info("--metadata %s: in the MMDS store", MSG_ESC(cli->metadata_path));
		return -1;
	}
	log_error("--metadata %s: %s", MSG_ESC(cli->metadata_path), strerror(-r));
	return r == -ENOMEM ? FLINT_EXIT_INTERNAL : FLINT_EXIT_USAGE;
}

/* --config-file into @cfg, with the command line's log and exit-port settings. -1 or a code. */
static int load_config(struct cli *cli, struct vm_config *cfg)
{
	char err[1024];
	int code;

	if (config_load(cli->config, cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return FLINT_EXIT_CONFIG;
	}
	code = apply_logging(cli, cfg);
	if (code < 0)
		code = check_metrics(cli, cfg);
	if (code < 0)
		code = apply_exit_port(cli, cfg);
	if (code < 0) {
		report_ignored(cli, cfg);
		jail_log_start(cli->run.jail);
	}
	if (code < 0)
		code = configure_mmds(cli, cfg);
	return code;
}

/* The VM of --config-file, checked (--dry-run) or run. */
static int run_config(struct cli *cli)
{
	struct vm_config cfg;
	int code;

	/* A run's VM and loop are made while the config is read; a dry run makes neither. */
	if (!cli->dry_run)
		cli->run.early = vm_early_start();
	code = load_config(cli, &cfg);
	phases_mark(cli->run.phases, PHASE_CONFIG);
	if (code < 0) {
		cli_report(cli);
		code = cli->dry_run ? dry_run(&cfg, cli->run.jail) : vmm_run(&cfg, &cli->run);
	}
	vm_early_end(cli->run.early);
	cli->run.early = NULL;
	config_free(&cfg);
	return code;
}

/* What InstanceStart does to the API's config before the VM starts: --exit-port, the MMDS. */
static int api_prepare(void *ctx, struct vm_config *cfg)
{
	int code = apply_exit_port(ctx, cfg);

	if (code < 0)
		code = configure_mmds(ctx, cfg);
	return code < 0 ? 0 : code;
}

/*
 * Firecracker's API on @sock, on the VM's loop: the VM is made through it, or (with
 * --config-file) runs from the start while the API serves it.
 */
static int run_api(struct cli *cli, const char *sock)
{
	struct api_params p = { .sock_path = sock,
		                .id = cli->id,
		                .max_payload = cli->max_payload,
		                .prepare = api_prepare,
		                .prepare_ctx = cli,
		                .mmds = cli->run.mmds,
		                .start_time = cli->start_time,
		                .start_time_cpu = cli->start_time_cpu,
		                .parent_cpu_time = cli->parent_cpu_time };
	struct vm_config cfg;
	struct vmm *m = NULL;
	struct api *a = NULL;
	int code = -1;

	config_init(&cfg);
	if (cli->config) {
		code = load_config(cli, &cfg);
		phases_mark(cli->run.phases, PHASE_CONFIG);
	} else
		jail_log_start(cli->run.jail);
	if (code >= 0)
		goto out;
	cli_report(cli);
	code = vmm_new(&m, &cli->run);
	p.vmm = m;
	p.cfg = &cfg;
	p.started = cli->config != NULL;
	p.config_path = cli->config;
	if (!code && api_open(&a, &p))
		code = FLINT_EXIT_INTERNAL;
	if (!code && cli->config)
		code = vmm_start(m, &cfg);
	if (!code)
		code = vmm_wait(m);
out:
	api_close(a); /* before vmm_free(): its events live on the VM's loop */
	vmm_free(m);
	config_free(&cfg);
	return code;
}

/*
 * jansson's hash seed (against collisions forged in API bodies), from getrandom(): left to
 * jansson, the first JSON object reads /dev/urandom (open, read, close: some 40 us at
 * start). When getrandom() cannot answer at once, jansson seeds itself, as before.
 */
static void seed_json(void)
{
	uint32_t seed;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed) && seed)
		json_object_seed(seed);
}

int main(int argc, char **argv)
{
	struct phases phases = { 0 };
	struct jail jail;
	struct cli cli;
	int code;

	phases_mark(&phases, PHASE_MAIN);
	seed_json(); /* before any JSON object is made */
	cli_init(&cli);
	cli.run.start_ns = atomic_load(&phases.at[PHASE_MAIN]);
	cli.run.phases = &phases;
	cli.run.process_exits = true; /* main returns once the VM is gone */
	/* A closed console pipe must be an error on write, not the end of the VM. */
	signal(SIGPIPE, SIG_IGN);
	code = cli_parse(argc, argv, &cli);
	cli.run.metrics_path = cli.metrics_path;
	cli.run.id = cli.id;
	if (code < 0 && cli.level_set)
		log_set_level(cli.level);
	if (code < 0)
		code = open_mmds(&cli);
	if (code < 0) {
		/* Before anything is open: the parent that waits outside the jail holds nothing. */
		cli.jail.api_sock = cli.dry_run ? NULL : cli_api_sock(&cli);
		code = jail_start(&cli.jail, &jail);
		cli.run.jail = &jail;
	}
	if (code < 0) {
		if (cli_api_sock(&cli) && !cli.dry_run)
			code = run_api(&cli, cli_api_sock(&cli));
		else
			code = run_config(&cli);
	}
	mmds_free(cli.run.mmds);
	cli_free(&cli);
	phases_mark(&phases, PHASE_EXIT);
	phases_log(&phases);
	log_close();
	return code;
}
