/*
 * timer.c -- timers and contexts in the arena, fired in C by each P's
 * sysmon thread (sysmon.c): no Python thread and no GIL, so on time
 * whatever the P's hub is running.
 *
 * A timer (OBJ_TIMER) is a shared object whose state word is
 * seq << 2 | T_*.  Arming pushes an entry (when, timer, seq) on a P's heap
 * (pg_p.theap, a binary min-heap under pg_p.tlock; always the P of the
 * caller, so the heap's lock is only ever taken inside its own process);
 * that P's sysmon pops due entries and fires them:
 *
 *   any P (Python, one foreign call)         the arming P's sysmon (C)
 *   --------------------------------------   ------------------------------------
 *   (1) state = seq|T_PENDING; ntimers++     futex-wait on tgen until twhen
 *   (2) lock tlock; push (when, t, seq);     (3) lock tlock; pop the due entries;
 *       twhen = heap[0].when; unlock;            twhen = heap[0].when; unlock
 *       earliest: tgen++, futex wake         (4) CAS state seq|T_PENDING ->
 *                                                seq|T_RUNNING; failed: a stale
 *   stop:  CAS seq|T_PENDING -> seq|T_STOPPED    entry (stopped or re-armed since)
 *   reset: state = (seq+1)|T_PENDING, push   (5) fire: cancel the context, ready
 *          (the old entry is now stale)          the sleeper, or start after_func's
 *                                                goroutine
 *                                            (6) CAS seq|T_RUNNING -> seq|T_FIRED
 *
 * That is every kind but the channel timers.  A channel timer (TK_SEND,
 * TK_TICK: Go 1.23's timer channel) has no T_RUNNING: it changes
 * state only under its channel's lock, and its firing checks the state and
 * sends in that same hold (Go's sendLock + seq check in unlockAndRun):
 *
 *   stop / reset (any P)                     firing (sysmon of the arming P)
 *   --------------------------------------   ------------------------------------
 *   lock chan                                lock chan
 *   pending = state is T_PENDING             state != seq|T_PENDING: stale, unlock
 *   state = (seq+1)|T_STOPPED, or            state = seq|T_FIRED (a tick stays
 *          (seq+1)|T_PENDING (reset)                T_PENDING and re-arms after)
 *   drained = drain the buffer               send: a waiting receiver gets it
 *   unlock; (reset: push the new entry)            (received), or the buffer holds
 *   -> pending || drained                          it (a tick: replacing the older)
 *                                            unlock; ready the receiver
 *
 * So once stop() or reset() returns, no value from before it is in the
 * buffer or still to be sent: a receiver (a select too: it polls under the
 * same lock) can only get a later one.  The buffer is one slot that Python
 * reports as len 0 and cap 0 (parago/_time.py): a fire nobody received yet
 * is "held by the timer".  TF_ASYNC (PARAGO_DEBUG=asynctimerchan=1) keeps
 * Go 1.22's channel: never drained, a full buffer drops the new value.
 *
 * A TK_FUNC timer (pg.after_func) starts a goroutine when it fires: pg_go
 * on the global queue with a copy of the (fn, args) it holds (Go's goFunc).
 *
 * Whoever moves a timer out of T_PENDING decrements arena.ntimers (and
 * whoever moves it in increments it), so a stopped timer or a done
 * context's deadline never holds off Deadlock.  Every entry holds a
 * reference on its timer; a stale entry is dropped when popped, when the
 * heap is full and compacted before it grows, or when sysmon sees a heap
 * that is mostly stale (pg_timers_tidy), and a heap that empties shrinks:
 * Timer.reset loops, pg.after in a loop and a context per request run in
 * constant arena memory.
 *
 * pg.sleep is a TK_READY timer on the G: one call arms it and parks the G
 * plainly; the firing claims the G's park ticket (the one claim CAS) and
 * readies it.  The timer holds no reference on the G (G records are not
 * refcounted) -- instead the sleeper, before it returns, waits until the
 * timer is out of T_RUNNING (pg_sleep_done), so a firing never touches a
 * G record that was freed and reused by a later goroutine.
 *
 * Contexts (OBJ_CTX) live in context.c; a context's deadline is a TK_CTX
 * timer (the pg_deadline_* calls below), whose firing cancels it.
 *
 * Lock order: tlock may be held while dropping references (a stale
 * entry's timer, whose free drops a context, which takes ctx_lock);
 * ctx_lock is never held while taking tlock or dropping a reference.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <string.h>
#include "pg_internal.h"

static inline pg_timer_t *T(void *base, uint64_t t) { return AT(base, t, pg_timer_t); }
static inline pg_p_t *P(void *base, int p) { return &ARENA(base)->p[p]; }
static inline uint64_t tseq(uint64_t v) { return v >> 2; }
static inline uint64_t tword(uint64_t seq, uint32_t st) { return seq << 2 | st; }

/*
 * Every lock this file takes goes through here.  pg_lock is becoming
 * owner-tagged and returns PG_LOST when the holder's P died (the run is
 * being aborted); until then it returns nothing and this is PG_OK.
 */
