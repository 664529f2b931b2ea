/*
 * sched.c -- goroutine records, Go's run queues, the ready lists, parking
 * and the P sleep/wake protocol.
 *
 * Two kinds of runnable work per P (DESIGN "Goroutines and scheduling"):
 *
 *   unstarted Gs   runnext + 256-slot ring, exactly Go's runqput/runqget/
 *                  runqsteal: the owner is the only producer, consumers
 *                  (owner and thieves) CAS runqhead.  Overflow moves half
 *                  the ring to the global queue (gq lock).
 *   started Gs     a started goroutine lives in its P's memory (a greenlet
 *                  or a task cannot move between processes), so readying it
 *                  pushes onto *its owner's* readyq: a Treiber stack with
 *                  many producers; the owner takes it all with one exchange
 *                  and keeps the FIFO order in privhead/privtail.
 *
 *     waker (any P or thread)                 owner P
 *     ---------------------------            ----------------------------
 *     claim g->park WAITING->CLAIMED   (1)
 *     write wake_res / wake_off ...    (2)
 *     push g on p->readyq (CAS, rel)   (3)    xchg readyq, 0 (acq)      (5)
 *     fence; if p->state == SLEEPING         resume g; read wake_* (6)
 *        CAS ->RUNNING, write eventfd  (4)
 *
 * Placement (DESIGN "Goroutines and scheduling", 0.): a started goroutine
 * never moves, so *where it starts* is the only load balancing there is.
 * pg_go places a new G on the least loaded of this P and a few others
 * (all of them up to 4 Ps; the spawner on ties), load = unstarted Gs
 * queued there (ring + runnext + inbox) + Gs started there and not dead.
 * Another P gets it through its *inbox* (a FIFO under an owner-tagged
 * lock, many producers) which the owner drains into its ring in
 * findRunnable; so the ring keeps Go's single producer.
 *
 * Stealing: an idle P takes unstarted Gs from a victim only when the
 * victim is stuck in a goroutine (no findRunnable for STEAL_AGE) and the
 * move helps (victim more loaded than the thief, or stuck past a slice):
 * Go can afford "steal at once, migrate later"; parago cannot migrate, so
 * a transient burst must not pull every worker of a pool onto one P.  The
 * victim's sysmon wakes an idle P when its queued work ages (pg_wake_idle).
 * The age counts from the victim's last findRunnable or from the moment a
 * waker woke it, whichever is later; a P that has not scheduled yet (still
 * starting) counts as scheduling until START_GRACE_NS after main began
 * (pg_arena_init, then pg.run once every P has attached).  A pool spawned at the start of main, or right after the
 * other Ps slept, stays where placement put it -- unless its P is still not
 * running it a grace later (a slow spawn start, a loaded machine): then idle
 * Ps take it, as they would from any stuck P.
 *
 * Sleep protocol (Dekker with seq_cst): the P stores state=SLEEPING, then
 * re-checks every queue; the waker pushes, fences, then loads state.  One
 * of the two sees the other, so a wake-up is never lost.  pg_p_idle loops
 * until it either sleeps with nothing visible or has found work (Go's
 * "delicate dance" in findRunnable).
 */
#define _GNU_SOURCE
#include <sched.h>
#include <string.h>
#include "pg_internal.h"

static inline pg_g_t *G(void *base, uint64_t g) { return AT(base, g, pg_g_t); }
static inline pg_p_t *P(void *base, int p) { return &ARENA(base)->p[p]; }

static __thread uint64_t pg_rng = 0x9e3779b97f4a7c15ull;
static inline uint32_t pg_fastrand(void) {
    uint64_t x = pg_rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    pg_rng = x;
    return (uint32_t)(x >> 11);
}

PG_API void pg_seed(uint64_t seed) { pg_rng = seed | 1; }

uint64_t pg_rand64(void) {
    pg_fastrand();
    return pg_rng;
}

/* a thief leaves a victim's unstarted Gs alone until the victim has not
 * scheduled for this long (process-wide; the shim tests set 0) */
static uint64_t pg_steal_age = 1000000ull;
PG_API void pg_set_steal_age(uint64_t ns) { pg_steal_age = ns; }

static uint64_t runqsteal(void *base, int p, int victim, int steal_next, uint32_t max);

/* ---------------- waking Ps ---------------- */

static void pg_signal_p(void *base, int p) {
    (void)base;
    int fd = pg_wakefd[p];
    if (fd >= 0) {
        uint64_t one = 1;
        ssize_t r = write(fd, &one, sizeof one);
        (void)r; /* EAGAIN means the counter is already non-zero: awake */
    }
}

/* A waker that moved P p from SLEEPING to RUNNING also moves its
 * lastsched to now: the P is on its way to findRunnable, not stuck in a
 * goroutine.  Left at its last findRunnable before the sleep, a P woken to
 * take placed work would look stuck past a slice to an idle thief from
 * the moment it woke (steal_quota), and the thief would take, one by one,
 * every G placed there while the woken P's process is still being
 * scheduled in.  The owner stores "now" too (pg_findrunnable): either
 * store is right, so a plain release store is all this needs. */
static inline void p_woken(void *base, int p) {
    pg_store_rel(&P(base, p)->lastsched, pg_nanotime_real()); /* pairs with steal_quota's acquire */
    pg_signal_p(base, p);
}

/* wake P p if it sleeps (step 4 above) */
PG_API void pg_wakep_of(void *base, int p) {
    pg_p_t *pp = P(base, p);
    pg_fence_sc(); /* pairs with the sleeper's seq_cst store of SLEEPING */
    uint32_t st = pg_load_sc(&pp->state);
    if (st == P_SLEEPING && pg_cas_sc(&pp->state, &st, P_RUNNING))
        p_woken(base, p);
}

