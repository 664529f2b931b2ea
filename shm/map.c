/*
 * map.c -- pg.Map: Go's sync.Map in the arena, shared by every P.
 *
 * Layout (shm/layout.h "pg.Map"):
 *
 *   pg_map --shards--> [ shard 0 | shard 1 | ... | shard 63 ]    one cache line each
 *                          |
 *                          +-- lock, count, seq, buckets --> [ head | head | ... ]
 *                                                               |
 *                               pg_mapent (+ key bytes) --next--> pg_mapent ...
 *                                  |
 *                                  +-- val --> pg_mapval: nref refs, vlen bytes
 *
 * Invariants:
 *   - A key lives in shard hash >> (64 - PG_MAP_SHARD_BITS) for ever, so a
 *     range that takes one shard at a time (under its lock) sees each key
 *     at most once, whatever runs concurrently (Go's Range contract).
 *   - Everything of a shard -- its bucket array, chains, entries and the
 *     values they point at -- is read and written only under the shard's
 *     lock, except `count`, which len() sums racily (relaxed loads).
 *     There are no lock-free readers, so an entry or value unlinked under
 *     the lock can be freed right after it is released.
 *   - A stored value holds one arena reference per handle inside it (its
 *     refs): taken under the lock when the value is published, dropped
 *     when the value is replaced or deleted (after the unlock), or handed
 *     to the caller with the bytes (swap, load_and_delete).  A copy handed
 *     out by load/range takes a fresh reference per handle under the lock,
 *     so a concurrent delete can never free an object between the copy and
 *     the decode that adopts it (handles.py _rebuild).
 *   - seq: each shard counts its value changes; an entry remembers the
 *     count when its value was set.  compare_and_swap's second step passes
 *     the seq its first step read: it succeeds only if nothing changed
 *     that key in between (any replace, delete or re-insert moves it).
 *
 * Growth: a shard doubles its bucket array when it holds more entries than
 * buckets and halves it when it holds fewer than 1/8 (not below
 * PG_MAP_MINBUCKETS), relinking its own entries under its own lock: the
 * other 63 shards never wait for it, and the pause is one shard's size.
 * Entries store their hash, so keys are never rehashed.
 *
 * Statuses: >= 0 a length, PG_WOULDBLOCK "no such key" (or, for
 * MAP_CAS/MAP_CAD, "the key changed since seq"), PG_BIG (the value is in
 * a block: out[0] data offset, out[1] length, out[2] the block the caller
 * frees), PG_NOMEM (the map unchanged), PG_LOST (a shard lock's owner P
 * died: the map untouched).  out[3] = the entry's seq after a load.
 */
#define _GNU_SOURCE
#include <string.h>
#include "pg_internal.h"

static inline pg_map_t *MAP(void *base, uint64_t m) { return AT(base, m, pg_map_t); }
static inline pg_mapshard_t *SHARD(void *base, uint64_t m, uint32_t i) {
    return AT(base, MAP(base, m)->shards + (uint64_t)i * sizeof(pg_mapshard_t), pg_mapshard_t);
}
static inline pg_mapent_t *ENT(void *base, uint64_t e) { return AT(base, e, pg_mapent_t); }
static inline pg_mapval_t *VAL(void *base, uint64_t v) { return AT(base, v, pg_mapval_t); }
static inline uint64_t *BUCKETS(void *base, pg_mapshard_t *sh) { return AT(base, sh->buckets, uint64_t); }
static inline uint8_t *ENT_KEY(pg_mapent_t *e) { return (uint8_t *)(e + 1); }
static inline uint64_t *VAL_REFS(pg_mapval_t *v) { return (uint64_t *)(v + 1); }
static inline uint64_t val_data_off(uint64_t v, uint32_t nref) {
    return v + sizeof(pg_mapval_t) + 8ull * nref;
}
static inline uint64_t pad8(uint64_t n) { return (n + 7) & ~7ull; }

/* ---------------- hashing ---------------- */

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

