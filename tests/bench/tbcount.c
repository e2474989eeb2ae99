// SPDX-License-Identifier: GPL-2.0
/*
 * tbcount: a QEMU TCG plugin for `make bench` that counts the guest kernel
 * instructions executed, by translation block.
 *
 * Under TCG every guest instruction is executed by QEMU, so the count is
 * exact: unlike a timing, it does not move with the host's load, and
 * unlike sampling, it does not pile up where interrupts happen to be
 * taken.  The guest marks windows by calling sync(2): each time the
 * kernel's `ksys_sync` is entered, the counts so far are written to
 * OUTFILE.N (N = 0, 1, ...) as lines "address instructions executions" and
 * reset.  scripts/profile.py maps the addresses to the guest's symbols.
 *
 *   -plugin tbcount.so,outfile=PATH,trigger=HEXADDR
 *
 * Only the few functions of QEMU's plugin API that this uses are declared
 * here (unchanged since API version 1), so it builds without QEMU's
 * headers.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id,
					       struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
					   qemu_plugin_vcpu_tb_trans_cb_t cb);
/* The flags are enum qemu_plugin_cb_flags; 0 is QEMU_PLUGIN_CB_NO_REGS. */
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb,
					  qemu_plugin_vcpu_udata_cb_t cb,
					  int flags, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id,
				    qemu_plugin_udata_cb_t cb, void *userdata);

/* The API level this was written against; QEMU refuses levels it lacks. */
__attribute__((visibility("default"))) int qemu_plugin_version = 4;

/* One translation of a block.  A block translated again gets a new one. */
struct block {
	uint64_t vaddr;
	uint64_t insns;
	uint64_t runs;
	struct block *next;
};

static struct block *blocks;
static const char *outfile = "tbcount";
static uint64_t trigger;
static int windows;

static void dump(void)
{
	char name[4096];
	struct block *b;
	FILE *f;

	snprintf(name, sizeof(name), "%s.%d", outfile, windows++);
	f = fopen(name, "w");
	for (b = blocks; b; b = b->next) {
		if (f && b->runs)
			fprintf(f, "%" PRIx64 " %" PRIu64 " %" PRIu64 "\n",
				b->vaddr, b->insns, b->runs);
		b->runs = 0;
	}
	if (f)
		fclose(f);
}

/*
 * Not atomic, and the list is not locked: the plugin needs QEMU to run all
 * vCPUs in one thread, as it does with -icount (scripts/bench.sh passes it).
 */
static void on_exec(unsigned int vcpu, void *udata)
{
	((struct block *)udata)->runs++;
}

static void on_trigger(unsigned int vcpu, void *udata)
{
	dump();
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	uint64_t va = qemu_plugin_tb_vaddr(tb);
	struct block *b;

	/* Kernel text only: user space is the workload's own business. */
	if (va < 0xffff800000000000ull)
		return;
	b = calloc(1, sizeof(*b));
	if (!b)
		return;
	b->vaddr = va;
	b->insns = qemu_plugin_tb_n_insns(tb);
	b->next = blocks;
	blocks = b;
	qemu_plugin_register_vcpu_tb_exec_cb(tb, on_exec, 0, b);
	if (va == trigger)
		qemu_plugin_register_vcpu_tb_exec_cb(tb, on_trigger, 0, NULL);
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
	dump();
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
			int argc, char **argv)
{
	int i;

	for (i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "outfile=", 8))
			outfile = argv[i] + 8;
		else if (!strncmp(argv[i], "trigger=", 8))
			trigger = strtoull(argv[i] + 8, NULL, 16);
	}
	if (!trigger) {
		fprintf(stderr, "tbcount: trigger=ADDRESS is required\n");
		return -1;
	}
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
	return 0;
}
