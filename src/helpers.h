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

/*
 * The value `%p` prints for `ptr` (its hash, never the address), as a
 * number; 0 when `%p` prints no hash yet (early boot).  Process context.
 */
u64 rl_ptr_hash(unsigned long ptr);

/* regs_get_kernel_argument(): the n-th argument of a probed function. */
unsigned long rl_regs_get_kernel_argument(struct pt_regs *regs, unsigned int n);

/* regs_return_value(): the return value, in a kretprobe handler. */
unsigned long rl_regs_return_value(struct pt_regs *regs);

/*
 * get_kretprobe(): the kretprobe an instance belongs to (an RCU-checked
 * read through the instance's rethook, which bindgen cannot see into).
 */
struct kretprobe *rl_get_kretprobe(struct kretprobe_instance *ri);

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
 * The current task's pid; its name is copied raw to comm (TASK_COMM_LEN
 * bytes of task->comm, without the task lock; not NUL-terminated).
 */
int rl_current_task(char *comm);
/*
 * The free part of a seq_file's buffer at its count (*at), if at least
 * need bytes are free, for a line built in place; NULL otherwise.
 */
char *rl_seq_room(struct seq_file *m, size_t need, size_t *at);
/* Moves the count from at by n, if it is still at and n bytes fit. */
bool rl_seq_commit(struct seq_file *m, size_t at, size_t n);
/* Whether the current task is in mount(2) (native, not compat). */
bool rl_in_mount_syscall(void);

/*
 * Nanoseconds since boot: ktime_get_mono_fast_ns(), the monotonic clock's
 * NMI-safe reader.  A kprobe handler on an int3 breakpoint runs in NMI
 * context, where ktime_get_ns() could spin forever on the timekeeping
 * seqcount of the writer it interrupted.
 */
u64 rl_ktime_get_ns(void);
/*
 * An anchor for the TSC clock of src/wrappers/clock.rs: the TSC and
 * rl_ktime_get_ns() read together, and the kernel's TSC frequency in kHz
 * (tsc_khz).  False, with nothing written, if the TSC cannot be used: none,
 * or found unstable by the kernel.  Process context.
 */
bool rl_clock_anchor(u64 *tsc, u64 *ns, u32 *khz);

/*
 * For the ledger's lock (src/wrappers/sync.rs): a word holding the CPU that
 * holds it, or -1, taken by compare-and-swap, and held with interrupts
 * off.  Process context takes it from Rust after rl_lock_irqsave(), which
 * also tells lockdep (one class, with the given name) as spin_lock_irqsave()
 * would, and lets go before rl_unlock_irqrestore().  Probe handlers, which
 * never wait for a holder on their own CPU, use rl_lock_try() and
 * rl_unlock() and do not tell lockdep.
 */
void rl_lockdep_init(struct lockdep_map *map, const char *name);
unsigned long rl_lock_irqsave(struct lockdep_map *map);
void rl_unlock_irqrestore(struct lockdep_map *map, unsigned long flags);
enum rl_lock_try_result {
	/* Taken: interrupts are off, to be restored from *flags. */
	RL_LOCK_TAKEN = 0,
	/* Held by this CPU (the caller interrupted the holder). */
	RL_LOCK_MINE = 1,
	/* Held by another CPU. */
	RL_LOCK_BUSY = 2,
};
/* One try at *owner for this CPU; interrupts are as they were unless taken. */
enum rl_lock_try_result rl_lock_try(int *owner, unsigned long *flags);
/* Lets go of *owner (release) and restores the interrupts. */
void rl_unlock(int *owner, unsigned long flags);
/* raw_smp_processor_id(), for a lock holder's CPU. */
int rl_raw_smp_processor_id(void);
/* in_nmi(), a macro. */
bool rl_in_nmi(void);

/* INIT_DELAYED_WORK(), a macro. */
void rl_init_delayed_work(struct delayed_work *dw, work_func_t fn);

/* schedule_delayed_work(dw, msecs_to_jiffies(ms)), both inline. */
bool rl_queue_delayed_work_ms(struct delayed_work *dw, unsigned int ms);

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
		    unsigned int gen, int s_active, unsigned long stalled_ms);

