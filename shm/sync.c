/*
 * sync.c -- shared objects: reference counts, and the sync primitives that
 * park through the one sudog mechanism (Go's sema.go + sync).
 *
 * Every sync object is one pg_sync record; its kind's own words are the
 * union pg_sync.u (shm/layout.h declares each kind's struct and what
 * protects each field):
 *   WaitGroup  u.wg (count)                     q1 = waiters
 *   Mutex      u.mu (locked, nwait, starving)   q1 = waiters (FIFO)
 *   RWMutex    u.rw (writer, readers, wwait)    q1 = readers, q2 = writers
 *   Semaphore  u.sema (size, held)              q1 = waiters, weight in elem_len
 *   Cond       -                                q1 = waiters
 *   Once       u.once (state)                   q1 = waiters; res = the result
 *              (a stored-value block: its free drops its handles' references)
 *   atomics    u.atom (value: atomic, never under the lock); And/Or, the
 *              32-bit forms and atomic.Value (SK_VALUE) live in atomics.c
 *   Buffer     u.buf (nbytes); res_off/res_len = the data block (immutable)
 *   Counter    res_off = 2 * PG_MAXP cache lines of shards
 *
 * Wake-ups are claimed under the object lock and readied after it is
 * released.  Every entry point that locks returns PG_LOST, the object
 * untouched, when the lock's owner P died holding it (pg_lock).  g->wake_res tells the woken G what happened: WAKE_OK (the
 * condition it waited for), WAKE_HANDOFF (the lock was handed to it: it
 * owns it now), WAKE_RETRY (Mutex normal mode: compete again).
 */
#define _GNU_SOURCE
#include <string.h>
#include "pg_internal.h"

static inline pg_sync_t *S(void *base, uint64_t o) { return AT(base, o, pg_sync_t); }
static inline pg_g_t *G(void *base, uint64_t g) { return AT(base, g, pg_g_t); }

/* ---------------- objects and their reference counts ---------------- */

static int64_t obj_new(void *base, uint32_t kind, uint32_t skind, uint64_t extra) {
    int64_t o = pg_alloc(base, sizeof(pg_sync_t));
    if (o < 0)
        return PG_NOMEM;
    int64_t ex = 0;
    if (extra) {
        ex = pg_alloc_zeroed(base, extra);
        if (ex < 0) {
            pg_free(base, (uint64_t)o);
            return PG_NOMEM;
        }
    }
    pg_sync_t *s = S(base, (uint64_t)o);
    uint32_t gen = s->hdr.gen;
    memset(s, 0, sizeof *s);
    s->hdr.kind = kind;
    s->hdr.refcnt = 1;
    s->hdr.gen = gen + 1;
    s->skind = skind;
    s->res_off = (uint64_t)ex;
    s->res_len = extra;
    return o;
}

PG_API int64_t pg_sync_new(void *base, uint32_t skind, int64_t a) {
    int64_t o = obj_new(base, OBJ_SYNC, skind, 0);
    if (o > 0)
        S(base, (uint64_t)o)->u.value = a; /* the kind's first word: count, size, value... */
    return o;
}

/* a Buffer: nbytes of arena memory, zeroed */
PG_API int64_t pg_buffer_new(void *base, uint64_t nbytes) {
    return obj_new(base, OBJ_BUFFER, SK_BUFFER, nbytes ? nbytes : 1);
}

PG_API int64_t pg_counter_new(void *base) {
    return obj_new(base, OBJ_COUNTER, 0, 2ull * PG_MAXP * 64);
}

PG_API uint32_t pg_obj_incref(void *base, uint64_t o) {
    return pg_add_acqrel(&AT(base, o, pg_objhdr_t)->refcnt, 1);
}

/* batches: one foreign call for the handles of a whole payload */
PG_API void pg_obj_incref_many(void *base, const uint64_t *offs, uint32_t n) {
    for (uint32_t i = 0; i < n; i++)
        pg_add_acqrel(&AT(base, offs[i], pg_objhdr_t)->refcnt, 1);
}

PG_API void pg_obj_decref_many(void *base, const uint64_t *offs, uint32_t n) {
    for (uint32_t i = 0; i < n; i++)
        pg_obj_decref(base, offs[i]);
}