/* Go's wakep: new unstarted work; wake one sleeping P unless one spins. */
static void pg_wakep(void *base, int self) {
    pg_arena_t *a = ARENA(base);
    pg_fence_sc();
    if (pg_load_sc(&a->nspinning) != 0)
        return;
    uint32_t n = a->nprocs;
    uint32_t start = pg_fastrand() % n;
    for (uint32_t i = 0; i < n; i++) {
        int p = (int)((start + i) % n);
        if (p == self)
            continue;
        uint32_t st = pg_load_sc(&a->p[p].state);
        if (st == P_SLEEPING && pg_cas_sc(&a->p[p].state, &st, P_RUNNING)) {
            p_woken(base, p);
            return;
        }
    }
}

/* sysmon: this P's queued work has aged -- let an idle P come for it */
PG_API void pg_wake_idle(void *base, int self) { pg_wakep(base, self); }

PG_API void pg_wake_all(void *base) {
    pg_arena_t *a = ARENA(base);
    for (uint32_t p = 0; p < a->nprocs; p++) {
        pg_store_sc(&a->p[p].state, P_RUNNING);
        pg_signal_p(base, (int)p);
    }
}

/* ---------------- global queue (gq lock) ---------------- */

/* PG_LOST: the lock's owner died, the run is aborted and the batch is
 * dropped (never "repaired": nobody runs it) */
static int gq_put_batch(void *base, uint64_t first, uint64_t last, uint32_t n) {
    pg_arena_t *a = ARENA(base);
    G(base, last)->schedlink = 0;
    if (pg_lock(&a->gq_lock) != PG_OK)
        return PG_LOST;
    if (a->gq_tail)
        G(base, a->gq_tail)->schedlink = first;
    else
        a->gq_head = first;
    a->gq_tail = last;
    pg_store_rel(&a->gq_size, a->gq_size + n);
    pg_unlock(&a->gq_lock);
    return PG_OK;
}

/* ---------------- Go's runq ---------------- */

/* runqputslow: move half the ring and g to the global queue */
static int runqputslow(void *base, pg_p_t *pp, uint64_t g, uint32_t h, uint32_t t) {
    uint64_t batch[PG_RUNQ / 2 + 1];
    uint32_t n = (t - h) / 2;
    for (uint32_t i = 0; i < n; i++)
        batch[i] = pp->runq[(h + i) % PG_RUNQ];
    if (!pg_cas_rel(&pp->runqhead, &h, h + n)) /* pairs with consumers' acquire */
        return 0;
    batch[n] = g;
    for (uint32_t i = 0; i < n; i++)
        G(base, batch[i])->schedlink = batch[i + 1];
    (void)gq_put_batch(base, batch[0], batch[n], n + 1); /* LOST: dropped, see gq_put_batch */
    return 1;
}

static void runqput(void *base, int p, uint64_t g, int next) {
    pg_p_t *pp = P(base, p);
    if (next) {
        uint64_t old = pg_xchg_acqrel(&pp->runnext, g);
        if (old == 0)
            return;
        g = old; /* kick the old runnext to the tail */
    }
    for (;;) {
        uint32_t h = pg_load_acq(&pp->runqhead); /* pairs with consumers' CAS */
        uint32_t t = pp->runqtail;
        if (t - h < PG_RUNQ) {
            pp->runq[t % PG_RUNQ] = g;
            pg_store_rel(&pp->runqtail, t + 1); /* publishes the slot */
            return;
        }
        if (runqputslow(base, pp, g, h, t))
            return;
    }
}

static uint64_t runqget(void *base, int p) {
    pg_p_t *pp = P(base, p);
    uint64_t next = pg_load_acq(&pp->runnext);
    if (next && pg_cas_acqrel(&pp->runnext, &next, 0))
        return next;
    for (;;) {
        uint32_t h = pg_load_acq(&pp->runqhead);
        uint32_t t = pp->runqtail;
        if (t == h)
            return 0;
        uint64_t g = pp->runq[h % PG_RUNQ];
        if (pg_cas_rel(&pp->runqhead, &h, h + 1))
            return g;
    }
}

/* runqgrab: take half of victim's ring into batch (Go's runqgrab) */
static uint32_t runqgrab(void *base, pg_p_t *vp, uint64_t *batch, int steal_next, uint32_t max) {
    (void)base;
    for (;;) {
        uint32_t h = pg_load_acq(&vp->runqhead);
        uint32_t t = pg_load_acq(&vp->runqtail); /* pairs with the owner's release */
        uint32_t n = t - h;
        n = n - n / 2;
        if (n > max)
            n = max;
        if (n == 0) {
            if (steal_next) {
                uint64_t next = pg_load_acq(&vp->runnext);
                if (next && pg_cas_acqrel(&vp->runnext, &next, 0)) {
                    batch[0] = next;
                    return 1;
                }
            }
            return 0;
        }
        if (n > PG_RUNQ / 2)
            continue; /* read an inconsistent h and t */
        for (uint32_t i = 0; i < n; i++)
            batch[i] = vp->runq[(h + i) % PG_RUNQ];
        if (pg_cas_rel(&vp->runqhead, &h, h + n))
            return n;
    }
}

