/*
 * context.c -- contexts in the arena (OBJ_CTX): the tree, cancel, and
 * causes (Go 1.20's WithCancelCause, Cause).  A deadline is a TK_CTX timer
 * (timer.c's pg_deadline_* calls) whose firing cancels with CTX_DEADLINE.
 * A cause is handed to pg_ctx_cancel_cause / pg_ctx_new_cause, and every
 * context a cancel reaches takes a reference on it before its err is
 * stored (seq_cst), so a goroutine on any P that sees err set finds the
 * cause beside it.
 *
 * A cause is a sync record of kind SK_VALUE whose block is the exception's
 * encoding (atomic.Value's layout): refcounted like every shared object,
 * freed with the last context that holds it, with the references of any
 * handle inside.
 */
#define _GNU_SOURCE
#include <string.h>
#include "pg_internal.h"

static inline pg_ctx_t *CX(void *base, uint64_t c) { return AT(base, c, pg_ctx_t); }

/* a cause object holding a copy of data, a stored-value block
 * ([u32 0][u32 nrefs][u64 refs][encoding], atomics.c): its free drops the
 * references of the handles inside (the creator holds one reference on it) */
PG_API int64_t pg_cause_new(void *base, const void *data, uint64_t len) {
    if (len < 8)
        return PG_INVAL;
    int64_t b = pg_alloc_copy(base, data, len);
    if (b < 0)
        return PG_NOMEM;
    int64_t o = pg_sync_new(base, SK_VALUE, 0);
    if (o < 0) {
        pg_free(base, (uint64_t)b);
        return o;
    }
    pg_sync_t *s = AT(base, (uint64_t)o, pg_sync_t);
    s->res_off = (uint64_t)b; /* immutable from here: nothing stores into a cause */
    s->res_len = len;
    return o;
}

/*
 * A done context's cause: 1 with out[0], out[1] = its encoding's block and
 * length, out[2] = the cause object (the context's reference keeps it:
 * read it while holding the context), 0 when it has none (Go's Cause returns err then).  Call only
 * after err was seen set (the load pairs with the cancel's seq_cst stores).
 */
PG_API int pg_ctx_cause(void *base, uint64_t c, uint64_t *out) {
    uint64_t k = pg_load_sc(&AT(base, c, pg_ctx_t)->cause);
    if (!k)
        return 0;
    pg_sync_t *s = AT(base, k, pg_sync_t);
    out[0] = s->res_off;
    out[1] = s->res_len; /* the block given to pg_cause_new (>= 8) */
    out[2] = k;
    return 1;
}

/* ---------------- the tree and cancel ---------------- */

/* under ctx lock: take c off its parent's children list */
static void ctx_unlink(void *base, uint64_t c) {
    pg_ctx_t *x = CX(base, c);
    if (x->prev)
        CX(base, x->prev)->next = x->next;
    else
        CX(base, x->parent)->child = x->next;
    if (x->next)
        CX(base, x->next)->prev = x->prev;
    x->parent = x->next = x->prev = 0;
}

/*
 * Go's cancelCtx.cancel, for the whole subtree, synchronously: when this
 * returns, every descendant's err is set and its done channel closed, on
 * every P (they are all in the arena).
 *
 *   (1) under ctx_lock: c's parent's list lets go of c (Go's removeChild);
 *       c and, breadth first, every descendant get err = code and leave
 *       the tree (a canceled context has no links); the collected nodes
 *       are chained through wl, each still held by its old list reference
 *   (2) outside the lock, in that order: close each done channel (err is
 *       stored first, seq_cst: a goroutine woken by the close reads it),
 *       stop each deadline timer, drop the list references.
 *
 * A context linked under a parent always has err == CTX_NONE (canceling
 * unlinks it), so nothing is collected twice; once collected a node is
 * out of every list, so no other cancel touches its wl.
 */
static int64_t ctx_cancel_cause(void *base, uint64_t c, uint32_t code, uint64_t cause);

/* a deadline (its own, or CTX_DEADLINE at creation) cancels with the
 * context's deadline cause (WithDeadlineCause); anything else without one */