/* drop a reference; the last one frees the object and bumps its gen */
PG_API uint32_t pg_obj_decref(void *base, uint64_t o) {
    pg_objhdr_t *h = AT(base, o, pg_objhdr_t);
    uint32_t r = pg_add_acqrel(&h->refcnt, (uint32_t)-1);
    if (r != 0)
        return r;
    if (h->kind == OBJ_CHAN) {
        pg_chan_free(base, o);
    } else if (h->kind == OBJ_TIMER) {
        pg_timer_free(base, o);
    } else if (h->kind == OBJ_CTX) {
        pg_ctx_free(base, o);
    } else if (h->kind == OBJ_MAP) {
        pg_map_free(base, o); /* map.c: its entries, values and shards */
    } else {
        pg_sync_t *s = (pg_sync_t *)h;
        if (s->skind == SK_VALUE || s->skind == SK_ONCE)
            pg_value_free(base, o); /* atomics.c: the references its stored value holds */
        if (s->res_off)
            pg_free(base, s->res_off);
    }
    h->kind = OBJ_FREE;
    pg_add_acqrel(&h->gen, 1);
    pg_free(base, o);
    return 0;
}

/* ---------------- helpers ---------------- */

static void park_on(void *base, uint64_t g, uint64_t o, pg_waitq_t *q, uint32_t reason,
                     uint64_t weight, int front) {
    uint64_t sdo = pg_g_sudog(g);
    pg_sudog_t *sd = AT(base, sdo, pg_sudog_t);
    pg_sudog_init(sd, g, o, -1, 0);
    sd->elem_len = weight;
    G(base, g)->sel = 0;
    pg_park_prepare(base, g, reason);
    if (front)
        pg_waitq_push_front(base, q, sdo);
    else
        pg_waitq_push(base, q, sdo);
}

/* claim every waiter of q with res; return them linked through schedlink */
static uint64_t claim_all(void *base, pg_waitq_t *q, uint32_t res, uint64_t list, int64_t *n) {
    uint64_t sdo;
    while ((sdo = pg_waitq_dequeue(base, q))) {
        uint64_t g = AT(base, sdo, pg_sudog_t)->g;
        G(base, g)->wake_res = res;
        G(base, g)->schedlink = list;
        list = g;
        if (n)
            (*n)++;
    }
    return list;
}

static void ready_list(void *base, uint64_t list) {
    while (list) {
        uint64_t nx = G(base, list)->schedlink;
        pg_ready(base, list);
        list = nx;
    }
}

/* ---------------- WaitGroup ---------------- */

/* add delta; PG_NEGATIVE leaves the counter unchanged.  Returns the new
 * counter value (>= 0). */
PG_API int64_t pg_wg_add(void *base, uint64_t o, int64_t delta) {
    pg_sync_t *s = S(base, o);
    if (pg_lock(&s->hdr.lock) != PG_OK)
        return PG_LOST;
    int64_t v;
    if (__builtin_add_overflow(s->u.wg.count, delta, &v)) {
        pg_unlock(&s->hdr.lock);
        return PG_INVAL; /* the counter would overflow int64: unchanged */
    }
    if (v < 0) {
        pg_unlock(&s->hdr.lock);
        return PG_NEGATIVE;
    }
    s->u.wg.count = v;
    uint64_t list = v == 0 ? claim_all(base, &s->q1, WAKE_OK, 0, NULL) : 0;
    pg_unlock(&s->hdr.lock);
    ready_list(base, list);
    return v;
}

PG_API int64_t pg_wg_wait(void *base, uint64_t o, uint64_t g) {
    pg_sync_t *s = S(base, o);
    if (pg_load_acq(&s->u.wg.count) == 0)
        return PG_OK;
    if (pg_lock(&s->hdr.lock) != PG_OK)
        return PG_LOST;
    if (s->u.wg.count == 0 || !g) {
        int64_t r = s->u.wg.count == 0 ? PG_OK : PG_WOULDBLOCK;
        pg_unlock(&s->hdr.lock);
        return r;
    }
    park_on(base, g, o, &s->q1, WR_WAITGROUP, 0, 0);
    pg_unlock(&s->hdr.lock);
    return PG_PARKED;
}