static uint64_t runqsteal(void *base, int p, int victim, int steal_next, uint32_t max) {
    uint64_t batch[PG_RUNQ / 2];
    uint32_t n = runqgrab(base, P(base, victim), batch, steal_next, max);
    if (n == 0)
        return 0;
    pg_p_t *pp = P(base, p);
    uint32_t t = pp->runqtail;
    for (uint32_t i = 0; i + 1 < n; i++)
        pp->runq[(t + i) % PG_RUNQ] = batch[i];
    if (n > 1)
        pg_store_rel(&pp->runqtail, t + n - 1);
    return batch[n - 1];
}

/* globrunqget: take a fair share of the global queue */
static uint64_t globrunqget(void *base, int p, uint32_t max) {
    pg_arena_t *a = ARENA(base);
    if (pg_load_acq(&a->gq_size) == 0)
        return 0;
    if (pg_lock(&a->gq_lock) != PG_OK)
        return 0; /* the run is aborted: nothing more from the global queue */
    uint32_t n = a->gq_size;
    if (n == 0) {
        pg_unlock(&a->gq_lock);
        return 0;
    }
    uint32_t share = n / a->nprocs + 1;
    if (n > share)
        n = share;
    if (max && n > max)
        n = max;
    if (n > PG_RUNQ / 2)
        n = PG_RUNQ / 2;
    uint64_t g = a->gq_head;
    uint64_t cur = G(base, g)->schedlink;
    for (uint32_t i = 1; i < n; i++) {
        uint64_t nx = G(base, cur)->schedlink;
        runqput(base, p, cur, 0);
        cur = nx;
    }
    a->gq_head = cur;
    if (!cur)
        a->gq_tail = 0;
    pg_store_rel(&a->gq_size, a->gq_size - n);
    pg_unlock(&a->gq_lock);
    return g;
}

/* ---------------- ready lists ---------------- */

static void readyq_push(void *base, int p, uint64_t g) {
    pg_p_t *pp = P(base, p);
    uint64_t old = pg_load_rlx(&pp->readyq);
    do {
        G(base, g)->schedlink = old;
    } while (!pg_cas_sc(&pp->readyq, &old, g)); /* seq_cst: sleep protocol */
    pg_add_rlx(&pp->nready, 1);
}

static uint64_t privget(void *base, int p) {
    pg_p_t *pp = P(base, p);
    if (!pp->privhead) {
        uint64_t s = pg_xchg_sc(&pp->readyq, 0); /* step 5: pairs with push */
        if (!s)
            return 0;
        /* the stack is LIFO: reverse it into FIFO order */
        uint64_t prev = 0, tail = s;
        while (s) {
            uint64_t nx = G(base, s)->schedlink;
            G(base, s)->schedlink = prev;
            prev = s;
            s = nx;
        }
        pp->privhead = prev;
        pp->privtail = tail;
    }
    uint64_t g = pp->privhead;
    pg_add_rlx(&pp->nready, (uint32_t)-1);
    pp->privhead = G(base, g)->schedlink;
    if (!pp->privhead)
        pp->privtail = 0;
    return g;
}

static void privput(void *base, int p, uint64_t g) {
    pg_p_t *pp = P(base, p);
    G(base, g)->schedlink = 0;
    if (pp->privtail)
        G(base, pp->privtail)->schedlink = g;
    else
        pp->privhead = g;
    pp->privtail = g;
    pg_add_rlx(&pp->nready, 1);
}

/* ---------------- claiming, parking, readying ---------------- */

/* Go's selectDone CAS: the one waker that wins owns the wake-up. */
int pg_claim(void *base, uint64_t g) {
    uint32_t w = PARK_WAITING;
    int64_t me = PG_LOCK_OWNER(pg_load_rlx(&pg_lock_self)); /* this process's P, or none */
    uint32_t who = me >= 0 && me < PG_MAXP ? (uint32_t)me + 1 : 0;
    return pg_cas_acqrel(&G(base, g)->park, &w, PARK_CLAIMED | who << PARK_CLAIMER_SHIFT);
}

/* a claim (park word w) whose claimer P is gone: its ready never comes
 * (pg_ready clears the word before it pushes the G anywhere) */
static int claim_orphaned(void *base, uint32_t w) {
    uint32_t who = w >> PARK_CLAIMER_SHIFT;
    if ((w & PARK_STATE_MASK) != PARK_CLAIMED || who == 0 || who > PG_MAXP)
        return 0;
    return pg_load_acq(&ARENA(base)->p[who - 1].gone) != 0; /* pairs with the watch's release */
}

void pg_park_prepare(void *base, uint64_t g, uint32_t reason) {
    pg_g_t *gp = G(base, g);
    gp->waitreason = reason;
    gp->waitsince = pg_nanotime_real();
    gp->wake_res = WAKE_NONE;
    gp->wake_case = -1;
    gp->wake_off = 0;
    gp->wake_len = 0;
    gp->wake_inl = 0;
    pg_store_rlx(&gp->status, G_WAITING);
    pg_store_rel(&gp->park, PARK_WAITING);
    if (gp->kind != GK_THREAD)
        pg_add_sc(&ARENA(base)->nparked, 1);
    pg_add_rlx(&ARENA(base)->epoch, 1);
}

/* goready: the claimer has written wake_*; hand the G to its owner. */
void pg_ready(void *base, uint64_t g) {
    pg_g_t *gp = G(base, g);
    pg_arena_t *a = ARENA(base);
    pg_add_rlx(&a->epoch, 1);
    pg_store_rlx(&gp->status, G_RUNNABLE);
    if (gp->kind == GK_THREAD) {
        pg_store_rel(&gp->park, PARK_NONE); /* pairs with pg_thread_park */
        pg_futex_wake(&gp->park, 1);
        return;
    }
    pg_add_sc(&a->nparked, -1);
    pg_store_rel(&gp->park, PARK_NONE);
    readyq_push(base, gp->ownerp, g);
    pg_wakep_of(base, gp->ownerp);
}

