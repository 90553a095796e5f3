/* SPDX-License-Identifier: MIT */
/*
 * control.h: the daemon's control-socket server (hypervisor/control.c).
 *
 * Each accepted connection is served by a thread of its own that acts as
 * one vCPU of domain 0, the control domain, so that the hypercalls it makes
 * for the toolstack have a `current` with its own deferred puts and
 * preemption state, as dom0's vCPUs do on Xen.
 */
#ifndef FERRY_HV_CONTROL_H
#define FERRY_HV_CONTROL_H

#include <stddef.h>

/* Connections served at once (each holds one vCPU of domain 0). */
#define CTL_MAX_CONNECTIONS 32

int ctl_init(const char *run_dir, char *err, size_t errlen);
/* Serve a freshly accepted connection (takes ownership of fd). */
void ctl_accept(int fd);
/* Stop serving: waits for the connection threads to finish. */
void ctl_shutdown(void);
/* Forget the toolstack's metadata of a domain that is gone. */
void ctl_forget_domain(unsigned int domid);

#endif /* FERRY_HV_CONTROL_H */