/* ---------------- Mutex (Go's normal and starvation modes) ---------------- */

/* The uncontended lock's whole work, and nothing a parked locker needs (no
 * G): the first call of Mutex.lock; PG_WOULDBLOCK sends it to
 * pg_mutex_lock, which queues the G.  Two arguments: each one a ctypes
 * call converts costs about as much as the CAS. */
PG_API int64_t pg_mutex_trylock(void *base, uint64_t o) {
    uint64_t z = 0;
    return pg_cas_acqrel((uint64_t *)&S(base, o)->u.mu.locked, &z, 1) ? PG_OK : PG_WOULDBLOCK;
}

/* flags: MX_TRY = try only; MX_RETRY = a woken waiter retrying (queue at the front).
 * since: CLOCK_MONOTONIC ns when this locker first waited (0 = now). */
PG_API int64_t pg_mutex_lock(void *base, uint64_t o, uint64_t g, int flags, uint64_t since) {
    pg_sync_t *s = S(base, o);
    uint64_t z = 0;
    /* fast path: one CAS.  In starvation mode a never drops to 0 while
     * waiters exist (unlock hands it over), so barging cannot starve them. */
    if (!(flags & MX_RETRY) && pg_cas_acqrel((uint64_t *)&s->u.mu.locked, &z, 1))
        return PG_OK;
    if (pg_lock(&s->hdr.lock) != PG_OK)
        return PG_LOST;
    /* (1) announce the waiter, (2) try once more: pairs with unlock's
     * "store a = 0; load b" (Dekker, seq_cst) so a release is never missed */
    pg_store_sc(&s->u.mu.nwait, s->u.mu.nwait + 1);
    z = 0;
    if (pg_cas_sc((uint64_t *)&s->u.mu.locked, &z, 1)) {
        pg_store_sc(&s->u.mu.nwait, s->u.mu.nwait - 1);
        pg_unlock(&s->hdr.lock);
        return PG_OK;
    }
    if ((flags & MX_TRY) || !g) {
        pg_store_sc(&s->u.mu.nwait, s->u.mu.nwait - 1);
        pg_unlock(&s->hdr.lock);
        return PG_WOULDBLOCK;
    }
    park_on(base, g, o, &s->q1, WR_MUTEX, since ? since : pg_nanotime_real(), flags & MX_RETRY);
    pg_unlock(&s->hdr.lock);
    return PG_PARKED;
}

PG_API int64_t pg_mutex_unlock(void *base, uint64_t o) {
    pg_sync_t *s = S(base, o);
    /* fast path: no waiters (b is only raised under the lock, before the
     * waiter is visible; seq_cst pairs the two) */
    if (pg_load_sc(&s->u.mu.nwait) == 0) {
        uint64_t one = 1;
        if (!pg_cas_sc((uint64_t *)&s->u.mu.locked, &one, 0))
            return PG_UNLOCKED;
        if (pg_load_sc(&s->u.mu.nwait) == 0)
            return PG_OK;
        /* a waiter queued meanwhile: it may have missed the release */
        if (pg_lock(&s->hdr.lock) != PG_OK)
            return PG_LOST;
        uint64_t g = 0;
        if (s->u.mu.locked == 0) {
            uint64_t sdo = pg_waitq_dequeue(base, &s->q1);
            if (sdo) {
                g = AT(base, sdo, pg_sudog_t)->g;
                G(base, g)->wake_res = WAKE_RETRY;
                pg_store_sc(&s->u.mu.nwait, s->u.mu.nwait - 1);
            }
        }
        pg_unlock(&s->hdr.lock);
        if (g)
            pg_ready(base, g);
        return PG_OK;
    }
    if (pg_lock(&s->hdr.lock) != PG_OK)
        return PG_LOST;
    if (pg_load_acq(&s->u.mu.locked) == 0) {
        pg_unlock(&s->hdr.lock);
        return PG_UNLOCKED;
    }
    uint64_t sdo = pg_waitq_dequeue(base, &s->q1);
    uint64_t g = 0;
    if (!sdo) {
        pg_store_sc(&s->u.mu.nwait, 0);
        pg_store_rel((uint64_t *)&s->u.mu.locked, 0);
        s->u.mu.starving = 0;
    } else {
        pg_sudog_t *sd = AT(base, sdo, pg_sudog_t);
        g = sd->g;
        pg_store_sc(&s->u.mu.nwait, s->u.mu.nwait - 1);
        uint64_t waited = pg_nanotime_real() - sd->elem_len;
        if (s->u.mu.starving || waited > STARVE_NS) {
            /* starvation mode: hand the lock over; a stays 1 */
            s->u.mu.starving = s->q1.first ? 1 : 0;
            if (waited > STARVE_NS && s->q1.first)
                s->u.mu.starving = 1;
            G(base, g)->wake_res = WAKE_HANDOFF;
        } else {
            pg_store_rel((uint64_t *)&s->u.mu.locked, 0);
            G(base, g)->wake_res = WAKE_RETRY;
        }
    }
    pg_unlock(&s->hdr.lock);
    if (g)
        pg_ready(base, g);
    return PG_OK;
}

