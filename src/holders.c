// SPDX-License-Identifier: GPL-2.0
/*
 * The holder walk: see holders.h.
 *
 * Everything runs in one RCU read-side section, which keeps each object it
 * meets allocated: superblocks (destroy_super_rcu), struct mounts
 * (delayed_free_vfsmnt), tasks, fd tables and files are all freed after a
 * grace period.  Lists are walked under the locks their writers take, and
 * only spinlocks are taken, sleeping locks (the mmap lock, a unix socket's
 * iolock) only by trylock, so the walk never sleeps and a stuck filesystem
 * cannot stop it.
 */
#include <linux/blkdev.h>
#include <linux/fdtable.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/fs_struct.h>
#include <linux/irq_work.h>
#include <linux/kallsyms.h>
#include <linux/kprobes.h>
#include <linux/magic.h>
#include <linux/major.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/namei.h>
#include <linux/nsproxy.h>
#include <linux/proc_ns.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/seqlock.h>
#include <linux/string.h>
#include <linux/swap.h>
#include <linux/workqueue.h>

#ifdef RL_HAVE_MOUNT_H
/* struct mount and struct mnt_namespace; Kbuild puts fs/ on the path. */
#include <mount.h>
#endif

#ifdef RL_HAVE_UNIXCB
#include <linux/net.h>
#include <linux/skbuff.h>
#include <linux/skmsg.h>
#include <net/af_unix.h>
#include <net/scm.h>
#include <net/sock.h>
#ifdef RL_UNIXCB_PRIVATE
/*
 * struct unix_skb_parms and UNIXCB(), in net/unix/af_unix.h here, which
 * Kbuild puts on the path; it declares functions on the types of the
 * headers above, so it comes after them.
 */
#include <af_unix.h>
#endif
#endif

#include "helpers.h"
#include "holders.h"

/*
 * How many fds, mappings, skbs queued in unix sockets and files in flight
 * in them one walk visits at most: a bound on the time the RCU read-side
 * section lasts, on a machine with a very large number of any.  What is
 * left (fds, mappings, tasks, skbs) is counted in budget_cut.
 */
#define RL_WALK_BUDGET (8u << 20)

/* Mount namespaces the target is mounted in, compared with nsfs fds. */
#define RL_MAX_NS 64
/* fsopen(2) contexts told apart by their file. */
#define RL_MAX_CONTEXTS 64
/* Loop devices looked at; more are counted as cut. */
#define RL_MAX_LOOPS 256

static seqlock_t *rl_mount_lock;
static spinlock_t *rl_swap_lock;
static struct swap_info_struct **rl_swap_info;
static const struct file_operations *rl_fscontext_fops;
static struct vfsmount **rl_nsfs_mnt;

/* The address of data symbol `name`, or NULL (see rl_find_sb_lock()). */
static void *rl_data_symbol(const char *name)
{
	struct kprobe kp = { .symbol_name = name };
	char found[KSYM_NAME_LEN];
	unsigned long addr;

	if (!register_kprobe(&kp)) {
		/* Text, not data: not what was asked for. */
		unregister_kprobe(&kp);
		return NULL;
	}
	addr = (unsigned long)kp.addr;
	if (!addr || IS_ERR_VALUE(addr))
		return NULL;
	sprint_symbol_no_offset(found, addr);
	if (strcmp(found, name) != 0)
		return NULL;
	return (void *)addr;
}

void rl_holders_init(void)
{
	rl_mount_lock = rl_data_symbol("mount_lock");
	rl_swap_lock = rl_data_symbol("swap_lock");
	rl_swap_info = rl_data_symbol("swap_info");
	rl_fscontext_fops = rl_data_symbol("fscontext_fops");
	rl_nsfs_mnt = rl_data_symbol("nsfs_mnt");
}

