/*
 * lock.h -- the arena's lock: its word, the fast path inline (one CAS to
 * take, one exchange to give back); the slow path and the word's owner
 * bookkeeping are in lock.c.  Included by pg_internal.h.
 */
#ifndef PARAGO_LOCK_H
#define PARAGO_LOCK_H

#include "layout.h"
#include "pg_atomic.h"

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
 *     (3) slow (pg_lock_slow, lock.c):         (5) old & WAITERS: futex wake
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
#define PG_LOCK_TAG(p) ((uint32_t)((p) + 1) << 1)
#define PG_LOCK_OWNER(w) ((int64_t)((w) >> 1) - 1) /* -1: free */

extern uint32_t pg_lock_self; /* atomic (relaxed): this process's tag (lock.c: pg_set_self) */
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
