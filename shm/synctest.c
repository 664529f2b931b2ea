/*
 * synctest.c -- the virtual clock of pg.synctest.run (Go 1.25's
 * testing/synctest bubble, for a whole parago program).
 *
 * Inside a synctest run, pg_nanotime() (pg_atomic.h), the clock of every
 * timer, sleep and context deadline, reads arena.vclock instead of
 * CLOCK_MONOTONIC.  The clock stands still while anything can move; P0's
 * deadlock check (parago/_runtime/deadlock.py) moves it when every
 * goroutine on every P is durably blocked:
 *
 *   P0's deadlock check (hub thread)              each P's sysmon (sysmon.c)
 *   -------------------------------------------   -------------------------------
 *   (1) all quiet, the park epoch stable          (a) twhen <= vclock: vfiring++,
 *       (the same look as for Deadlock, timers        pop and fire the due timers
 *       allowed)                                      (sends, cancels, readies),
 *   (2) pg_vclock_next, before the last look:         vfiring--
 *       every P's twhen, then vfiring (seq_cst,   (b) otherwise wait on tgen
 *       in that order: a popped entry had raised
 *       vfiring first) -- a due entry or a
 *       firing: busy, look again; none: Deadlock
 *       (unless a synctest.wait() is parked: it
 *       is woken first, Go's order)
 *   (3) pg_vclock_set: vclock = that deadline;
 *       for every P whose twhen is now due:
 *       tgen++, futex wake  ------------------->  (a)
 *
 * A firing readies goroutines (the epoch moves) or does nothing visible (a
 * tick nobody reads): either way step (1) starts over before the next
 * advance, so time never moves while a goroutine is runnable or running,
 * and timers fire in the order of their deadlines, as in real time.
 * Goroutines waiting for something real (pg.blocking, await_, the network,
 * a cooperative call) are external waiters: while there is one, (1) fails
 * and the clock stands.
 *
 * The spinning, scheduling and watching code keeps pg_nanotime_real().
 */
#define _GNU_SOURCE
#include "pg_internal.h"

uint64_t *pg_vclock; /* atomic: this process's pointer to arena.vclock, NULL = real */
uint64_t pg_vbase;   /* this process's copy of arena.vbase */

/*
 * Bind this process's timer clock to the arena's virtual clock (base NULL:
 * back to real time).  Call it before the P's sysmon starts and unbind
 * after it stopped, before the arena is unmapped.  start != 0 (P0, before
 * any other P exists): the clock starts now, at vbase.
 */
PG_API void pg_vclock_bind(void *base, int start) {
    if (!base) {
        pg_store_rel(&pg_vclock, (uint64_t *)0);
        return;
    }
    pg_arena_t *a = ARENA(base);
    if (start) {
        uint64_t t = pg_nanotime_real();
        a->vbase = t;
        pg_store_rel(&a->vclock, t);
    }
    pg_vbase = a->vbase;
    pg_store_rel(&pg_vclock, &a->vclock);
}

/* the timer clock (ns) and the wall clock a timer delivers (s): pg.now() */
PG_API uint64_t pg_vclock_now(void) { return pg_nanotime(); }
PG_API double pg_vclock_wall(void) { return pg_walltime(); }

/*
 * Step (2): the deadline the clock may move to, read BEFORE the caller's
 * last look at the goroutines (a firing that completes after these loads
 * readies its goroutines before that look, which then sees them).
 * Returns it, 0 (a timer is due or being fired: look again), or
 * UINT64_MAX (no timer will ever fire: none armed, or only delays beyond
 * the clock's range).
 */
