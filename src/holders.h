/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The holder walk behind the `holders` file (src/holders.rs): who keeps a
 * superblock.  In C because everything it walks is reached through macros,
 * inline functions and private structs: the task list, fd tables, VMA
 * iterators, struct mount and struct mnt_namespace (fs/mount.h), the loop
 * driver's device.
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
};

/* A mount's place (RL_H_MOUNT's flags). */
#define RL_M_DETACHED 1 /* in no namespace: unmounted, still referenced */
#define RL_M_ANON 2 /* an anonymous namespace: open_tree(2) clone, fsmount(2) */
#define RL_M_INTERNAL 4 /* a kernel-internal mount (kern_mount) */
#define RL_M_NO_TASKS 8 /* in a namespace no task is in (kept by a file) */

/* How much of a path a holder line keeps. */
#define RL_HOLDER_PATH 192

/* One holder. */
struct rl_holder {
	u32 kind;
	/* The mount's flags (RL_M_*). */
	u32 flags;
	/* The task's thread group id, or 0. */
	s32 pid;
	/* The fd number, or -1. */
	s32 fd;
	/* RL_H_MMAP: how many mappings; RL_H_MOUNT: its reference count. */
	u64 count;
	/* The task's mount namespace, or the mount's, as its inode number. */
	u64 mntns;
	/* RL_H_MOUNT: mnt_id; RL_H_NSFS: the namespace kept; RL_H_LOOP: its number. */
	u64 id;
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
	u32 cap;
	u32 n;
	u64 cut;
	/* Whether the target was found listed, and what it is. */
	u32 found;
	u32 dev;
	u64 hash;
	s32 s_active;
	/* Frozen by a freeze that holds a reference (FREEZE_HOLDER_USERSPACE). */
	u32 frozen;
	char fstype[32];
	char s_id[32];
	/* Struct mounts of it: all of them, and those found detached. */
	u32 mounts;
	u32 detached;
	/* fsopen(2) contexts holding it; swap areas and loop devices on it. */
	u32 fs_contexts;
	/* Which parts ran (RL_PART_*); the others are unavailable here. */
	u32 parts;
	/* Tasks visited; fds and mappings left unvisited by the budget. */
	u64 tasks;
	u64 budget_cut;
	/* Tasks whose mappings were skipped because their mmap lock was busy. */
	u64 mm_busy;
};

#define RL_PART_MOUNTS 1
#define RL_PART_TASKS 2
#define RL_PART_SWAP 4
#define RL_PART_LOOP 8
#define RL_PART_FS_CONTEXT 16

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
 * swap_lock, the bdev inode list lock) and the mmap lock by trylock: it
 * never sleeps and never waits for a filesystem.  Process context.
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

#endif
