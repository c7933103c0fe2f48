/* Config file: every bad config exits 78 naming the key path; good ones resolve. */
#include "tests/lib/flintrun.h"
#include "vmm/config/config.h"
#include "vmm/config/sections.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* @K = a readable kernel file, @D = a writable drive image, @R = a read-only image. */
#define BS  "\"boot-source\":{\"kernel_image_path\":\"@K\"}"
#define MC  "\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":128}"
#define ND  "\"drives\":[]"
/* A config file must have "drives" (Firecracker's VmmConfig): MIN0 is for cases with their own. */
#define MIN0 BS "," MC
#define MIN  MIN0 "," ND
#define BSD  BS "," ND /* for machine-config cases */

struct bad_case {
	const char *json;
	const char *expect; /* must appear in the error message */
};

static const struct bad_case bad_cases[] = {
	/* syntax */
	{"{" BS ",\n  \"machine-config\": {\"vcpu_count\": 1,}}", "line 2, column"},
	{"", "line 1"},
	{"[]", "(top level): must be an object"},
	{"{" MIN0 ", \"drives\": []", "invalid JSON"},
	{"{" MIN ", \"logger\": {}, \"logger\": {}}", "duplicate"},
	/* top level: unknown keys are ignored (test_ignored_keys), but drives is required */
	{"{" MC "}", "boot-source: required section is missing"},
	{"{" BS "," MC "}", "drives: required key is missing"},
	{"{" MIN0 ", \"drives\": null}", "drives: must be an array, not null"},
	{"{" MIN ", \"network-interfaces\": null}", "network-interfaces: must be an array, not null"},
	{"{" MIN ", \"pmem\": null}", "pmem: must be an array, not null"},
	/* sections flint does not implement: schema errors first, then "not supported yet" */
	{"{" MIN ", \"balloon\": {\"amount_mib\": 1, \"deflate_on_oom\": false}}", "balloon: not supported yet"},
	{"{" MIN ", \"balloon\": {}}", "balloon.amount_mib: required key is missing"},
	{"{" MIN ", \"balloon\": {\"amount_mib\": 1}}", "balloon.deflate_on_oom: required key is missing"},
	{"{" MIN ", \"balloon\": {\"amount_mib\": 4294967296, \"deflate_on_oom\": true}}", "balloon.amount_mib: 4294967296 is out of range"},
	{"{" MIN ", \"balloon\": {\"amount_mib\": 1, \"deflate_on_oom\": true, \"stats_polling_interval_s\": 65536}}", "balloon.stats_polling_interval_s: 65536 is out of range"},
	{"{" MIN ", \"balloon\": {\"amount_mib\": 1, \"deflate_on_oom\": true, \"hinting\": true}}", "balloon.hinting: unknown key"},
	{"{" MIN ", \"pmem\": [{\"id\": \"p\"}]}", "pmem[0].path_on_host: required key is missing"},
	{"{" MIN ", \"pmem\": [{\"id\": \"p\", \"path_on_host\": \"/p\", \"root_device\": 1}]}", "pmem[0].root_device: must be true or false"},
	{"{" MIN ", \"pmem\": [{\"id\": \"p\", \"path_on_host\": \"/p\"}]}", "pmem: not supported yet"},
	{"{" MIN ", \"pmem\": {}}", "pmem: must be an array"},
	{"{" MIN ", \"mmds-config\": {}}", "mmds-config.network_interfaces: required key is missing"},
	{"{" MIN ", \"mmds-config\": {\"network_interfaces\": [1]}}", "mmds-config.network_interfaces[0]: must be a string"},
	{"{" MIN ", \"mmds-config\": {\"network_interfaces\": [], \"version\": \"V3\"}}", "mmds-config.version: \"V3\" is not one of \"V1\", \"V2\""},
	{"{" MIN ", \"mmds-config\": {\"network_interfaces\": [], \"ipv4_address\": \"169.254.256.1\"}}", "mmds-config.ipv4_address: \"169.254.256.1\" is not an IPv4 address"},
	{"{" MIN ", \"mmds-config\": {\"network_interfaces\": [], \"imds\": true}}", "mmds-config.imds: unknown key"},
	/* mmds-config: Firecracker's checks after its schema (address, list, ids), its words */
	{"{" MIN ", \"mmds-config\": {\"network_interfaces\": [\"eth0\"]}}", "mmds-config.network_interfaces[0]: \"eth0\": The list of network interface IDs provided contains at least one ID that does not correspond to any existing network interface."},
	{"{" MIN ", \"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"t0\"}], \"mmds-config\": {\"network_interfaces\": [\"eth0\", \"eth1\"]}}", "mmds-config.network_interfaces[1]: \"eth1\": The list of network"},
	{"{" MIN ", \"mmds-config\": {\"network_interfaces\": []}}", "mmds-config.network_interfaces: The list of network interface IDs that allow forwarding MMDS requests is empty."},
	{"{" MIN ", \"mmds-config\": {\"network_interfaces\": [], \"ipv4_address\": \"169.254.0.1\"}}", "mmds-config.ipv4_address: \"169.254.0.1\": The MMDS IPv4 address is not link local."},
	{"{" MIN ", \"mmds-config\": {\"network_interfaces\": [], \"ipv4_address\": \"169.254.255.9\"}}", "not link local"},
	{"{" MIN ", \"mmds-config\": {\"network_interfaces\": [], \"ipv4_address\": \"10.0.0.1\"}}", "not link local"},
	{"{" MIN ", \"mmds-config\": {\"network_interfaces\": [], \"ipv4_address\": \"169.254.1.1/16\"}}", "is not an IPv4 address"},
	{"{" MIN ", \"mmds-config\": {\"network_interfaces\": [], \"imds_compat\": 1}}", "mmds-config.imds_compat: must be true or false"},
	{"{" MIN ", \"mmds-config\": {\"network_interfaces\": \"eth0\"}}", "mmds-config.network_interfaces: must be an array of strings"},
	{"{" MIN ", \"mmds-config\": []}", "mmds-config: must be an object"},
	{"{" MIN ", \"cpu-config\": \"/tmp/cpu.json\"}", "cpu-config: not supported yet"},
	{"{" MIN ", \"cpu-config\": {\"cpuid_modifiers\": [{\"leaf\": 1}]}}", "cpu-config: not supported yet"},
	{"{" MIN ", \"cpu-config\": {\"msr_modifiers\": {}}}", "cpu-config.msr_modifiers: must be an array"},
	{"{" MIN ", \"cpu-config\": {\"reg_modifiers\": []}}", "cpu-config.reg_modifiers: unknown key"},
	{"{" MIN ", \"cpu-config\": 7}", "cpu-config: must be a file name or a CPU template object"},
	{"{" MIN ", \"memory-hotplug\": {\"total_size_mib\": 1024}}", "memory-hotplug: not supported yet"},
	{"{" MIN ", \"memory-hotplug\": {}}", "memory-hotplug.total_size_mib: required key is missing"},
	{"{" MIN ", \"memory-hotplug\": {\"total_size_mib\": 1024, \"slot_size_mib\": \"128\"}}", "memory-hotplug.slot_size_mib: must be an integer"},
	/* a schema error in a section flint runs comes before a section it refuses */
	{"{" MIN0 ", \"balloon\": {\"amount_mib\": 1, \"deflate_on_oom\": false}, \"drives\": {}}", "drives: must be an array"},
	/* boot-source */
	{"{\"boot-source\":{}," MC "}", "boot-source.kernel_image_path: required key is missing"},
	{"{\"boot-source\":{\"kernel_image_path\":7}," MC "}", "boot-source.kernel_image_path: must be a string"},
	{"{\"boot-source\":{\"kernel_image_path\":\"\"}," MC "}", "boot-source.kernel_image_path: must not be empty"},
	{"{\"boot-source\":{\"kernel_image_path\":\"/nonexistent/vmlinux\"}," MC "}", "boot-source.kernel_image_path: /nonexistent/vmlinux"},
	{"{\"boot-source\":{\"kernel_image_path\":\"/tmp\"}," MC "}", "boot-source.kernel_image_path: /tmp: is a directory"},
	{"{\"boot-source\":{\"kernel_image_path\":\"@K\",\"initrd_path\":\"/nonexistent\"}," MC "}", "boot-source.initrd_path"},
	{"{\"boot-source\":{\"kernel_image_path\":\"@K\",\"boot_args\":[]}," MC "}", "boot-source.boot_args: must be a string"},
	{"{\"boot-source\":{\"kernel_image_path\":\"@K\",\"kernel\":\"x\"}," MC "}", "boot-source.kernel: unknown key"},
	{"{\"boot-source\":[]," MC "}", "boot-source: must be an object"},
	/* machine-config */
	{"{" BSD ",\"machine-config\":{\"mem_size_mib\":128}}", "machine-config.vcpu_count: required key is missing"},
	{"{" BSD ",\"machine-config\":{\"vcpu_count\":1}}", "machine-config.mem_size_mib: required key is missing"},
	{"{" BSD ",\"machine-config\":{\"vcpu_count\":0,\"mem_size_mib\":128}}", "machine-config.vcpu_count: 0 is out of range"},
	{"{" BSD ",\"machine-config\":{\"vcpu_count\":33,\"mem_size_mib\":128}}", "machine-config.vcpu_count: 33 is out of range"},
	{"{" BSD ",\"machine-config\":{\"vcpu_count\":-1,\"mem_size_mib\":128}}", "machine-config.vcpu_count: -1 is out of range"},
	{"{" BSD ",\"machine-config\":{\"vcpu_count\":1.5,\"mem_size_mib\":128}}", "machine-config.vcpu_count: must be an integer"},
	{"{" BSD ",\"machine-config\":{\"vcpu_count\":\"2\",\"mem_size_mib\":128}}", "machine-config.vcpu_count: must be an integer"},
	{"{" BSD ",\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":0}}", "machine-config.mem_size_mib: 0 is out of range"},
	{"{" BSD ",\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":99999999999}}", "machine-config.mem_size_mib"},
	{"{" BSD ",\"machine-config\":{\"vcpu_count\":3,\"mem_size_mib\":128,\"smt\":true}}", "machine-config.vcpu_count: must be 1 or even"},
	{"{" BSD ",\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":128,\"smt\":\"yes\"}}", "machine-config.smt: must be true or false"},
	{"{" BSD ",\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":128,\"huge_pages\":\"1G\"}}", "machine-config.huge_pages: \"1G\" is not one of"},
	{"{" BSD ",\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":127,\"huge_pages\":\"2M\"}}", "machine-config.mem_size_mib: must be a multiple of 2"},
	{"{" BSD ",\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":128,\"cpu_template\":\"T2\"}}", "machine-config.cpu_template: \"T2\": CPU templates are not supported yet"},
	{"{" BSD ",\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":128,\"cpu_template\":\"Q9\"}}", "machine-config.cpu_template: \"Q9\" is not one of \"C3\""},
	{"{" BSD ",\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":127,\"huge_pages\":\"Transparent\"}}", "machine-config.mem_size_mib: must be a multiple of 2 with huge_pages \"Transparent\""},
	{"{" BSD ",\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":128,\"gdb_socket_path\":\"/tmp/gdb\"}}", "machine-config.gdb_socket_path: unknown key"},
	{"{" BSD ",\"machine-config\":{}}", "machine-config.vcpu_count: required key is missing"},
	{"{" BSD ",\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":128,\"track_dirty_pages\":1}}", "machine-config.track_dirty_pages"},
	{"{" BSD ",\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":128,\"memory\":1}}", "machine-config.memory: unknown key"},
	/* drives */
	{"{" MIN0 ",\"drives\":{}}", "drives: must be an array"},
	{"{" MIN0 ",\"drives\":[{\"path_on_host\":\"@D\",\"is_root_device\":true}]}", "drives[0].drive_id: required key is missing"},
	{"{" MIN0 ",\"drives\":[{\"drive_id\":\"a\",\"is_root_device\":true}]}", "drives[0].path_on_host: required key is missing"},
	{"{" MIN0 ",\"drives\":[{\"drive_id\":\"a\",\"path_on_host\":\"@D\"}]}", "drives[0].is_root_device: required key is missing"},
	{"{" MIN0 ",\"drives\":[{\"drive_id\":\"a\",\"path_on_host\":\"@D\",\"is_root_device\":false},{\"drive_id\":\"b\",\"path_on_host\":\"/nonexistent.img\",\"is_root_device\":false}]}", "drives[1].path_on_host: /nonexistent.img"},
	/* a drive_id given again replaces that drive, but a root device cannot be added twice */
	{"{" MIN0 ",\"drives\":[{\"drive_id\":\"a\",\"path_on_host\":\"@D\",\"is_root_device\":false},{\"drive_id\":\"b\",\"path_on_host\":\"@D\",\"is_root_device\":true},{\"drive_id\":\"a\",\"path_on_host\":\"@D\",\"is_root_device\":true}]}", "drives[2].is_root_device: only one drive"},
	{"{" MIN0 ",\"drives\":[{\"drive_id\":\"a\",\"path_on_host\":\"@D\",\"is_root_device\":true},{\"drive_id\":\"b\",\"path_on_host\":\"@D\",\"is_root_device\":true}]}", "drives[1].is_root_device: only one drive"},
	{"{" MIN0 ",\"drives\":[{\"drive_id\":\"a\",\"path_on_host\":\"@D\",\"is_root_device\":true,\"cache_type\":\"None\"}]}", "drives[0].cache_type"},
	{"{" MIN0 ",\"drives\":[{\"drive_id\":\"a\",\"path_on_host\":\"@D\",\"is_root_device\":true,\"partuuid\":\"1234 init=/bin/sh\"}]}", "drives[0].partuuid: not a partition UUID"},
	{"{" MIN0 ",\"drives\":[{\"drive_id\":\"a\",\"path_on_host\":\"@D\",\"is_root_device\":true,\"partuuid\":\"1234/PARTNROFF=\"}]}", "drives[0].partuuid: not a partition UUID"},
	{"{" MIN0 ",\"drives\":[{\"drive_id\":\"a\",\"path_on_host\":\"@D\",\"is_root_device\":true,\"io_engine\":\"Uring\"}]}", "drives[0].io_engine"},
	{"{" MIN0 ",\"drives\":[{\"drive_id\":\"a\",\"path_on_host\":\"@D\",\"is_root_device\":true,\"rate_limiter\":{\"bandwidth\":{\"size\":1}}}]}", "drives[0].rate_limiter.bandwidth.refill_time: required key is missing"},
	{"{" MIN0 ",\"drives\":[{\"drive_id\":\"a\",\"path_on_host\":\"@D\",\"is_root_device\":true,\"rate_limiter\":{\"bw\":{}}}]}", "drives[0].rate_limiter.bw: unknown key"},
	{"{" MIN0 ",\"drives\":[{\"drive_id\":\"a\",\"is_root_device\":true,\"socket\":\"/tmp/vhost.sock\"}]}", "drives[0].socket: vhost-user drives are not supported yet"},
	{"{" MIN0 ",\"drives\":[{\"drive_id\":\"a\",\"path_on_host\":\"@D\",\"is_root_device\":true,\"socket\":\"/tmp/vhost.sock\"}]}", "drives[0].socket: cannot be combined with path_on_host"},
	{"{" MIN0 ",\"drives\":[{\"drive_id\":\"a\",\"is_root_device\":true,\"is_read_only\":true,\"socket\":\"/tmp/vhost.sock\"}]}", "drives[0].socket: cannot be combined with is_read_only"},
	{"{" MIN0 ",\"drives\":[{\"drive_id\":\"a\",\"is_root_device\":true,\"socket\":7}]}", "drives[0].socket: must be a string"},
	{"{" MIN0 ",\"drives\":[{\"drive_id\":\"a\",\"path_on_host\":\"@D\",\"is_root_device\":false,\"partuuid\":7}]}", "drives[0].partuuid: must be a string"},
	{"{" MIN0 ",\"drives\":[{\"drive_id\":\"a\",\"path_on_host\":\"/tmp\",\"is_root_device\":true}]}", "drives[0].path_on_host: /tmp: is a directory"},
	{"{" MIN0 ",\"drives\":[7]}", "drives[0]: must be an object"},
	/* network-interfaces */
	{"{" MIN ",\"network-interfaces\":[{\"iface_id\":\"eth0\"}]}", "network-interfaces[0].host_dev_name: required key is missing"},
	{"{" MIN ",\"network-interfaces\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"06:00:ac:10:00\"}]}", "network-interfaces[0].guest_mac"},
	{"{" MIN ",\"network-interfaces\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"06:00:ac:10:00:zz\"}]}", "network-interfaces[0].guest_mac"},
	{"{" MIN ",\"network-interfaces\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"06:00:ac:10:00:-2\"}]}", "network-interfaces[0].guest_mac"},
	{"{" MIN ",\"network-interfaces\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"06:00:ac:10:00: 2\"}]}", "network-interfaces[0].guest_mac"},
	{"{" MIN ",\"network-interfaces\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"06:00:ac:10:00:0x\"}]}", "network-interfaces[0].guest_mac"},
	{"{" MIN ",\"network-interfaces\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"01:00:5e:00:00:01\"}]}", "network-interfaces[0].guest_mac: \"01:00:5e:00:00:01\" is a multicast"},
	{"{" MIN ",\"network-interfaces\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"a-very-long-tap-name\"}]}", "network-interfaces[0].host_dev_name"},
	{"{" MIN ",\"network-interfaces\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"06:00:ac:10:00:02\"},{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap1\",\"guest_mac\":\"06:00:AC:10:00:02\"}]}", "network-interfaces[1].guest_mac: the MAC address is already in use by \"eth0\" (network-interfaces[0])"},
	{"{" MIN ",\"network-interfaces\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"mtu\":9000}]}", "network-interfaces[0].mtu: not supported yet"},
	{"{" MIN ",\"network-interfaces\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"mtu\":67}]}", "network-interfaces[0].mtu: 67 is less than 68"},
	{"{" MIN ",\"network-interfaces\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"mtu\":65536}]}", "network-interfaces[0].mtu: 65536 is out of range"},
	{"{" MIN ",\"network-interfaces\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\"},{\"iface_id\":\"eth1\",\"host_dev_name\":\"tap0\"}]}", "network-interfaces[1].host_dev_name: duplicate TAP device \"tap0\" (also network-interfaces[0])"},
	{"{" MIN ",\"network-interfaces\":[{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"rx_rate_limiter\":{\"ops\":{\"size\":-5,\"refill_time\":1}}}]}", "network-interfaces[0].rx_rate_limiter.ops.size"},
	/* vsock, logger, metrics, entropy */
	{"{" MIN ",\"vsock\":{\"guest_cid\":2,\"uds_path\":\"/tmp/v.sock\"}}", "vsock.guest_cid: 2 is out of range"},
	{"{" MIN ",\"vsock\":{\"guest_cid\":3}}", "vsock.uds_path: required key is missing"},
	{"{" MIN ",\"logger\":{\"level\":\"Verbose\"}}", "logger.level"},
	{"{" MIN ",\"logger\":{\"log_path\":\"/tmp/x\",\"colour\":true}}", "logger.colour: unknown key"},
	{"{" MIN ",\"logger\":{\"show_log_origin\":true}}", "logger.show_log_origin: not supported yet"},
	{"{" MIN ",\"logger\":{\"show_log_origin\":1}}", "logger.show_log_origin: must be true or false"},
	{"{" MIN ",\"logger\":{\"show_level\":\"yes\"}}", "logger.show_level: must be true or false"},
	{"{" MIN ",\"logger\":{\"module\":\"vmm::devices\"}}", "logger.module: not supported yet"},
	{"{" MIN ",\"metrics\":{}}", "metrics.metrics_path: required key is missing"},
	{"{" MIN ",\"metrics\":{\"metrics_path\":\"/tmp/m\",\"emit_id\":\"yes\"}}", "metrics.emit_id: must be true or false"},
	{"{" MIN ",\"metrics\":{\"metrics_path\":\"/tmp/m\",\"properties\":{\"k\":1}}}", "metrics.properties.k: must be a string"},
	{"{" MIN ",\"metrics\":{\"metrics_path\":\"/tmp/m\",\"properties\":[]}}", "metrics.properties: must be an object of strings"},
	{"{" MIN ",\"logger\":{\"level\":\"\"}}", "logger.level: \"\" is not one of Error, Warning"},
	{"{" MIN ",\"entropy\":{\"rate_limiter\":{\"ops\":{\"size\":1,\"refill_time\":\"1\"}}}}", "entropy.rate_limiter.ops.refill_time"},
	/* flint's own */
	{"{" MIN ",\"flint\":{\"ci\":{\"exit_port\":70000}}}", "flint.ci.exit_port: 70000 is out of range"},
	{"{" MIN ",\"flint\":{\"ci\":{\"port\":1}}}", "flint.ci.port: unknown key"},
	{"{" MIN ",\"flint\":{\"iommu\":{\"fd\":2}}}", "flint.iommu.fd: 2 is stdin, stdout or stderr, not an iommufd"},
	{"{" MIN ",\"flint\":{\"vfio-devices\":[{\"id\":\"a\",\"path\":\"/dev/vfio/devices/../../../etc/shadow\"}]}}", "flint.vfio-devices[0].path: \"/dev/vfio/devices/../../../etc/shadow\" is not under /dev/vfio/devices/"},
	{"{" MIN ",\"flint\":{\"vfio-devices\":[{\"id\":\"a\",\"path\":\"/dev/vfio/devices/..\"}]}}", "flint.vfio-devices[0].path: \"/dev/vfio/devices/..\" is not under /dev/vfio/devices/"},
	{"{" MIN ",\"flint\":{\"ci\":{\"exit_port\":1020}}}", "flint.ci.exit_port: ports 0x3fc-0x3ff run into the serial port at 0x3f8-0x3ff"},
	{"{" MIN ",\"flint\":{\"ci\":{\"exit_port\":100,\"exit_port_size\":1}}}", "flint.ci.exit_port: ports 0x64-0x64 run into the i8042 at 0x60-0x64"},
	{"{" MIN ",\"flint\":{\"ci\":{\"exit_port\":65534}}}", "flint.ci.exit_port: ports 0xfffe-0x10001 run into the end of port space (0xffff)"},
	{"{" MIN ",\"flint\":{\"ci\":{\"exit_port\":244,\"exit_port_size\":3}}}", "flint.ci.exit_port_size: 3 is not 1, 2 or 4"},
	{"{" MIN ",\"flint\":{\"ci\":{\"exit_port\":244,\"exit_port_size\":8}}}", "flint.ci.exit_port_size: 8 is out of range"},
	{"{" MIN ",\"flint\":{\"debug\":true}}", "flint.debug: unknown key"},
	{"{" BSD ",\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":128,\"huge_pages\":\"2M\"},\"flint\":{\"memory\":{\"thp\":true}}}", "flint.memory.thp: cannot be combined"},
	{"{" MIN ",\"flint\":{\"vfio-devices\":[{\"id\":\"a\"}]}}", "flint.vfio-devices[0]: needs exactly one of"},
	{"{" MIN ",\"flint\":{\"vfio-devices\":[{\"id\":\"a\",\"bdf\":\"0000:00:03.0\",\"path\":\"/dev/vfio/devices/vfio0\"}]}}", "flint.vfio-devices[0]: needs exactly one of"},
	{"{" MIN ",\"flint\":{\"vfio-devices\":[{\"id\":\"a\",\"bdf\":\"00:03\"}]}}", "flint.vfio-devices[0].bdf: \"00:03\" is not a PCI address"},
	{"{" MIN ",\"flint\":{\"vfio-devices\":[{\"id\":\"a\",\"bdf\":\"0000:00:03.0\",\"guest_slot\":0}]}}", "flint.vfio-devices[0].guest_slot"},
	{"{" MIN ",\"flint\":{\"vfio-devices\":[{\"id\":\"a\",\"bdf\":\"0000:00:03.0\",\"guest_slot\":32}]}}", "flint.vfio-devices[0].guest_slot"},
	{"{" MIN ",\"flint\":{\"vfio-devices\":[{\"id\":\"a\",\"bdf\":\"0000:00:03.0\",\"guest_slot\":4},{\"id\":\"b\",\"bdf\":\"0000:00:04.0\",\"guest_slot\":4}]}}", "flint.vfio-devices[1].guest_slot: slot 4 is taken by \"a\""},
	{"{" MIN ",\"flint\":{\"vfio-devices\":[{\"id\":\"a\",\"path\":\"/dev/sda\"}]}}", "flint.vfio-devices[0].path: \"/dev/sda\" is not under /dev/vfio/devices/"},
	{"{" MIN ",\"flint\":{\"vfio-devices\":[{\"id\":\"a\",\"bdf\":\"0000:00:03.0\",\"dma_mode\":\"lazy\"}]}}", "flint.vfio-devices[0].dma_mode: \"lazy\" is not one of"},
	{"{" MIN ",\"flint\":{\"vfio-devices\":[{\"id\":\"a\",\"bdf\":\"0000:00:03.0\"},{\"id\":\"a\",\"bdf\":\"0000:00:04.0\"}]}}", "flint.vfio-devices[1].id: duplicate id"},
	{"{" MIN ",\"flint\":{\"vfio-devices\":[{\"id\":\"a\",\"bdf\":\"0000:00:03.0\"},{\"id\":\"b\",\"bdf\":\"0000:00:03.0\"}]}}", "flint.vfio-devices[1]: duplicate device \"0000:00:03.0\" (also flint.vfio-devices[0])"},
	{"{" MIN ",\"flint\":{\"vfio-devices\":[{\"id\":\"a\",\"bdf\":\"0000:00:0A.0\"},{\"id\":\"b\",\"bdf\":\"0000:00:0a.0\"}]}}", "flint.vfio-devices[1]: duplicate device \"0000:00:0a.0\""},
	{"{" MIN ",\"flint\":{\"vfio-devices\":[{\"id\":\"a\",\"bdf\":\"0x00:00:03.0\"}]}}", "flint.vfio-devices[0].bdf: \"0x00:00:03.0\" is not a PCI address"},
	{"{" MIN ",\"flint\":{\"vfio-devices\":[{\"id\":\"a\",\"bdf\":\"0000:00:20.0\"}]}}", "flint.vfio-devices[0].bdf: \"0000:00:20.0\" is not a PCI address"},
	{"{" MIN ",\"flint\":{\"vfio-devices\":{}}}", "flint.vfio-devices: must be an array"},
	{"{" MIN ",\"flint\":{\"iommu\":{\"fault_chunk_kib\":3000}}}", "flint.iommu.fault_chunk_kib: 3000 is not a power of two"},
	{"{" MIN ",\"flint\":{\"iommu\":{\"fault_chunk_kib\":2}}}", "flint.iommu.fault_chunk_kib: 2 is out of range"},
	{"{" MIN ",\"flint\":{\"iommu\":{\"max_mapped_mib\":0}}}", "flint.iommu.max_mapped_mib: 0 is out of range"},
	{"{" MIN ",\"flint\":{\"iommu\":{\"max_mapped_mib\":\"64\"}}}", "flint.iommu.max_mapped_mib: must be an integer"},
	{"{" MIN ",\"flint\":{\"iommu\":{\"max_mapped_mib\":1}}}", "flint.iommu.max_mapped_mib: 1 MiB is less than one fault chunk (fault_chunk_kib 2048)"},
	{"{" MIN ",\"flint\":{\"iommu\":{\"fault_chunk_kib\":8192,\"max_mapped_mib\":4}}}", "flint.iommu.max_mapped_mib: 4 MiB is less than one fault chunk (fault_chunk_kib 8192)"},
	{"{" MIN ",\"flint\":{\"iommu\":{\"path\":\"/dev/iommu\",\"fd\":3}}}", "flint.iommu: give either"},
	{"{" MIN ",\"flint\":{\"iommu\":{\"fd\":-1}}}", "flint.iommu.fd: -1 is out of range"},
};