/* park with no waiter anywhere (select {}, a parked wait on a local event) */
PG_API void pg_park_plain(void *base, uint64_t g, uint32_t reason, int counted) {
    pg_sudog_t *sd = AT(base, pg_g_sudog(g), pg_sudog_t);
    sd->obj = 0; /* nothing to unlink if this wait is cancelled */
    sd->queued = 0;
    G(base, g)->sel = 0;
    pg_park_prepare(base, g, reason);
    if (!counted && G(base, g)->kind != GK_THREAD)
        pg_add_sc(&ARENA(base)->nparked, -1);
}

/* a G readied by Python on its own P (timer, blocking call, await_) */
PG_API void pg_unpark_local(void *base, uint64_t g, int counted) {
    pg_g_t *gp = G(base, g);
    if (counted)
        pg_add_sc(&ARENA(base)->nparked, -1);
    pg_add_rlx(&ARENA(base)->epoch, 1);
    pg_store_rel(&gp->park, PARK_NONE);
    pg_store_rlx(&gp->status, G_RUNNING);
}

/*
 * Cancel a park (teardown, an interrupt): returns 1 if the wait was
 * cancelled and every sudog of g is off its queue; 0 if a waker already
 * claimed it (the ready is in flight: the caller must let it arrive).
 * If the object's lock owner died (PG_LOST) the wait still counts as
 * cancelled (returns 1): the G never runs on that object again, the run is
 * aborted, and the half-linked queue is left as it is.  So does a claim
 * whose claimer P died before readying it (nobody else ever will).
 */
PG_API int pg_park_cancel(void *base, uint64_t g) {
    pg_g_t *gp = G(base, g);
    uint32_t w = PARK_WAITING;
    if (!pg_cas_acqrel(&gp->park, &w, PARK_CANCELLED) &&
        !(claim_orphaned(base, w) && pg_cas_acqrel(&gp->park, &w, PARK_CANCELLED)))
        return 0;
    uint64_t sdo = pg_g_sudog(g);
    pg_sudog_t *sd = AT(base, sdo, pg_sudog_t);
    if (sd->obj && !gp->sel) {
        pg_objhdr_t *h = AT(base, sd->obj, pg_objhdr_t);
        if (pg_lock(&h->lock) == PG_OK) {
            pg_sudog_unlink(base, sdo);
            if (sd->elem_off) { /* a parked send's payload (no other wait sets it) */
                pg_free(base, sd->elem_off);
                sd->elem_off = 0;
            }
            pg_unlock(&h->lock);
        }
    }
    if (gp->kind != GK_THREAD)
        pg_add_sc(&ARENA(base)->nparked, -1);
    pg_store_rel(&gp->park, PARK_NONE);
    return 1;
}

/* A thread that is not a goroutine waits for its ready on the futex. */
PG_API int pg_thread_park(void *base, uint64_t g, uint64_t timeout_ns) {
    pg_g_t *gp = G(base, g);
    uint64_t deadline = pg_nanotime_real() + timeout_ns;
    for (;;) {
        uint32_t v = pg_load_acq(&gp->park); /* pairs with pg_ready's release */
        if (v == PARK_NONE)
            return PG_OK;
        uint64_t now = pg_nanotime_real();
        if (now >= deadline)
            return PG_WOULDBLOCK;
        uint64_t left = deadline - now;
        pg_futex_wait(&gp->park, v, left < 20000000ull ? left : 20000000ull);
    }
}

/* ---------------- load and placement ---------------- */

/* unstarted Gs waiting on p (racy: a snapshot is all placement needs) */
static inline uint64_t p_queued(pg_p_t *pp) {
    uint32_t h = pg_load_acq(&pp->runqhead), t = pg_load_acq(&pp->runqtail);
    return (uint64_t)(uint32_t)(t - h) + (pg_load_rlx(&pp->runnext) != 0) + pg_load_rlx(&pp->inbox_n);
}

/* load = queued + started and not dead (parked ones too: a started G
 * never leaves, so a pool's parked workers are the load it will have) */
static inline uint64_t p_load(pg_p_t *pp) { return p_queued(pp) + pg_load_rlx(&pp->nlive); }

static inline int p_usable(pg_arena_t *a, int v) {
    return !pg_load_acq(&a->p[v].gone) && pg_load_rlx(&a->p[v].state) != P_GONE;
}

/* The P a new G of P self starts on: the least loaded of self and up to 4
 * others (all of them for small procs, else random ones), self on ties.
 * out (may be NULL): [target, load of self, load of target]. */
static int pg_place(void *base, int self, uint64_t *out) {
    pg_arena_t *a = ARENA(base);
    uint32_t n = a->nprocs;
    uint64_t own = p_load(&a->p[self]), best_load = own;
    int best = self;
    uint32_t k = n - 1 < 4 ? n - 1 : 4;
    uint32_t start = n - 1 <= 4 ? 0 : pg_fastrand() % n;
    for (uint32_t i = 0, seen = 0; i < n && seen < k; i++) {
        int v = (int)((start + i) % n);
        if (v == self)
            continue;
        seen++;
        if (!p_usable(a, v))
            continue;
        uint64_t l = p_load(&a->p[v]);
        if (l < best_load) {
            best = v;
            best_load = l;
        }
    }
    if (out) {
        out[0] = (uint64_t)best;
        out[1] = own;
        out[2] = best_load;
    }
    return best;
}