#define TM_LOCK(l)                                                                      \
    __builtin_choose_expr(__builtin_types_compatible_p(__typeof__(pg_lock(l)), void), \
                          (pg_lock(l), PG_OK), pg_lock(l))

static inline uint64_t deadline_of(uint64_t delay) {
    uint64_t now = pg_nanotime();
    return now + delay < now ? UINT64_MAX : now + delay; /* saturates: never fires */
}

static int64_t obj_alloc(void *base, uint64_t size, uint32_t kind) {
    int64_t o = pg_alloc(base, size);
    if (o < 0)
        return PG_NOMEM;
    pg_objhdr_t *h = AT(base, (uint64_t)o, pg_objhdr_t);
    uint32_t gen = h->gen; /* survives in freed memory: see pg_obj_decref */
    memset(h, 0, size);
    h->kind = kind;
    h->refcnt = 1;
    h->gen = gen + 1;
    return o;
}

/* ---------------- the heap (timer lock) ---------------- */

static void heap_up(pg_tentry_t *h, uint32_t i) {
    pg_tentry_t e = h[i];
    while (i > 0) {
        uint32_t up = (i - 1) / 2;
        if (h[up].when <= e.when)
            break;
        h[i] = h[up];
        i = up;
    }
    h[i] = e;
}

static void heap_down(pg_tentry_t *h, uint32_t n, uint32_t i) {
    pg_tentry_t e = h[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && h[c + 1].when < h[c].when)
            c++;
        if (e.when <= h[c].when)
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = e;
}

static inline uint32_t *chan_lockword(void *base, uint64_t ch) {
    return &AT(base, ch, pg_objhdr_t)->lock;
}

static int entry_live(void *base, const pg_tentry_t *e) {
    return pg_load_acq(&T(base, e->timer)->state) == tword(e->seq, T_PENDING);
}

/* move the heap into a block of ncap entries; 0, or PG_NOMEM (heap unchanged) */
static int heap_resize(void *base, pg_p_t *pp, uint32_t ncap) {
    int64_t nb = pg_alloc(base, (uint64_t)ncap * sizeof(pg_tentry_t));
    if (nb < 0)
        return PG_NOMEM;
    if (pp->theap) {
        memcpy(AT(base, (uint64_t)nb, void), AT(base, pp->theap, void),
               (uint64_t)pp->tn * sizeof(pg_tentry_t));
        pg_free(base, pp->theap);
    }
    pp->theap = (uint64_t)nb;
    pp->tcap = ncap;
    return 0;
}

/*
 * Under the timer lock: a pending channel timer that only this entry
 * still holds, on a channel that only the timer still holds (pg.after's,
 * in a select that took another case, the channel since dropped on every
 * P), can never be stopped nor received from: as Go 1.23 lets the GC take
 * an unreferenced timer, it is stopped here rather than kept until it
 * fires -- a loop over select(..., after(s)) runs in constant arena
 * memory.  Both counts at 1 are final: every handle and every payload in
 * flight holds a reference of its own (a Timer's handle makes its c from
 * the timer on demand).  Lock order: timer lock, then the channel's
 * (nothing takes a timer lock under a channel lock).  1 if it was stopped.
 */
static int entry_reap(void *base, const pg_tentry_t *e) {
    pg_timer_t *tp = T(base, e->timer);
    if (tp->tkind != TK_SEND && tp->tkind != TK_TICK)
        return 0;
    uint64_t ch = pg_load_acq(&tp->target);
    if (!ch || pg_load_acq(&tp->hdr.refcnt) != 1 ||
        pg_load_acq(&AT(base, ch, pg_objhdr_t)->refcnt) != 1)
        return 0;
    uint32_t *lk = chan_lockword(base, ch);
    if (TM_LOCK(lk) != PG_OK)
        return 0;
    int r = 0;
    if (pg_load_acq(&tp->state) == tword(e->seq, T_PENDING)) {
        pg_store_rel(&tp->state, tword(e->seq + 1, T_STOPPED));
        pg_add_sc(&ARENA(base)->ntimers, -1);
        r = 1;
    }
    pg_unlock(lk);
    return r;
}

