// SPDX-License-Identifier: GPL-2.0
/*
 * churn: the workloads of `make bench`, as tight loops of system calls.
 *
 *   churn mount-tmpfs N DIR      N x (mount tmpfs on DIR; umount DIR)
 *   churn mount-ext4 N DEV DIR   N x (mount ext4 DEV on DIR; umount DIR)
 *   churn openclose N PATH       N x (open PATH read-only; close)
 *   churn mount-hold N DIR       mount N tmpfs on DIR/0..N-1 and keep them
 *
 * Prints "ops=N seconds=S ops_per_sec=R".
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
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
	long n, i;
	double t0, t;

	if (argc < 4) {
		fprintf(stderr, "usage: churn MODE N ARGS...\n");
		return 2;
	}
	n = atol(argv[2]);
	t0 = now();
	if (!strcmp(argv[1], "mount-tmpfs")) {
		for (i = 0; i < n; i++) {
			if (mount("none", argv[3], "tmpfs", 0, NULL))
				die("mount");
			if (umount(argv[3]))
				die("umount");
		}
	} else if (!strcmp(argv[1], "mount-ext4") && argc > 4) {
		for (i = 0; i < n; i++) {
			if (mount(argv[3], argv[4], "ext4", 0, NULL))
				die("mount");
			if (umount(argv[4]))
				die("umount");
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
	} else {
		fprintf(stderr, "churn: unknown mode %s\n", argv[1]);
		return 2;
	}
	t = now() - t0;
	printf("ops=%ld seconds=%.3f ops_per_sec=%.1f\n", n, t, n / t);
	return 0;
}