/* the inbox: many producers, the owner drains it; a thief may take from it.
 * Returns PG_OK or PG_LOST (the lock's owner died: the run is aborted). */
static int inbox_put(void *base, int p, uint64_t g) {
    pg_p_t *pp = P(base, p);
    G(base, g)->schedlink = 0;
    if (pg_lock(&pp->inbox_lock) != PG_OK)
        return PG_LOST;
    if (pp->inbox_tail)
        G(base, pp->inbox_tail)->schedlink = g;
    else
        pp->inbox_head = g;
    pp->inbox_tail = g;
    pg_store_rlx(&pp->inbox_n, pp->inbox_n + 1);
    pg_unlock(&pp->inbox_lock);
    pg_add_rlx(&pp->nplaced, 1);
    return PG_OK;
}

/* take up to max Gs from p's inbox (FIFO); returns the first, links the
 * rest through schedlink and stores their count in *rest */
static uint64_t inbox_take(void *base, int p, uint32_t max, uint32_t *rest) {
    pg_p_t *pp = P(base, p);
    *rest = 0;
    if (!pg_load_rlx(&pp->inbox_n) || max == 0)
        return 0;
    if (pg_lock(&pp->inbox_lock) != PG_OK)
        return 0;
    uint64_t first = pp->inbox_head, last = first;
    uint32_t n = first ? 1 : 0;
    while (n < max && last && G(base, last)->schedlink) {
        last = G(base, last)->schedlink;
        n++;
    }
    if (first) {
        pp->inbox_head = G(base, last)->schedlink;
        if (!pp->inbox_head)
            pp->inbox_tail = 0;
        G(base, last)->schedlink = 0;
        pg_store_rlx(&pp->inbox_n, pp->inbox_n - n);
    }
    pg_unlock(&pp->inbox_lock);
    *rest = n ? n - 1 : 0;
    return first;
}

/* the owner moves its whole inbox into its ring (overflow: global queue) */
static void inbox_drain(void *base, int p) {
    uint32_t rest;
    uint64_t g = inbox_take(base, p, UINT32_MAX, &rest);
    while (g) {
        uint64_t nx = G(base, g)->schedlink;
        runqput(base, p, g, 0);
        g = nx;
    }
}

/* ---------------- goroutine records ---------------- */

/*
 * pg.go: allocate a G holding the encoded (fn, args) and place it (see
 * "Placement" above): this P's runnext, or another P's inbox (then that P
 * is woken if it sleeps); p < 0 (a thread that is no P): the global queue.
 * flags: GF_LOCAL -- go_local: started by p itself, never stolen;
 * GF_HERE -- no placement (Go's structures exactly: p's runnext).
 * out (may be NULL): where it went and why (pg_place).
 * Returns the G's offset, PG_NOMEM with nothing allocated, or PG_LOST.
 */
PG_API int64_t pg_go(void *base, int p, const void *fn, uint64_t fnlen, uint32_t flags,
                     uint32_t kind, uint64_t site, uint64_t parent, const uint64_t *refs,
                     uint32_t nrefs, uint64_t *out) {
    pg_arena_t *a = ARENA(base);
    int64_t payload = 0;
    uint64_t total = 0;
    if (fnlen) {
        /* the encoding, then its references and their count (the tail,
         * payload_refs): what dropping it unstarted gives back, pg_gdrop */
        total = fnlen + 8 * (uint64_t)nrefs + 8;
        payload = pg_alloc(base, total);
        if (payload < 0)
            return PG_NOMEM;
        uint8_t *pb = AT(base, (uint64_t)payload, uint8_t);
        memcpy(pb, fn, fnlen);
        if (nrefs)
            memcpy(pb + fnlen, refs, 8 * (size_t)nrefs);
        uint64_t nr = nrefs;
        memcpy(pb + fnlen + 8 * (uint64_t)nrefs, &nr, 8);
    }
    int64_t g = pg_alloc(base, sizeof(pg_g_t));
    if (g < 0) {
        if (payload)
            pg_free(base, (uint64_t)payload);
        return PG_NOMEM;
    }
    pg_g_t *gp = G(base, (uint64_t)g);
    memset(gp, 0, sizeof *gp);
    gp->goid = pg_add_rlx(&a->goidgen, 1);
    gp->status = G_RUNNABLE;
    gp->ownerp = -1;
    gp->kind = kind;
    gp->flags = flags & GF_LOCAL;
    gp->wake_case = -1;
    gp->fn_off = (uint64_t)payload;
    gp->fn_len = total;
    gp->parent = parent;
    gp->site = site;
    /* the payload's references to the handles encoded in it (handles.py) */
    for (uint32_t i = 0; i < nrefs; i++)
        pg_add_acqrel(&AT(base, refs[i], pg_objhdr_t)->refcnt, 1);
    if (kind == GK_THREAD) {
        gp->status = G_RUNNING;
        return g;
    }
    if (kind & GK_SYSTEM)
        pg_add_sc(&a->nsystem, 1);
    else
        pg_add_sc(&a->ngoroutines, 1);
    if (out) {
        out[0] = (uint64_t)(int64_t)p;
        out[1] = out[2] = 0;
    }
    if (flags & GF_LOCAL) {
        gp->ownerp = p;
        privput(base, p, (uint64_t)g);
        return g;
    }
    if (p < 0) {
        gp->schedlink = 0;
        if (gq_put_batch(base, (uint64_t)g, (uint64_t)g, 1) != PG_OK)
            return PG_LOST;
        pg_wakep(base, p);
        return g;
    }
    int target = (flags & GF_HERE) || a->nprocs < 2 ? p : pg_place(base, p, out);
    if (target == p) {
        runqput(base, p, (uint64_t)g, 1);
        pg_wakep(base, p);
        return g;
    }
    if (inbox_put(base, target, (uint64_t)g) != PG_OK)
        return PG_LOST;
    pg_wakep_of(base, target); /* step 4 of the wake protocol, for the inbox */
    return g;
}

