// SPDX-License-Identifier: GPL-2.0
/*
 * The C side of refledger.ko: module parameters, which 6.12's Rust `module!`
 * cannot declare, and wrappers for inline functions.
 */
#include <linux/kprobes.h>
#include <linux/moduleparam.h>
#include <linux/ptrace.h>

#include "helpers.h"

static char *extra_probes;
module_param(extra_probes, charp, 0400);
MODULE_PARM_DESC(extra_probes,
		 "Comma-separated extra kernel functions to count calls of, shown in the probes file");

const char *rl_param_extra_probes(void)
{
	return extra_probes;
}

unsigned long rl_regs_get_kernel_argument(struct pt_regs *regs, unsigned int n)
{
	return regs_get_kernel_argument(regs, n);
}

unsigned long rl_regs_return_value(struct pt_regs *regs)
{
	return regs_return_value(regs);
}

struct kretprobe *rl_get_kretprobe(struct kretprobe_instance *ri)
{
	return get_kretprobe(ri);
}

void *rl_kretprobe_data(struct kretprobe_instance *ri)
{
	return ri->data;
}