/* Keys are short: an FxHash-style word loop, finished with murmur3's
 * fmix64 so that both the shard bits (top) and bucket bits (bottom) are
 * well mixed.  Seeded with the run's nonce: the layout of a map differs
 * from run to run, as Go's maps do. */
static uint64_t map_hash(void *base, uint32_t tag, const uint8_t *k, uint32_t n) {
    const uint64_t K = 0x517cc1b727220a95ull;
    uint64_t h = ARENA(base)->nonce ^ ((uint64_t)tag << 56) ^ ((uint64_t)n * 0x9e3779b97f4a7c15ull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, k, 8);
        h = (rotl64(h, 5) ^ w) * K;
        k += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, k, n);
        h = (rotl64(h, 5) ^ w) * K;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static inline uint32_t shard_of(uint64_t h) { return (uint32_t)(h >> (64 - PG_MAP_SHARD_BITS)); }

/* ---------------- values ---------------- */

/* a value block for (refs, bytes); no reference is taken yet (val_hold) */
static int64_t val_new(void *base, const uint8_t *data, uint64_t vlen, const uint64_t *refs,
                       uint32_t nref) {
    int64_t v = pg_alloc(base, sizeof(pg_mapval_t) + 8ull * nref + vlen);
    if (v < 0)
        return PG_NOMEM;
    pg_mapval_t *mv = VAL(base, (uint64_t)v);
    mv->vlen = vlen;
    mv->nref = nref;
    mv->pad = 0;
    if (nref)
        memcpy(VAL_REFS(mv), refs, 8ull * nref);
    if (vlen)
        memcpy(AT(base, val_data_off((uint64_t)v, nref), void), data, vlen);
    return v;
}

/* one reference per handle inside: the value's own (publish), or a copy's */
static void val_hold(void *base, uint64_t v) {
    pg_mapval_t *mv = VAL(base, v);
    uint64_t *r = VAL_REFS(mv);
    for (uint32_t i = 0; i < mv->nref; i++)
        pg_add_acqrel(&AT(base, r[i], pg_objhdr_t)->refcnt, 1);
}

/* a value nobody holds any more: drop its references, free it (never under
 * a shard lock: a last reference may free a channel, or this very map) */
static void val_release(void *base, uint64_t v) {
    if (!v)
        return;
    pg_mapval_t *mv = VAL(base, v);
    uint64_t *r = VAL_REFS(mv);
    for (uint32_t i = 0; i < mv->nref; i++)
        pg_obj_decref(base, r[i]);
    pg_free(base, v);
}

/* a copy of v for the caller, with a fresh reference per handle (under
 * the shard lock): into obuf, or a block when it does not fit */
static int64_t val_copy_out(void *base, uint64_t v, void *obuf, uint64_t ocap, uint64_t *out) {
    pg_mapval_t *mv = VAL(base, v);
    const void *data = AT(base, val_data_off(v, mv->nref), void);
    int64_t r;
    if (mv->vlen <= ocap) {
        if (mv->vlen)
            memcpy(obuf, data, mv->vlen);
        r = (int64_t)mv->vlen;
    } else {
        int64_t b = pg_alloc_copy(base, data, mv->vlen);
        if (b < 0)
            return PG_NOMEM;
        out[0] = out[2] = (uint64_t)b;
        out[1] = mv->vlen;
        r = PG_BIG;
    }
    val_hold(base, v);
    return r;
}

/* hand a detached value (its references included) to the caller: its bytes
 * into obuf and the block freed, or the block itself (PG_BIG) */
static int64_t val_give(void *base, uint64_t v, void *obuf, uint64_t ocap, uint64_t *out) {
    pg_mapval_t *mv = VAL(base, v);
    uint64_t d = val_data_off(v, mv->nref);
    if (mv->vlen > ocap) {
        out[0] = d;
        out[1] = mv->vlen;
        out[2] = v;
        return PG_BIG;
    }
    int64_t r = (int64_t)mv->vlen;
    if (r)
        memcpy(obuf, AT(base, d, void), (size_t)r);
    pg_free(base, v);
    return r;
}