/* ---------------- RWMutex (writer preference, as Go's) ---------------- */

PG_API int64_t pg_rw_rlock(void *base, uint64_t o, uint64_t g, int tryonly) {
    pg_sync_t *s = S(base, o);
    if (pg_lock(&s->hdr.lock) != PG_OK)
        return PG_LOST;
    if (s->u.rw.writer == 0 && s->u.rw.wwait == 0) {
        s->u.rw.readers++;
        pg_unlock(&s->hdr.lock);
        return PG_OK;
    }
    if (tryonly || !g) {
        pg_unlock(&s->hdr.lock);
        return PG_WOULDBLOCK;
    }
    park_on(base, g, o, &s->q1, WR_RLOCK, 0, 0);
    pg_unlock(&s->hdr.lock);
    return PG_PARKED;
}

static uint64_t rw_handoff_writer(void *base, pg_sync_t *s) {
    uint64_t sdo = pg_waitq_dequeue(base, &s->q2);
    if (!sdo)
        return 0;
    uint64_t g = AT(base, sdo, pg_sudog_t)->g;
    s->u.rw.writer = 1;
    s->u.rw.wwait--;
    G(base, g)->wake_res = WAKE_HANDOFF;
    G(base, g)->schedlink = 0;
    return g;
}

PG_API int64_t pg_rw_runlock(void *base, uint64_t o) {
    pg_sync_t *s = S(base, o);
    if (pg_lock(&s->hdr.lock) != PG_OK)
        return PG_LOST;
    if (s->u.rw.readers <= 0) {
        pg_unlock(&s->hdr.lock);
        return PG_UNLOCKED;
    }
    uint64_t g = 0;
    if (--s->u.rw.readers == 0 && s->u.rw.wwait > 0)
        g = rw_handoff_writer(base, s);
    pg_unlock(&s->hdr.lock);
    if (g)
        pg_ready(base, g);
    return PG_OK;
}

PG_API int64_t pg_rw_lock(void *base, uint64_t o, uint64_t g, int tryonly) {
    pg_sync_t *s = S(base, o);
    if (pg_lock(&s->hdr.lock) != PG_OK)
        return PG_LOST;
    if (s->u.rw.writer == 0 && s->u.rw.readers == 0) {
        s->u.rw.writer = 1;
        pg_unlock(&s->hdr.lock);
        return PG_OK;
    }
    if (tryonly || !g) {
        pg_unlock(&s->hdr.lock);
        return PG_WOULDBLOCK;
    }
    s->u.rw.wwait++;
    park_on(base, g, o, &s->q2, WR_WLOCK, 0, 0);
    pg_unlock(&s->hdr.lock);
    return PG_PARKED;
}

PG_API int64_t pg_rw_unlock(void *base, uint64_t o) {
    pg_sync_t *s = S(base, o);
    if (pg_lock(&s->hdr.lock) != PG_OK)
        return PG_LOST;
    if (s->u.rw.writer == 0) {
        pg_unlock(&s->hdr.lock);
        return PG_UNLOCKED;
    }
    s->u.rw.writer = 0;
    int64_t n = 0;
    /* readers that queued behind this writer go first (Go) */
    uint64_t list = claim_all(base, &s->q1, WAKE_HANDOFF, 0, &n);
    s->u.rw.readers += n;
    if (!list)
        list = rw_handoff_writer(base, s);
    pg_unlock(&s->hdr.lock);
    ready_list(base, list);
    return PG_OK;
}