PG_API uint64_t pg_vclock_next(void *base) {
    pg_arena_t *a = ARENA(base);
    uint64_t now = pg_load_acq(&a->vclock);
    uint64_t next = UINT64_MAX;
    for (uint32_t p = 0; p < a->nprocs; p++) {
        uint64_t tw = pg_load_sc(&a->p[p].twhen);
        if (tw && tw < next)
            next = tw;
    }
    /* after the twhen loads: an entry popped before them raised vfiring
     * first (sysmon.c), so a firing in progress shows here */
    if (pg_load_sc(&a->vfiring) != 0 || next <= now)
        return 0;
    /* entries of stopped or re-armed timers stay in a heap until popped:
     * with no timer armed, none of them will fire (the clock does not move
     * to them, Go's "the next time that will unblock a goroutine") */
    if (pg_load_sc(&a->ntimers) <= 0)
        return UINT64_MAX;
    return next;
}

/* Step (3): move the clock to when (from pg_vclock_next, the goroutines
 * seen all blocked since) and wake the sysmon of every P with a due timer. */
PG_API void pg_vclock_set(void *base, uint64_t when) {
    pg_arena_t *a = ARENA(base);
    pg_store_sc(&a->vclock, when);
    for (uint32_t p = 0; p < a->nprocs; p++) {
        uint64_t tw = pg_load_sc(&a->p[p].twhen);
        if (tw && tw <= when) {
            pg_add_sc(&a->p[p].tgen, 1);
            pg_futex_wake(&a->p[p].tgen, 1);
        }
    }
}

/*
 * Go's bubble fires timers due at the same instant in no fixed order (its
 * TestTimerNondeterminism, TestSleepNondeterminism), so a test cannot come
 * to rely on one.  Called by a P's sysmon (pg_timers_run) on a batch of due
 * entries popped in deadline order: in virtual time, each run of equal
 * deadlines is shuffled (Fisher-Yates); real time keeps the heap's order.
 */
static uint64_t shuffle_state; /* this process's sysmon thread only */

void pg_vclock_shuffle(pg_tentry_t *batch, uint32_t n) {
    if (n < 2 || !pg_load_acq(&pg_vclock))
        return;
    if (!shuffle_state)
        shuffle_state = pg_nanotime_real() | 1;
    for (uint32_t lo = 0, hi; lo < n; lo = hi) {
        for (hi = lo + 1; hi < n && batch[hi].when == batch[lo].when; hi++)
            ;
        for (uint32_t i = hi - 1; i > lo; i--) {
            shuffle_state ^= shuffle_state << 13; /* xorshift64 */
            shuffle_state ^= shuffle_state >> 7;
            shuffle_state ^= shuffle_state << 17;
            uint32_t j = lo + (uint32_t)(shuffle_state % (i - lo + 1));
            pg_tentry_t t = batch[i];
            batch[i] = batch[j];
            batch[j] = t;
        }
    }
}

/*
 * synctest.wait(): publish the channel the caller is about to park on
 * (the word takes its own reference).  1, or 0 when another goroutine is
 * waiting already (Go: "wait already in progress").
 */
PG_API int pg_vwait_set(void *base, uint64_t ch) {
    pg_arena_t *a = ARENA(base);
    uint64_t z = 0;
    pg_add_acqrel(&AT(base, ch, pg_objhdr_t)->refcnt, 1);
    if (pg_cas_sc(&a->vwaiter, &z, ch))
        return 1;
    pg_add_acqrel(&AT(base, ch, pg_objhdr_t)->refcnt, -1); /* ours: never the last */
    return 0;
}

/*
 * Take the waiter's channel out of the word: ch != 0, only if it is that
 * one (the waiter giving up); ch == 0, whichever is there (P0 waking it).
 * Returns the channel taken (the caller now holds the word's reference),
 * or 0.
 */
PG_API uint64_t pg_vwait_take(void *base, uint64_t ch) {
    pg_arena_t *a = ARENA(base);
    uint64_t cur = pg_load_acq(&a->vwaiter);
    if (!cur || (ch && cur != ch))
        return 0;
    return pg_cas_sc(&a->vwaiter, &cur, 0) ? cur : 0;
}
