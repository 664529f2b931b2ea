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
 * Sleep protocol (Dekker with seq_cst): the P stores state=SLEEPING, then
 * re-checks every queue; the waker pushes, fences, then loads state.  One
 * of the two sees the other, so a wake-up is never lost.
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

/* wake P p if it sleeps (step 4 above) */
PG_API void pg_wakep_of(void *base, int p) {
    pg_p_t *pp = P(base, p);
    pg_fence_sc(); /* pairs with the sleeper's seq_cst store of SLEEPING */
    uint32_t st = pg_load_sc(&pp->state);
    if (st == P_SLEEPING && pg_cas_sc(&pp->state, &st, P_RUNNING))
        pg_signal_p(base, p);
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
            pg_signal_p(base, p);
            return;
        }
    }
}

PG_API void pg_wake_all(void *base) {
    pg_arena_t *a = ARENA(base);
    for (uint32_t p = 0; p < a->nprocs; p++) {
        pg_store_sc(&a->p[p].state, P_RUNNING);
        pg_signal_p(base, (int)p);
    }
}

/* ---------------- global queue (gq lock) ---------------- */

static void gq_put_batch(void *base, uint64_t first, uint64_t last, uint32_t n) {
    pg_arena_t *a = ARENA(base);
    G(base, last)->schedlink = 0;
    pg_lock(&a->gq_lock);
    if (a->gq_tail)
        G(base, a->gq_tail)->schedlink = first;
    else
        a->gq_head = first;
    a->gq_tail = last;
    pg_store_rel(&a->gq_size, a->gq_size + n);
    pg_unlock(&a->gq_lock);
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
    gq_put_batch(base, batch[0], batch[n], n + 1);
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
static uint32_t runqgrab(void *base, pg_p_t *vp, uint64_t *batch, int steal_next) {
    (void)base;
    for (;;) {
        uint32_t h = pg_load_acq(&vp->runqhead);
        uint32_t t = pg_load_acq(&vp->runqtail); /* pairs with the owner's release */
        uint32_t n = t - h;
        n = n - n / 2;
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

static uint64_t runqsteal(void *base, int p, int victim, int steal_next) {
    uint64_t batch[PG_RUNQ / 2];
    uint32_t n = runqgrab(base, P(base, victim), batch, steal_next);
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
    pg_lock(&a->gq_lock);
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
}

/* ---------------- claiming, parking, readying ---------------- */

/* Go's selectDone CAS: the one waker that wins owns the wake-up. */
int pg_claim(void *base, uint64_t g) {
    uint32_t w = PARK_WAITING;
    return pg_cas_acqrel(&G(base, g)->park, &w, PARK_CLAIMED);
}

void pg_park_prepare(void *base, uint64_t g, uint32_t reason) {
    pg_g_t *gp = G(base, g);
    gp->waitreason = reason;
    gp->waitsince = pg_nanotime();
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
 */
PG_API int pg_park_cancel(void *base, uint64_t g) {
    pg_g_t *gp = G(base, g);
    uint32_t w = PARK_WAITING;
    if (!pg_cas_acqrel(&gp->park, &w, PARK_CANCELLED))
        return 0;
    uint64_t sdo = pg_g_sudog(g);
    pg_sudog_t *sd = AT(base, sdo, pg_sudog_t);
    if (sd->obj && !gp->sel) {
        pg_objhdr_t *h = AT(base, sd->obj, pg_objhdr_t);
        pg_lock(&h->lock);
        pg_sudog_unlink(base, sdo);
        if (sd->elem_off) { /* a parked send's payload (no other wait sets it) */
            pg_free(base, sd->elem_off);
            sd->elem_off = 0;
        }
        pg_unlock(&h->lock);
    }
    if (gp->kind != GK_THREAD)
        pg_add_sc(&ARENA(base)->nparked, -1);
    pg_store_rel(&gp->park, PARK_NONE);
    return 1;
}

/* A thread that is not a goroutine waits for its ready on the futex. */
PG_API int pg_thread_park(void *base, uint64_t g, uint64_t timeout_ns) {
    pg_g_t *gp = G(base, g);
    uint64_t deadline = pg_nanotime() + timeout_ns;
    for (;;) {
        uint32_t v = pg_load_acq(&gp->park); /* pairs with pg_ready's release */
        if (v == PARK_NONE)
            return PG_OK;
        uint64_t now = pg_nanotime();
        if (now >= deadline)
            return PG_WOULDBLOCK;
        uint64_t left = deadline - now;
        pg_futex_wait(&gp->park, v, left < 20000000ull ? left : 20000000ull);
    }
}

/* ---------------- goroutine records ---------------- */

/*
 * pg.go: allocate a G holding the encoded (fn, args), put it in p's runnext
 * (p < 0: a thread that is no P: the global queue) and wake an idle P.
 * flags & 1: go_local -- never stolen, started by p itself.
 * Returns the G's offset, or PG_NOMEM with nothing allocated.
 */
PG_API int64_t pg_go(void *base, int p, const void *fn, uint64_t fnlen, uint32_t flags,
                     uint32_t kind, uint64_t site, uint64_t parent, const uint64_t *refs,
                     uint32_t nrefs) {
    pg_arena_t *a = ARENA(base);
    int64_t payload = 0;
    if (fnlen) {
        payload = pg_alloc_copy(base, fn, fnlen);
        if (payload < 0)
            return PG_NOMEM;
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
    gp->flags = flags;
    gp->wake_case = -1;
    gp->fn_off = (uint64_t)payload;
    gp->fn_len = fnlen;
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
    if (flags & 1) {
        gp->ownerp = p;
        privput(base, p, (uint64_t)g);
        return g;
    }
    if (p < 0) {
        gp->schedlink = 0;
        gq_put_batch(base, (uint64_t)g, (uint64_t)g, 1);
    } else {
        runqput(base, p, (uint64_t)g, 1);
    }
    pg_wakep(base, p);
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
    gp->flags = 2; /* started: a ready-list entry resumes it, never starts it */
    gp->wake_case = -1;
    gp->site = site;
    if (kind & GK_SYSTEM)
        pg_add_sc(&a->nsystem, 1);
    return g;
}

/* a started G finished: free its record */
PG_API void pg_gexit(void *base, uint64_t g) {
    pg_arena_t *a = ARENA(base);
    pg_g_t *gp = G(base, g);
    if (gp->kind != GK_THREAD) {
        if (gp->kind & GK_SYSTEM)
            pg_add_sc(&a->nsystem, -1);
        else
            pg_add_sc(&a->ngoroutines, -1);
    }
    pg_store_rel(&gp->status, G_DEAD);
    if (gp->fn_off)
        pg_free(base, gp->fn_off);
    if (gp->sel)
        pg_free(base, gp->sel);
    pg_add_rlx(&a->epoch, 1);
    pg_free(base, g);
}

/*
 * Start a G on p: claim ownership, copy its encoded (fn, args) into out
 * and free the payload.  Returns the payload length, or PG_BIG with
 * out2[0] = the payload offset (the caller reads it and frees it).
 */
PG_API int64_t pg_gstart(void *base, int p, uint64_t g, void *out, uint64_t cap, uint64_t *out2) {
    pg_g_t *gp = G(base, g);
    gp->flags |= 2; /* started: its ready-list entries resume it */
    gp->ownerp = p;
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

static uint64_t pg_steal(void *base, int p, int steal_next) {
    pg_arena_t *a = ARENA(base);
    uint32_t n = a->nprocs;
    if (n < 2)
        return 0;
    uint32_t start = pg_fastrand() % n;
    for (uint32_t i = 0; i < n; i++) {
        int v = (int)((start + i) % n);
        if (v == p || pg_load_rlx(&a->p[v].state) == P_GONE)
            continue;
        uint64_t g = runqsteal(base, p, v, steal_next);
        if (g)
            return g;
    }
    return 0;
}

PG_API void pg_gexit(void *base, uint64_t g);

/*
 * One G to run next on p, or 0 (does not sleep or spin).  exited: a G that
 * just finished on p (0 if none), retired here to save a foreign call.
 * An unstarted G is started here too (pg_gstart, another call saved):
 * out[0] = 0 for a started G to resume; 1 for a new one whose encoded
 * (fn, args) is in obuf, out[1] bytes; 2 when it did not fit: out[2] =
 * payload block, out[1] = length (the caller reads it and frees it).
 */
PG_API uint64_t pg_findrunnable(void *base, int p, uint64_t tick, uint64_t exited, void *obuf,
                                uint64_t ocap, uint64_t *out) {
    if (exited)
        pg_gexit(base, exited);
    uint64_t g = pg_find_local(base, p, tick);
    if (!g)
        g = pg_steal(base, p, 0);
    if (!g || !obuf)
        return g;
    if (G(base, g)->flags & 2) {
        out[0] = 0;
        return g;
    }
    uint64_t o2[2];
    int64_t n = pg_gstart(base, p, g, obuf, ocap, o2);
    if (n == PG_BIG) {
        out[0] = 2;
        out[1] = o2[1];
        out[2] = o2[0];
    } else {
        out[0] = 1;
        out[1] = (uint64_t)n;
    }
    return g;
}

/* anything for p at all?  (cheap loads only) */
static int pg_has_work(void *base, int p) {
    pg_arena_t *a = ARENA(base);
    pg_p_t *pp = P(base, p);
    if (pp->privhead || pg_load_sc(&pp->readyq) || pg_load_sc(&pp->runnext) ||
        pg_load_sc(&pp->runqtail) != pg_load_sc(&pp->runqhead) || pg_load_sc(&a->gq_size))
        return 1;
    for (uint32_t v = 0; v < a->nprocs; v++) {
        if ((int)v == p)
            continue;
        pg_p_t *vp = &a->p[v];
        /* runnext too: a busy P's newest goroutine is ours to steal (Go
         * steals runnext on its last try), or it waits until that P blocks */
        if (pg_load_sc(&vp->runqtail) != pg_load_sc(&vp->runqhead) || pg_load_sc(&vp->runnext))
            return 1;
    }
    return 0;
}

/*
 * The P found nothing: spin for up to spin_ns looking for work (at most
 * half the Ps spin, as in Go), then enter the sleep protocol.  Returns a G
 * to run, or 0 after state was set to P_SLEEPING with every queue seen
 * empty afterwards -- the caller then blocks in its event loop, and any
 * waker will write its eventfd.
 */
PG_API uint64_t pg_p_idle(void *base, int p, uint64_t tick, uint64_t spin_ns) {
    pg_arena_t *a = ARENA(base);
    pg_p_t *pp = P(base, p);
    uint64_t g;
    if (spin_ns && pg_load_rlx(&a->nspinning) * 2 < a->nprocs) {
        pg_add_sc(&a->nspinning, 1);
        pg_store_rlx(&pp->state, P_SPINNING);
        uint64_t end = pg_nanotime() + spin_ns;
        uint64_t seen_next[PG_MAXP / 64 + 1];
        (void)seen_next;
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
        } while (pg_nanotime() < end && !pg_load_rlx(&a->shutdown));
        pg_add_sc(&a->nspinning, -1);
    }
    /* sleep protocol step: publish SLEEPING, then look once more */
    pg_store_sc(&pp->state, P_SLEEPING);
    if (pg_has_work(base, p)) {
        uint32_t st = P_SLEEPING;
        pg_cas_sc(&pp->state, &st, P_RUNNING);
        if ((g = pg_find_local(base, p, tick)) || (g = pg_steal(base, p, 1)))
            return g;
        /* lost the race for it: sleep properly next round */
        return 0;
    }
    return 0;
}

/* the P woke up by itself (its loop ran a callback) */
PG_API void pg_p_awake(void *base, int p) { pg_store_sc(&P(base, p)->state, P_RUNNING); }