/* a G that is already running: an adopted asyncio task (p >= 0) or a
 * thread that is no goroutine (kind GK_THREAD, p = -1) */
PG_API int64_t pg_gnew_running(void *base, int p, uint32_t kind, uint64_t site) {
    pg_arena_t *a = ARENA(base);
    int64_t g = pg_alloc(base, sizeof(pg_g_t));
    if (g < 0)
        return PG_NOMEM;
    pg_g_t *gp = G(base, (uint64_t)g);
    memset(gp, 0, sizeof *gp);
    gp->goid = pg_add_rlx(&a->goidgen, 1);
    gp->status = G_RUNNING;
    gp->ownerp = p;
    gp->kind = kind;
    gp->flags = GF_STARTED; /* a ready-list entry resumes it, never starts it */
    gp->wake_case = -1;
    gp->site = site;
    if (kind & GK_SYSTEM)
        pg_add_sc(&a->nsystem, 1);
    if (p >= 0)
        pg_store_rlx(&P(base, p)->nlive, P(base, p)->nlive + 1); /* owner P */
    return g;
}

/* a G finished (or an unstarted one is dropped at teardown): free its
 * record.  Called by its owner P (or, for a thread's G, by that thread). */
PG_API void pg_gexit(void *base, uint64_t g) {
    pg_arena_t *a = ARENA(base);
    pg_g_t *gp = G(base, g);
    if (gp->kind != GK_THREAD) {
        if (gp->kind & GK_SYSTEM)
            pg_add_sc(&a->nsystem, -1);
        else
            pg_add_sc(&a->ngoroutines, -1);
        if ((gp->flags & GF_STARTED) && gp->ownerp >= 0) {
            pg_p_t *pp = P(base, gp->ownerp);
            pg_store_rlx(&pp->nlive, pp->nlive - 1); /* owner P */
        }
    }
    pg_store_rel(&gp->status, G_DEAD);
    if (gp->fn_off)
        pg_free(base, gp->fn_off);
    if (gp->sel)
        pg_free(base, gp->sel);
    pg_add_rlx(&a->epoch, 1);
    pg_free(base, g);
}

/* A payload's tail (pg_go): its nrefs references, then nrefs (u64). */
static const uint64_t *payload_refs(const uint8_t *pb, uint64_t len, uint64_t *nrefs) {
    uint64_t n;
    memcpy(&n, pb + len - 8, 8);
    *nrefs = n;
    return (const uint64_t *)(const void *)(pb + len - 8 - 8 * n);
}

/* Drop an unstarted G (never started, owned by nobody): its payload's
 * references, its payload, its record.  Teardown's (pg_drop_unstarted). */
static void pg_gdrop(void *base, uint64_t g) {
    pg_g_t *gp = G(base, g);
    if (gp->fn_off) {
        uint64_t nr;
        const uint64_t *refs = payload_refs(AT(base, gp->fn_off, uint8_t), gp->fn_len, &nr);
        for (uint64_t i = 0; i < nr; i++)
            pg_obj_decref(base, refs[i]);
    }
    pg_gexit(base, g); /* frees the payload */
}

/* drop the unstarted Gs of a schedlink chain; returns how many */
static uint32_t drop_chain(void *base, uint64_t g) {
    uint32_t n = 0;
    while (g) {
        uint64_t nx = G(base, g)->schedlink;
        if (!(G(base, g)->flags & GF_STARTED)) { /* a readied started G is its P's to free */
            pg_gdrop(base, g);
            n++;
        }
        g = nx;
    }
    return n;
}

/*
 * Teardown, on P0 once every other P has left the run: like Go, the
 * goroutines never started never run -- drop every G still queued
 * unstarted (runnext, ring, inbox, ready lists, the global queue),
 * giving back what its payload references.  Returns how many.  Nothing
 * else may touch the queues now: no lock is taken.
 */
PG_API uint32_t pg_drop_unstarted(void *base) {
    pg_arena_t *a = ARENA(base);
    uint32_t n = 0;
    for (uint32_t p = 0; p < a->nprocs; p++) {
        pg_p_t *pp = &a->p[p];
        uint64_t g = pg_xchg_acqrel(&pp->runnext, 0);
        for (uint32_t h = pp->runqhead, t = pp->runqtail;; h++) {
            if (g) {
                G(base, g)->schedlink = 0; /* one G, not a chain */
                n += drop_chain(base, g);
            }
            if (h == t)
                break;
            g = pp->runq[h % PG_RUNQ];
        }
        pg_store_rel(&pp->runqhead, pp->runqtail);
        n += drop_chain(base, pp->inbox_head);
        pp->inbox_head = pp->inbox_tail = 0;
        pg_store_rlx(&pp->inbox_n, 0);
        n += drop_chain(base, pp->privhead);
        pp->privhead = pp->privtail = 0;
        n += drop_chain(base, pg_xchg_sc(&pp->readyq, 0));
        pg_store_rlx(&pp->nready, 0);
    }
    n += drop_chain(base, a->gq_head);
    a->gq_head = a->gq_tail = 0;
    pg_store_rel(&a->gq_size, 0);
    return n;
}

/*
 * Start a G on p: claim ownership, copy its encoded (fn, args) into out
 * and free the payload.  Returns the payload length, or PG_BIG with
 * out2[0] = the payload offset (the caller reads it and frees it).
 */
