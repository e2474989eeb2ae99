/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for what Rust cannot reach directly: module parameters (a macro)
 * and inline functions.  Each is a thin wrapper with the C name it wraps.
 */
#ifndef REFLEDGER_HELPERS_H
#define REFLEDGER_HELPERS_H

#include <linux/blkdev.h>
#include <linux/fs.h>
#include <linux/kprobes.h>
#include <linux/workqueue.h>
#include <linux/ptrace.h>

/* The `extra_probes=` module parameter, or NULL when it was not given. */
const char *rl_param_extra_probes(void);

/* regs_get_kernel_argument(): the n-th argument of a probed function. */
unsigned long rl_regs_get_kernel_argument(struct pt_regs *regs, unsigned int n);

/* regs_return_value(): the return value, in a kretprobe handler. */
unsigned long rl_regs_return_value(struct pt_regs *regs);

/*
 * get_kretprobe(): the kretprobe an instance belongs to; and, in *data, the
 * instance's scratch space (ri->data, data_size bytes).  One call for both,
 * since every kretprobe hit needs both.
 */
struct kretprobe *rl_kretprobe_instance(struct kretprobe_instance *ri, void **data);

/*
 * At a probed function's first instruction, the address it will return to:
 * the word on top of the stack (regs_get_kernel_stack_nth(regs, 0)).
 */
unsigned long rl_entry_return_address(struct pt_regs *regs);

/*
 * stack_trace_save_regs(), which is not exported: the stack from a probed
 * function's registers outwards, its own address first.  Falls back to
 * stack_trace_save() where the unwinder cannot start from registers.
 */
unsigned int rl_stack_trace_save_regs(struct pt_regs *regs, unsigned long *store,
				      unsigned int size);

/*
 * The current task's pid, and its name copied raw (up to len bytes of
 * task->comm, without the task lock; not NUL-terminated at 16 bytes).
 */
int rl_current_pid(void);
void rl_current_comm(char *buf, size_t len);

/* Nanoseconds since boot (ktime_get_ns(), an inline function). */
u64 rl_ktime_get_ns(void);

/* INIT_DELAYED_WORK(), a macro. */
void rl_init_delayed_work(struct delayed_work *dw, work_func_t fn);

/* schedule_delayed_work(dw, msecs_to_jiffies(ms)), both inline. */
bool rl_queue_delayed_work_ms(struct delayed_work *dw, unsigned int ms);

/* to_delayed_work(), a macro (container_of). */
struct delayed_work *rl_to_delayed_work(struct work_struct *work);

/*
 * Formats `addr` as "%ps" (the bare symbol name) into buf.  Used to classify
 * call sites once; kallsyms lookups do not sleep.
 */
void rl_symbol_name(char *buf, size_t len, unsigned long addr);

/*
 * printk_ratelimited() of one leak line.  The superblock is printed with %p,
 * hashed exactly as in the debugfs files, never as a raw pointer.
 */
void rl_report_leak(const char *fstype, const char *s_id, const void *sb,
		    int s_active, unsigned long stalled_ms);

/*
 * Filesystem types for the audit, which walks each type's superblocks with
 * iterate_supers_type() because iterate_supers() is not exported.
 *
 * rl_fs_type_next() returns the first registered type at or after position
 * *pos counted from `start` (advancing *pos), or NULL at the end.  The list
 * is walked under RCU: unregister_filesystem() unlinks a type, then waits for
 * a grace period.  A type owned by a module is returned only if the module
 * is live, and the module is recorded as being walked, so that
 * rl_module_going() (called from a module notifier on MODULE_STATE_GOING)
 * waits until rl_fs_type_done(): the type cannot be unregistered and freed
 * while the audit uses it.  One walker at a time (the audit lock).
 */
struct file_system_type *rl_fs_type_next(struct file_system_type *start,
					 unsigned int *pos);
void rl_fs_type_done(void);
void rl_module_going(struct module *mod);

/* tracepoint_synchronize_unregister(), an inline function. */
void rl_tracepoint_synchronize_unregister(void);

/* snprintf("%pg") of a block device: its name, such as "loop0" or "sda1". */
void rl_bdev_name(char *buf, size_t len, struct block_device *bdev);

/*
 * debugfs_create_file(), a function in 6.12 and a _Generic macro over
 * debugfs_create_file_full() since.
 */
struct dentry *rl_debugfs_create_file(const char *name, umode_t mode, struct dentry *parent,
				      void *data, const struct file_operations *fops);

/*
 * How many struct mounts sb->s_mounts holds: 0, 1, or 2 for two or more.  A
 * racy read, as exact as one can be; the caller keeps sb allocated.  In
 * 6.12 s_mounts is a list_head; later kernels chain struct mounts (private
 * to fs/) from a pointer.
 */
int rl_sb_mounts(struct super_block *sb);

/* rcu_read_lock() and rcu_read_unlock(), inline functions. */
void rl_rcu_read_lock(void);
void rl_rcu_read_unlock(void);

/* current, a macro. */
struct task_struct *rl_current_task(void);

#endif