/*
 * The superblock walk of the audit, which never blocks on a filesystem.
 *
 * rl_find_sb_lock() finds fs/super.c's sb_lock, the spinlock that guards
 * every filesystem type's list of superblocks (fs_supers); it is static, so
 * its address comes from kallsyms, through kprobes' own symbol lookup (a
 * kprobe on a data symbol is refused, after its address was looked up).
 * The address is checked to name "sb_lock" before it is used.  Returns 0 or
 * a negative errno.
 *
 * rl_walk_supers() calls f(sb, arg) for every superblock of every registered
 * filesystem type, from `first` on, with RCU read-locked and sb_lock held:
 * f must not sleep.  A superblock on its type's fs_supers is allocated while
 * sb_lock is held (put_super unlinks it under sb_lock before it frees it),
 * so f may read it.  After each type's superblocks it calls type_done(arg)
 * (if not NULL), still under sb_lock, so f may hold a lock of its own
 * across a type's superblocks and drop it there.  It never takes s_umount
 * and never waits for SB_BORN, unlike iterate_supers_type(), which a stuck
 * mount or unmount blocks.
 * Each type walked is stored in types[] (up to max_types; *ntypes counts all
 * of them).  The type list is walked under RCU: unregister_filesystem()
 * unlinks a type and waits for a grace period before its module can go.
 */
int rl_find_sb_lock(void);

/*
 * rl_last_super() stores in *sb the superblock listed last (0 if none):
 * sget_fc() and sget() add each new superblock at the tail of the global
 * super_blocks list, under sb_lock.  The value is a key, never to be
 * dereferenced: the superblock may be freed once sb_lock is dropped.
 * rl_find_sb_lock() looks super_blocks up too (static in fs/super.c, from
 * kallsyms as sb_lock is); without it this returns -ENOENT.
 */
int rl_last_super(unsigned long *sb);
void rl_walk_supers(struct file_system_type *first,
		    void (*f)(struct super_block *sb, void *arg),
		    void (*type_done)(void *arg), void *arg,
		    unsigned long *types, unsigned int max_types, unsigned int *ntypes);

/* What the audit reads of a superblock's flags and locks, as RL_SB_* bits. */
#define RL_SB_BORN 1
#define RL_SB_DYING 2
#define RL_SB_UMOUNT_LOCKED 4
unsigned int rl_sb_state(struct super_block *sb);

/*
 * Calls f(bdev, holder, holder_ops, arg) for every block device open now
 * (bd_openers > 0), as iterate_bdevs() walks them: the inodes of the bdev
 * pseudo-filesystem under its s_inode_list_lock, each under its i_lock and
 * skipped while being set up or freed.  f must not sleep.  The holder and
 * its ops are read racily (their owner writes them under bd_holder_lock, a
 * mutex), for display only.
 */
void rl_for_each_open_bdev(void (*f)(struct block_device *bdev, void *holder,
				     const struct blk_holder_ops *hops, void *arg),
			   void *arg);

/*
 * Whether a block device inode is usable: not being set up or freed, as
 * iterate_bdevs() checks it.  The caller holds inode->i_lock.  (Static
 * inline, for helpers.c and holders.c; bindgen leaves it out.)
 */
static inline bool rl_inode_usable_locked(struct inode *inode)
{
	unsigned long state;

#ifdef RL_INODE_STATE_ACCESSORS
	state = inode_state_read(inode);
#else
	state = inode->i_state;
#endif
	return !(state & (I_FREEING | I_WILL_FREE | I_NEW));
}

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
 * racy read, as exact as one can be; the caller keeps sb allocated and is
 * in an RCU read-side section (preemption off will do).  In
 * 6.12 s_mounts is a list_head; later kernels chain struct mounts (private
 * to fs/) from a pointer.
 */
int rl_sb_mounts(struct super_block *sb);

/* rcu_read_lock() and rcu_read_unlock(), inline functions. */
void rl_rcu_read_lock(void);
void rl_rcu_read_unlock(void);

#endif