/* ---------------- the map object ---------------- */

PG_API int64_t pg_map_new(void *base) {
    int64_t m = pg_alloc(base, sizeof(pg_map_t));
    if (m < 0)
        return PG_NOMEM;
    /* the shards, cache aligned: blocks are only 16-byte aligned */
    int64_t sb = pg_alloc_zeroed(base, PG_MAP_NSHARD * sizeof(pg_mapshard_t) + 64);
    if (sb < 0) {
        pg_free(base, (uint64_t)m);
        return PG_NOMEM;
    }
    pg_map_t *mp = MAP(base, (uint64_t)m);
    uint32_t gen = mp->hdr.gen;
    memset(mp, 0, sizeof *mp);
    mp->hdr.kind = OBJ_MAP;
    mp->hdr.refcnt = 1;
    mp->hdr.gen = gen + 1;
    mp->shards_blk = (uint64_t)sb;
    mp->shards = ((uint64_t)sb + 63) & ~63ull;
    return m;
}

/* Free every entry of a detached chain array (nb heads) and the array. */
static void free_chains(void *base, uint64_t buckets, uint32_t nb) {
    if (!buckets)
        return;
    uint64_t *b = AT(base, buckets, uint64_t);
    for (uint32_t i = 0; i < nb; i++) {
        uint64_t e = b[i];
        while (e) {
            pg_mapent_t *ep = ENT(base, e);
            uint64_t next = ep->next, v = ep->val;
            pg_free(base, e);
            val_release(base, v);
            e = next;
        }
    }
    pg_free(base, buckets);
}

/* Go's Clear: every shard emptied in turn (each under its lock; the whole
 * is not one atomic step: a store racing a clear may survive it, as one
 * ordered just after).  PG_OK or PG_LOST. */
PG_API int64_t pg_map_clear(void *base, uint64_t m) {
    for (uint32_t i = 0; i < PG_MAP_NSHARD; i++) {
        pg_mapshard_t *sh = SHARD(base, m, i);
        if (pg_lock(&sh->lock) != PG_OK)
            return PG_LOST;
        uint64_t b = sh->buckets;
        uint32_t nb = sh->nbuckets;
        sh->buckets = 0;
        sh->nbuckets = 0;
        pg_store_rlx(&sh->count, 0);
        sh->seq++;
        pg_unlock(&sh->lock);
        free_chains(base, b, nb);
    }
    return PG_OK;
}

/* the last reference is gone (pg_obj_decref): no other P can reach it */
void pg_map_free(void *base, uint64_t m) {
    for (uint32_t i = 0; i < PG_MAP_NSHARD; i++) {
        pg_mapshard_t *sh = SHARD(base, m, i);
        free_chains(base, sh->buckets, sh->nbuckets);
    }
    pg_free(base, MAP(base, m)->shards_blk);
}

/* len(m): a racy sum, as Go has none */
PG_API int64_t pg_map_len(void *base, uint64_t m) {
    uint64_t n = 0;
    for (uint32_t i = 0; i < PG_MAP_NSHARD; i++)
        n += pg_load_rlx(&SHARD(base, m, i)->count);
    return (int64_t)n;
}

/* ---------------- one shard (under its lock) ---------------- */

/* the link that points at the key's entry, or NULL */
static uint64_t *shard_find(void *base, pg_mapshard_t *sh, uint64_t h, uint32_t tag, const uint8_t *key,
                            uint32_t klen) {
    if (!sh->nbuckets)
        return NULL;
    uint64_t *link = &BUCKETS(base, sh)[h & (sh->nbuckets - 1)];
    while (*link) {
        pg_mapent_t *e = ENT(base, *link);
        if (e->hash == h && e->ktag == tag && e->klen == klen && memcmp(ENT_KEY(e), key, klen) == 0)
            return link;
        link = &e->next;
    }
    return NULL;
}

/* relink every entry into a new array of nb buckets; on NOMEM the shard
 * keeps its array (longer chains, still correct) */