/* d_path() of `path` into `buf`, or its last components when too long. */
static void rl_path(char *buf, size_t len, const struct path *path)
{
	char *p = d_path(path, buf, len);

	if (IS_ERR(p)) {
		snprintf(buf, len, ".../%pd3", path->dentry);
		return;
	}
	memmove(buf, p, strlen(p) + 1);
}

static struct rl_holder *rl_add(struct rl_holders *o, u32 kind, struct task_struct *t,
				u64 mntns, int fd)
{
	struct rl_holder *h;

	if (o->n >= o->cap) {
		o->cut++;
		return NULL;
	}
	h = &o->h[o->n++];
	memset(h, 0, sizeof(*h));
	h->kind = kind;
	h->fd = fd;
	h->mntns = mntns;
	if (t) {
		h->pid = task_tgid_nr(t);
		strscpy_pad(h->comm, t->comm, sizeof(h->comm));
	}
	return h;
}

static bool rl_on(const struct path *path, struct super_block *sb)
{
	struct vfsmount *mnt = READ_ONCE(path->mnt);

	return mnt && READ_ONCE(mnt->mnt_sb) == sb;
}

struct rl_walk {
	struct super_block *sb;
	struct rl_holders *o;
	u64 budget;
	unsigned int nns;
	const void *ns[RL_MAX_NS];
	unsigned int nloops;
	struct gendisk *loops[RL_MAX_LOOPS];
	/* fsopen(2) context files counted, so that each counts once. */
	unsigned int ncontexts;
	const struct file *contexts[RL_MAX_CONTEXTS];
	/* The mount namespaces tasks are in; more than RL_MAX_NS: unknown. */
	unsigned int ntask_ns;
	u64 task_ns[RL_MAX_NS];
};

/* The target, found by rl_walk_supers() (helpers.c) under sb_lock. */
struct rl_match {
	u32 by;
	u64 key;
	struct super_block *sb;
};

static void rl_match_one(struct super_block *sb, void *arg)
{
	struct rl_match *m = arg;
	char buf[24];
	u64 hash;

	if (m->sb)
		return;
	switch (m->by) {
	case RL_BY_PTR:
		if ((unsigned long)sb == m->key)
			m->sb = sb;
		break;
	case RL_BY_DEV:
		if (sb->s_dev == m->key)
			m->sb = sb;
		break;
	case RL_BY_HASH:
		snprintf(buf, sizeof(buf), "%p", sb);
		if (!kstrtou64(buf, 16, &hash) && hash == m->key)
			m->sb = sb;
		break;
	}
}

#ifdef RL_HAVE_MOUNT_H
/* mnt_get_count(), which is static or not exported. */
static u64 rl_mnt_count(struct mount *m)
{
#if defined(CONFIG_SMP) && defined(RL_MNT_GETS_PUTS)
	unsigned int gets = 0, puts = 0;
	int cpu;

	/* Puts first, as mnt_get_count() reads them. */
	for_each_possible_cpu(cpu)
		puts += per_cpu_ptr(m->mnt_pcp, cpu)->mnt_puts;
	smp_mb();
	for_each_possible_cpu(cpu)
		gets += per_cpu_ptr(m->mnt_pcp, cpu)->mnt_gets;
	return (int)(gets - puts);
#elif defined(CONFIG_SMP)
	int count = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		count += per_cpu_ptr(m->mnt_pcp, cpu)->mnt_count;
	return count;
#else
	return m->mnt_count;
#endif
}

static u64 rl_ns_inum(struct mnt_namespace *ns)
{
	return IS_ERR_OR_NULL(ns) ? 0 : ns->ns.inum;
}