/* a waiting writer was cancelled (teardown): forget it.  PG_OK or PG_LOST */
PG_API int64_t pg_rw_writer_gone(void *base, uint64_t o) {
    pg_sync_t *s = S(base, o);
    if (pg_lock(&s->hdr.lock) != PG_OK)
        return PG_LOST;
    if (s->u.rw.wwait > 0)
        s->u.rw.wwait--;
    pg_unlock(&s->hdr.lock);
    return PG_OK;
}

/* ---------------- weighted Semaphore (FIFO, as x/sync/semaphore) ---------------- */

PG_API int64_t pg_sema_acquire(void *base, uint64_t o, uint64_t g, int64_t k, int tryonly) {
    pg_sync_t *s = S(base, o);
    if (k < 0 || k > s->u.sema.size)
        return PG_INVAL;
    if (pg_lock(&s->hdr.lock) != PG_OK)
        return PG_LOST;
    if (s->u.sema.size - s->u.sema.held >= k && !s->q1.first) {
        s->u.sema.held += k;
        pg_unlock(&s->hdr.lock);
        return PG_OK;
    }
    if (tryonly || !g) {
        pg_unlock(&s->hdr.lock);
        return PG_WOULDBLOCK;
    }
    park_on(base, g, o, &s->q1, WR_SEMA, (uint64_t)k, 0);
    pg_unlock(&s->hdr.lock);
    return PG_PARKED;
}

static uint64_t sema_notify(void *base, pg_sync_t *s) {
    uint64_t list = 0;
    while (s->q1.first) {
        uint64_t sdo = s->q1.first;
        pg_sudog_t *sd = AT(base, sdo, pg_sudog_t);
        if (pg_load_acq(&G(base, sd->g)->park) != PARK_WAITING) {
            pg_waitq_remove(base, &s->q1, sdo); /* cancelled */
            continue;
        }
        if (s->u.sema.size - s->u.sema.held < (int64_t)sd->elem_len)
            break; /* FIFO: the head waits for room, the rest behind it */
        pg_waitq_remove(base, &s->q1, sdo);
        if (!pg_claim(base, sd->g))
            continue;
        s->u.sema.held += (int64_t)sd->elem_len;
        G(base, sd->g)->wake_res = WAKE_HANDOFF;
        G(base, sd->g)->schedlink = list;
        list = sd->g;
    }
    return list;
}

PG_API int64_t pg_sema_release(void *base, uint64_t o, int64_t k) {
    pg_sync_t *s = S(base, o);
    if (k < 0)
        return PG_INVAL;
    if (pg_lock(&s->hdr.lock) != PG_OK)
        return PG_LOST;
    if (s->u.sema.held - k < 0) {
        pg_unlock(&s->hdr.lock);
        return PG_NEGATIVE;
    }
    s->u.sema.held -= k;
    uint64_t list = sema_notify(base, s);
    pg_unlock(&s->hdr.lock);
    ready_list(base, list);
    return PG_OK;
}

/* a cancelled waiter may have been the head that blocked the others.
 * PG_OK or PG_LOST */
PG_API int64_t pg_sema_kick(void *base, uint64_t o) {
    pg_sync_t *s = S(base, o);
    if (pg_lock(&s->hdr.lock) != PG_OK)
        return PG_LOST;
    uint64_t list = sema_notify(base, s);
    pg_unlock(&s->hdr.lock);
    ready_list(base, list);
    return PG_OK;
}

/* ---------------- Cond ---------------- */

/* step 1 of Wait: queue (the caller then unlocks L, parks, relocks L) */
PG_API int64_t pg_cond_enqueue(void *base, uint64_t o, uint64_t g) {
    pg_sync_t *s = S(base, o);
    if (pg_lock(&s->hdr.lock) != PG_OK)
        return PG_LOST;
    park_on(base, g, o, &s->q1, WR_COND, 0, 0);
    pg_unlock(&s->hdr.lock);
    return PG_PARKED;
}

