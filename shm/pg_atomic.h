/*
 * pg_atomic.h -- the only way shared fields are touched atomically.
 *
 * Each helper's name carries its memory order (STYLE 7); call sites say
 * what they pair with.  These work on plain (non-_Atomic) fields because the
 * arena is shared with Python, which reads some fields through memoryviews.
 */
#ifndef PARAGO_ATOMIC_H
#define PARAGO_ATOMIC_H

#include <stdint.h>
#include <time.h>
#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/futex.h>
#include "layout.h"

#define pg_load_rlx(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define pg_load_acq(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define pg_load_sc(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define pg_store_rlx(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define pg_store_rel(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define pg_store_sc(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define pg_xchg_rel(p, v) __atomic_exchange_n((p), (v), __ATOMIC_RELEASE)
#define pg_xchg_acqrel(p, v) __atomic_exchange_n((p), (v), __ATOMIC_ACQ_REL)
#define pg_xchg_sc(p, v) __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)
#define pg_add_rlx(p, v) __atomic_add_fetch((p), (v), __ATOMIC_RELAXED)
#define pg_add_acqrel(p, v) __atomic_add_fetch((p), (v), __ATOMIC_ACQ_REL)
#define pg_add_sc(p, v) __atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST)
#define pg_fence_sc() __atomic_thread_fence(__ATOMIC_SEQ_CST)
/* strong CAS; *expected is updated on failure */
#define pg_cas_acqrel(p, expp, v) \
    __atomic_compare_exchange_n((p), (expp), (v), 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)
#define pg_cas_sc(p, expp, v) \
    __atomic_compare_exchange_n((p), (expp), (v), 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)
#define pg_cas_rel(p, expp, v) \
    __atomic_compare_exchange_n((p), (expp), (v), 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED)

static inline void pg_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

/* CLOCK_MONOTONIC ns, always real: spinning, the scheduler's and sysmon's
 * own watching, lock fairness -- what must pass while goroutines wait */
static inline uint64_t pg_nanotime_real(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * The clock of every timer, sleep and deadline.  Inside pg.synctest.run it
 * is the arena's virtual clock (synctest.c): pg_vclock points at
 * arena.vclock in every process of the run (bound before the P's sysmon
 * starts, unbound after it stopped), and only P0's deadlock check moves
 * it, while every goroutine is durably blocked.  Outside: CLOCK_MONOTONIC.
 */
extern uint64_t *pg_vclock; /* atomic (acquire): NULL = real time */
extern uint64_t pg_vbase;   /* arena.vbase, copied at bind */

static inline uint64_t pg_nanotime(void) {
    uint64_t *vc = pg_load_acq(&pg_vclock);
    if (vc)
        return pg_load_acq(vc); /* pairs with pg_vclock_set (seq_cst) */
    return pg_nanotime_real();
}

/* the wall clock a timer delivers (time.time(); pg.now() in synctest:
 * 2000-01-01 00:00:00 UTC plus the virtual time gone by, as Go's bubble) */
static inline double pg_walltime(void) {
    uint64_t *vc = pg_load_acq(&pg_vclock);
    if (vc) {
        uint64_t d = pg_load_acq(vc) - pg_vbase;
        return (double)PG_SYNCTEST_EPOCH + (double)(d / 1000000000ull) + (double)(d % 1000000000ull) * 1e-9;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Shared (not FUTEX_PRIVATE) futex: the word lives in the memfd that every P
 * maps at its own address, and the kernel keys shared futexes by
 * (inode, offset), so waiters and wakers in different processes meet. */
static inline int pg_futex_wait(uint32_t *addr, uint32_t val, uint64_t timeout_ns) {
    struct timespec ts = {(time_t)(timeout_ns / 1000000000ull),
                          (long)(timeout_ns % 1000000000ull)};
    return (int)syscall(SYS_futex, addr, FUTEX_WAIT, val, &ts, NULL, 0);
}

static inline int pg_futex_wake(uint32_t *addr, int n) {
    return (int)syscall(SYS_futex, addr, FUTEX_WAKE, n, NULL, NULL, 0);
}

#endif
