// SPDX-License-Identifier: GPL-2.0
/*
 * The C side of refledger.ko: module parameters, which 6.12's Rust `module!`
 * cannot declare, wrappers for inline functions and macros, and the one read
 * of a structure private to fs/ (struct mount).  What differs between the
 * kernels refledger supports is decided here by what the kernel's headers
 * declare (RL_SB_MOUNTS_PTR comes from Kbuild), so the Rust side sees one API.
 */
#include <linux/blkdev.h>
#include <linux/compat.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/kprobes.h>
#include <linux/kallsyms.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/rcupdate.h>
#include <linux/moduleparam.h>
#include <linux/printk.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/string.h>
#include <linux/timekeeping.h>
#include <linux/tracepoint.h>
#include <linux/ptrace.h>
#include <linux/stacktrace.h>
#include <asm/unwind.h>
#include <asm/tsc.h>
#include <asm/syscall.h>
#include <asm/unistd.h>
#ifdef RL_SB_MOUNTS_PTR
/*
 * fs/mount.h, for struct mount: sb->s_mounts points to one since the list
 * became a chain through mnt_next_for_sb (after 6.12).  Kbuild puts the
 * kernel's fs/ directory on the include path.
 */
#include <mount.h>
#endif

#include "helpers.h"

/*
 * In C because 7.x's `module!` spells this `authors: [...]` and 6.12's
 * `author: "..."`: one declaration for both.
 */
MODULE_AUTHOR("refledger developers");

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

/*
 * A return handler finds its instance's scratch space without a call: at
 * the end of the instance, right after its fixed members (see
 * kprobe::instance_data).  The Rust side steps over the struct's size as
 * bindgen gives it, which is C's; this checks, on every kernel we build
 * for, that C puts the space right there and not inside trailing padding.
 */
static_assert(offsetof(struct kretprobe_instance, data) ==
	      sizeof(struct kretprobe_instance));

struct kretprobe *rl_get_kretprobe(struct kretprobe_instance *ri)
{
	return get_kretprobe(ri);
}

unsigned long rl_entry_return_address(struct pt_regs *regs)
{
	return regs_get_kernel_stack_nth(regs, 0);
}

unsigned int rl_stack_trace_save_regs(struct pt_regs *regs, unsigned long *store,
				      unsigned int size)
{
#if defined(CONFIG_UNWINDER_ORC) || defined(CONFIG_UNWINDER_FRAME_POINTER)
	/*
	 * arch_stack_walk() with regs, as stack_trace_save_regs() does; that
	 * function is not exported, but the unwinder it uses is.  Starting
	 * from the probed function's registers skips the frames of the
	 * handler and of the kprobe and ftrace machinery, which are most of
	 * the unwinding a handler would otherwise do.
	 */
	struct unwind_state state;
	unsigned long addr;
	unsigned int n = 0;

	if (!size)
		return 0;
	store[n++] = instruction_pointer(regs);
	for (unwind_start(&state, current, regs, NULL);
	     !unwind_done(&state) && n < size; unwind_next_frame(&state)) {
		addr = unwind_get_return_address(&state);
		if (!addr)
			break;
		store[n++] = addr;
	}
	return n;
#else
	return stack_trace_save(store, size, 0);
#endif
}

int rl_current_task(char *comm)
{
	/*
	 * A raw copy, as __get_task_comm() would make without its string
	 * handling: the name may change under us (prctl), and the reader
	 * stops at the first NUL and cleans the bytes when it prints them.
	 * One call for both, since every evidence takes both.
	 */
	BUILD_BUG_ON(sizeof(current->comm) != TASK_COMM_LEN);
	/* The Rust callers' buffers are 16 bytes, and taken as written whole. */
	BUILD_BUG_ON(TASK_COMM_LEN != 16);
	memcpy(comm, current->comm, TASK_COMM_LEN);
	return task_pid_nr(current);
}

char *rl_seq_room(struct seq_file *m, size_t need, size_t *at)
{
	*at = m->count;
	/* count == size is the overflow mark: the core retries the show. */
	if (!m->buf || m->count > m->size || m->size - m->count < need)
		return NULL;
	return m->buf + m->count;
}

bool rl_seq_commit(struct seq_file *m, size_t at, size_t n)
{
	if (m->count != at || at > m->size || n > m->size - at)
		return false;
	m->count = at + n;
	return true;
}

bool rl_in_mount_syscall(void)
{
	/*
	 * A kernel thread's saved registers say nothing; a user task's
	 * orig_ax is the system call it is in, even when the probe handler
	 * runs in the int3 trap's NMI-like context (the trap is synchronous).
	 */
	if (current->flags & PF_KTHREAD)
		return false;
	if (in_compat_syscall())
		return false;
	return syscall_get_nr(current, task_pt_regs(current)) == __NR_mount;
}

u64 rl_ktime_get_ns(void)
{
	return ktime_get_mono_fast_ns();
}