static char *kernel_path, *drive_path, *ro_path;

/* Replaces @K/@D/@R in @tmpl. */
static char *expand(const char *tmpl)
{
	size_t cap = strlen(tmpl) + 3 * 600;
	char *out = calloc(1, cap);
	const char *p;

	for (p = tmpl; *p; p++) {
		const char *sub = NULL;
		if (p[0] == '@' && p[1] == 'K')
			sub = kernel_path;
		else if (p[0] == '@' && p[1] == 'D')
			sub = drive_path;
		else if (p[0] == '@' && p[1] == 'R')
			sub = ro_path;
		if (sub) {
			strcat(out, sub);
			p++;
		} else {
			out[strlen(out)] = *p;
		}
	}
	return out;
}

static int setup(void **state)
{
	(void)state;
	/* A kernel that loads: --dry-run runs the loaders, as a run does. */
	kernel_path = tiny_elf_file("vmlinux", (const uint8_t[]){0xeb, 0xfe}, 2);
	drive_path = test_write_file("disk.img", "disk", 4);
	/* Any readable file serves as a read-only drive. */
	ro_path = strdup("/proc/version");
	return 0;
}

/* --dry-run on @json with one more option @opt @val (NULL: none). */
static void run_config_opt(const char *json, char *opt, char *val, struct child_result *res)
{
	char *text = expand(json);
	char *path = test_write_file("vm.json", text, strlen(text));
	char *argv[] = {(char *)test_flint_bin(), "--dry-run", "--config-file", path, opt, val, NULL};

	assert_int_equal(test_run(argv, 20, 0, 0, res), 0);
	free(text);
	free(path);
}

