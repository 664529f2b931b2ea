/*
 * atomics.c -- Go 1.23's And/Or, the 32-bit integer atomics and
 * atomic.Value (sync/atomic), on the pg_sync records of sync.c.
 *
 * Integers: every integer atomic keeps its value in u.atom.value (atomic,
 * seq_cst, never under the obj lock).  Int32 keeps it sign-extended and
 * Uint32 zero-extended to 64 bits, so load/store/swap/CAS are the 64-bit
 * operations of sync.c, and so are And/Or: the and/or of two sign- (or
 * zero-) extended words is the extension of the 32-bit result.  Only Add
 * must wrap at 32 bits: a CAS loop (pg_atomic_add32).
 *
 * Value: u.atom.value is a sequence number (obj lock; bumped by every
 * store), res_off/res_len the stored block (obj lock), laid out by the
 * Python side as
 *
 *     [u32 tlen][u32 nrefs][u64 refs: nrefs][type name: tlen bytes][encoded value]
 *
 * refs: the handles inside the value, each holding one reference that the
 * block owns (dropped by whoever ends up with a replaced block, and by
 * pg_value_free when the Value itself goes).
 * A store compares the type name with the stored one under the lock, so
 * two first stores of different types on two Ps cannot both succeed (Go's
 * "store of inconsistently typed value").  The block a store replaces is
 * handed to the caller (it is nobody else's once unlinked under the lock):
 * Swap decodes it, Store drops the references it carries.
 */
#define _GNU_SOURCE
#include <string.h>
#include "pg_internal.h"

static inline pg_sync_t *SY(void *base, uint64_t o) { return AT(base, o, pg_sync_t); }

/* ---------------- And / Or (Go 1.23): return the old value ---------------- */

PG_API int64_t pg_atomic_and(void *base, uint64_t o, int64_t mask) {
    return (int64_t)__atomic_fetch_and((uint64_t *)&SY(base, o)->u.atom.value, (uint64_t)mask, __ATOMIC_SEQ_CST);
}

PG_API int64_t pg_atomic_or(void *base, uint64_t o, int64_t mask) {
    return (int64_t)__atomic_fetch_or((uint64_t *)&SY(base, o)->u.atom.value, (uint64_t)mask, __ATOMIC_SEQ_CST);
}

/* Int32/Uint32 Add: wraps at 32 bits (Go's), kept sign- (is_signed) or
 * zero-extended; returns the new value.  The CAS pairs with every other
 * seq_cst operation on the word. */
PG_API int64_t pg_atomic_add32(void *base, uint64_t o, int64_t d, int is_signed) {
    int64_t *w = &SY(base, o)->u.atom.value;
    int64_t old = pg_load_sc(w), v;
    do {
        uint32_t n = (uint32_t)((uint64_t)old + (uint64_t)d);
        v = is_signed ? (int64_t)(int32_t)n : (int64_t)n;
    } while (!pg_cas_sc(w, &old, v));
    return v;
}

/* ---------------- atomic.Value ---------------- */

/* where a block's type name starts (0: a malformed block) */
static uint64_t name_at(const uint8_t *b, uint64_t len, uint32_t *tlen) {
    uint32_t nrefs;
    memcpy(tlen, b, 4);
    memcpy(&nrefs, b + 4, 4);
    uint64_t at = VAL_HDR + 8ull * nrefs;
    return len >= at + *tlen ? at : 0;
}

static int same_type(void *base, uint64_t blk, uint64_t blen, const uint8_t *data, uint64_t len) {
    const uint8_t *old = AT(base, blk, uint8_t);
    uint32_t otl, ntl;
    uint64_t oat = name_at(old, blen, &otl), nat = name_at(data, len, &ntl);
    return oat && nat && otl == ntl && memcmp(old + oat, data + nat, ntl) == 0;
}

/* the free path (pg_obj_decref, SK_VALUE and SK_ONCE, whose result block
 * has the same header with tlen 0): drop the references of the stored
 * block's handles (the caller frees the block) */
void pg_value_free(void *base, uint64_t o) {
    pg_sync_t *s = SY(base, o);
    if (!s->res_off || s->res_len < VAL_HDR)
        return;
    const uint8_t *b = AT(base, s->res_off, uint8_t);
    uint32_t nrefs;
    memcpy(&nrefs, b + 4, 4);
    for (uint32_t i = 0; i < nrefs && VAL_HDR + 8ull * (i + 1) <= s->res_len; i++) {
        uint64_t r;
        memcpy(&r, b + VAL_HDR + 8ull * i, 8);
        pg_obj_decref(base, r);
    }
}

/*
 * Load: copies the stored block into obuf and returns its length (0: no
 * store yet); out[0] = the sequence number of that store.  A block larger
 * than ocap: PG_BIG, out[1] = its length, nothing copied (the caller asks
 * again with room for it).
 */
PG_API int64_t pg_value_load(void *base, uint64_t o, void *obuf, uint64_t ocap, uint64_t *out) {
    pg_sync_t *s = SY(base, o);
    if (pg_lock(&s->hdr.lock) != PG_OK)
        return PG_LOST;
    uint64_t len = s->res_len;
    out[0] = (uint64_t)s->u.atom.value;
    if (len > ocap) {
        pg_unlock(&s->hdr.lock);
        out[1] = len;
        return PG_BIG;
    }
    if (len)
        memcpy(obuf, AT(base, s->res_off, void), len);
    pg_unlock(&s->hdr.lock);
    return (int64_t)len;
}

/*
 * Store data (a block as above, len >= 8).  expect >= 0: only if the
 * sequence number is still expect (CompareAndSwap, after the caller compared
 * the value it loaded with that sequence number), else PG_WOULDBLOCK.
 * PG_INVAL: another type than the stored value's, nothing changed.
 * PG_OK: out[0], out[1] = the replaced block and its length (0, 0 for the
 * first store), now the caller's to read and pg_mfree.
 */
PG_API int64_t pg_value_swap(void *base, uint64_t o, const void *data, uint64_t len, int64_t expect,
                             uint64_t *out) {
    pg_sync_t *s = SY(base, o);
    uint32_t tl;
    if (len < VAL_HDR || !name_at(data, len, &tl))
        return PG_INVAL;
    int64_t b = pg_alloc_copy(base, data, len); /* never allocate under the obj lock */
    if (b < 0)
        return PG_NOMEM;
    if (pg_lock(&s->hdr.lock) != PG_OK) {
        pg_free(base, (uint64_t)b);
        return PG_LOST;
    }
    int64_t r = PG_OK;
    if (expect >= 0 && s->u.atom.value != expect)
        r = PG_WOULDBLOCK;
    else if (s->res_off && !same_type(base, s->res_off, s->res_len, data, len))
        r = PG_INVAL;
    if (r != PG_OK) {
        pg_unlock(&s->hdr.lock);
        pg_free(base, (uint64_t)b);
        return r;
    }
    out[0] = s->res_off;
    out[1] = s->res_len;
    s->res_off = (uint64_t)b;
    s->res_len = len;
    s->u.atom.value++;
    pg_unlock(&s->hdr.lock);
    return PG_OK;
}