/* drop the stale entries (and their references) and the unreachable
 * timers' (entry_reap), then re-heapify */
static void heap_compact(void *base, pg_p_t *pp) {
    if (!pp->tn)
        return;
    pg_tentry_t *h = AT(base, pp->theap, pg_tentry_t);
    uint32_t j = 0;
    for (uint32_t i = 0; i < pp->tn; i++) {
        if (entry_live(base, &h[i]) && !entry_reap(base, &h[i]))
            h[j++] = h[i];
        else
            pg_obj_decref(base, h[i].timer);
    }
    pp->tn = j;
    for (uint32_t i = j / 2; i-- > 0;)
        heap_down(h, j, i);
}

/* step (2): push (when, t, seq) on p's heap; the entry takes a reference */
static int64_t heap_push(void *base, int p, uint64_t when, uint64_t t, uint64_t seq) {
    pg_p_t *pp = P(base, p);
    int64_t lr = TM_LOCK(&pp->tlock);
    if (lr != PG_OK)
        return lr;
    if (pp->tn == pp->tcap) {
        if (pp->tn)
            heap_compact(base, pp);
        if ((pp->tn == 0 && !pp->theap) || pp->tn * 2 > pp->tcap) {
            if (heap_resize(base, pp, pp->tcap ? pp->tcap * 2 : HEAP_MIN) != 0) {
                pg_unlock(&pp->tlock);
                return PG_NOMEM;
            }
        }
    }
    pg_tentry_t *h = AT(base, pp->theap, pg_tentry_t);
    h[pp->tn].when = when;
    h[pp->tn].timer = t;
    h[pp->tn].seq = seq;
    heap_up(h, pp->tn);
    pp->tn++;
    pg_add_acqrel(&T(base, t)->hdr.refcnt, 1);
    int earliest = h[0].timer == t && h[0].seq == seq;
    pg_store_rel(&pp->twhen, h[0].when); /* pairs with sysmon's acquire */
    pg_unlock(&pp->tlock);
    if (earliest) {
        /* the sleeping sysmon may wait for a later time: wake it */
        pg_add_sc(&pp->tgen, 1);
        pg_futex_wake(&pp->tgen, 1);
    }
    return PG_OK;
}

/* ---------------- state changes ---------------- */

static void timer_release_target(void *base, pg_timer_t *tp) {
    uint64_t c = pg_xchg_acqrel(&tp->target, 0);
    if (c)
        pg_obj_decref(base, c);
}

/*
 * Stop: 1 if the timer was pending (the arming will not fire), else 0.
 * A tick being fired is stopped too (its re-arm then fails), though its
 * send may still land.
 */
static int chantimer_stop(void *base, uint64_t t);

static int timer_stop(void *base, uint64_t t) {
    pg_timer_t *tp = T(base, t);
    if (tp->tkind == TK_SEND || tp->tkind == TK_TICK)
        return chantimer_stop(base, t);
    uint64_t v = pg_load_acq(&tp->state);
    for (;;) {
        uint32_t st = (uint32_t)(v & 3);
        if (st == T_PENDING) {
            if (pg_cas_sc(&tp->state, &v, tword(tseq(v), T_STOPPED))) {
                pg_add_sc(&ARENA(base)->ntimers, -1);
                return 1;
            }
        } else if (st == T_RUNNING && tp->tkind == TK_TICK) {
            if (pg_cas_sc(&tp->state, &v, tword(tseq(v), T_STOPPED)))
                return 0;
        } else {
            return 0;
        }
    }
}

/* A context's deadline is never re-armed: once stopped it lets go of the
 * context at once (unless a firing in progress does that itself), which
 * breaks the ctx <-> timer reference cycle. */
static void ctx_timer_stop(void *base, uint64_t t) {
    timer_stop(base, t);
    if ((pg_load_acq(&T(base, t)->state) & 3) != T_RUNNING)
        timer_release_target(base, T(base, t));
}

/* Arm again (a new seq: every older entry is stale) delay ns from now on
 * p's heap.  Returns 1 if it had been pending, 0 if not, or PG_NOMEM
 * (then it is stopped). */
static int64_t chantimer_rearm(void *base, int p, uint64_t t, uint64_t delay, uint64_t period);

