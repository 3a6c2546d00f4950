/*
 * lcr_worker.h — one background thread woken by a semaphore, for the runtime's learner
 * (Sources/Lichen/Adaptation/BackgroundLearner.swift).
 *
 * The thread runs `body(context)` once; the body loops on lcr_worker_wait, which sleeps until
 * lcr_worker_signal and returns 1 once lcr_worker_stop asked the thread to end. Signalling is
 * one sem_post: it never blocks and never allocates, so the control loop may call it every
 * tick. Storage is caller-provided (lcr_worker_size() bytes aligned to lcr_worker_alignment()),
 * so the worker lives inside the runtime's budget.
 */
#ifndef LCR_WORKER_H
#define LCR_WORKER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

size_t lcr_worker_size(void);
size_t lcr_worker_alignment(void);

/// Starts the thread. `cpu` >= 0 pins it to that CPU (sched_setaffinity; the CPU must exist and
/// be allowed by the process's cpuset); `nice` != 0 sets the thread's nice value (Linux keeps
/// one per thread: raising it is always allowed, lowering it below the process's needs
/// CAP_SYS_NICE or RLIMIT_NICE). Returns 0, or the errno of what failed (nothing is left
/// running then): EINVAL for a CPU out of range, EPERM for a nice value not allowed, what
/// sem_init or pthread_create returned.
int lcr_worker_start(void *storage, void (*body)(void *context), void *context, int32_t cpu, int32_t nice);

/// Worker side: sleeps until signalled; 1 when the worker is stopping, else 0.
int lcr_worker_wait(void *storage);

/// Worker side: whether a stop was asked (for long work to end early).
int lcr_worker_stopping(void *storage);

/// Any thread: wakes the worker once (never blocks).
void lcr_worker_signal(void *storage);

/// Asks the thread to end, wakes it and joins it (waits for the body to return). Idempotent.
void lcr_worker_stop(void *storage);

/// Sleeps `microseconds` on the calling thread.
void lcr_worker_sleep_us(uint32_t microseconds);

#ifdef __cplusplus
}
#endif

#endif