static void run_config(const char *json, struct child_result *res)
{
	run_config_opt(json, NULL, NULL, res);
}

static void test_bad_configs(void **state)
{
	static struct child_result res;
	size_t failures = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		char *expect = expand(bad_cases[i].expect);
		run_config(bad_cases[i].json, &res);
		/* Exactly one error line: no cascades. */
		const char *nl = strchr(res.err, '\n');
		bool one_line = nl && nl[1] == 0;
		if (res.code != 78 || !strstr(res.err, expect) || !one_line || res.out[0]) {
			print_error("case %zu: exit %d, stderr \"%s\", want 78 and \"%s\"\n", i,
				    res.code, res.err, expect);
			failures++;
		}
		free(expect);
	}
	assert_int_equal(failures, 0);
	/*
	 * The control: the same harness on the config every case above breaks one thing of
	 * passes, so each 78 is that one thing's doing, not the harness's or the template's.
	 */
	run_config("{" MIN "}", &res);
	assert_int_equal(res.code, 0);
	assert_string_equal(res.err, "");
}

static void test_minimal_config(void **state)
{
	static struct child_result res;

	(void)state;
	run_config("{" MIN "}", &res);
	assert_int_equal(res.code, 0);
	assert_non_null(strstr(res.out, "\"vcpu_count\": 1"));
	assert_non_null(strstr(res.out, "\"mem_size_mib\": 128"));
	/* Firecracker's default command line when boot_args is absent (v1.13 on). */
	assert_non_null(strstr(res.out, "\"reboot=k panic=1 nomodule 8250.nr_uarts=0 i8042.noaux "
				       "i8042.nomux i8042.dumbkbd swiotlb=noforce\""));
	/* The guest does not choose flint's exit status unless the config says so. */
	assert_non_null(strstr(res.out, "\"exit_port\": null"));
}

