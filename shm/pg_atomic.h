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

#define pg_load_rlx(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define pg_load_acq(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define pg_load_sc(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define pg_store_rlx(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define pg_store_rel(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define pg_store_sc(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
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

static inline uint64_t pg_nanotime(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
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
 * The lock of every arena object: 0 free, 1 held, 2 held with sleepers.
 * Spin briefly (hold times are a few hundred ns), then sleep on the shared
 * futex with a timeout so a lock never blocks forever without re-checking.
 */
static inline int pg_lock(uint32_t *l) { /* 0 = PG_OK */
    uint32_t z = 0;
    if (pg_cas_acqrel(l, &z, 1))
        return 0;
    for (int i = 0; i < 200; i++) {
        pg_cpu_relax();
        z = 0;
        if (pg_load_rlx(l) == 0 && pg_cas_acqrel(l, &z, 1))
            return 0;
    }
    /* pairs with pg_unlock's exchange: a 2 tells the unlocker to wake us */
    while (pg_xchg_acqrel(l, 2) != 0)
        pg_futex_wait(l, 2, 50 * 1000 * 1000);
    return 0;
}

static inline void pg_unlock(uint32_t *l) {
    if (pg_xchg_acqrel(l, 0) == 2)
        pg_futex_wake(l, 1);
}

#endif