static int64_t timer_rearm(void *base, int p, uint64_t t, uint64_t delay) {
    pg_timer_t *tp = T(base, t);
    pg_arena_t *a = ARENA(base);
    if (tp->tkind == TK_SEND || tp->tkind == TK_TICK)
        return chantimer_rearm(base, p, t, delay, 0);
    uint64_t when = deadline_of(delay);
    uint64_t v = pg_load_acq(&tp->state), seq;
    do {
        seq = tseq(v) + 1;
    } while (!pg_cas_sc(&tp->state, &v, tword(seq, T_PENDING)));
    int was = (v & 3) == T_PENDING;
    if (!was)
        pg_add_sc(&a->ntimers, 1); /* step (1) */
    int64_t r = heap_push(base, p, when, t, seq);
    if (r != PG_OK) {
        uint64_t w = tword(seq, T_PENDING);
        if (pg_cas_sc(&tp->state, &w, tword(seq, T_STOPPED)))
            pg_add_sc(&a->ntimers, -1);
        return r;
    }
    return was;
}

/* ---------------- channel timers (under the channel lock) ---------------- */

/*
 * Go 1.23's stop: 1 if it was pending, or had fired with its value still
 * unreceived (the value is dropped here), else 0.  The seq moves on, so no
 * entry armed before this call is live any more.
 */
static int chantimer_stop(void *base, uint64_t t) {
    pg_timer_t *tp = T(base, t);
    uint64_t ch = pg_load_acq(&tp->target);
    uint32_t *lk = chan_lockword(base, ch);
    if (TM_LOCK(lk) != PG_OK)
        return 0; /* the run is being aborted */
    uint64_t v = pg_load_acq(&tp->state);
    int pending = (v & 3) == T_PENDING;
    pg_store_rel(&tp->state, tword(tseq(v) + 1, T_STOPPED)); /* pairs with entry_live */
    if (pending)
        pg_add_sc(&ARENA(base)->ntimers, -1);
    if (!(tp->flags & TF_ASYNC) && pg_chan_drain_locked(base, ch))
        pending = 1;
    pg_unlock(lk);
    return pending;
}

/*
 * Go 1.23's reset: a new seq, T_PENDING and the buffer drained under the
 * channel lock, then the entry pushed on p's heap (until then nothing can
 * fire this arming; a stop meanwhile makes the entry stale).  period != 0:
 * a Ticker's new period.  Returns 1 if it was pending (or held an
 * unreceived value), 0 if not, or PG_NOMEM (then it is stopped) / PG_LOST.
 */
static int64_t chantimer_rearm(void *base, int p, uint64_t t, uint64_t delay, uint64_t period) {
    pg_timer_t *tp = T(base, t);
    pg_arena_t *a = ARENA(base);
    uint64_t ch = pg_load_acq(&tp->target);
    uint32_t *lk = chan_lockword(base, ch);
    uint64_t when = deadline_of(delay);
    int64_t lr = TM_LOCK(lk);
    if (lr != PG_OK)
        return lr;
    uint64_t v = pg_load_acq(&tp->state), seq = tseq(v) + 1;
    int was = (v & 3) == T_PENDING;
    if (period)
        pg_store_rel(&tp->period, period); /* before the arming that uses it */
    pg_store_rel(&tp->state, tword(seq, T_PENDING));
    if (!was)
        pg_add_sc(&a->ntimers, 1); /* step (1) */
    if (!(tp->flags & TF_ASYNC) && pg_chan_drain_locked(base, ch))
        was = 1;
    pg_unlock(lk);
    int64_t r = heap_push(base, p, when, t, seq);
    if (r != PG_OK) {
        if (TM_LOCK(lk) == PG_OK) {
            if (pg_load_acq(&tp->state) == tword(seq, T_PENDING)) {
                pg_store_rel(&tp->state, tword(seq, T_STOPPED));
                pg_add_sc(&a->ntimers, -1);
            }
            pg_unlock(lk);
        }
        return r;
    }
    return was;
}

/* a timer of kind k aimed at target, not armed (T_STOPPED); the caller
 * holds its one reference.  target: a chan or ctx gets a reference; a
 * TK_FUNC's pg_tfunc block becomes the timer's. */
static int64_t timer_alloc(void *base, uint32_t kind, uint64_t target, uint64_t period) {
    int64_t t = obj_alloc(base, sizeof(pg_timer_t), OBJ_TIMER);
    if (t < 0)
        return t;
    pg_timer_t *tp = T(base, (uint64_t)t);
    tp->state = tword(0, T_STOPPED);
    tp->tkind = kind;
    tp->period = period;
    tp->target = target;
    if (kind != TK_READY && kind != TK_FUNC)
        pg_add_acqrel(&AT(base, target, pg_objhdr_t)->refcnt, 1);
    return t;
}

