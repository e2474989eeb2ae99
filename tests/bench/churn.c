// SPDX-License-Identifier: GPL-2.0
/*
 * churn: the workloads of `make bench`, as tight loops of system calls.
 *
 *   churn mount-tmpfs N DIR      N x (mount tmpfs on DIR; umount DIR)
 *   churn mount-dev N TYPE DEV DIR
 *                                N x (mount DEV, a TYPE filesystem, on DIR;
 *                                umount DIR)
 *   churn openclose N PATH       N x (open PATH read-only; close)
 *   churn mount-hold N DIR       mount N tmpfs on DIR/0..N-1 and keep them
 *   churn read N FILE            N x (open FILE; read it whole; close)
 *   churn shell N COMMAND        N x (sh -c COMMAND, which must succeed)
 *
 * Prints "ops=N seconds=S ops_per_sec=R", and for read "lines=L" first (of
 * the last read, counted after the clock stops): timing the read in one
 * process leaves out the fork and exec a shell's timing would add.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

int main(int argc, char **argv)
{
	static char buf[64 << 20];
	long n, i, lines;
	size_t len = 0;
	double t0, t;

	if (argc < 4) {
		fprintf(stderr, "usage: churn MODE N ARGS...\n");
		return 2;
	}
	n = atol(argv[2]);
	/* The buffer's pages are faulted in before the clock starts. */
	if (!strcmp(argv[1], "read"))
		memset(buf, 1, sizeof(buf));
	t0 = now();
	if (!strcmp(argv[1], "mount-tmpfs")) {
		for (i = 0; i < n; i++) {
			if (mount("none", argv[3], "tmpfs", 0, NULL))
				die("mount");
			if (umount(argv[3]))
				die("umount");
		}
	} else if (!strcmp(argv[1], "mount-dev") && argc > 5) {
		for (i = 0; i < n; i++) {
			if (mount(argv[4], argv[5], argv[3], 0, NULL))
				die("mount");
			if (umount(argv[5]))
				die("umount");
		}
	} else if (!strcmp(argv[1], "shell")) {
		for (i = 0; i < n; i++) {
			int st = system(argv[3]);

			if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st)) {
				fprintf(stderr, "churn: '%s' failed (%d)\n", argv[3], st);
				return 1;
			}
		}
	} else if (!strcmp(argv[1], "openclose")) {
		for (i = 0; i < n; i++) {
			int fd = open(argv[3], O_RDONLY);

			if (fd < 0)
				die("open");
			close(fd);
		}
	} else if (!strcmp(argv[1], "mount-hold")) {
		char path[4096];

		for (i = 0; i < n; i++) {
			snprintf(path, sizeof(path), "%s/%ld", argv[3], i);
			mkdir(path, 0700);
			if (mount("none", path, "tmpfs", 0, NULL))
				die("mount");
		}
	} else if (!strcmp(argv[1], "read")) {
		for (i = 0; i < n; i++) {
			int fd = open(argv[3], O_RDONLY);
			ssize_t r = 0;

			if (fd < 0)
				die("open");
			len = 0;
			while (len < sizeof(buf) &&
			       (r = read(fd, buf + len, sizeof(buf) - len)) > 0)
				len += r;
			if (r < 0)
				die("read");
			if (len == sizeof(buf)) {
				fprintf(stderr, "churn: %s is larger than %zu bytes\n",
					argv[3], sizeof(buf));
				return 1;
			}
			close(fd);
		}
	} else {
		fprintf(stderr, "churn: unknown mode %s\n", argv[1]);
		return 2;
	}
	t = now() - t0;
	if (!strcmp(argv[1], "read")) {
		lines = 0;
		for (size_t j = 0; j < len; j++)
			lines += buf[j] == '\n';
		printf("lines=%ld ", lines);
	}
	printf("ops=%ld seconds=%.3f ops_per_sec=%.4f\n", n, t, n / t);
	return 0;
}