static void shard_resize(void *base, pg_mapshard_t *sh, uint32_t nb) {
    int64_t nbo = pg_alloc_zeroed(base, 8ull * nb);
    if (nbo < 0)
        return;
    uint64_t *nbk = AT(base, nbo, uint64_t);
    if (sh->nbuckets) {
        uint64_t *old = BUCKETS(base, sh);
        for (uint32_t i = 0; i < sh->nbuckets; i++) {
            uint64_t e = old[i];
            while (e) {
                pg_mapent_t *ep = ENT(base, e);
                uint64_t next = ep->next, *head = &nbk[ep->hash & (nb - 1)];
                ep->next = *head;
                *head = e;
                e = next;
            }
        }
        pg_free(base, sh->buckets);
    }
    sh->buckets = (uint64_t)nbo;
    sh->nbuckets = nb;
}

/* a new entry holding value v at the head of its chain; PG_NOMEM */
static int shard_insert(void *base, pg_mapshard_t *sh, uint64_t h, uint32_t tag, const uint8_t *key,
                        uint32_t klen, uint32_t xlen, uint64_t v) {
    if (!sh->nbuckets) {
        shard_resize(base, sh, PG_MAP_MINBUCKETS);
        if (!sh->nbuckets)
            return PG_NOMEM;
    }
    int64_t e = pg_alloc(base, sizeof(pg_mapent_t) + (uint64_t)klen + xlen);
    if (e < 0)
        return PG_NOMEM;
    pg_mapent_t *ep = ENT(base, (uint64_t)e);
    ep->hash = h;
    ep->ktag = tag;
    ep->klen = klen;
    ep->xlen = xlen;
    ep->pad = 0;
    memcpy(ENT_KEY(ep), key, (size_t)klen + xlen);
    ep->val = v;
    ep->seq = ++sh->seq;
    uint64_t *head = &BUCKETS(base, sh)[h & (sh->nbuckets - 1)];
    ep->next = *head;
    *head = (uint64_t)e;
    uint64_t n = sh->count + 1;
    pg_store_rlx(&sh->count, n);
    if (n > sh->nbuckets && sh->nbuckets < (1u << 31))
        shard_resize(base, sh, sh->nbuckets * 2);
    return PG_OK;
}

/* unlink the entry at *link; returns it (the caller frees it after unlock) */
static uint64_t shard_unlink(void *base, pg_mapshard_t *sh, uint64_t *link) {
    uint64_t e = *link;
    *link = ENT(base, e)->next;
    uint64_t n = sh->count - 1;
    pg_store_rlx(&sh->count, n);
    sh->seq++;
    if (sh->nbuckets > PG_MAP_MINBUCKETS && n < sh->nbuckets / 8)
        shard_resize(base, sh, sh->nbuckets / 2); /* constant memory under churn */
    return e;
}

/* ---------------- operations ---------------- */

/* Load: the value (a copy, with references for its handles) and out[3] = the
 * entry's seq; PG_WOULDBLOCK when absent. */
PG_API int64_t pg_map_load(void *base, uint64_t m, uint32_t tag, const uint8_t *key, uint32_t klen,
                           void *obuf, uint64_t ocap, uint64_t *out) {
    uint64_t h = map_hash(base, tag, key, klen);
    pg_mapshard_t *sh = SHARD(base, m, shard_of(h));
    if (pg_lock(&sh->lock) != PG_OK)
        return PG_LOST;
    uint64_t *link = shard_find(base, sh, h, tag, key, klen);
    int64_t r = PG_WOULDBLOCK;
    if (link) {
        pg_mapent_t *e = ENT(base, *link);
        out[3] = e->seq;
        r = val_copy_out(base, e->val, obuf, ocap, out);
    }
    pg_unlock(&sh->lock);
    return r;
}