/* the free path (pg_obj_decref): drop what it still holds */
void pg_timer_free(void *base, uint64_t t) {
    pg_timer_t *tp = T(base, t);
    if (tp->tkind == TK_FUNC) {
        uint64_t f = pg_xchg_acqrel(&tp->target, 0);
        if (f) {
            pg_tfunc_t *fr = AT(base, f, pg_tfunc_t);
            const uint64_t *refs = (const uint64_t *)(fr + 1);
            for (uint64_t i = 0; i < fr->nrefs; i++)
                pg_obj_decref(base, refs[i]);
            pg_free(base, f);
        }
    } else if (tp->tkind != TK_READY) {
        timer_release_target(base, tp);
    }
}

/* ---------------- firing (the sysmon thread) ---------------- */

/* time.time() as a pickle (protocol 5: PROTO 5, BINFLOAT big-endian, STOP) */
static void time_pickle(uint8_t buf[12]) {
    double now = pg_walltime(); /* pg.now(): virtual in synctest */
    uint64_t bits;
    memcpy(&bits, &now, sizeof bits);
    buf[0] = 0x80;
    buf[1] = 5;
    buf[2] = 'G';
    for (int i = 0; i < 8; i++)
        buf[3 + i] = (uint8_t)(bits >> (56 - 8 * i));
    buf[11] = '.';
}

/*
 * A channel timer's entry is due: check and send in one hold of the
 * channel lock (see the top of this file).  A Timer is then T_FIRED; a
 * Ticker stays T_PENDING under the same seq and pushes its next entry
 * (missed ticks are skipped, as Go's).  A closed channel or PG_LOST (the
 * run is being aborted): nothing is sent.
 */
static void chantimer_fire(void *base, int p, const pg_tentry_t *e) {
    pg_timer_t *tp = T(base, e->timer);
    pg_arena_t *a = ARENA(base);
    uint64_t ch = pg_load_acq(&tp->target);
    uint32_t *lk = chan_lockword(base, ch);
    const uint64_t armed = tword(e->seq, T_PENDING);
    int tick = tp->tkind == TK_TICK;
    uint8_t buf[12];
    time_pickle(buf);
    if (TM_LOCK(lk) != PG_OK)
        return;
    if (pg_load_acq(&tp->state) != armed) {
        pg_unlock(lk); /* stale: stopped or re-armed since */
        return;
    }
    if (!tick) {
        pg_store_rel(&tp->state, tword(e->seq, T_FIRED));
        pg_add_sc(&a->ntimers, -1);
    }
    uint64_t wakeg = 0;
    (void)pg_chan_timer_send_locked(base, ch, buf, sizeof buf, !(tp->flags & TF_ASYNC), &wakeg);
    pg_unlock(lk);
    if (wakeg)
        pg_ready(base, wakeg);
    if (!tick)
        return;
    uint64_t period = pg_load_acq(&tp->period), now = pg_nanotime();
    uint64_t k = now >= e->when ? (now - e->when) / period + 1 : 1;
    uint64_t next = e->when + k * period;
    if (next < e->when || k > UINT64_MAX / period)
        next = UINT64_MAX;
    if (heap_push(base, p, next, e->timer, e->seq) != PG_OK && TM_LOCK(lk) == PG_OK) {
        /* no memory for the entry: the ticker stops */
        if (pg_load_acq(&tp->state) == armed) {
            pg_store_rel(&tp->state, tword(e->seq, T_STOPPED));
            pg_add_sc(&a->ntimers, -1);
        }
        pg_unlock(lk);
    }
}

/* TK_FUNC: start fn(*args) in a goroutine of its own (Go's goFunc), on the
 * global queue: this is the sysmon thread, which may not touch a P's ring.
 * No memory for it: the call is dropped (Go would die). */
static void func_start(void *base, pg_timer_t *tp) {
    uint64_t f = pg_load_acq(&tp->target);
    if (!f)
        return;
    pg_tfunc_t *fr = AT(base, f, pg_tfunc_t);
    const uint64_t *refs = (const uint64_t *)(fr + 1);
    (void)pg_go(base, -1, refs + fr->nrefs, fr->fn_len, 0, GK_GREENLET, fr->site, fr->parent, refs,
                (uint32_t)fr->nrefs, NULL);
}

