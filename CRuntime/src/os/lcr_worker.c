#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "lcr_worker.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    pthread_t thread;
    sem_t wake;
    atomic_int stopping;
    atomic_int running;  /* 1 between a successful start and the join */
    void (*body)(void *);
    void *context;
    int32_t nice;
    atomic_int started;  /* set by the thread once its nice value is applied (or refused) */
    atomic_int start_error;
} lcr_worker;

size_t lcr_worker_size(void) { return sizeof(lcr_worker); }
size_t lcr_worker_alignment(void) { return _Alignof(lcr_worker); }

static void *worker_main(void *p) {
    lcr_worker *w = p;
    if (w->nice != 0) {
        /* Linux: the nice value belongs to the thread (its tid), not the process. */
        pid_t tid = (pid_t)syscall(SYS_gettid);
        if (setpriority(PRIO_PROCESS, (id_t)tid, w->nice) != 0) {
            atomic_store(&w->start_error, errno);
            atomic_store(&w->started, 1);
            return NULL;
        }
    }
    atomic_store(&w->started, 1);
    w->body(w->context);
    return NULL;
}

int lcr_worker_start(void *storage, void (*body)(void *context), void *context, int32_t cpu, int32_t nice) {
    lcr_worker *w = storage;
    atomic_store(&w->stopping, 0);
    atomic_store(&w->running, 0);
    atomic_store(&w->started, 0);
    atomic_store(&w->start_error, 0);
    w->body = body;
    w->context = context;
    w->nice = nice;
    if (cpu >= CPU_SETSIZE || cpu < -1) return EINVAL;
    if (sem_init(&w->wake, 0, 0) != 0) return errno;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        int e = pthread_attr_setaffinity_np(&attributes, sizeof set, &set);
        if (e != 0) {
            pthread_attr_destroy(&attributes);
            sem_destroy(&w->wake);
            return e;
        }
    }
    int e = pthread_create(&w->thread, &attributes, worker_main, w);
    pthread_attr_destroy(&attributes);
    if (e != 0) {
        sem_destroy(&w->wake);
        /* A CPU the process may not run on shows up here, as EINVAL. */
        return e;
    }
    /* Wait for the thread to apply its nice value, so that a refusal is the caller's error. */
    while (!atomic_load(&w->started)) sched_yield();
    int refused = atomic_load(&w->start_error);
    if (refused != 0) {
        pthread_join(w->thread, NULL);
        sem_destroy(&w->wake);
        return refused;
    }
    atomic_store(&w->running, 1);
    return 0;
}

int lcr_worker_wait(void *storage) {
    lcr_worker *w = storage;
    while (sem_wait(&w->wake) != 0) {
        if (errno != EINTR) break;
    }
    return atomic_load(&w->stopping) ? 1 : 0;
}

int lcr_worker_stopping(void *storage) { return atomic_load(&((lcr_worker *)storage)->stopping) ? 1 : 0; }

void lcr_worker_signal(void *storage) { sem_post(&((lcr_worker *)storage)->wake); }

void lcr_worker_stop(void *storage) {
    lcr_worker *w = storage;
    if (!atomic_exchange(&w->running, 0)) return;
    atomic_store(&w->stopping, 1);
    sem_post(&w->wake);
    pthread_join(w->thread, NULL);
    sem_destroy(&w->wake);
}

void lcr_worker_sleep_us(uint32_t microseconds) {
    struct timespec t = {.tv_sec = microseconds / 1000000u, .tv_nsec = (long)(microseconds % 1000000u) * 1000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}
