/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for what Rust cannot reach directly: module parameters (a macro)
 * and inline functions.  Each is a thin wrapper with the C name it wraps.
 */
#ifndef REFLEDGER_HELPERS_H
#define REFLEDGER_HELPERS_H

#include <linux/kprobes.h>
#include <linux/ptrace.h>

/* The `extra_probes=` module parameter, or NULL when it was not given. */
const char *rl_param_extra_probes(void);

/* regs_get_kernel_argument(): the n-th argument of a probed function. */
unsigned long rl_regs_get_kernel_argument(struct pt_regs *regs, unsigned int n);

/* regs_return_value(): the return value, in a kretprobe handler. */
unsigned long rl_regs_return_value(struct pt_regs *regs);

/* get_kretprobe(): the kretprobe an instance belongs to. */
struct kretprobe *rl_get_kretprobe(struct kretprobe_instance *ri);

/* The per-instance scratch space of a kretprobe (ri->data, data_size bytes). */
void *rl_kretprobe_data(struct kretprobe_instance *ri);

#endif