/* A config as Firecracker's docs write it: every section present, optional ones null. */
static void test_full_firecracker_config(void **state)
{
	static struct child_result res;
	static const char *json =
		"{\n"
		"  \"boot-source\": {\"kernel_image_path\": \"@K\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 pci=off\", \"initrd_path\": null},\n"
		"  \"drives\": [{\"drive_id\": \"rootfs\", \"partuuid\": null, \"is_root_device\": true, \"cache_type\": \"Unsafe\",\n"
		"              \"is_read_only\": false, \"path_on_host\": \"@D\", \"io_engine\": \"Sync\", \"rate_limiter\": null, \"socket\": null},\n"
		"             {\"drive_id\": \"data\", \"is_root_device\": false, \"is_read_only\": true, \"path_on_host\": \"@R\",\n"
		"              \"rate_limiter\": {\"bandwidth\": {\"size\": 1048576, \"one_time_burst\": null, \"refill_time\": 100}, \"ops\": null}}],\n"
		"  \"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 1024, \"smt\": false, \"track_dirty_pages\": false, \"huge_pages\": \"None\", \"cpu_template\": null},\n"
		"  \"cpu-config\": null, \"balloon\": null,\n"
		"  \"network-interfaces\": [{\"iface_id\": \"eth0\", \"guest_mac\": \"06:00:AC:10:00:02\", \"host_dev_name\": \"tap0\", \"rx_rate_limiter\": null, \"tx_rate_limiter\": null}],\n"
		"  \"vsock\": {\"guest_cid\": 3, \"uds_path\": \"/tmp/flint-v.sock\", \"vsock_id\": \"vsock0\"},\n"
		"  \"logger\": null, \"metrics\": null, \"mmds-config\": null, \"entropy\": {\"rate_limiter\": null},\n"
		"  \"pmem\": [], \"memory-hotplug\": null\n"
		"}\n";

	(void)state;
	run_config(json, &res);
	assert_int_equal(res.code, 0);
	assert_string_equal(res.err, "");
	assert_non_null(strstr(res.out, "\"vcpu_count\": 2"));
	assert_non_null(strstr(res.out, "\"drive_id\": \"data\""));
	assert_non_null(strstr(res.out, "\"guest_mac\": \"06:00:ac:10:00:02\""));
	assert_non_null(strstr(res.out, "\"guest_cid\": 3"));
	assert_non_null(strstr(res.out, "\"refill_time\": 100"));
}

