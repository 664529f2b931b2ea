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

/*
 * The lock of every arena object, owner-tagged (DESIGN "Parking"):
 *
 *     word = ((owner + 1) << 1) | PG_LOCK_WAITERS      0 = free
 *
 * owner is the P index of the process that holds it (pg_set_self); a
 * process that is no P (the shim tests' helper processes, tools) tags with
 * PG_LOCK_NOP, an owner index >= PG_MAXP, which never reads as a gone P.
 * The waiters bit says someone may sleep on the futex: the unlocker wakes.
 *
 *     locker                                    unlocker (the owner)
 *     ---------------------------------        ---------------------------
 *     (1) CAS 0 -> tag (acquire)  fast path    (4) xchg word, 0 (release)
 *     (2) spin: load, CAS 0 -> tag                 pairs with (1)/(3)
 *     (3) slow (pg_lock_slow, watch.c):        (5) old & WAITERS: futex wake
 *         set WAITERS by CAS, futex wait <= 2 ms,
 *         then: owner's p[].gone (acquire, pairs with the death watch's
 *         or pg_p_leave's release store: it died, or left the run), or an
 *         owner index that is no P of the run (the word is no lock any
 *         more), or this thread's abort flag (a sysmon asked to stop)
 *         -> PG_LOST, object untouched;
 *         a free word -> CAS 0 -> tag|WAITERS (others may still sleep)
 *
 * A lost wake-up is impossible: a sleeper's futex wait compares the word
 * with the value that carries its WAITERS bit, so an unlock (4) between its
 * CAS and its sleep makes the wait return at once; and every wait is
 * bounded anyway.  The fast path is one CAS, as before tagging.
 */
#define PG_LOCK_WAITERS 1u
#define PG_LOCK_NOP 0x7ffffffeu /* owner index of a process that is no P */
#define PG_LOCK_TAG(p) ((uint32_t)((p) + 1) << 1)
#define PG_LOCK_OWNER(w) ((int64_t)((w) >> 1) - 1) /* -1: free */

extern uint32_t pg_lock_self; /* atomic (relaxed): this process's tag (watch.c: pg_set_self) */
int pg_lock_slow(uint32_t *l); /* steps (2)-(3): PG_OK or PG_LOST */

/* PG_OK, or PG_LOST: the owner P died or left holding it (the run is aborted or over) */
static inline int pg_lock(uint32_t *l) {
    uint32_t z = 0;
    if (pg_cas_acqrel(l, &z, pg_load_rlx(&pg_lock_self))) /* (1) */
        return PG_OK;
    return pg_lock_slow(l);
}

static inline void pg_unlock(uint32_t *l) {
    if (pg_xchg_rel(l, 0) & PG_LOCK_WAITERS) /* (4), (5) */
        pg_futex_wake(l, 1);
}

#endif