/* steps (4)-(6) for one popped entry (a channel timer: chantimer_fire) */
static void timer_fire(void *base, int p, const pg_tentry_t *e) {
    pg_timer_t *tp = T(base, e->timer);
    pg_arena_t *a = ARENA(base);
    if (tp->tkind == TK_SEND || tp->tkind == TK_TICK) {
        chantimer_fire(base, p, e);
        return;
    }
    uint64_t v = tword(e->seq, T_PENDING);
    const uint64_t running = tword(e->seq, T_RUNNING);
    if (!pg_cas_sc(&tp->state, &v, running))
        return; /* stale */
    if (tp->tkind == TK_FUNC)
        func_start(base, tp); /* counted as a goroutine before it stops counting as a timer */
    pg_add_sc(&a->ntimers, -1);
    switch (tp->tkind) {
    case TK_FUNC:
        v = running;
        pg_cas_sc(&tp->state, &v, tword(e->seq, T_FIRED)); /* fails if reset meanwhile */
        break;
    case TK_CTX: {
        uint64_t c = pg_load_acq(&tp->target);
        if (c)
            (void)pg_ctx_cancel(base, c, CTX_DEADLINE);
        pg_store_rel(&tp->state, tword(e->seq, T_FIRED)); /* a deadline is never reset */
        timer_release_target(base, tp);
        break;
    }
    case TK_READY: {
        uint64_t g = tp->target;
        /* the G waits in this sleep until T_RUNNING is over (pg_sleep_done),
         * so g is the sleeper's record; a cancelled park fails the claim.
         * T_FIRED only once the ready is done: a G interrupted meanwhile
         * must not end (and its record be reused) before it is on its P's
         * ready list, where its P finds it and counts it stale */
        if (pg_claim(base, g)) {
            AT(base, g, pg_g_t)->wake_res = WAKE_OK;
            pg_ready(base, g);
        }
        pg_store_rel(&tp->state, tword(e->seq, T_FIRED)); /* pairs with pg_sleep_done */
        break;
    }
    default:
        break;
    }
}

/*
 * sysmon: fire p's due timers, a batch at a time (popped under the lock,
 * fired outside it).  Returns the when of the earliest entry left (0 none).
 */
uint64_t pg_timers_run(void *base, int p) {
    pg_p_t *pp = P(base, p);
    pg_tentry_t batch[32];
    for (;;) {
        uint64_t now = pg_nanotime();
        uint32_t n = 0;
        if (TM_LOCK(&pp->tlock) != PG_OK)
            return 0;
        pg_tentry_t *h = AT(base, pp->theap, pg_tentry_t);
        while (pp->tn && h[0].when <= now && n < 32) {
            batch[n++] = h[0];
            if (--pp->tn) {
                h[0] = h[pp->tn];
                heap_down(h, pp->tn, 0);
            }
        }
        /* an emptied heap gives its memory back (constant memory after a burst) */
        if (pp->tcap > HEAP_MIN && pp->tn * 4 < pp->tcap)
            (void)heap_resize(base, pp, pp->tcap / 2);
        uint64_t next = pp->tn ? AT(base, pp->theap, pg_tentry_t)[0].when : 0;
        pg_store_rel(&pp->twhen, next);
        pg_unlock(&pp->tlock);
        pg_vclock_shuffle(batch, n); /* synctest: ties in no fixed order, as Go's bubble */
        for (uint32_t i = 0; i < n; i++) {
            timer_fire(base, p, &batch[i]);
            pg_obj_decref(base, batch[i].timer); /* the entry's reference */
        }
        if (n < 32)
            return next;
    }
}

/*
 * sysmon, at each watch: a heap that is mostly stale entries (stopped or
 * re-armed timers: a burst of contexts canceled early, say) is compacted
 * and shrunk now rather than at its next growth.  Each armed timer has
 * exactly one live entry, so arena.ntimers bounds this heap's live ones.
 */
void pg_timers_tidy(void *base, int p) {
    pg_p_t *pp = P(base, p);
    int64_t armed = pg_load_rlx(&ARENA(base)->ntimers);
    uint32_t n = pg_load_rlx(&pp->tn); /* racy: only a hint */
    if (n < HEAP_MIN / 2 || (int64_t)n <= 2 * (armed > 0 ? armed : 0))
        return;
    if (TM_LOCK(&pp->tlock) != PG_OK)
        return;
    heap_compact(base, pp);
    while (pp->tcap > HEAP_MIN && pp->tn * 4 < pp->tcap && heap_resize(base, pp, pp->tcap / 2) == 0)
        ;
    pg_store_rel(&pp->twhen, pp->tn ? AT(base, pp->theap, pg_tentry_t)[0].when : 0);
    pg_unlock(&pp->tlock);
}

/* ---------------- timers: the entry points ---------------- */

/*
 * This P leaves the run (its sysmon is stopped, its loop too): stop what
 * its heap still arms (a context's deadline also lets go of its context:
 * they hold each other), drop every entry's reference, free the heap.
 */