static void test_flint_section(void **state)
{
	static struct child_result res;

	(void)state;
	run_config("{" MIN ",\"flint\":{\"ci\":{\"exit_port\":null},\"memory\":{\"thp\":true}}}", &res);
	assert_int_equal(res.code, 0);
	assert_non_null(strstr(res.out, "\"exit_port\": null"));
	assert_non_null(strstr(res.out, "\"thp\": true"));
	run_config("{" MIN ",\"flint\":{\"ci\":{\"exit_port\":1281}}}", &res);
	assert_int_equal(res.code, 0);
	assert_non_null(strstr(res.out, "\"exit_port\": 1281"));
	assert_non_null(strstr(res.out, "\"exit_port_size\": 4"));
	run_config("{" MIN ",\"flint\":{\"ci\":{\"exit_port\":1281,\"exit_port_size\":2}}}", &res);
	assert_int_equal(res.code, 0);
	assert_non_null(strstr(res.out, "\"exit_port_size\": 2"));
	/* --exit-port turns it on (over the config's choice), and is checked the same way. */
	run_config_opt("{" MIN ",\"flint\":{\"ci\":{\"exit_port\":null}}}", "--exit-port", "0xf4", &res);
	assert_int_equal(res.code, 0);
	assert_non_null(strstr(res.out, "\"exit_port\": 244"));
	run_config_opt("{" MIN "}", "--exit-port", "0x3f6", &res);
	assert_int_equal(res.code, 64);
	assert_non_null(strstr(res.err, "--exit-port 0x3f6: ports 0x3f6-0x3f9 run into the serial port"));
	/* Device assignment validates without touching /dev/vfio or /dev/iommu. */
	run_config("{" MIN ",\"flint\":{\"iommu\":{\"path\":\"/dev/iommu\",\"fault_chunk_kib\":64,"
		   "\"max_mapped_mib\":2},"
		   "\"vfio-devices\":[{\"id\":\"edu\",\"bdf\":\"0000:00:03.0\",\"dma_mode\":\"pin\"},"
		   "{\"id\":\"nic\",\"path\":\"/dev/vfio/devices/vfio7\"}]}}", &res);
	assert_int_equal(res.code, 0);
	assert_non_null(strstr(res.out, "\"path\": \"/dev/iommu\""));
	assert_non_null(strstr(res.out, "\"fault_chunk_kib\": 64"));
	assert_non_null(strstr(res.out, "\"max_mapped_mib\": 2"));
	assert_non_null(strstr(res.out, "\"device\": \"0000:00:03.0\""));
	assert_non_null(strstr(res.out, "\"dma_mode\": \"pin\""));
	assert_non_null(strstr(res.out, "\"dma_mode\": \"auto\""));
	/* An inherited iommufd is checked as a run checks it: fd 9 is none (exit 70). */
	run_config("{" MIN ",\"flint\":{\"iommu\":{\"fd\":9},"
		   "\"vfio-devices\":[{\"id\":\"edu\",\"bdf\":\"0000:00:03.0\"}]}}", &res);
	assert_int_equal(res.code, 70);
	assert_non_null(strstr(res.err, "inherited fd 9 is not a usable iommufd"));
	/* --dry-run loads the kernel through the real loaders: garbage is refused. */
	run_config("{\"boot-source\":{\"kernel_image_path\":\"@D\"}," MC "," ND "}", &res);
	assert_int_equal(res.code, 78);
	assert_non_null(strstr(res.err, "not a kernel flint can boot"));
}

