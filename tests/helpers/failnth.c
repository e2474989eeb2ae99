// SPDX-License-Identifier: GPL-2.0
/*
 * failnth: loads a module with its Nth fault-injection point failing.
 *
 *   failnth N MODULE.ko [PARAMS]
 *
 * Writes N to /proc/thread-self/fail-nth, calls finit_module(2) on MODULE.ko
 * right away (both files are opened first, so nothing else this task does
 * in the kernel counts), then reads fail-nth back.  Prints one line:
 *
 *   result=0|ERRNO_NAME injected=1|0 left=L
 *
 * injected=1 when the Nth point was reached and failed (fail-nth read back
 * 0); otherwise left is what remained of N, so N - left points were passed.
 * Exits 0 when it printed that line, 2 on a usage or setup error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char buf[32];
	int nth, ko, len, err;
	long ret;
	ssize_t n;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: %s N MODULE.ko [PARAMS]\n", argv[0]);
		return 2;
	}
	nth = open("/proc/thread-self/fail-nth", O_RDWR);
	if (nth < 0) {
		perror("/proc/thread-self/fail-nth");
		return 2;
	}
	ko = open(argv[2], O_RDONLY);
	if (ko < 0) {
		perror(argv[2]);
		return 2;
	}
	len = snprintf(buf, sizeof(buf), "%s", argv[1]);
	if (write(nth, buf, len) != len) {
		perror("write fail-nth");
		return 2;
	}
	ret = syscall(SYS_finit_module, ko, argc > 3 ? argv[3] : "", 0);
	err = ret ? errno : 0;
	n = pread(nth, buf, sizeof(buf) - 1, 0);
	if (n <= 0) {
		perror("read fail-nth");
		return 2;
	}
	buf[n] = '\0';
	/* Disarm it, whatever is left, before anything else runs. */
	if (write(nth, "0", 1) != 1 && errno != EINVAL)
		perror("reset fail-nth");
	printf("result=%s injected=%d left=%ld\n", err ? strerrorname_np(err) : "0",
	       atol(buf) == 0, atol(buf));
	return 0;
}