/*
 * Every write, one foreign call (op: MAP_*).  The lengths come first, in
 * registers: Python's fast calls pass small ints without argtypes, and an
 * int on the stack would fill only half of its 8-byte slot.
 * key: klen canonical bytes
 * then xlen exact bytes (kept only by a new entry).  val/vlen/refs/nref:
 * the new value for STORE, SWAP, LOAD_OR_STORE and CAS (the caller keeps
 * its handles alive: the references are taken here, when it is published).
 *
 *   STORE            PG_OK
 *   SWAP             the previous value handed over (>= 0 or PG_BIG), or
 *                    PG_WOULDBLOCK: there was none (stored all the same)
 *   LOAD_OR_STORE    the present value (a copy), or PG_WOULDBLOCK: stored
 *   LOAD_AND_DELETE  the deleted value handed over, or PG_WOULDBLOCK
 *   DELETE           PG_OK, or PG_WOULDBLOCK: absent
 *   CAS, CAD         PG_OK done; PG_WOULDBLOCK absent, or changed since seq
 */
PG_API int64_t pg_map_write(void *base, uint64_t m, const uint8_t *key, uint32_t klen, const uint8_t *val,
                            uint64_t vlen, int op, uint32_t tag, uint32_t xlen, const uint64_t *refs,
                            uint32_t nref, uint64_t seq, void *obuf, uint64_t ocap, uint64_t *out) {
    int stores = op == MAP_STORE || op == MAP_SWAP || op == MAP_LOAD_OR_STORE || op == MAP_CAS;
    if (op < MAP_STORE || op > MAP_CAD)
        return PG_INVAL;
    /* allocate before locking: the lock is held for pointer work only */
    int64_t nv = 0;
    if (stores) {
        nv = val_new(base, val, vlen, refs, nref);
        if (nv < 0)
            return PG_NOMEM;
    }
    uint64_t h = map_hash(base, tag, key, klen);
    pg_mapshard_t *sh = SHARD(base, m, shard_of(h));
    if (pg_lock(&sh->lock) != PG_OK) {
        if (nv)
            pg_free(base, (uint64_t)nv);
        return PG_LOST;
    }
    uint64_t *link = shard_find(base, sh, h, tag, key, klen);
    pg_mapent_t *e = link ? ENT(base, *link) : NULL;
    uint64_t release = 0; /* a value to drop after the unlock, references and all */
    uint64_t give = 0;    /* a detached value handed to the caller */
    uint64_t dead = 0;    /* an unlinked entry */
    uint64_t unused = 0;  /* nv, never published: no references taken */
    int64_t r = PG_OK;
    switch (op) {
    case MAP_STORE:
    case MAP_SWAP:
        if (e) {
            val_hold(base, (uint64_t)nv);
            if (op == MAP_SWAP)
                give = e->val;
            else
                release = e->val;
            e->val = (uint64_t)nv;
            e->seq = ++sh->seq;
        } else {
            r = shard_insert(base, sh, h, tag, key, klen, xlen, (uint64_t)nv);
            if (r == PG_OK) {
                val_hold(base, (uint64_t)nv);
                r = op == MAP_SWAP ? PG_WOULDBLOCK : PG_OK;
            } else {
                unused = (uint64_t)nv;
            }
        }
        break;
    case MAP_LOAD_OR_STORE:
        unused = (uint64_t)nv;
        if (e) {
            r = val_copy_out(base, e->val, obuf, ocap, out);
        } else {
            r = shard_insert(base, sh, h, tag, key, klen, xlen, (uint64_t)nv);
            if (r == PG_OK) {
                val_hold(base, (uint64_t)nv);
                unused = 0;
                r = PG_WOULDBLOCK;
            }
        }
        break;
    case MAP_CAS:
        if (e && e->seq == seq) {
            val_hold(base, (uint64_t)nv);
            release = e->val;
            e->val = (uint64_t)nv;
            e->seq = ++sh->seq;
        } else {
            unused = (uint64_t)nv;
            r = PG_WOULDBLOCK;
        }
        break;
    case MAP_LOAD_AND_DELETE:
    case MAP_DELETE:
    case MAP_CAD:
        if (!e || (op == MAP_CAD && e->seq != seq)) {
            r = PG_WOULDBLOCK;
            break;
        }
        if (op == MAP_LOAD_AND_DELETE)
            give = e->val;
        else
            release = e->val;
        dead = shard_unlink(base, sh, link);
        break;
    }
    pg_unlock(&sh->lock);
    if (dead)
        pg_free(base, dead);
    if (unused)
        pg_free(base, unused);
    if (give)
        r = val_give(base, give, obuf, ocap, out);
    val_release(base, release);
    return r;
}