PG_API int64_t pg_cond_signal(void *base, uint64_t o, int all) {
    pg_sync_t *s = S(base, o);
    uint64_t list = 0;
    int64_t n = 0;
    if (pg_lock(&s->hdr.lock) != PG_OK)
        return PG_LOST;
    if (all) {
        list = claim_all(base, &s->q1, WAKE_OK, 0, &n);
    } else {
        uint64_t sdo = pg_waitq_dequeue(base, &s->q1);
        if (sdo) {
            list = AT(base, sdo, pg_sudog_t)->g;
            G(base, list)->wake_res = WAKE_OK;
            G(base, list)->schedlink = 0;
            n = 1;
        }
    }
    pg_unlock(&s->hdr.lock);
    ready_list(base, list);
    return n;
}

/* ---------------- Once ---------------- */

/*
 * Returns PG_RUNFN (the caller runs fn, then pg_once_done), PG_PARKED (fn
 * runs elsewhere: wait, then call again), or the result: its length copied
 * into obuf, or PG_BIG with out[0] = block, out[1] = length (the block stays
 * the Once's: read it, never free it).
 */
PG_API int64_t pg_once_begin(void *base, uint64_t o, uint64_t g, void *obuf, uint64_t ocap,
                             uint64_t *out) {
    pg_sync_t *s = S(base, o);
    if (pg_lock(&s->hdr.lock) != PG_OK)
        return PG_LOST;
    if (s->u.once.state == 2) {
        uint64_t off = s->res_off, len = s->res_len;
        pg_unlock(&s->hdr.lock);
        if (len > ocap) {
            out[0] = off;
            out[1] = len;
            return PG_BIG;
        }
        if (len)
            memcpy(obuf, AT(base, off, void), len);
        return (int64_t)len;
    }
    if (s->u.once.state == 0) {
        s->u.once.state = 1;
        pg_unlock(&s->hdr.lock);
        return PG_RUNFN;
    }
    if (!g) {
        pg_unlock(&s->hdr.lock);
        return PG_WOULDBLOCK;
    }
    park_on(base, g, o, &s->q1, WR_ONCE, 0, 0);
    pg_unlock(&s->hdr.lock);
    return PG_PARKED;
}

PG_API int64_t pg_once_done(void *base, uint64_t o, const void *res, uint64_t len) {
    pg_sync_t *s = S(base, o);
    int64_t b = len ? pg_alloc_copy(base, res, len) : 0;
    if (pg_lock(&s->hdr.lock) != PG_OK) {
        if (b > 0)
            pg_free(base, (uint64_t)b);
        return PG_LOST;
    }
    if (b > 0) {
        s->res_off = (uint64_t)b;
        s->res_len = len;
    }
    s->u.once.state = 2;
    uint64_t list = claim_all(base, &s->q1, WAKE_OK, 0, NULL);
    pg_unlock(&s->hdr.lock);
    ready_list(base, list);
    return b < 0 ? PG_NOMEM : PG_OK;
}

/* ---------------- atomics (sync.a, never under the lock) ---------------- */

PG_API int64_t pg_atomic_load(void *base, uint64_t o) { return pg_load_sc(&S(base, o)->u.atom.value); }
PG_API void pg_atomic_store(void *base, uint64_t o, int64_t v) { pg_store_sc(&S(base, o)->u.atom.value, v); }
PG_API int64_t pg_atomic_add(void *base, uint64_t o, int64_t d) {
    /* unsigned arithmetic: wraps like Go's, no signed-overflow UB */
    return (int64_t)__atomic_add_fetch((uint64_t *)&S(base, o)->u.atom.value, (uint64_t)d, __ATOMIC_SEQ_CST);
}
PG_API int64_t pg_atomic_swap(void *base, uint64_t o, int64_t v) {
    return pg_xchg_sc(&S(base, o)->u.atom.value, v);
}
PG_API int pg_atomic_cas(void *base, uint64_t o, int64_t old, int64_t v) {
    return pg_cas_sc(&S(base, o)->u.atom.value, &old, v);
}
/* relaxed add on any 8-byte word of the arena (Counter shards) */
PG_API void pg_word_add(void *base, uint64_t off, int64_t d) {
    __atomic_add_fetch(AT(base, off, uint64_t), (uint64_t)d, __ATOMIC_RELAXED);
}