PG_API int64_t pg_gstart(void *base, int p, uint64_t g, void *out, uint64_t cap, uint64_t *out2) {
    pg_g_t *gp = G(base, g);
    gp->flags |= GF_STARTED; /* its ready-list entries resume it */
    gp->ownerp = p;
    pg_store_rlx(&P(base, p)->nlive, P(base, p)->nlive + 1); /* owner P: read by placement, WorkerLost */
    pg_store_rlx(&gp->status, G_RUNNING);
    uint64_t off = gp->fn_off, len = gp->fn_len;
    gp->fn_off = 0;
    if (!off)
        return 0;
    if (len > cap) {
        out2[0] = off;
        out2[1] = len;
        return PG_BIG;
    }
    memcpy(out, AT(base, off, void), len);
    pg_free(base, off);
    return (int64_t)len;
}

/* ---------------- findRunnable ---------------- */

static uint64_t pg_find_local(void *base, int p, uint64_t tick) {
    pg_arena_t *a = ARENA(base);
    uint64_t g;
    if (pg_load_rlx(&P(base, p)->inbox_n))
        inbox_drain(base, p);
    /* every 61st tick the global queue first, for fairness (Go) */
    if (tick % 61 == 0 && pg_load_acq(&a->gq_size) > 0 && (g = globrunqget(base, p, 1)))
        return g;
    if (tick % 7 == 0 && (g = runqget(base, p)))
        return g;
    if ((g = privget(base, p)))
        return g;
    if ((g = runqget(base, p)))
        return g;
    if (pg_load_acq(&a->gq_size) > 0 && (g = globrunqget(base, p, 0)))
        return g;
    return 0;
}

/*
 * How many unstarted Gs thief p may take from victim v now (0: none).
 * A victim is stealable when it is stuck in a goroutine (no findRunnable
 * for pg_steal_age) and either more loaded than the thief, or stuck for
 * longer than a time slice (then the victim is not going to start that
 * work itself soon); then half the excess, at least one (see "Placement").
 */
static uint32_t steal_quota(void *base, int p, int v, uint64_t now) {
    pg_arena_t *a = ARENA(base);
    pg_p_t *vp = &a->p[v];
    if (!p_usable(a, v) || pg_load_rlx(&vp->state) != P_RUNNING)
        return 0;
    uint64_t queued = p_queued(vp);
    if (!queued)
        return 0;
    uint64_t last = pg_load_acq(&vp->lastsched); /* pairs with the owner's / waker's release */
    uint64_t age = now > last ? now - last : 0;    /* a starting P's is in the future: see "Placement" */
    if (age < pg_steal_age)
        return 0;
    uint64_t lv = queued + pg_load_rlx(&vp->nlive), lt = p_load(&a->p[p]);
    if (lv > lt + 1)
        return (uint32_t)((lv - lt) / 2 < PG_RUNQ / 2 ? (lv - lt) / 2 : PG_RUNQ / 2);
    if (lv > lt || age >= 20 * pg_steal_age) /* 20 ms: two of sysmon's 10 ms time slices */
        return 1;
    return 0;
}

static uint64_t pg_steal(void *base, int p, int steal_next) {
    pg_arena_t *a = ARENA(base);
    uint32_t n = a->nprocs;
    if (n < 2)
        return 0;
    uint64_t now = pg_nanotime_real();
    uint32_t start = pg_fastrand() % n;
    for (uint32_t i = 0; i < n; i++) {
        int v = (int)((start + i) % n);
        if (v == p)
            continue;
        uint32_t quota = steal_quota(base, p, v, now);
        if (!quota)
            continue;
        uint64_t g = runqsteal(base, p, v, steal_next, quota);
        if (!g) {
            /* the victim's ring is empty: its inbox (placed, not drained yet) */
            uint32_t rest;
            g = inbox_take(base, v, quota, &rest);
            if (g) {
                uint64_t r = G(base, g)->schedlink;
                while (r) {
                    uint64_t nx = G(base, r)->schedlink;
                    runqput(base, p, r, 0);
                    r = nx;
                }
            }
        }
        if (g) {
            pg_store_rlx(&P(base, p)->nstolen, P(base, p)->nstolen + 1);
            return g;
        }
    }
    return 0;
}

/*
 * One G to run next on p, or 0 (does not sleep or spin).  exited: a G that
 * just finished on p (0 if none), retired here to save a foreign call.
 * An unstarted G is started here too (pg_gstart, another call saved):
 * out[0] = START_STARTED for a started G to resume; START_OBUF for a new
 * one whose encoded (fn, args) is in obuf, out[1] bytes; START_BLOCK when it
 * did not fit: out[2] = payload block, out[1] = length (the caller reads it
 * and frees it).
 * Every call is a scheduling decision: schedtick and lastsched move
 * (sysmon's progress signal, the thieves' age).
 */
PG_API uint64_t pg_findrunnable(void *base, int p, uint64_t exited, void *obuf, uint64_t ocap,
                                uint64_t *out) {
    pg_p_t *pp = P(base, p);
    if (exited)
        pg_gexit(base, exited);
    uint64_t tick = pp->schedtick + 1;
    pg_store_rlx(&pp->schedtick, tick);
    pg_store_rel(&pp->lastsched, pg_nanotime_real()); /* pairs with steal_quota's acquire */
    if (pg_load_rlx(&pp->state) != P_RUNNING)
        pg_store_sc(&pp->state, P_RUNNING); /* woken by I/O or the loop, not by a waker */
    uint64_t g = pg_find_local(base, p, tick);
    if (!g)
        g = pg_steal(base, p, 0);
    if (!g || !obuf)
        return g;
    if (G(base, g)->flags & GF_STARTED) {
        out[0] = START_STARTED;
        return g;
    }
    uint64_t o2[2];
    int64_t n = pg_gstart(base, p, g, obuf, ocap, o2);
    if (n == PG_BIG) {
        out[0] = START_BLOCK;
        out[1] = o2[1];
        out[2] = o2[0];
    } else {
        out[0] = START_OBUF;
        out[1] = (uint64_t)n;
    }
    return g;
}