/* Firecracker's defaults: machine-config is optional; boot_args "" is an empty command line. */
static void test_firecracker_defaults(void **state)
{
	static struct child_result res;

	(void)state;
	run_config("{" BS "," ND "}", &res);
	assert_int_equal(res.code, 0);
	assert_string_equal(res.err, "");
	assert_non_null(strstr(res.out, "\"vcpu_count\": 1,"));
	assert_non_null(strstr(res.out, "\"mem_size_mib\": 128,"));
	assert_non_null(strstr(res.out, "\"boot_args_default\": true"));
	run_config("{\"boot-source\":{\"kernel_image_path\":\"@K\",\"boot_args\":\"\"}," ND "}",
		   &res);
	assert_int_equal(res.code, 0);
	assert_non_null(strstr(res.out, "\"boot_args\": \"\""));
	assert_non_null(strstr(res.out, "\"boot_args_default\": false"));
	/* huge_pages "Transparent" is Firecracker's madvise(MADV_HUGEPAGE), flint's thp. */
	run_config("{" BSD ",\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":128,"
		   "\"huge_pages\":\"Transparent\"}}", &res);
	assert_int_equal(res.code, 0);
	assert_non_null(strstr(res.out, "\"huge_pages\": \"Transparent\""));
	assert_non_null(strstr(res.out, "\"thp\": true"));
	/* Firecracker's static template "None" asks for nothing. */
	run_config("{" BSD ",\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":128,"
		   "\"cpu_template\":\"None\"}}", &res);
	assert_int_equal(res.code, 0);
}

/*
 * Where Firecracker's structs do not deny unknown fields (the top level, metrics, a token
 * bucket), unknown keys are ignored, each with a warning and in --dry-run's "ignored".
 * "serial" is one: Firecracker's config file has no such section.
 */
static void test_ignored_keys(void **state)
{
	static struct child_result res;

	(void)state;
	run_config("{" MIN ",\"bogus\":1,\"serial\":{\"serial_out_path\":\"/tmp/s\"},"
		   "\"metrics\":{\"metrics_path\":\"/tmp/m\",\"emit_id\":true,"
		   "\"properties\":{\"customer\":\"1234\"},\"period\":60},"
		   "\"entropy\":{\"rate_limiter\":{\"ops\":{\"size\":1,\"refill_time\":1,"
		   "\"burst\":9}}}}", &res);
	assert_int_equal(res.code, 0);
	assert_non_null(strstr(res.err, "vm.json: bogus: unknown key, ignored (as Firecracker "
					"ignores it)\n"));
	assert_non_null(strstr(res.err, "vm.json: serial: unknown key, ignored"));
	assert_non_null(strstr(res.err, "vm.json: metrics.period: unknown key, ignored"));
	assert_non_null(strstr(res.err, "vm.json: entropy.rate_limiter.ops.burst: unknown key, "
					"ignored"));
	assert_non_null(strstr(res.out, "\"ignored\": [\n    \"bogus\",\n    \"serial\",\n    "
					"\"metrics.period\",\n    \"entropy.rate_limiter.ops.burst\"\n  ]"));
	/* Elsewhere an unknown key stays an error, as there (bad_cases: logger.colour, ...). */
}

/* Where @a and @b are in @out: @a first. */
static void assert_before(const char *out, const char *a, const char *b)
{
	const char *pa = strstr(out, a), *pb = strstr(out, b);

	if (!pa || !pb || pa > pb)
		print_error("want %s before %s in:\n%s\n", a, b, out);
	assert_true(pa && pb && pa < pb);
}

#define DRIVE(id, root) "{\"drive_id\":\"" id "\",\"path_on_host\":\"@D\",\"is_root_device\":" root "}"

/*
 * drives as Firecracker's BlockBuilder takes them: a drive_id given again replaces that
 * drive in its place; a root drive goes first, a replaced one swapping with the first.
 */