static void rl_mount_one(struct rl_walk *w, struct mount *m)
{
	struct mnt_namespace *ns = READ_ONCE(m->mnt_ns);
	struct rl_holders *o = w->o;
	struct rl_holder *h;
	struct path mp;
	u32 flags = 0;
	unsigned int i;

	o->mounts++;
	if (!ns) {
		flags = RL_M_DETACHED;
		o->detached++;
	} else if (ns == MNT_NS_INTERNAL) {
		flags = RL_M_INTERNAL;
	} else {
		if (is_anon_ns(ns))
			flags = RL_M_ANON;
		for (i = 0; i < w->nns && w->ns[i] != &ns->ns; i++)
			;
		if (i == w->nns && w->nns < RL_MAX_NS)
			w->ns[w->nns++] = &ns->ns;
	}
	h = rl_add(o, RL_H_MOUNT, NULL, rl_ns_inum(ns), -1);
	if (!h)
		return;
	h->flags = flags;
	h->id = m->mnt_id;
	h->count = rl_mnt_count(m);
	if (m->mnt_parent != m && !(flags & RL_M_DETACHED)) {
		mp.mnt = &m->mnt_parent->mnt;
		mp.dentry = m->mnt_mountpoint;
		rl_path(h->path, sizeof(h->path), &mp);
	} else {
		/* A namespace's root, or a mount in no tree: its own root. */
		snprintf(h->path, sizeof(h->path), "%pd", m->mnt.mnt_root);
	}
}

/*
 * Bind mounts of nsfs files (`unshare --mount=FILE`, `ip netns` style) that
 * keep a mount namespace the target is mounted in: the struct mounts of
 * the nsfs superblock whose root is such a namespace.  Under mount_lock.
 */
