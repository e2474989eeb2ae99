/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C declarations refledger binds with bindgen at build time, on top of
 * what `kernel::bindings` already provides.
 */
#include <linux/debugfs.h>
#include <linux/kprobes.h>
#include <linux/stacktrace.h>
#include <linux/tracepoint.h>

#include "helpers.h"
#include "holders.h"