static void test_drive_replacement(void **state)
{
	static struct child_result res;

	(void)state;
	run_config("{" MIN0 ",\"drives\":[" DRIVE("a", "false") "," DRIVE("b", "false") ","
		   DRIVE("c", "true") "]}", &res);
	assert_int_equal(res.code, 0);
	assert_before(res.out, "\"c\"", "\"a\"");
	assert_before(res.out, "\"a\"", "\"b\"");
	/* Replaced by a read-only drive, in its place: a has the one path there is. */
	run_config("{" MIN0 ",\"drives\":[" DRIVE("a", "false") "," DRIVE("b", "false") ","
		   "{\"drive_id\":\"a\",\"path_on_host\":\"@R\",\"is_root_device\":false}]}",
		   &res);
	assert_int_equal(res.code, 0);
	assert_before(res.out, "\"a\"", "\"b\"");
	assert_null(strstr(strstr(res.out, "\"drive_id\": \"b\""), "\"drive_id\": \"a\""));
	assert_before(res.out, "\"path_on_host\": \"/proc/version\"", "\"drive_id\": \"b\"");
	/* x, y, a; then a as root: a swaps with the first, x goes where a was. */
	run_config("{" MIN0 ",\"drives\":[" DRIVE("x", "false") "," DRIVE("y", "false") ","
		   DRIVE("a", "false") "," DRIVE("a", "true") "]}", &res);
	assert_int_equal(res.code, 0);
	assert_before(res.out, "\"a\"", "\"y\"");
	assert_before(res.out, "\"y\"", "\"x\"");
	/* A partuuid on a drive that is not the root device is ignored, as there. */
	run_config("{" MIN0 ",\"drives\":[{\"drive_id\":\"d\",\"path_on_host\":\"@D\","
		   "\"is_root_device\":false,\"partuuid\":\"not a uuid\"}]}", &res);
	assert_int_equal(res.code, 0);
	assert_non_null(strstr(res.out, "\"partuuid\": null"));
}

#define NET(id, tap) "{\"iface_id\":\"" id "\",\"host_dev_name\":\"" tap "\"}"

/* network-interfaces as NetBuilder takes them: an iface_id given again replaces (swap_remove). */
static void test_net_replacement(void **state)
{
	static struct child_result res;

	(void)state;
	run_config("{" MIN ",\"network-interfaces\":[" NET("eth0", "tap0") "," NET("eth1", "tap1")
		   "," NET("eth2", "tap2") "," NET("eth0", "tap9") "]}", &res);
	assert_int_equal(res.code, 0);
	/* eth0 removed, the last (eth2) in its place, the new eth0 last. */
	assert_before(res.out, "\"eth2\"", "\"eth1\"");
	assert_before(res.out, "\"eth1\"", "\"eth0\"");
	assert_non_null(strstr(res.out, "\"tap9\""));
	assert_null(strstr(res.out, "\"tap0\""));
	/* The same MAC on the interface that replaces it is no clash. */
	run_config("{" MIN ",\"network-interfaces\":[{\"iface_id\":\"e\",\"host_dev_name\":\"t\","
		   "\"guest_mac\":\"06:00:00:00:00:01\"},{\"iface_id\":\"e\",\"host_dev_name\":"
		   "\"t\",\"guest_mac\":\"06:00:00:00:00:01\"}]}", &res);
	assert_int_equal(res.code, 0);
}

/*
 * --dry-run runs every check a launch does before /dev/kvm: a config that asks for what
 * flint cannot start yet is refused there too (78, the reason, nothing on stdout).
 */
static void test_dry_run_refuses_unsupported(void **state)
{
	static const char *const asks[] = {
		",\"balloon\":{\"amount_mib\":0,\"deflate_on_oom\":false}",
		",\"pmem\":[{\"id\":\"p\",\"path_on_host\":\"@D\"}]",
		",\"memory-hotplug\":{\"total_size_mib\":1024}",
		",\"cpu-config\":\"/tmp/t.json\"",
		",\"network-interfaces\":[{\"iface_id\":\"e\",\"host_dev_name\":\"t\",\"mtu\":1500}]",
		",\"logger\":{\"show_log_origin\":true}",
	};
	static struct child_result res;
	char json[512];

	(void)state;
	for (size_t i = 0; i < sizeof(asks) / sizeof(asks[0]); i++) {
		snprintf(json, sizeof(json), "{" MIN "%s}", asks[i]);
		run_config(json, &res);
		if (res.code != 78 || !strstr(res.err, "not supported yet") || res.out[0])
			print_error("%s: exit %d, stderr %s, stdout %s\n", asks[i], res.code, res.err,
				    res.out);
		assert_int_equal(res.code, 78);
		assert_non_null(strstr(res.err, "not supported yet"));
		assert_string_equal(res.out, "");
	}
}

/* logger.level: Firecracker's names in any case, Warn also as "warn"; Off logs nothing. */
static void test_logger_levels(void **state)
{
	static const char *const accepted[] = { "Error", "warning", "WARN", "info", "Debug",
						"trace", "Off" };
	static struct child_result res;
	char json[256];

	(void)state;
	for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
		snprintf(json, sizeof(json), "{" MIN ",\"logger\":{\"level\":\"%s\"}}",
			 accepted[i]);
		run_config(json, &res);
		assert_int_equal(res.code, 0);
	}
	/* An ignored key is a warning: shown at warn, not at error or off. */
	run_config("{" MIN ",\"bogus\":1,\"logger\":{\"level\":\"warn\"}}", &res);
	assert_non_null(strstr(res.err, "bogus: unknown key"));
	run_config("{" MIN ",\"bogus\":1,\"logger\":{\"level\":\"error\"}}", &res);
	assert_string_equal(res.err, "");
	run_config("{" MIN ",\"bogus\":1,\"logger\":{\"level\":\"OFF\"}}", &res);
	assert_int_equal(res.code, 0);
	assert_string_equal(res.err, "");
	/* The command line wins: --level takes Firecracker's names too. */
	run_config_opt("{" MIN ",\"bogus\":1,\"logger\":{\"level\":\"off\"}}", "--level",
		       "Warning", &res);
	assert_non_null(strstr(res.err, "bogus: unknown key"));
}

/* logger: what flint does anyway passes, what it cannot do is refused (see bad_cases). */
static void test_logger_section(void **state)
{
	static struct child_result res;

	(void)state;
	/* flint's log lines always carry their level: show_level either way is no lie. */
	run_config("{" MIN ",\"logger\":{\"level\":\"Debug\",\"show_level\":true,"
		   "\"show_log_origin\":false,\"module\":null}}", &res);
	assert_int_equal(res.code, 0);
	assert_string_equal(res.err, "");
	run_config("{" MIN ",\"logger\":{\"show_level\":false}}", &res);
	assert_int_equal(res.code, 0);
	assert_string_equal(res.err, "");
}

/*
 * A section function as the coming API calls it: the body is the section, the path
 * prefix is empty, so messages name the body's own keys after the request.
 */
static void test_section_api(void **state)
{
	char err[256];
	struct cfg_ctx c = { "PUT /boot-source", err, sizeof(err), NULL };
	struct vm_config cfg = { .kernel_fd = -1, .initrd_fd = -1 }; /* empty, no fd open */
	json_error_t jerr;
	json_t *body;

	(void)state;
	body = json_loads("{}", 0, &jerr);
	assert_int_equal(cfg_boot_source(&c, body, "", &cfg), -EINVAL);
	assert_string_equal(err, "PUT /boot-source: kernel_image_path: required key is missing");
	json_decref(body);
	body = json_loads("[1]", 0, &jerr);
	assert_int_equal(cfg_boot_source(&c, body, "", &cfg), -EINVAL);
	assert_string_equal(err, "PUT /boot-source: must be an object, not an array");
	json_decref(body);
	body = json_loads("{\"kernel_image_path\":\"/proc/version\"}", 0, &jerr);
	assert_int_equal(cfg_boot_source(&c, body, "", &cfg), 0);
	assert_string_equal(cfg.kernel_path, "/proc/version");
	assert_true(cfg.kernel_fd >= 0);
	assert_true(cfg.boot_args_default);
	json_decref(body);
	c.name = "PUT /logger";
	body = json_loads("{\"show_log_origin\":true}", 0, &jerr);
	assert_int_equal(cfg_logger(&c, body, "", &cfg), -EINVAL);
	assert_string_equal(err, "PUT /logger: show_log_origin: not supported yet");
	json_decref(body);
	config_free(&cfg);
}