PG_API void pg_timers_release(void *base, int p) {
    pg_p_t *pp = P(base, p);
    for (;;) {
        if (TM_LOCK(&pp->tlock) != PG_OK)
            return;
        pg_tentry_t e = {0, 0, 0};
        if (pp->tn) {
            e = AT(base, pp->theap, pg_tentry_t)[--pp->tn];
        } else {
            if (pp->theap)
                pg_free(base, pp->theap);
            pp->theap = 0;
            pp->tcap = 0;
            pg_store_rel(&pp->twhen, 0);
        }
        pg_unlock(&pp->tlock);
        if (!e.timer)
            return;
        if (entry_live(base, &e)) {
            if (T(base, e.timer)->tkind == TK_CTX)
                ctx_timer_stop(base, e.timer);
            else
                timer_stop(base, e.timer);
        }
        pg_obj_decref(base, e.timer);
    }
}

/*
 * pg.after / Timer (TK_SEND) and Ticker (TK_TICK, period ns > 0): a timer
 * on the channel ch (which it holds a reference on; a buffer of one slot,
 * used by nothing else), armed delay ns from now on p's heap.  flags:
 * TF_ASYNC for Go 1.22's channel.  Returns its offset (the caller holds
 * one reference), PG_NOMEM, or PG_INVAL (another kind, a tick without a
 * period, unknown flags, a channel without its one slot).
 */
PG_API int64_t pg_timer_new(void *base, int p, uint32_t kind, uint32_t flags, uint64_t ch,
                            uint64_t delay, uint64_t period) {
    if ((kind != TK_SEND && kind != TK_TICK) || (kind == TK_TICK && period == 0) || !ch ||
        p < 0 || p >= PG_MAXP || (flags & ~(uint32_t)TF_ASYNC) ||
        AT(base, ch, pg_chan_t)->cap != 1)
        return PG_INVAL;
    int64_t t = timer_alloc(base, kind, ch, period);
    if (t < 0)
        return t;
    T(base, (uint64_t)t)->flags = flags;
    int64_t r = timer_rearm(base, p, (uint64_t)t, delay);
    if (r < 0) {
        pg_obj_decref(base, (uint64_t)t);
        return r;
    }
    return t;
}

/*
 * pg.Timer / pg.Ticker / pg.after / pg.tick: pg_timer_new on a channel of
 * one slot made here, which only the timer holds (a handle for it is made
 * from the timer's target when Python first asks for t.c).  Returns the
 * timer's offset (the caller holds one reference), PG_NOMEM or PG_INVAL.
 */
PG_API int64_t pg_timer_chan_new(void *base, int p, uint32_t kind, uint32_t flags, uint64_t delay,
                                 uint64_t period) {
    int64_t ch = pg_chan_new(base, 1, NULL, 0);
    if (ch < 0)
        return ch;
    int64_t t = pg_timer_new(base, p, kind, flags, (uint64_t)ch, delay, period);
    pg_obj_decref(base, (uint64_t)ch); /* the timer's reference is the one left (none: freed) */
    return t;
}

/*
 * pg.after_func (TK_FUNC): a timer that, armed delay ns from now on p's
 * heap, starts a goroutine running the encoded (fn, args, kw) of fnlen
 * bytes; refs: the nrefs offsets of the handles encoded in it (the timer
 * takes a reference on each, as pg_go does for its payload); site and
 * parent as pg_go's.  Returns its offset (the caller holds one
 * reference), PG_NOMEM or PG_INVAL.
 */
PG_API int64_t pg_timer_func_new(void *base, int p, const void *fn, uint64_t fnlen,
                                 const uint64_t *refs, uint32_t nrefs, uint64_t site,
                                 uint64_t parent, uint64_t delay) {
    if (!fnlen || (nrefs && !refs) || p < 0 || p >= PG_MAXP)
        return PG_INVAL;
    int64_t f = pg_alloc(base, sizeof(pg_tfunc_t) + (uint64_t)nrefs * sizeof(uint64_t) + fnlen);
    if (f < 0)
        return PG_NOMEM;
    pg_tfunc_t *fr = AT(base, (uint64_t)f, pg_tfunc_t);
    fr->fn_len = fnlen;
    fr->nrefs = nrefs;
    fr->site = site;
    fr->parent = parent;
    uint64_t *rr = (uint64_t *)(fr + 1);
    if (nrefs)
        memcpy(rr, refs, (uint64_t)nrefs * sizeof(uint64_t));
    memcpy(rr + nrefs, fn, fnlen);
    for (uint32_t i = 0; i < nrefs; i++)
        pg_add_acqrel(&AT(base, refs[i], pg_objhdr_t)->refcnt, 1);
    int64_t t = timer_alloc(base, TK_FUNC, (uint64_t)f, 0);
    if (t < 0) {
        for (uint32_t i = 0; i < nrefs; i++)
            pg_obj_decref(base, refs[i]);
        pg_free(base, (uint64_t)f);
        return t;
    }
    int64_t r = timer_rearm(base, p, (uint64_t)t, delay);
    if (r < 0) {
        pg_obj_decref(base, (uint64_t)t); /* frees the block and its references */
        return r;
    }
    return t;
}

