/*
 * lock.c -- the arena lock's slow path and its owner bookkeeping (the word
 * and the fast path: lock.h).  A locker never waits for ever: every futex
 * wait is bounded, and after each one a word whose owner can never unlock
 * (it died or left the run: the death watch, watch.c, or pg_p_leave mark
 * it gone; or its index is no P of the run) is PG_LOST, the object
 * untouched.
 *
 * Which arena a lock word lives in: the lock's address falls in one of the
 * mappings registered at pg_arena_attach (newest first: a mapping reused at
 * an address range is the newest one registered there).
 */
#define _GNU_SOURCE
#include "pg_internal.h"

uint32_t pg_lock_self = PG_LOCK_TAG(PG_LOCK_NOP);

/* ---------------- which arena a lock lives in ---------------- */

/* written by pg_arena_attach (one thread at a time), read by any locker:
 * relaxed fields, published by the release store of pg_nmaps */
static uintptr_t pg_map_lo[NMAPS], pg_map_hi[NMAPS];
static uint32_t pg_nmaps;

void pg_lock_register(void *base, uint64_t size) {
    uint32_t n = pg_load_rlx(&pg_nmaps);
    pg_store_rlx(&pg_map_lo[n % NMAPS], (uintptr_t)base);
    pg_store_rlx(&pg_map_hi[n % NMAPS], (uintptr_t)base + size);
    pg_store_rel(&pg_nmaps, n + 1); /* pairs with arena_of's acquire */
    pg_store_rlx(&pg_lock_self, PG_LOCK_TAG(PG_LOCK_NOP)); /* until pg_set_self names the P */
}

static void *arena_of(const uint32_t *l) {
    uint32_t n = pg_load_acq(&pg_nmaps);
    uintptr_t a = (uintptr_t)l;
    for (uint32_t k = 0; k < n && k < NMAPS; k++) {
        uint32_t i = (n - 1 - k) % NMAPS;
        uintptr_t lo = pg_load_rlx(&pg_map_lo[i]), hi = pg_load_rlx(&pg_map_hi[i]);
        if (lo <= a && a < hi)
            return (void *)lo;
    }
    return NULL;
}

/* this process is P p (p < 0: no P); every lock it takes is tagged so */
PG_API void pg_set_self(int p) {
    pg_store_rlx(&pg_lock_self, PG_LOCK_TAG(p >= 0 && p < PG_MAXP ? (uint32_t)p : PG_LOCK_NOP));
}

/* for Python and tests: the owner P of a lock word; -1 free, PG_LOCK_NOP
 * for a process that is no P */
PG_API int64_t pg_lock_owner(uint32_t w) { return PG_LOCK_OWNER(w); }

/* the word a lock held by P p (p < 0: no P) holds, without waiters */
PG_API uint32_t pg_lock_tag(int p) {
    return PG_LOCK_TAG(p >= 0 && p < PG_MAXP ? (uint32_t)p : PG_LOCK_NOP);
}

/*
 * The owner named by w can never unlock: it died (the watch marked it
 * gone), it left the run (pg_p_leave: a P leaves holding no lock, so a
 * word still tagged by it was left held by a bug and nothing will clear
 * it), or it is no P of this run at all (an index >= nprocs that is not
 * PG_LOCK_NOP: the word is no lock any more -- an object freed under its
 * user -- and waiting on it would be for ever).
 */
static int owner_gone(void *base, uint32_t w) {
    int64_t o = PG_LOCK_OWNER(w);
    if (!base || o < 0 || o == PG_LOCK_NOP)
        return 0;
    if (o >= PG_MAXP || (uint64_t)o >= pg_load_rlx(&ARENA(base)->nprocs))
        return 1;
    return pg_load_acq(&ARENA(base)->p[o].gone) != 0; /* pairs with (2) of the watch, pg_p_leave */
}

/* this thread's lock waits give up (PG_LOST) once *flag is non-zero: the
 * sysmon's stop flag, so a sysmon asked to stop never waits out a lock
 * (its firing is dropped, as for a lost owner).  NULL: never. */
static _Thread_local const uint32_t *lock_abort;

void pg_lock_abort_on(const uint32_t *flag) { lock_abort = flag; }

/* steps (2) and (3) of pg_lock (pg_atomic.h) */
static uint64_t pg_nslow; /* atomic (relaxed): pg_lock_slow entries in this process */

int pg_lock_slow(uint32_t *l) {
    uint32_t me = pg_load_rlx(&pg_lock_self);
    pg_add_rlx(&pg_nslow, 1);
    for (int i = 0; i < LOCK_SPIN; i++) { /* (2) hold times are ~100s of ns */
        pg_cpu_relax();
        uint32_t z = 0;
        if (pg_load_rlx(l) == 0 && pg_cas_acqrel(l, &z, me))
            return PG_OK;
    }
    void *base = arena_of(l);
    for (;;) { /* (3) */
        uint32_t w = pg_load_rlx(l);
        if (w == 0) {
            if (pg_cas_acqrel(l, &w, me | PG_LOCK_WAITERS))
                return PG_OK;
            continue;
        }
        const uint32_t *ab = lock_abort;
        if (ab && pg_load_acq(ab))
            return PG_LOST; /* the run is over for this thread: object untouched */
        if (owner_gone(base, w)) {
            /* its tag still there: it died holding it (only it could clear
             * it); another tag: it unlocked before dying, look again */
            if ((pg_load_acq(l) >> 1) == (w >> 1))
                return PG_LOST;
            continue;
        }
        if (!(w & PG_LOCK_WAITERS)) {
            if (!pg_cas_acqrel(l, &w, w | PG_LOCK_WAITERS))
                continue;
            w |= PG_LOCK_WAITERS;
        }
        pg_futex_wait(l, w, LOCK_STEP_NS);
    }
}

/* ---------------- for tests and tools ---------------- */

/* pg_lock / pg_unlock on the word at off (PG_OK or PG_LOST) */
PG_API int64_t pg_lock_at(void *base, uint64_t off) { return pg_lock(AT(base, off, uint32_t)); }
PG_API void pg_unlock_at(void *base, uint64_t off) { pg_unlock(AT(base, off, uint32_t)); }

/* how many lock acquisitions in this process left the fast path (one CAS) */
PG_API uint64_t pg_lock_nslow(void) { return pg_load_rlx(&pg_nslow); }