/* The in-process API: parse errors free everything and leave a message. */
static void test_parse_api(void **state)
{
	struct vm_config cfg;
	char err[256];

	(void)state;
	assert_int_equal(config_parse("{\"machine-config\":{}}", "mem", &cfg, err, sizeof(err)), -22);
	assert_non_null(strstr(err, "mem: boot-source"));
	assert_null(cfg.kernel_path);
	assert_int_equal(config_load("/nonexistent.json", &cfg, err, sizeof(err)), -2);
	assert_non_null(strstr(err, "/nonexistent.json: cannot open config file"));
	/* The API's document, unlike a config file, needs no "drives": they come by PUT. */
	assert_int_equal(config_parse("{\"boot-source\":{\"kernel_image_path\":\"/proc/version\"},"
				      "\"x\":1}", "api", &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.ndrives, 0);
	assert_int_equal(cfg.vcpus, 1);
	assert_int_equal(cfg.ignored.n, 1);
	assert_string_equal(cfg.ignored.paths[0], "x");
	config_free(&cfg);
	/* A section function as the API calls it notes nothing: no parse is going on. */
	struct cfg_ctx c = { "PUT /metrics", err, sizeof(err), NULL };
	json_t *body = json_loads("{\"metrics_path\":\"/m\",\"x\":1}", 0, NULL);
	config_init(&cfg);
	assert_int_equal(cfg_metrics(&c, body, "", &cfg), 0);
	assert_int_equal(cfg.ignored.n, 0);
	json_decref(body);
	config_free(&cfg);
}

/* Mutated configs, in-process under the sanitizers: parsed or refused, never a crash. */
static void test_config_mutants(void **state)
{
	static const char *base =
		"{\"boot-source\":{\"kernel_image_path\":\"/proc/version\",\"boot_args\":\"a b\"},"
		"\"machine-config\":{\"vcpu_count\":2,\"mem_size_mib\":128,\"smt\":false},"
		"\"drives\":[{\"drive_id\":\"r\",\"path_on_host\":\"/proc/version\",\"is_root_device\":true,"
		"\"is_read_only\":true,\"rate_limiter\":{\"ops\":{\"size\":1,\"refill_time\":2}}}],"
		"\"network-interfaces\":[{\"iface_id\":\"e\",\"host_dev_name\":\"t\",\"guest_mac\":\"06:00:00:00:00:01\"}],"
		"\"vsock\":{\"guest_cid\":3,\"uds_path\":\"/v\"},\"logger\":{\"level\":\"Info\"},"
		"\"flint\":{\"ci\":{\"exit_port\":244},\"iommu\":{\"fault_chunk_kib\":64},"
		"\"vfio-devices\":[{\"id\":\"d\",\"bdf\":\"0000:00:03.0\",\"dma_mode\":\"pin\"}]}}";
	static const char tokens[] = "{}[]:,\"0123456789-.eE tfnul\\";
	size_t len = strlen(base), ok = 0;
	char *json = malloc(len + 1), err[512];
	unsigned seed = 7;
	struct vm_config cfg;

	(void)state;
	assert_int_equal(config_parse(base, "base", &cfg, err, sizeof(err)), 0);
	config_free(&cfg);
	for (int i = 0; i < 20000; i++) {
		memcpy(json, base, len + 1);
		for (int k = 1 + rand_r(&seed) % 3; k > 0; k--)
			json[rand_r(&seed) % len] = tokens[rand_r(&seed) % (sizeof(tokens) - 1)];
		err[0] = 0;
		int r = config_parse(json, "m", &cfg, err, sizeof(err));
		if (r == 0) {
			ok++;
			config_free(&cfg);
		} else {
			assert_int_equal(r, -EINVAL);
			assert_true(strncmp(err, "m: ", 3) == 0); /* one message, naming the source */
			assert_null(cfg.kernel_path);             /* nothing left allocated */
		}
	}
	print_message("%zu of 20000 mutated configs were still valid\n", ok);
	free(json);
}

static void test_cli_usage(void **state)
{
	static struct child_result res;
	char *bin = (char *)test_flint_bin();
	char sock[256];
	char *no_config[] = {bin, "--api-sock", sock, NULL};
	char *bad_opt[] = {bin, "--frobnicate", NULL};
	char *bad_level[] = {bin, "--config", "x", "--log-level", "loud", NULL};
	char *missing_arg[] = {bin, "--config-file", NULL};
	char *version[] = {bin, "--version", NULL};
	char *bad_port[] = {bin, "--config", "x", "--exit-port", "0x10000", NULL};

	(void)state;
	/* Without a config Firecracker serves its API: so does flint, until SIGTERM. */
	snprintf(sock, sizeof(sock), "%s/usage.sock", test_tmpdir());
	assert_int_equal(test_run(no_config, 10, SIGTERM, 500, &res), 0);
	assert_int_equal(res.code, 143);
	assert_non_null(strstr(res.err, "API: serving "));
	assert_int_equal(test_run(bad_opt, 10, 0, 0, &res), 0);
	assert_int_equal(res.code, 64);
	assert_non_null(strstr(res.err, "unknown option --frobnicate"));
	assert_int_equal(test_run(bad_level, 10, 0, 0, &res), 0);
	assert_int_equal(res.code, 64);
	assert_non_null(strstr(res.err, "--log-level"));
	assert_int_equal(test_run(missing_arg, 10, 0, 0, &res), 0);
	assert_int_equal(res.code, 64);
	assert_int_equal(test_run(bad_port, 10, 0, 0, &res), 0);
	assert_int_equal(res.code, 64);
	assert_non_null(strstr(res.err, "--exit-port: \"0x10000\" is not a port number"));
	assert_int_equal(test_run(version, 10, 0, 0, &res), 0);
	assert_int_equal(res.code, 0);
	assert_non_null(strstr(res.out, "flint "));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_configs),    cmocka_unit_test(test_minimal_config),
		cmocka_unit_test(test_full_firecracker_config), cmocka_unit_test(test_flint_section),
		cmocka_unit_test(test_logger_section), cmocka_unit_test(test_section_api),
		cmocka_unit_test(test_parse_api),      cmocka_unit_test(test_config_mutants),      cmocka_unit_test(test_cli_usage),
		cmocka_unit_test(test_firecracker_defaults), cmocka_unit_test(test_ignored_keys),
		cmocka_unit_test(test_drive_replacement), cmocka_unit_test(test_net_replacement),
		cmocka_unit_test(test_dry_run_refuses_unsupported), cmocka_unit_test(test_logger_levels),
	};
	return TEST_MAIN(tests, setup, test_group_teardown);
}
