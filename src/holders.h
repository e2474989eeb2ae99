/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The holder walk behind the `holders` file (src/join/holders.rs): who
 * keeps a superblock.  In C because everything it walks is reached through
 * macros, inline functions and private structs: the task list, fd tables, VMA
 * iterators, struct mount and struct mnt_namespace (fs/mount.h), the loop
 * driver's device, unix sockets' queued skbs (UNIXCB()).
 */
#ifndef REFLEDGER_HOLDERS_H
#define REFLEDGER_HOLDERS_H

#include <linux/fs.h>
#include <linux/types.h>

/* What keeps the superblock, one kind per holder line. */
enum rl_holder_kind {
	/* A struct mount of it: each holds one s_active reference. */
	RL_H_MOUNT = 1,
	/* A task's working directory, root, executable, open file, mappings. */
	RL_H_CWD,
	RL_H_ROOT,
	RL_H_EXE,
	RL_H_FD,
	RL_H_MMAP,
	/* An fd of a mount namespace file (nsfs) of a namespace it is mounted in. */
	RL_H_NSFS,
	/* An fsopen(2) context whose superblock it is (created, not mounted). */
	RL_H_FS_CONTEXT,
	/* A bind mount of the nsfs file of a namespace it is mounted in. */
	RL_H_NSFS_MOUNT,
	/* A swap area whose file is on it. */
	RL_H_SWAP,
	/* A loop device whose backing file is on it. */
	RL_H_LOOP,
	/*
	 * A file on it sent with SCM_RIGHTS and still queued in a unix
	 * socket: the task is one whose fd is the receiving socket.
	 */
	RL_H_SCM,
};

/* A mount's place (RL_H_MOUNT's flags). */
#define RL_M_DETACHED 1 /* in no namespace: unmounted, still referenced */
#define RL_M_ANON 2 /* an anonymous namespace: open_tree(2) clone, fsmount(2) */
#define RL_M_INTERNAL 4 /* a kernel-internal mount (kern_mount) */
#define RL_M_NO_TASKS 8 /* in a namespace no task is in (kept by a file) */

/* How much of a path a holder line keeps. */
#define RL_HOLDER_PATH 192

/*
 * One holder.  Plain C types here and in rl_holders: bindgen derives Copy
 * only for structs whose every type it generated itself.
 */
struct rl_holder {
	unsigned int kind;
	/* The mount's flags (RL_M_*). */
	unsigned int flags;
	/* The task's thread group id, or 0. */
	int pid;
	/* The fd number, or -1. */
	int fd;
	/* RL_H_MMAP: how many mappings; RL_H_MOUNT: its reference count. */
	unsigned long long count;
	/* The task's mount namespace, or the mount's, as its inode number. */
	unsigned long long mntns;
	/* RL_H_MOUNT: mnt_id; RL_H_NSFS: the namespace kept; RL_H_LOOP: its number. */
	unsigned long long id;
	char comm[16];
	/* NUL-terminated; cut to the last components when too long. */
	char path[RL_HOLDER_PATH];
};

/* How the target superblock is named. */
enum rl_target_by {
	RL_BY_PTR = 1,
	RL_BY_DEV,
	RL_BY_HASH,
};

/* The answer of rl_find_holders(). */
struct rl_holders {
	/* Room for `cap` holders, filled in order; `cut` found with no room. */
	struct rl_holder *h;
	unsigned int cap;
	unsigned int n;
	unsigned long long cut;
	/* Whether the target was found listed, and what it is. */
	unsigned int found;
	/* Its address: only compared and looked up, never printed. */
	unsigned long sb;
	unsigned int dev;
	unsigned long long hash;
	int s_active;
	/* Frozen by a freeze that holds a reference (FREEZE_HOLDER_USERSPACE). */
	unsigned int frozen;
	char fstype[32];
	char s_id[32];
	/* Struct mounts of it: all of them, and those found detached. */
	unsigned int mounts;
	unsigned int detached;
	/* fsopen(2) contexts holding it; swap areas and loop devices on it. */
	unsigned int fs_contexts;
	/* Which parts ran (RL_PART_*); the others are unavailable here. */
	unsigned int parts;
	/* Tasks visited; tasks, fds and mappings left unvisited by the budget. */
	unsigned long long tasks;
	unsigned long long budget_cut;
	/* Tasks whose mappings were skipped because their mmap lock was busy. */
	unsigned long long mm_busy;
	/* Unix sockets whose queue was skipped because a receiver was reading. */
	unsigned long long scm_busy;
};

#define RL_PART_MOUNTS 1
#define RL_PART_TASKS 2
#define RL_PART_SWAP 4
#define RL_PART_LOOP 8
#define RL_PART_FS_CONTEXT 16
#define RL_PART_SCM 32

/*
 * Finds what the walk needs that is not exported (mount_lock, swap_info,
 * swap_lock, fscontext_fops), by kallsyms through kprobes' symbol lookup as
 * rl_find_sb_lock() does.  What is not found leaves its part out.  Process
 * context, once at load.
 */
void rl_holders_init(void);

/*
 * Fills `out` with every holder of one superblock that can be found: the
 * superblock of `first`'s type list named by `by` and `key` (a pointer, a
 * dev_t, or what %p prints for it).  Runs under rcu_read_lock() from start
 * to end and takes only the spinlocks the kernel takes for the same walks
 * (sb_lock, mount_lock, task_lock, fs->lock or fs->seq, files->file_lock,
 * a unix socket's receive queue lock, swap_lock, the bdev inode list lock),
 * and the mmap lock and a unix socket's iolock by trylock: it never sleeps
 * and never waits for a filesystem or a socket.  Process context.
 */
void rl_find_holders(struct file_system_type *first, u32 by, u64 key,
		     struct rl_holders *out);

/*
 * The superblock mounted where `name` leads (kern_path() with
 * LOOKUP_FOLLOW), as an address only: no reference is kept, or the lookup
 * would itself become a holder.  The lookup walks the path, so a
 * filesystem stuck in lookup can block it.  0 or a negative errno.
 */
int rl_sb_of_path(const char *name, unsigned long *sb);

/*
 * Captures at a refused unmount: rl_capture_kick() may be called from any
 * context, NMI included, and makes rl_capture_run()
 * (src/join/captures.rs) run soon in process context, from the system
 * workqueue.  rl_capture_stop() waits until neither is pending or running;
 * no kick may follow it.
 */
void rl_capture_kick(void);
void rl_capture_stop(void);
void rl_capture_run(void);

#endif