static int64_t ctx_cancel(void *base, uint64_t c, uint32_t code) {
    return ctx_cancel_cause(base, c, code, code == CTX_DEADLINE ? CX(base, c)->dcause : 0);
}

/* under ctx lock, before n's err is stored: n's cause (Go: children get the
 * parent's err and cause); the node takes a reference on the cause */
static void ctx_set_cause(void *base, uint64_t n, uint64_t cause) {
    if (cause) {
        pg_add_acqrel(&AT(base, cause, pg_objhdr_t)->refcnt, 1);
        pg_store_sc(&CX(base, n)->cause, cause);
    }
}

static int64_t ctx_cancel_cause(void *base, uint64_t c, uint32_t code, uint64_t cause) {
    pg_arena_t *a = ARENA(base);
    pg_ctx_t *x = CX(base, c);
    int64_t lr = pg_lock(&a->ctx_lock);
    if (lr != PG_OK)
        return lr;
    if (x->err != CTX_NONE) {
        pg_unlock(&a->ctx_lock);
        return PG_OK;
    }
    uint64_t listed = 0; /* c's own list reference, from its parent */
    if (x->parent) {
        ctx_unlink(base, c);
        listed = c;
    }
    ctx_set_cause(base, c, cause);
    pg_store_sc(&x->err, code);
    x->wl = 0;
    uint64_t tail = c;
    for (uint64_t n = c; n; n = CX(base, n)->wl) {
        uint64_t k = CX(base, n)->child;
        CX(base, n)->child = 0;
        while (k) {
            pg_ctx_t *kx = CX(base, k);
            uint64_t nx = kx->next;
            kx->parent = kx->next = kx->prev = 0;
            ctx_set_cause(base, k, cause);
            pg_store_sc(&kx->err, code); /* Go: children get the parent's err */
            kx->wl = 0;
            CX(base, tail)->wl = k;
            tail = k;
            k = nx;
        }
    }
    pg_unlock(&a->ctx_lock);
    int64_t rc = PG_OK;
    for (uint64_t n = c; n;) {
        pg_ctx_t *nx = CX(base, n);
        uint64_t next = nx->wl; /* read before the reference goes */
        if (pg_chan_close(base, nx->done) == PG_LOST)
            rc = PG_LOST;
        if (nx->timer)
            pg_deadline_stop(base, nx->timer);
        if (n != c)
            pg_obj_decref(base, n);
        n = next;
    }
    if (listed)
        pg_obj_decref(base, listed);
    return rc;
}

/*
 * A cancelable context: done (a channel it takes a reference on) is
 * closed when it is canceled.  parent: the nearest cancelable ancestor (0
 * none): if it is done already, so is this one (with its err); else its
 * children list takes this one (and a reference on it).  delay >= 0 ns:
 * a deadline (a TK_CTX timer on p's heap; 0: done at once with
 * CTX_DEADLINE); delay < 0: none.  Returns the context's offset (the
 * caller holds one reference), PG_NOMEM or PG_LOST.
 */
/* ... with dcause: the cause its deadline cancels it with (an object it
 * takes a reference on; 0 none) -- WithDeadlineCause */