bool rl_clock_anchor(u64 *tsc, u64 *ns, u32 *khz)
{
#ifdef CONFIG_X86_TSC
	unsigned long flags;

	if (!boot_cpu_has(X86_FEATURE_TSC) || !tsc_khz || check_tsc_unstable())
		return false;
	*khz = tsc_khz;
	/*
	 * Read together, with interrupts off (an NMI may still come between
	 * them).  ktime_get_mono_fast_ns() reads the TSC again, a few dozen
	 * cycles later, so the pair is that much off: nanoseconds.
	 */
	local_irq_save(flags);
	*tsc = rdtsc_ordered();
	*ns = ktime_get_mono_fast_ns();
	local_irq_restore(flags);
	return true;
#else
	return false;
#endif
}

void rl_lockdep_init(struct lockdep_map *map, const char *name)
{
	static struct lock_class_key key;

	/* A spinning lock, held with interrupts off, even on PREEMPT_RT. */
	lockdep_init_map_wait(map, name, &key, 0, LD_WAIT_SPIN);
}

unsigned long rl_lock_irqsave(struct lockdep_map *map)
{
	unsigned long flags;

	local_irq_save(flags);
	/* As spin_lock() tells lockdep, before it spins. */
	spin_acquire(map, 0, 0, _RET_IP_);
	return flags;
}

void rl_unlock_irqrestore(struct lockdep_map *map, unsigned long flags)
{
	spin_release(map, _RET_IP_);
	local_irq_restore(flags);
}

enum rl_lock_try_result rl_lock_try(int *owner, unsigned long *flags)
{
	int cpu = raw_smp_processor_id();
	int holder = -1;

	local_irq_save(*flags);
	if (try_cmpxchg_acquire(owner, &holder, cpu))
		return RL_LOCK_TAKEN;
	local_irq_restore(*flags);
	return holder == cpu ? RL_LOCK_MINE : RL_LOCK_BUSY;
}

void rl_unlock(int *owner, unsigned long flags)
{
	smp_store_release(owner, -1);
	local_irq_restore(flags);
}

int rl_raw_smp_processor_id(void)
{
	return raw_smp_processor_id();
}

bool rl_in_nmi(void)
{
	return in_nmi();
}

void rl_init_delayed_work(struct delayed_work *dw, work_func_t fn)
{
	INIT_DELAYED_WORK(dw, fn);
}

bool rl_queue_delayed_work_ms(struct delayed_work *dw, unsigned int ms)
{
	/*
	 * schedule_delayed_work(): system_wq in 6.12, system_percpu_wq in 7.x,
	 * where system_wq is deprecated and warns when used.
	 */
	return schedule_delayed_work(dw, msecs_to_jiffies(ms));
}

void rl_symbol_name(char *buf, size_t len, unsigned long addr)
{
	snprintf(buf, len, "%ps", (void *)addr);
}

void rl_report_leak(const char *fstype, const char *s_id, const void *sb,
		    unsigned int gen, int s_active, unsigned long stalled_ms)
{
	printk_ratelimited(KERN_WARNING
			   "refledger: leaked superblock %p.%u (%s %s): no mounts, s_active=%d for %lu ms; see /sys/kernel/debug/refledger/leaks\n",
			   sb, gen, fstype, s_id, s_active, stalled_ms);
}

/* The registered type after t, or NULL; under rcu_read_lock(). */
static struct file_system_type *rl_fs_type_after(struct file_system_type *t)
{
#ifdef RL_FS_TYPES_HLIST
	return hlist_entry_safe(rcu_dereference(hlist_next_rcu(&t->list)),
				struct file_system_type, list);
#else
	return READ_ONCE(t->next);
#endif
}

static spinlock_t *rl_sb_lock;
static struct list_head *rl_super_blocks;

/* The address of the static data symbol `sym`, or a negative errno. */
static int rl_find_data(const char *sym, unsigned long *out)
{
	struct kprobe kp = { .symbol_name = sym };
	char name[KSYM_SYMBOL_LEN];
	char want[KSYM_NAME_LEN + 8];
	unsigned long addr;
	int err;

	/*
	 * register_kprobe() looks the name up and stores the address in
	 * kp.addr before it checks that the address is kernel text; `sym`
	 * is data, so the registration fails there and nothing is armed.  A
	 * registration that succeeds found text, not the data.
	 */
	err = register_kprobe(&kp);
	if (!err) {
		unregister_kprobe(&kp);
		return -EINVAL;
	}
	addr = (unsigned long)kp.addr;
	if (!addr || IS_ERR_VALUE(addr))
		return -ENOENT;
	/* The symbol's own start: "sym+0x0/size", no other offset. */
	sprint_symbol(name, addr);
	snprintf(want, sizeof(want), "%s+0x0/", sym);
	if (strncmp(name, want, strlen(want)) != 0)
		return -ENOENT;
	*out = addr;
	return 0;
}

int rl_find_sb_lock(void)
{
	unsigned long addr;
	int err = rl_find_data("sb_lock", &addr);

	if (err)
		return err;
	rl_sb_lock = (spinlock_t *)addr;
	/* Optional: without it, rl_last_super() fails and audits walk. */
	if (!rl_find_data("super_blocks", &addr))
		rl_super_blocks = (struct list_head *)addr;
	return 0;
}

