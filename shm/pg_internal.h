/*
 * pg_internal.h -- the shim's internal interface: every function one C
 * file calls in another is declared here, once (never re-declared in the
 * calling .c file; tests/shim/test_cdecl.py checks), with the helpers the
 * files share.  The exported ones (PG_API) are declared in Python once
 * too, in parago/_shim/cdecl.py.  The lock: lock.h; constants: layout.h.
 */
#ifndef PARAGO_INTERNAL_H
#define PARAGO_INTERNAL_H
#include "layout.h"
#include "pg_atomic.h"
#include "lock.h"

#define PG_API __attribute__((visibility("default")))
#define AT(base, off, type) ((type *)((uint8_t *)(base) + (off)))
#define ARENA(base) ((pg_arena_t *)(base))

/* arena.c */
int64_t pg_alloc(void *base, uint64_t size);
void pg_free(void *base, uint64_t off);
int64_t pg_alloc_copy(void *base, const void *data, uint64_t len);
int64_t pg_alloc_zeroed(void *base, uint64_t size);
extern int pg_wakefd[PG_MAXP];

/* lock.c (the lock itself: lock.h) */
void pg_lock_register(void *base, uint64_t size); /* pg_arena_attach: locks in [base, base+size) */
void pg_lock_abort_on(const uint32_t *flag); /* this thread's lock waits: PG_LOST once *flag != 0 */

/* sched.c */
void pg_ready(void *base, uint64_t g);
uint64_t pg_rand64(void); /* sched.c: this thread's xorshift (pg_seed seeds a P's hub thread) */
int pg_claim(void *base, uint64_t g);
void pg_park_prepare(void *base, uint64_t g, uint32_t reason);
PG_API void pg_wakep_of(void *base, int p);
PG_API int pg_p_has_runnable(void *base, int p); /* sysmon: another G of p is runnable */
PG_API void pg_wake_idle(void *base, int self);  /* sysmon: p's queued work aged: wake an idle P */
PG_API void pg_park_plain(void *base, uint64_t g, uint32_t reason, int counted);
PG_API int pg_park_cancel(void *base, uint64_t g);
PG_API int64_t pg_go(void *base, int p, const void *fn, uint64_t fnlen, uint32_t flags, uint32_t kind,
                     uint64_t site, uint64_t parent, const uint64_t *refs, uint32_t nrefs, uint64_t *out);

/* chan.c: the channel a timer owns is sent to and drained under its lock */
PG_API int64_t pg_chan_new(void *base, uint32_t cap, const void *type, uint64_t tlen);
PG_API int64_t pg_chan_close(void *base, uint64_t ch);
int pg_chan_timer_send_locked(void *base, uint64_t ch, const void *data, uint64_t len, int replace,
                              uint64_t *wakeg);
int pg_chan_drain_locked(void *base, uint64_t ch);

/* sync.c: the sync records and every shared object's reference count */
PG_API int64_t pg_sync_new(void *base, uint32_t skind, int64_t a);
PG_API uint32_t pg_obj_decref(void *base, uint64_t o); /* the last reference frees by kind: */
void pg_chan_free(void *base, uint64_t ch);              /* chan.c */
void pg_map_free(void *base, uint64_t m);                /* map.c */
void pg_value_free(void *base, uint64_t o);              /* atomics.c (atomic.Value, causes) */

/* timer.c: the free path of OBJ_TIMER, sysmon's firing, a context's deadline */
void pg_timer_free(void *base, uint64_t t);
uint64_t pg_timers_run(void *base, int p);
int64_t pg_obj_alloc(void *base, uint64_t size, uint32_t kind);
int64_t pg_deadline_new(void *base, uint64_t c);
int64_t pg_deadline_arm(void *base, int p, uint64_t t, uint64_t delay);
void pg_deadline_stop(void *base, uint64_t t);
void pg_deadline_drop(void *base, uint64_t t);
/* context.c: the free path of OBJ_CTX; a deadline's firing cancels */
void pg_ctx_free(void *base, uint64_t c);
PG_API int64_t pg_ctx_cancel(void *base, uint64_t c, uint32_t code);
/* synctest.c: a due batch's timers with equal deadlines in random order, in virtual time */
void pg_vclock_shuffle(pg_tentry_t *batch, uint32_t n);
void pg_timers_tidy(void *base, int p);

/* waitq helpers (under the owning object's lock) */
static inline void pg_waitq_push(void *base, pg_waitq_t *q, uint64_t sdo) {
    pg_sudog_t *sd = AT(base, sdo, pg_sudog_t);
    sd->next = 0;
    sd->prev = q->last;
    if (q->last)
        AT(base, q->last, pg_sudog_t)->next = sdo;
    else
        q->first = sdo;
    q->last = sdo;
    sd->queued = 1;
    sd->q = (uint64_t)((uint8_t *)q - (uint8_t *)base);
}

static inline void pg_waitq_push_front(void *base, pg_waitq_t *q, uint64_t sdo) {
    pg_sudog_t *sd = AT(base, sdo, pg_sudog_t);
    sd->prev = 0;
    sd->next = q->first;
    if (q->first)
        AT(base, q->first, pg_sudog_t)->prev = sdo;
    else
        q->last = sdo;
    q->first = sdo;
    sd->queued = 1;
    sd->q = (uint64_t)((uint8_t *)q - (uint8_t *)base);
}

static inline void pg_waitq_remove(void *base, pg_waitq_t *q, uint64_t sdo) {
    pg_sudog_t *sd = AT(base, sdo, pg_sudog_t);
    if (!sd->queued)
        return;
    if (sd->prev)
        AT(base, sd->prev, pg_sudog_t)->next = sd->next;
    else
        q->first = sd->next;
    if (sd->next)
        AT(base, sd->next, pg_sudog_t)->prev = sd->prev;
    else
        q->last = sd->prev;
    sd->next = sd->prev = 0;
    sd->queued = 0;
}

/* remove a sudog from whatever queue it is on (caller holds that lock) */
static inline void pg_sudog_unlink(void *base, uint64_t sdo) {
    pg_sudog_t *sd = AT(base, sdo, pg_sudog_t);
    if (sd->queued)
        pg_waitq_remove(base, AT(base, sd->q, pg_waitq_t), sdo);
}

/*
 * Go's waitq.dequeue: pop sudogs until one whose G we can claim.  A sudog
 * whose ticket another waker took (a select won elsewhere, a cancelled
 * wait) is dropped from this queue and skipped; its owner removes the
 * rest of its sudogs itself.  Returns 0 when none is claimable.
 */
static inline uint64_t pg_waitq_dequeue(void *base, pg_waitq_t *q) {
    while (q->first) {
        uint64_t sdo = q->first;
        pg_waitq_remove(base, q, sdo);
        if (pg_claim(base, AT(base, sdo, pg_sudog_t)->g))
            return sdo;
    }
    return 0;
}

static inline void pg_sudog_init(pg_sudog_t *sd, uint64_t g, uint64_t obj, int32_t case_idx,
                                 uint32_t is_select) {
    sd->g = g;
    sd->next = sd->prev = 0;
    sd->obj = obj;
    sd->elem_off = 0;
    sd->elem_len = 0;
    sd->case_idx = case_idx;
    sd->is_select = is_select;
    sd->queued = 0;
}

/* the G's embedded sudog */
static inline uint64_t pg_g_sudog(uint64_t g) { return g + offsetof(pg_g_t, sd); }

#endif