PG_API int64_t pg_ctx_new_cause(void *base, int p, uint64_t done, uint64_t parent, int64_t delay, uint64_t dcause) {
    pg_arena_t *a = ARENA(base);
    if (!done || p < 0 || p >= PG_MAXP)
        return PG_INVAL;
    int64_t c = pg_obj_alloc(base, sizeof(pg_ctx_t), OBJ_CTX);
    if (c < 0)
        return c;
    pg_ctx_t *x = CX(base, (uint64_t)c);
    x->done = done;
    pg_add_acqrel(&AT(base, done, pg_objhdr_t)->refcnt, 1);
    if (dcause) {
        x->dcause = dcause;
        pg_add_acqrel(&AT(base, dcause, pg_objhdr_t)->refcnt, 1);
    }
    if (delay > 0) {
        /* allocated (T_STOPPED) before linking: a cancel racing with the
         * arming below finds x->timer set */
        int64_t t = pg_deadline_new(base, (uint64_t)c);
        if (t < 0) {
            pg_obj_decref(base, (uint64_t)c);
            return t;
        }
        x->timer = (uint64_t)t;
    }
    uint32_t inherited = CTX_NONE;
    uint64_t pcause = 0;
    if (parent) {
        int64_t lr = pg_lock(&a->ctx_lock);
        if (lr != PG_OK) {
            if (x->timer)
                pg_deadline_drop(base, x->timer);
            pg_obj_decref(base, (uint64_t)c);
            return lr;
        }
        pg_ctx_t *px = CX(base, parent);
        inherited = px->err;
        pcause = px->cause; /* immutable once err is set; the parent's handle keeps it */
        if (inherited == CTX_NONE) {
            x->parent = parent;
            x->next = px->child;
            if (px->child)
                CX(base, px->child)->prev = (uint64_t)c;
            px->child = (uint64_t)c;
            pg_add_acqrel(&x->hdr.refcnt, 1); /* the list's reference */
        }
        pg_unlock(&a->ctx_lock);
    }
    int64_t r = PG_OK;
    if (inherited != CTX_NONE)
        r = ctx_cancel_cause(base, (uint64_t)c, inherited, pcause);
    else if (delay == 0)
        r = ctx_cancel(base, (uint64_t)c, CTX_DEADLINE);
    else if (x->timer) {
        r = pg_deadline_arm(base, p, x->timer, (uint64_t)delay);
        /* Dekker with ctx_cancel (store err, then stop the timer): armed
         * first, then err loaded, both seq_cst -- one of the two stops it */
        if (r >= 0 && pg_load_sc(&x->err) != CTX_NONE)
            pg_deadline_stop(base, x->timer);
        if (r == PG_NOMEM)
            (void)ctx_cancel(base, (uint64_t)c, CTX_CANCELED); /* unlink before the free */
    }
    if (r < 0) {
        pg_obj_decref(base, (uint64_t)c);
        return r;
    }
    return c;
}

/* pg_ctx_new_cause without a deadline cause */
PG_API int64_t pg_ctx_new(void *base, int p, uint64_t done, uint64_t parent, int64_t delay) {
    return pg_ctx_new_cause(base, p, done, parent, delay, 0);
}

/* cancel(): code CTX_CANCELED (or CTX_DEADLINE).  PG_OK (also when it was
 * done already) or PG_LOST. */
PG_API int64_t pg_ctx_cancel(void *base, uint64_t c, uint32_t code) {
    if (code != CTX_CANCELED && code != CTX_DEADLINE)
        return PG_INVAL;
    return ctx_cancel(base, c, code);
}

/* cancel(cause): as pg_ctx_cancel, and every context it cancels takes a
 * reference on cause (an object; 0: none) -- WithCancelCause */
PG_API int64_t pg_ctx_cancel_cause(void *base, uint64_t c, uint32_t code, uint64_t cause) {
    if (code != CTX_CANCELED && code != CTX_DEADLINE)
        return PG_INVAL;
    return ctx_cancel_cause(base, c, code, cause);
}

/*
 * The free path (pg_obj_decref): nothing can cancel this context any more
 * (no handle, no pending deadline, no parent's list holds it), so its
 * children go on by themselves: detach them and drop the list's
 * references, one at a time (never under the lock: a drop may free).
 */
void pg_ctx_free(void *base, uint64_t c) {
    pg_arena_t *a = ARENA(base);
    pg_ctx_t *x = CX(base, c);
    for (;;) {
        if (pg_lock(&a->ctx_lock) != PG_OK)
            break; /* the run is being aborted: leak rather than touch the links */
        uint64_t k = x->child;
        if (k)
            ctx_unlink(base, k);
        pg_unlock(&a->ctx_lock);
        if (!k)
            break;
        pg_obj_decref(base, k);
    }
    if (x->timer)
        pg_obj_decref(base, x->timer);
    if (x->cause)
        pg_obj_decref(base, x->cause);
    if (x->dcause)
        pg_obj_decref(base, x->dcause);
    pg_obj_decref(base, x->done);
}