int rl_last_super(unsigned long *sb)
{
	struct list_head *last;

	if (!rl_sb_lock || !rl_super_blocks)
		return -ENOENT;
	spin_lock(rl_sb_lock);
	last = rl_super_blocks->prev;
	*sb = last == rl_super_blocks ? 0 :
		(unsigned long)list_entry(last, struct super_block, s_list);
	spin_unlock(rl_sb_lock);
	return 0;
}

void rl_walk_supers(struct file_system_type *first,
		    void (*f)(struct super_block *sb, void *arg),
		    void (*type_done)(void *arg), void *arg,
		    unsigned long *types, unsigned int max_types, unsigned int *ntypes)
{
	struct file_system_type *t;
	struct super_block *sb;

	*ntypes = 0;
	if (!rl_sb_lock)
		return;
	rcu_read_lock();
	for (t = first; t; t = rl_fs_type_after(t)) {
		if (*ntypes < max_types)
			types[*ntypes] = (unsigned long)t;
		(*ntypes)++;
		spin_lock(rl_sb_lock);
		hlist_for_each_entry(sb, &t->fs_supers, s_instances)
			f(sb, arg);
		if (type_done)
			type_done(arg);
		spin_unlock(rl_sb_lock);
	}
	rcu_read_unlock();
}

u64 rl_ptr_hash(unsigned long ptr)
{
	char buf[24];
	u64 hash;

	/* vsprintf's hashing is private: print it and read it back. */
	snprintf(buf, sizeof(buf), "%p", (void *)ptr);
	if (kstrtou64(buf, 16, &hash))
		return 0;
	return hash;
}

unsigned int rl_sb_state(struct super_block *sb)
{
	/* As super_flags() reads them: acquire pairs with super_wake(). */
	unsigned int flags = smp_load_acquire(&sb->s_flags);
	unsigned int state = 0;

	if (flags & SB_BORN)
		state |= RL_SB_BORN;
	if (flags & SB_DYING)
		state |= RL_SB_DYING;
	if (rwsem_is_locked(&sb->s_umount))
		state |= RL_SB_UMOUNT_LOCKED;
	return state;
}

void rl_for_each_open_bdev(void (*f)(struct block_device *bdev, void *holder,
				     const struct blk_holder_ops *hops, void *arg),
			   void *arg)
{
	struct super_block *sb = blockdev_superblock;
	struct inode *inode;

	spin_lock(&sb->s_inode_list_lock);
	list_for_each_entry(inode, &sb->s_inodes, i_sb_list) {
		struct block_device *bdev;

		spin_lock(&inode->i_lock);
		if (rl_inode_usable_locked(inode)) {
			bdev = I_BDEV(inode);
			if (atomic_read(&bdev->bd_openers) > 0)
				f(bdev, READ_ONCE(bdev->bd_holder),
				  READ_ONCE(bdev->bd_holder_ops), arg);
		}
		spin_unlock(&inode->i_lock);
	}
	spin_unlock(&sb->s_inode_list_lock);
}

void rl_tracepoint_synchronize_unregister(void)
{
	tracepoint_synchronize_unregister();
}

void rl_bdev_name(char *buf, size_t len, struct block_device *bdev)
{
	snprintf(buf, len, "%pg", bdev);
}

struct dentry *rl_debugfs_create_file(const char *name, umode_t mode, struct dentry *parent,
				      void *data, const struct file_operations *fops)
{
	return debugfs_create_file(name, mode, parent, data, fops);
}

int rl_sb_mounts(struct super_block *sb)
{
#ifdef RL_SB_MOUNTS_PTR
	struct mount *m;
	int n = 0;

	/*
	 * A struct mount is freed after an RCU grace period (mntput_no_expire
	 * -> delayed_free_vfsmnt), so in an RCU read-side section the chain
	 * can be followed, though it may change as it is read.  Every caller
	 * is in one already: probe handlers run with preemption off (or in
	 * NMI context), and the audit walks under rcu_read_lock().  Taking it
	 * again cost 64 instructions per tmpfs mount and unmount, more than
	 * the 60 of this function itself.
	 */
	RCU_LOCKDEP_WARN(!rcu_read_lock_any_held(),
			 "rl_sb_mounts() needs an RCU read-side section");
	m = READ_ONCE(sb->s_mounts);
	if (m)
		n = READ_ONCE(m->mnt_next_for_sb) ? 2 : 1;
	return n;
#else
	/* Only compared, never followed: two pointer reads tell 0, 1 or more. */
	struct list_head *head = &sb->s_mounts;
	struct list_head *next = READ_ONCE(head->next);

	if (next == head)
		return 0;
	return next == READ_ONCE(head->prev) ? 1 : 2;
#endif
}

void rl_rcu_read_lock(void)
{
	rcu_read_lock();
}

void rl_rcu_read_unlock(void)
{
	rcu_read_unlock();
}