/*
 * A started G of p readied by anyone (its ready list), or 0: never starts
 * a new G.  The hub asks this instead of findRunnable while it runs its
 * preempted goroutines first: starting every queued G in turn on each time
 * slice would pin them all to p for good, where an idle P could still have
 * taken the unstarted ones (a started G never moves).
 */
PG_API uint64_t pg_findready(void *base, int p, uint64_t exited) {
    if (exited)
        pg_gexit(base, exited);
    return privget(base, p);
}

/* p's own queues hold work (cheap loads only) */
static int pg_has_local(void *base, int p) {
    pg_p_t *pp = P(base, p);
    return pp->privhead || pg_load_sc(&pp->readyq) || pg_load_sc(&pp->runnext) ||
           pg_load_sc(&pp->runqtail) != pg_load_sc(&pp->runqhead) || pg_load_sc(&pp->inbox_n);
}

/* sysmon: is a goroutine of p other than the running one runnable? */
PG_API int pg_p_has_runnable(void *base, int p) {
    return pg_has_local(base, p) || pg_load_rlx(&P(base, p)->nlocal) != 0;
}

/* anything p may run or steal now?  Same predicates as findRunnable, so
 * that an idle P never sees work it is not allowed to take */
static int pg_has_work(void *base, int p) {
    pg_arena_t *a = ARENA(base);
    if (pg_has_local(base, p) || pg_load_sc(&a->gq_size))
        return 1;
    uint64_t now = pg_nanotime_real();
    for (uint32_t v = 0; v < a->nprocs; v++)
        if ((int)v != p && steal_quota(base, p, (int)v, now))
            return 1;
    return 0;
}

/*
 * The P found nothing: spin for up to spin_ns looking for work (at most
 * half the Ps spin, as in Go), then sleep.  Returns a G to run, or 0 with
 * state == P_SLEEPING published and every queue seen empty after it; the
 * caller then blocks in its event loop, and any waker writes its eventfd.
 *
 *   idle P                                   waker
 *   (1) store state = SLEEPING (seq_cst)     (a) publish work (seq_cst)
 *   (2) look at every queue                  (b) load state; SLEEPING:
 *   (3) nothing: sleep. Work: CAS back to        CAS -> RUNNING, eventfd
 *       RUNNING, take it; lost the race for
 *       it: back to (1) (Go's "delicate dance")
 * If the waker's CAS won (3)'s, its eventfd write only makes the next
 * sleep return at once.
 */
/* lost races of this process's idle loop ((3) found work, then another P
 * took it first): a diagnostic the shim tests read */
static uint64_t pg_idle_lost_races;
PG_API uint64_t pg_idle_lost(void) { return pg_load_rlx(&pg_idle_lost_races); }

PG_API uint64_t pg_p_idle(void *base, int p, uint64_t spin_ns) {
    pg_arena_t *a = ARENA(base);
    pg_p_t *pp = P(base, p);
    uint64_t g;
    uint64_t tick = pp->schedtick;
    if (spin_ns && pg_load_rlx(&a->nspinning) * 2 < a->nprocs) {
        pg_add_sc(&a->nspinning, 1);
        pg_store_rlx(&pp->state, P_SPINNING);
        uint64_t end = pg_nanotime_real() + spin_ns;
        int rounds = 0;
        do {
            g = pg_find_local(base, p, tick);
            if (!g)
                g = pg_steal(base, p, rounds > 64);
            if (g) {
                pg_store_rlx(&pp->state, P_RUNNING);
                /* the last spinner found work: let another P look too */
                if (pg_add_sc(&a->nspinning, -1) == 0 && G(base, g)->ownerp < 0)
                    pg_wakep(base, p);
                return g;
            }
            for (int i = 0; i < 20; i++)
                pg_cpu_relax();
            /* every few rounds give the core away: if the P we wait for
             * shares it (an oversubscribed or loaded machine), spinning
             * would only delay the very work we are waiting for */
            if ((++rounds & 7) == 0)
                sched_yield();
        } while (pg_nanotime_real() < end && !pg_load_rlx(&a->shutdown));
        pg_add_sc(&a->nspinning, -1);
    }
    for (int round = 0;; round++) {
        pg_store_sc(&pp->state, P_SLEEPING);         /* (1) */
        if (!pg_has_work(base, p) || round >= 64)    /* (2); 64 lost races: a thief as busy as that is awake */
            return 0;                                /* (3) sleep */
        uint32_t st = P_SLEEPING;
        pg_cas_sc(&pp->state, &st, P_RUNNING);       /* (3) a waker may have done it: fine */
        if ((g = pg_find_local(base, p, tick)) || (g = pg_steal(base, p, 1)))
            return g;
        pg_add_rlx(&pg_idle_lost_races, 1); /* lost it: back to (1) */
    }
}

/* the P woke up by itself (its loop ran a callback) */
PG_API void pg_p_awake(void *base, int p) { pg_store_sc(&P(base, p)->state, P_RUNNING); }