static void rl_walk_nsfs_mounts(struct rl_walk *w)
{
	struct super_block *nsfs;
	struct vfsmount *nm;
	struct rl_holder *h;
	struct mount *m;
	struct path mp;
	unsigned int i;

	if (!rl_nsfs_mnt || !w->nns)
		return;
	nm = READ_ONCE(*rl_nsfs_mnt);
	if (!nm)
		return;
	nsfs = nm->mnt_sb;
#ifdef RL_SB_MOUNTS_PTR
	for (m = nsfs->s_mounts; m; m = m->mnt_next_for_sb) {
#else
	list_for_each_entry(m, &nsfs->s_mounts, mnt_instance) {
#endif
		struct inode *inode = d_inode(m->mnt.mnt_root);
		struct ns_common *ns = inode ? get_proc_ns(inode) : NULL;

		/* The internal mount itself, and nsfs mounts in no tree. */
		if (&m->mnt == nm || m->mnt_parent == m)
			continue;
		for (i = 0; i < w->nns && w->ns[i] != ns; i++)
			;
		if (i == w->nns)
			continue;
		h = rl_add(w->o, RL_H_NSFS_MOUNT, NULL, rl_ns_inum(READ_ONCE(m->mnt_ns)), -1);
		if (!h)
			continue;
		h->id = ns->inum;
		mp.mnt = &m->mnt_parent->mnt;
		mp.dentry = m->mnt_mountpoint;
		rl_path(h->path, sizeof(h->path), &mp);
	}
}

/*
 * The struct mounts of the target, under mount_lock as their writers
 * (lock_mount_hash) change sb->s_mounts.
 */
static void rl_walk_mounts(struct rl_walk *w)
{
	struct super_block *sb = w->sb;
	struct mount *m;

	if (!rl_mount_lock)
		return;
	read_seqlock_excl(rl_mount_lock);
#ifdef RL_SB_MOUNTS_PTR
	for (m = sb->s_mounts; m; m = m->mnt_next_for_sb)
		rl_mount_one(w, m);
#else
	list_for_each_entry(m, &sb->s_mounts, mnt_instance)
		rl_mount_one(w, m);
#endif
	rl_walk_nsfs_mounts(w);
	read_sequnlock_excl(rl_mount_lock);
	w->o->parts |= RL_PART_MOUNTS;
}

static u64 rl_task_mntns(struct task_struct *t)
{
	struct nsproxy *nsp = t->nsproxy;

	return nsp ? rl_ns_inum(nsp->mnt_ns) : 0;
}
#else
static void rl_walk_mounts(struct rl_walk *w)
{
}

static u64 rl_task_mntns(struct task_struct *t)
{
	return 0;
}
#endif

static void rl_fs_holders(struct rl_walk *w, struct task_struct *t, u64 mntns)
{
	struct fs_struct *fs = t->fs;
	struct rl_holder *h;

	if (!fs)
		return;
#ifdef RL_FS_STRUCT_SEQLOCK
	read_seqlock_excl(&fs->seq);
#else
	spin_lock(&fs->lock);
#endif
	if (rl_on(&fs->pwd, w->sb)) {
		h = rl_add(w->o, RL_H_CWD, t, mntns, -1);
		if (h)
			rl_path(h->path, sizeof(h->path), &fs->pwd);
	}
	if (rl_on(&fs->root, w->sb)) {
		h = rl_add(w->o, RL_H_ROOT, t, mntns, -1);
		if (h)
			rl_path(h->path, sizeof(h->path), &fs->root);
	}
#ifdef RL_FS_STRUCT_SEQLOCK
	read_sequnlock_excl(&fs->seq);
#else
	spin_unlock(&fs->lock);
#endif
}

static bool rl_keeps_ns(struct rl_walk *w, struct file *f, u64 *inum)
{
	struct inode *inode = file_inode(f);
	struct ns_common *ns;
	unsigned int i;

	if (!w->nns || inode->i_sb->s_magic != NSFS_MAGIC)
		return false;
	ns = get_proc_ns(inode);
	for (i = 0; i < w->nns; i++) {
		if (w->ns[i] == ns) {
			*inum = ns->inum;
			return true;
		}
	}
	return false;
}

/*
 * Whether `f` is seen for the first time in this walk, among the first
 * RL_MAX_CONTEXTS files asked about; past that every one counts as new.
 */
static bool rl_first_sight(struct rl_walk *w, struct file *f)
{
	unsigned int i;

	for (i = 0; i < w->ncontexts; i++)
		if (w->contexts[i] == f)
			return false;
	if (w->ncontexts < RL_MAX_CONTEXTS)
		w->contexts[w->ncontexts++] = f;
	return true;
}

static bool rl_fs_context_of(struct file *f, struct super_block *sb)
{
	struct fs_context *fc;
	struct dentry *root;

	if (!rl_fscontext_fops || f->f_op != rl_fscontext_fops)
		return false;
	/* The context lives as long as its file, which the fd table holds. */
	fc = f->private_data;
	root = fc ? READ_ONCE(fc->root) : NULL;
	return root && READ_ONCE(root->d_sb) == sb;
}

#ifdef RL_HAVE_UNIXCB
/*
 * Files in flight in `f`, if it is a unix socket: sent to it with
 * SCM_RIGHTS and still in its receive queue, where each keeps its mount
 * as an open file does while no task has it open.  The task whose fd `f`
 * is can receive them (recvmsg) or drop them (close), so it is the one
 * named.  The files are only compared: a socket in flight is not looked
 * into, so what is queued in it is not seen.
 */
static void rl_scm_holders(struct rl_walk *w, struct task_struct *t, u64 mntns,
			   unsigned int fd, struct file *f)
{
	struct socket *sock = sock_from_file(f);
	struct rl_holders *o = w->o;
	struct scm_fp_list *fpl;
	struct sk_buff *skb;
	struct rl_holder *h;
	struct unix_sock *u;
	struct sock *sk;
	int i;

	/* The fd table's reference keeps the socket from being released. */
	sk = sock ? READ_ONCE(sock->sk) : NULL;
	if (!sk || sk->sk_family != AF_UNIX)
		return;
	u = unix_sk(sk);
	/*
	 * Most sockets have no file in flight: their queue is neither locked
	 * nor walked.  The count goes up before an skb with files is queued
	 * and down before its files are taken out, so 0 means none is there
	 * but for one being sent right now.
	 */
	if (!atomic_read(&u->scm_stat.nr_fds))
		return;
	/*
	 * A receiver takes the file list out of an skb that is still queued,
	 * without the queue lock but under its iolock, and then frees the
	 * list at once (not after RCU): the list is read only with the
	 * iolock held.  Taken by trylock, so that the walk never waits: a
	 * socket being read from now is skipped, and counted.
	 */
	if (!mutex_trylock(&u->iolock)) {
		o->scm_busy++;
		return;
	}
	/* Plain spin_lock, as af_unix.c takes it: never taken from an irq. */
	spin_lock(&sk->sk_receive_queue.lock);
	skb_queue_walk(&sk->sk_receive_queue, skb) {
		if (!w->budget) {
			o->budget_cut++;
			break;
		}
		w->budget--;
		fpl = UNIXCB(skb).fp;
		if (!fpl)
			continue;
		for (i = 0; i < fpl->count; i++) {
			struct file *in = fpl->fp[i];

			if (!w->budget) {
				o->budget_cut++;
				goto out;
			}
			w->budget--;
			if (!rl_on(&in->f_path, w->sb))
				continue;
			h = rl_add(o, RL_H_SCM, t, mntns, fd);
			if (h)
				rl_path(h->path, sizeof(h->path), &in->f_path);
		}
	}
out:
	spin_unlock(&sk->sk_receive_queue.lock);
	mutex_unlock(&u->iolock);
}
#else
static void rl_scm_holders(struct rl_walk *w, struct task_struct *t, u64 mntns,
			   unsigned int fd, struct file *f)
{
}
#endif

static void rl_file_holders(struct rl_walk *w, struct task_struct *t, u64 mntns)
{
	struct files_struct *files = t->files;
	struct rl_holders *o = w->o;
	struct fdtable *fdt;
	struct rl_holder *h;
	unsigned int fd;
	u64 inum;

	if (!files)
		return;
	spin_lock(&files->file_lock);
	fdt = files_fdtable(files);
	/* Open fds only: a table may have a million empty slots. */
	for (fd = find_first_bit(fdt->open_fds, fdt->max_fds); fd < fdt->max_fds;
	     fd = find_next_bit(fdt->open_fds, fdt->max_fds, fd + 1)) {
		struct file *f = rcu_dereference_protected(fdt->fd[fd],
							   lockdep_is_held(&files->file_lock));

		if (!f)
			continue;
		if (!w->budget) {
			o->budget_cut++;
			break;
		}
		w->budget--;
		if (rl_on(&f->f_path, w->sb)) {
			h = rl_add(o, RL_H_FD, t, mntns, fd);
			if (h)
				rl_path(h->path, sizeof(h->path), &f->f_path);
		} else if (rl_keeps_ns(w, f, &inum)) {
			h = rl_add(o, RL_H_NSFS, t, mntns, fd);
			if (h)
				h->id = inum;
		} else if (rl_fs_context_of(f, w->sb)) {
			/*
			 * One reference per context, however many fd tables
			 * share its file (fork, CLONE_FILES, threads).
			 */
			if (rl_first_sight(w, f))
				o->fs_contexts++;
			rl_add(o, RL_H_FS_CONTEXT, t, mntns, fd);
		} else {
			rl_scm_holders(w, t, mntns, fd, f);
		}
	}
	spin_unlock(&files->file_lock);
}

static void rl_mm_holders(struct rl_walk *w, struct task_struct *t, u64 mntns)
{
	struct mm_struct *mm = t->mm;
	struct file *exe, *first = NULL;
	struct vm_area_struct *vma;
	struct rl_holder *h;
	u64 count = 0;

	if (!mm || (t->flags & PF_KTHREAD))
		return;
	/* Never wait for a task that holds its mmap lock (maybe stuck). */
	if (!mmap_read_trylock(mm)) {
		w->o->mm_busy++;
		return;
	}
	/*
	 * Under the mmap lock: prctl(PR_SET_MM_EXE_FILE) replaces exe_file
	 * with it held for writing, and then puts the old file, whose dentry
	 * (a memfd's) may be freed at once.
	 */
	exe = rcu_dereference_protected(mm->exe_file, lockdep_is_held(&mm->mmap_lock));
	if (exe && rl_on(&exe->f_path, w->sb)) {
		h = rl_add(w->o, RL_H_EXE, t, mntns, -1);
		if (h)
			rl_path(h->path, sizeof(h->path), &exe->f_path);
	}
	{
		VMA_ITERATOR(vmi, mm, 0);

		for_each_vma(vmi, vma) {
			if (!w->budget) {
				w->o->budget_cut++;
				break;
			}
			w->budget--;
			if (vma->vm_file && rl_on(&vma->vm_file->f_path, w->sb)) {
				if (!first)
					first = vma->vm_file;
				count++;
			}
		}
	}
	if (first) {
		h = rl_add(w->o, RL_H_MMAP, t, mntns, -1);
		if (h) {
			h->count = count;
			rl_path(h->path, sizeof(h->path), &first->f_path);
		}
	}
	mmap_read_unlock(mm);
}

/*
 * Every task's working directory, root, fds and mappings.  Threads share
 * these with their group leader unless they were cloned without CLONE_FS
 * or CLONE_FILES, or unshared them: a thread is looked at only for what is
 * its own.  task_lock() keeps t->fs, t->files, t->mm and t->nsproxy.
 */
static void rl_walk_tasks(struct rl_walk *w)
{
	struct task_struct *g, *t;
	u64 mntns;

	for_each_process_thread(g, t) {
		unsigned int i;

		if (!w->budget) {
			/* The rest of the tasks are left out, and counted. */
			w->o->budget_cut++;
			continue;
		}
		w->o->tasks++;
		task_lock(t);
		mntns = rl_task_mntns(t);
		if (w->ntask_ns <= RL_MAX_NS) {
			unsigned int n = min_t(unsigned int, w->ntask_ns, RL_MAX_NS);

			for (i = 0; i < n && w->task_ns[i] != mntns; i++)
				;
			if (i == n) {
				/* One past RL_MAX_NS means "too many to tell". */
				if (n < RL_MAX_NS)
					w->task_ns[n] = mntns;
				w->ntask_ns++;
			}
		}
		if (t == g || t->fs != g->fs)
			rl_fs_holders(w, t, mntns);
		if (t == g || t->files != g->files)
			rl_file_holders(w, t, mntns);
		if (t == g)
			rl_mm_holders(w, t, mntns);
		task_unlock(t);
	}
	w->o->parts |= RL_PART_TASKS | (rl_fscontext_fops ? RL_PART_FS_CONTEXT : 0);
#ifdef RL_HAVE_UNIXCB
	w->o->parts |= RL_PART_SCM;
#endif
}

/*
 * Marks the mounts in a namespace that no task is in: something else keeps
 * that namespace (an nsfs fd, a bind mount of one), and so the mount.
 */
static void rl_mark_lonely_mounts(struct rl_walk *w)
{
	unsigned int i, j;

	if (w->ntask_ns > RL_MAX_NS)
		return;
	for (i = 0; i < w->o->n; i++) {
		struct rl_holder *h = &w->o->h[i];

		if (h->kind != RL_H_MOUNT || h->flags || !h->mntns)
			continue;
		for (j = 0; j < w->ntask_ns && w->task_ns[j] != h->mntns; j++)
			;
		if (j == w->ntask_ns)
			h->flags |= RL_M_NO_TASKS;
	}
}

/* Swap areas whose file is on the target, under swap_lock. */
static void rl_walk_swap(struct rl_walk *w)
{
	struct rl_holder *h;
	int i;

	if (!rl_swap_lock || !rl_swap_info)
		return;
	spin_lock(rl_swap_lock);
	for (i = 0; i < MAX_SWAPFILES; i++) {
		struct swap_info_struct *si = READ_ONCE(rl_swap_info[i]);
		struct file *f;

		if (!si || !(si->flags & SWP_USED))
			continue;
		f = READ_ONCE(si->swap_file);
		if (f && rl_on(&f->f_path, w->sb)) {
			h = rl_add(w->o, RL_H_SWAP, NULL, 0, -1);
			if (h) {
				h->id = i;
				rl_path(h->path, sizeof(h->path), &f->f_path);
			}
		}
	}
	spin_unlock(rl_swap_lock);
	w->o->parts |= RL_PART_SWAP;
}

/*
 * The loop driver's device, up to its backing file, as drivers/block/loop.c
 * declares it (the same in 6.12 and 7.x); private, so mirrored here.  Only
 * the backing file pointer and the name the driver copied at set-up are
 * read, and only for a disk of LOOP_MAJOR whose fops belong to the module
 * or built-in driver named "loop".
 */
struct rl_loop_device {
	int lo_number;
	loff_t lo_offset;
	loff_t lo_sizelimit;
	int lo_flags;
	char lo_file_name[64];
	struct file *lo_backing_file;
};

static bool rl_is_loop(struct gendisk *disk)
{
	struct module *owner;

	if (!disk || disk->major != LOOP_MAJOR || !disk->fops)
		return false;
	owner = disk->fops->owner;
	/* Built in: no owner; a module: "loop". */
	return !owner || !strcmp(owner->name, "loop");
}

/*
 * Loop disks, each with a reference taken under the bdev inode list lock,
 * so that its loop device (freed by the disk's release, loop's free_disk)
 * stays while it is read after the RCU section.  A disk whose last
 * reference is already gone is passed over (kobject_get_unless_zero), as
 * is one whose driver is being unloaded.
 */
static void rl_grab_loops(struct rl_walk *w)
{
	struct super_block *bsb = blockdev_superblock;
	struct inode *inode;

	spin_lock(&bsb->s_inode_list_lock);
	list_for_each_entry(inode, &bsb->s_inodes, i_sb_list) {
		struct block_device *bdev = I_BDEV(inode);
		struct gendisk *disk;
		bool usable;

		if (w->nloops == RL_MAX_LOOPS) {
			w->o->cut++;
			break;
		}
		/* As rl_for_each_open_bdev(): not one being set up or freed. */
		spin_lock(&inode->i_lock);
		usable = rl_inode_usable_locked(inode);
		spin_unlock(&inode->i_lock);
		if (!usable)
			continue;
		/* The disk is freed with its whole-disk inode, after RCU. */
		disk = READ_ONCE(bdev->bd_disk);
		if (bdev_partno(bdev) || !rl_is_loop(disk))
			continue;
		/*
		 * The driver's module too: the disk's release calls into it
		 * (free_disk), so it must not be unloaded before the disk's
		 * last reference goes.  Module memory is freed after an RCU
		 * grace period, so the owner can be read here.
		 */
		if (!try_module_get(disk->fops->owner))
			continue;
		if (kobject_get_unless_zero(&disk_to_dev(disk)->kobj))
			w->loops[w->nloops++] = disk;
		else
			module_put(disk->fops->owner);
	}
	spin_unlock(&bsb->s_inode_list_lock);
}

/*
 * Loop devices backed by a file on the target, from the disks grabbed by
 * rl_grab_loops(), whose references are dropped here (process context: a
 * last one releases the disk).  The backing file is read under RCU: files
 * are SLAB_TYPESAFE_BY_RCU and mounts RCU-freed, so a file that loop
 * clears and puts meanwhile can only be compared wrongly, never followed
 * into freed memory.  The target is only compared, never read.
 */
static void rl_walk_loops(struct rl_walk *w)
{
	unsigned int i;

	for (i = 0; i < w->nloops; i++) {
		struct gendisk *disk = w->loops[i];
		struct rl_loop_device *lo = disk->private_data;
		struct module *owner;
		struct rl_holder *h;
		struct file *f;

		rcu_read_lock();
		f = lo ? READ_ONCE(lo->lo_backing_file) : NULL;
		if (f && rl_on(&f->f_path, w->sb)) {
			h = rl_add(w->o, RL_H_LOOP, NULL, 0, -1);
			if (h) {
				h->id = lo->lo_number;
				strscpy(h->path, lo->lo_file_name, sizeof(h->path));
			}
		}
		rcu_read_unlock();
		owner = disk->fops->owner;
		put_device(disk_to_dev(disk));
		module_put(owner);
	}
	w->o->parts |= RL_PART_LOOP;
}

void rl_find_holders(struct file_system_type *first, u32 by, u64 key,
		     struct rl_holders *out)
{
	struct rl_match match = { .by = by, .key = key };
	struct rl_walk *w;
	unsigned int ntypes;
	struct super_block *sb;
	char buf[24];

	/* The walk state is too large for the stack. */
	w = kzalloc(sizeof(*w), GFP_KERNEL);
	if (!w)
		return;
	out->n = 0;
	out->found = 0;
	rcu_read_lock();
	rl_walk_supers(first, rl_match_one, NULL, &match, NULL, 0, &ntypes);
	sb = match.sb;
	if (!sb)
		goto out;
	/*
	 * Found listed under sb_lock in this RCU section: the superblock stays
	 * allocated until it ends (destroy_super_rcu), whatever happens to it.
	 */
	out->found = 1;
	out->sb = (unsigned long)sb;
	out->dev = sb->s_dev;
	out->s_active = atomic_read(&sb->s_active);
	out->frozen = READ_ONCE(sb->s_writers.frozen) != SB_UNFROZEN;
	snprintf(buf, sizeof(buf), "%p", sb);
	if (kstrtou64(buf, 16, &out->hash))
		out->hash = 0;
	strscpy_pad(out->fstype, sb->s_type->name, sizeof(out->fstype));
	strscpy_pad(out->s_id, sb->s_id, sizeof(out->s_id));
	w->sb = sb;
	w->o = out;
	w->budget = RL_WALK_BUDGET;
	rl_walk_mounts(w);
	rl_walk_tasks(w);
	rl_mark_lonely_mounts(w);
	rl_walk_swap(w);
	rl_grab_loops(w);
	rcu_read_unlock();
	rl_walk_loops(w);
	kfree(w);
	return;
out:
	rcu_read_unlock();
	kfree(w);
}

int rl_sb_of_path(const char *name, unsigned long *sb)
{
	struct path path;
	int err;

	err = kern_path(name, LOOKUP_FOLLOW, &path);
	if (err)
		return err;
	*sb = (unsigned long)path.mnt->mnt_sb;
	path_put(&path);
	return 0;
}

/*
 * A capture of the holders when an unmount is refused: the probe handler
 * that sees EBUSY may run in NMI context (an int3 kprobe), where no work can
 * be queued, so it queues an irq_work (NMI-safe), whose handler queues the
 * work that walks, in process context.
 */
static void rl_capture_workfn(struct work_struct *work)
{
	rl_capture_run();
}

static DECLARE_WORK(rl_capture_work, rl_capture_workfn);

static void rl_capture_irq(struct irq_work *iw)
{
	schedule_work(&rl_capture_work);
}

static struct irq_work rl_capture_iw = IRQ_WORK_INIT(rl_capture_irq);

void rl_capture_kick(void)
{
	irq_work_queue(&rl_capture_iw);
}

void rl_capture_stop(void)
{
	irq_work_sync(&rl_capture_iw);
	cancel_work_sync(&rl_capture_work);
}