/* Timer.stop / Ticker.stop: 1 if it was pending (a channel timer: or held
 * an unreceived value, now dropped), else 0 */
PG_API int pg_timer_stop(void *base, uint64_t t) { return timer_stop(base, t); }

/* Timer.reset / Ticker.reset: re-arm delay ns from now on p's heap (a tick
 * with a new period).  1 if it had been pending (as pg_timer_stop), 0 if
 * not, PG_NOMEM (stopped), PG_INVAL (a context's or a sleep's timer, a
 * tick without a period). */
PG_API int64_t pg_timer_reset(void *base, int p, uint64_t t, uint64_t delay, uint64_t period) {
    pg_timer_t *tp = T(base, t);
    if ((tp->tkind != TK_SEND && tp->tkind != TK_TICK && tp->tkind != TK_FUNC) ||
        (tp->tkind == TK_TICK && !period) || p < 0 || p >= PG_MAXP)
        return PG_INVAL;
    if (tp->tkind == TK_FUNC)
        return timer_rearm(base, p, t, delay);
    return chantimer_rearm(base, p, t, delay, tp->tkind == TK_TICK ? period : 0);
}

/*
 * pg.sleep: park g plainly (reason) and arm a TK_READY timer delay ns from
 * now on p's heap: the firing readies g.  Returns the timer (the sleeper
 * holds one reference: pass it to pg_sleep_done once g runs again), or
 * PG_NOMEM / PG_INVAL with g not parked.
 */
PG_API int64_t pg_sleep(void *base, int p, uint64_t g, uint64_t delay, uint32_t reason) {
    if (!g || p < 0 || p >= PG_MAXP)
        return PG_INVAL;
    int64_t t = timer_alloc(base, TK_READY, g, 0);
    if (t < 0)
        return t;
    /* parked before armed: the firing's claim must find the ticket WAITING */
    pg_park_plain(base, g, reason, 1);
    int64_t r = timer_rearm(base, p, (uint64_t)t, delay);
    if (r < 0) {
        pg_park_cancel(base, g);
        pg_obj_decref(base, (uint64_t)t);
        return r;
    }
    return t;
}

/*
 * The sleeper runs again (woken by the timer, or interrupted): stop the
 * timer if it is still pending, wait until a firing in progress is over
 * (it may be about to claim g: g must not start another wait or exit
 * first), and drop the sleeper's reference.  Returns 1 if the timer
 * fired, 0 if it was stopped here.
 */
PG_API int pg_sleep_done(void *base, uint64_t t) {
    pg_timer_t *tp = T(base, t);
    timer_stop(base, t);
    uint64_t v;
    for (int spins = 0; ((v = pg_load_acq(&tp->state)) & 3) == T_RUNNING; spins++) {
        if (spins < 100)
            pg_cpu_relax();
        else
            sched_yield(); /* the firing thread is preempted: a few us at most */
    }
    int fired = (v & 3) == T_FIRED;
    pg_obj_decref(base, t);
    return fired;
}

/* ---------------- a context's deadline (context.c) ---------------- */

/* a shared object's header: kind, one reference (the caller's), a new gen */
int64_t pg_obj_alloc(void *base, uint64_t size, uint32_t kind) { return obj_alloc(base, size, kind); }

/* a TK_CTX timer for context c, stopped (T_STOPPED): it holds c until it
 * fires, is stopped (pg_deadline_stop) or lets go (pg_deadline_drop) */
int64_t pg_deadline_new(void *base, uint64_t c) { return timer_alloc(base, TK_CTX, c, 0); }

/* arm t delay ns from now on p's heap (1 pending before, 0 not, PG_NOMEM) */
int64_t pg_deadline_arm(void *base, int p, uint64_t t, uint64_t delay) { return timer_rearm(base, p, t, delay); }

void pg_deadline_stop(void *base, uint64_t t) { ctx_timer_stop(base, t); }

/* t lets go of its context without being stopped (a context never linked) */
void pg_deadline_drop(void *base, uint64_t t) { timer_release_target(base, T(base, t)); }