/*
 * Range: copy whole shards, from shard `start` on, into obuf as pg_maprec
 * records (with a reference per handle), one shard at a time under its
 * lock, while they fit; out[2] = the shard to continue from (PG_MAP_NSHARD:
 * done).  Returns the bytes written, or PG_BIG for one shard larger than
 * obuf alone, copied into a block: out[0] = the block (the caller frees
 * it), out[1] = its length, out[2] = the next shard.
 */
static uint64_t rec_size(pg_mapent_t *e, pg_mapval_t *v) {
    uint32_t kl = e->xlen ? e->xlen : e->klen;
    return sizeof(pg_maprec_t) + 8ull * v->nref + pad8(kl) + pad8(v->vlen);
}

static uint64_t shard_snapshot(void *base, pg_mapshard_t *sh, uint8_t *dst) {
    uint64_t pos = 0, *b = BUCKETS(base, sh);
    for (uint32_t i = 0; i < sh->nbuckets; i++) {
        for (uint64_t eo = b[i]; eo; eo = ENT(base, eo)->next) {
            pg_mapent_t *e = ENT(base, eo);
            pg_mapval_t *v = VAL(base, e->val);
            pg_maprec_t *rec = (pg_maprec_t *)(dst + pos);
            rec->ktag = e->xlen ? MK_EXACT : e->ktag;
            rec->klen = e->xlen ? e->xlen : e->klen;
            rec->nref = v->nref;
            rec->pad = 0;
            rec->vlen = v->vlen;
            uint8_t *p = (uint8_t *)(rec + 1);
            memcpy(p, VAL_REFS(v), 8ull * v->nref);
            p += 8ull * v->nref;
            memcpy(p, ENT_KEY(e) + (e->xlen ? e->klen : 0), rec->klen);
            p += pad8(rec->klen);
            memcpy(p, AT(base, val_data_off(e->val, v->nref), void), v->vlen);
            val_hold(base, e->val);
            pos += rec_size(e, v);
        }
    }
    return pos;
}

PG_API int64_t pg_map_range(void *base, uint64_t m, uint32_t start, void *obuf, uint64_t ocap,
                            uint64_t *out) {
    uint64_t pos = 0;
    uint32_t i = start;
    for (; i < PG_MAP_NSHARD; i++) {
        pg_mapshard_t *sh = SHARD(base, m, i);
        if (!pg_load_rlx(&sh->count))
            continue; /* racy skip of an empty shard: a range may miss a concurrent store */
        if (pg_lock(&sh->lock) != PG_OK)
            return PG_LOST; /* the run is aborted: the references copied so far die with it */
        uint64_t need = 0, *b = BUCKETS(base, sh);
        for (uint32_t k = 0; k < sh->nbuckets; k++)
            for (uint64_t eo = b[k]; eo; eo = ENT(base, eo)->next)
                need += rec_size(ENT(base, eo), VAL(base, ENT(base, eo)->val));
        if (pos + need <= ocap) {
            pos += shard_snapshot(base, sh, (uint8_t *)obuf + pos);
            pg_unlock(&sh->lock);
            continue;
        }
        if (pos) { /* the next call starts with this shard */
            pg_unlock(&sh->lock);
            break;
        }
        int64_t blk = pg_alloc(base, need);
        if (blk < 0) {
            pg_unlock(&sh->lock);
            return PG_NOMEM;
        }
        shard_snapshot(base, sh, AT(base, blk, uint8_t));
        pg_unlock(&sh->lock);
        out[0] = (uint64_t)blk;
        out[1] = need;
        out[2] = i + 1;
        return PG_BIG;
    }
    out[2] = i;
    return (int64_t)pos;
}
