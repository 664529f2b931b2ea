/*
 * context.c -- context causes (Go 1.20's WithCancelCause, Cause): the
 * objects that carry a cause's encoding.  The tree, cancel and deadlines
 * live with the timers (timer.c, "contexts"): a cause is handed to
 * pg_ctx_cancel_cause / pg_ctx_new_cause, and every context a cancel
 * reaches takes a reference on it before its err is stored (seq_cst), so
 * a goroutine on any P that sees err set finds the cause beside it.
 *
 * A cause is a sync record of kind SK_VALUE whose block is the exception's
 * encoding (atomic.Value's layout): refcounted like every shared object,
 * freed with the last context that holds it, with the references of any
 * handle inside.
 */
#define _GNU_SOURCE
#include <string.h>
#include "pg_internal.h"

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
