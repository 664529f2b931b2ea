/*
 * chan.c -- Go's hchan in the arena: send, recv, close, batches, select.
 *
 * Invariants (Go's chan.go, kept here under the channel lock):
 *   - at least one of sendq and recvq is empty (except for a select that
 *     waits to send and to receive on the same channel, whose own sudogs
 *     never pair: they share one ticket and a claimer skips claimed Gs);
 *   - a buffered channel with values has no waiting receivers;
 *   - a buffered channel with room has no waiting senders;
 *   - a send to a parked receiver hands the value over directly (into the
 *     receiver G's wake_buf, or a payload block for large values).
 *
 * Values are opaque encoded bytes (pickle or msgpack, chosen in Python).
 * Up to PG_INLINE bytes sit in the slot; larger ones in a payload block
 * whose ownership moves sender -> slot/sudog -> receiver, who frees it.
 * The waker readies the G after releasing the lock (Go's goready outside
 * the lock).
 *
 * PG_LOST: every entry point returns it when a channel lock's owner P died
 * holding it (pg_lock); the channel is not touched (a select first unlocks
 * what it had locked) and the caller's own payload block is freed.
 */
#define _GNU_SOURCE
#include <string.h>
#include "pg_internal.h"



typedef struct {
    uint64_t ch;
    uint32_t dir; /* SELDIR_* (layout.h) */
    uint32_t len;
    uint64_t data; /* offset of the send value in the blob */
} pg_case_t;

typedef struct {
    uint64_t block, len, wakeg;
    uint8_t buf[PG_INLINE];
} rv_t;

static inline pg_chan_t *C(void *base, uint64_t ch) { return AT(base, ch, pg_chan_t); }
static inline pg_slot_t *SLOT(void *base, pg_chan_t *c, uint32_t i) {
    return AT(base, c->buf + (uint64_t)i * sizeof(pg_slot_t), pg_slot_t);
}
static inline pg_g_t *G(void *base, uint64_t g) { return AT(base, g, pg_g_t); }

PG_API int64_t pg_chan_new(void *base, uint32_t cap, const void *type, uint64_t tlen) {
    int64_t ch = pg_alloc(base, sizeof(pg_chan_t));
    if (ch < 0)
        return PG_NOMEM;
    int64_t buf = 0, t = 0;
    if (cap) {
        buf = pg_alloc(base, (uint64_t)cap * sizeof(pg_slot_t));
        if (buf < 0) {
            pg_free(base, (uint64_t)ch);
            return PG_NOMEM;
        }
    }
    if (tlen) {
        t = pg_alloc_copy(base, type, tlen);
        if (t < 0) {
            if (buf)
                pg_free(base, (uint64_t)buf);
            pg_free(base, (uint64_t)ch);
            return PG_NOMEM;
        }
    }
    pg_chan_t *c = C(base, (uint64_t)ch);
    uint32_t gen = c->hdr.gen; /* survives in freed memory: see pg_obj_decref */
    memset(c, 0, sizeof *c);
    c->hdr.kind = OBJ_CHAN;
    c->hdr.refcnt = 1;
    c->hdr.gen = gen + 1;
    c->cap = cap;
    c->slotsize = sizeof(pg_slot_t);
    c->buf = (uint64_t)buf;
    c->type_off = (uint64_t)t;
    c->type_len = tlen;
    return ch;
}

void pg_chan_free(void *base, uint64_t ch) {
    pg_chan_t *c = C(base, ch);
    for (uint32_t i = 0; i < c->qcount; i++) {
        pg_slot_t *s = SLOT(base, c, (c->recvx + i) % c->cap);
        if (!s->inl && s->off)
            pg_free(base, s->off);
    }
    if (c->buf)
        pg_free(base, c->buf);
    if (c->type_off)
        pg_free(base, c->type_off);
}

/* ---------------- the two halves every operation is made of ---------------- */

/* under the lock: hand (data|pre) to a waiting receiver or the buffer.
 * pre != 0 iff len > PG_INLINE.  Returns 1 done, 0 no room, PG_CLOSED. */
static int chan_trysend(void *base, pg_chan_t *c, const void *data, uint64_t len, uint64_t pre,
                        uint64_t *wakeg) {
    if (c->closed)
        return PG_CLOSED;
    uint64_t sdo = pg_waitq_dequeue(base, &c->recvq);
    if (sdo) {
        pg_sudog_t *sd = AT(base, sdo, pg_sudog_t);
        pg_g_t *rg = G(base, sd->g);
        if (pre) {
            rg->wake_off = pre;
            rg->wake_inl = 0;
        } else {
            memcpy(rg->wake_buf, data, len);
            rg->wake_inl = 1;
        }
        rg->wake_len = len;
        rg->wake_res = WAKE_OK;
        rg->wake_case = sd->case_idx;
        *wakeg = sd->g;
        return 1;
    }
    if (c->qcount < c->cap) {
        pg_slot_t *s = SLOT(base, c, c->sendx);
        s->len = (uint32_t)len;
        if (pre) {
            s->off = pre;
            s->inl = 0;
        } else {
            memcpy(s->data, data, len);
            s->inl = 1;
        }
        c->sendx = (c->sendx + 1) % c->cap;
        pg_store_rlx(&c->qcount, c->qcount + 1);
        return 1;
    }
    return 0;
}

/* under the lock: take one value.  Returns 1 got one, 2 closed and drained,
 * 0 nothing there. */
static int chan_tryrecv(void *base, pg_chan_t *c, rv_t *r) {
    r->wakeg = 0;
    if (c->qcount > 0) {
        pg_slot_t *s = SLOT(base, c, c->recvx);
        r->len = s->len;
        if (s->inl) {
            memcpy(r->buf, s->data, s->len);
            r->block = 0;
        } else {
            r->block = s->off;
        }
        c->recvx = (c->recvx + 1) % c->cap;
        pg_store_rlx(&c->qcount, c->qcount - 1);
        /* a sender waits for room: move its value into the freed slot */
        uint64_t sdo = pg_waitq_dequeue(base, &c->sendq);
        if (sdo) {
            pg_sudog_t *sd = AT(base, sdo, pg_sudog_t);
            pg_slot_t *d = SLOT(base, c, c->sendx);
            d->len = (uint32_t)sd->elem_len;
            if (sd->elem_len <= PG_INLINE) {
                memcpy(d->data, AT(base, sd->elem_off, void), sd->elem_len);
                pg_free(base, sd->elem_off);
                d->inl = 1;
            } else {
                d->off = sd->elem_off;
                d->inl = 0;
            }
            sd->elem_off = 0;
            c->sendx = (c->sendx + 1) % c->cap;
            pg_store_rlx(&c->qcount, c->qcount + 1);
            G(base, sd->g)->wake_res = WAKE_OK;
            G(base, sd->g)->wake_case = sd->case_idx;
            r->wakeg = sd->g;
        }
        return 1;
    }
    uint64_t sdo = pg_waitq_dequeue(base, &c->sendq);
    if (sdo) {
        pg_sudog_t *sd = AT(base, sdo, pg_sudog_t);
        r->block = sd->elem_off;
        r->len = sd->elem_len;
        sd->elem_off = 0;
        G(base, sd->g)->wake_res = WAKE_OK;
        G(base, sd->g)->wake_case = sd->case_idx;
        r->wakeg = sd->g;
        return 1;
    }
    return c->closed ? 2 : 0;
}

/* give a received value to Python: copy into obuf, or leave the block */
static inline int64_t deliver_inl(const void *inl, uint64_t len, void *obuf) {
    memcpy(obuf, inl, len);
    return (int64_t)len;
}

static int64_t deliver_block(void *base, uint64_t block, uint64_t len, void *obuf, uint64_t ocap,
                             uint64_t *out) {
    if (len <= ocap) {
        memcpy(obuf, AT(base, block, void), len);
        pg_free(base, block);
        return (int64_t)len;
    }
    out[0] = block;
    out[1] = len;
    return PG_BIG;
}

/* ---------------- send / recv / close ---------------- */

/*
 * ch.send: PG_OK, PG_CLOSED, PG_WOULDBLOCK (block == 0), PG_NOMEM, or
 * PG_PARKED: g's sudog is on sendq; after its wake-up g->wake_res says
 * WAKE_OK (received) or WAKE_CLOSED (the channel was closed under it).
 */
PG_API int64_t pg_chan_send(void *base, uint64_t ch, uint64_t g, const void *data, uint64_t len,
                            int block) {
    pg_chan_t *c = C(base, ch);
    uint64_t pre = 0, wakeg = 0;
    if (len > PG_INLINE || c->cap == 0) {
        int64_t b = pg_alloc_copy(base, data, len);
        if (b < 0)
            return PG_NOMEM;
        pre = (uint64_t)b;
    }
    if (pg_lock(&c->hdr.lock) != PG_OK) {
        if (pre)
            pg_free(base, pre);
        return PG_LOST;
    }
    int r = chan_trysend(base, c, data, len, len > PG_INLINE ? pre : 0, &wakeg);
    if (r == 1) {
        pg_unlock(&c->hdr.lock);
        if (pre && len <= PG_INLINE)
            pg_free(base, pre); /* the value went inline after all */
        if (wakeg)
            pg_ready(base, wakeg);
        return PG_OK;
    }
    if (r == PG_CLOSED || !block || !g) {
        pg_unlock(&c->hdr.lock);
        if (pre)
            pg_free(base, pre);
        return r == PG_CLOSED ? PG_CLOSED : PG_WOULDBLOCK;
    }
    if (!pre) {
        int64_t b = pg_alloc_copy(base, data, len);
        if (b < 0) {
            pg_unlock(&c->hdr.lock);
            return PG_NOMEM;
        }
        pre = (uint64_t)b;
    }
    uint64_t sdo = pg_g_sudog(g);
    pg_sudog_t *sd = AT(base, sdo, pg_sudog_t);
    pg_sudog_init(sd, g, ch, -1, 0);
    sd->elem_off = pre;
    sd->elem_len = len;
    G(base, g)->sel = 0;
    pg_park_prepare(base, g, WR_CHAN_SEND);
    pg_waitq_push(base, &c->sendq, sdo);
    pg_unlock(&c->hdr.lock);
    return PG_PARKED;
}

/*
 * ch.recv: a length >= 0 (the value is in obuf), PG_BIG (out[0] = block,
 * out[1] = length: read it, then pg_mfree it), PG_CLOSED (closed and
 * drained), PG_WOULDBLOCK, or PG_PARKED (then pg_chan_recv_finish).
 */
PG_API int64_t pg_chan_recv(void *base, uint64_t ch, uint64_t g, int block, void *obuf,
                            uint64_t ocap, uint64_t *out) {
    pg_chan_t *c = C(base, ch);
    rv_t r;
    if (pg_lock(&c->hdr.lock) != PG_OK)
        return PG_LOST;
    int got = chan_tryrecv(base, c, &r);
    if (got == 1) {
        int64_t n = r.block ? 0 : deliver_inl(r.buf, r.len, obuf);
        pg_unlock(&c->hdr.lock);
        if (r.block)
            n = deliver_block(base, r.block, r.len, obuf, ocap, out);
        if (r.wakeg)
            pg_ready(base, r.wakeg);
        return n;
    }
    if (got == 2 || !block || !g) {
        pg_unlock(&c->hdr.lock);
        return got == 2 ? PG_CLOSED : PG_WOULDBLOCK;
    }
    uint64_t sdo = pg_g_sudog(g);
    pg_sudog_init(AT(base, sdo, pg_sudog_t), g, ch, -1, 0);
    G(base, g)->sel = 0;
    pg_park_prepare(base, g, WR_CHAN_RECV);
    pg_waitq_push(base, &c->recvq, sdo);
    pg_unlock(&c->hdr.lock);
    return PG_PARKED;
}

/* after a parked recv was woken: the handed-over value, or PG_CLOSED */
PG_API int64_t pg_chan_recv_finish(void *base, uint64_t g, void *obuf, uint64_t ocap,
                                   uint64_t *out) {
    pg_g_t *gp = G(base, g);
    if (gp->wake_res != WAKE_OK)
        return PG_CLOSED;
    if (gp->wake_inl)
        return deliver_inl(gp->wake_buf, gp->wake_len, obuf);
    uint64_t b = gp->wake_off;
    gp->wake_off = 0;
    return deliver_block(base, b, gp->wake_len, obuf, ocap, out);
}

/* close: wake every receiver (they see the end) and sender (they raise) */
PG_API int64_t pg_chan_close(void *base, uint64_t ch) {
    pg_chan_t *c = C(base, ch);
    uint64_t list = 0; /* claimed sudogs, linked through sd->next */
    if (pg_lock(&c->hdr.lock) != PG_OK)
        return PG_LOST;
    if (c->closed) {
        pg_unlock(&c->hdr.lock);
        return PG_CLOSED;
    }
    pg_store_rlx(&c->closed, 1);
    uint64_t sdo;
    while ((sdo = pg_waitq_dequeue(base, &c->recvq))) {
        pg_sudog_t *sd = AT(base, sdo, pg_sudog_t);
        G(base, sd->g)->wake_res = WAKE_CLOSED;
        G(base, sd->g)->wake_case = sd->case_idx;
        sd->next = list;
        list = sdo;
    }
    while ((sdo = pg_waitq_dequeue(base, &c->sendq))) {
        pg_sudog_t *sd = AT(base, sdo, pg_sudog_t);
        if (sd->elem_off)
            pg_free(base, sd->elem_off);
        sd->elem_off = 0;
        G(base, sd->g)->wake_res = WAKE_CLOSED;
        G(base, sd->g)->wake_case = sd->case_idx;
        sd->next = list;
        list = sdo;
    }
    pg_unlock(&c->hdr.lock);
    while (list) {
        pg_sudog_t *sd = AT(base, list, pg_sudog_t);
        uint64_t next = sd->next, g = sd->g; /* read before the G runs again */
        pg_ready(base, g);
        list = next;
    }
    return PG_OK;
}

/* ---------------- batches ---------------- */

/*
 * send_many: values blob[off_i .. off_i+lens[i]) in order.  Sends without
 * blocking while it can; then, if block, parks sending the next one
 * (PG_PARKED, out[0] = values delivered before it: the caller adds one on a
 * WAKE_OK wake-up and calls again for the rest).  Returns the count sent,
 * or PG_CLOSED / PG_NOMEM with out[0] = count sent.
 */
PG_API int64_t pg_chan_send_many(void *base, uint64_t ch, uint64_t g, const uint8_t *blob,
                                 const uint32_t *lens, uint64_t n, int block, uint64_t *out) {
    pg_chan_t *c = C(base, ch);
    uint64_t i = 0, pos = 0;
    uint64_t wakes = 0; /* Gs to ready, linked through schedlink-free sudog list */
    int64_t rc = 0;
    out[0] = 0;
    if (pg_lock(&c->hdr.lock) != PG_OK)
        return PG_LOST;
    while (i < n) {
        uint64_t len = lens[i], pre = 0, wakeg = 0;
        if (len > PG_INLINE) {
            int64_t b = pg_alloc_copy(base, blob + pos, len);
            if (b < 0) {
                rc = PG_NOMEM;
                break;
            }
            pre = (uint64_t)b;
        }
        int r = chan_trysend(base, c, blob + pos, len, len > PG_INLINE ? pre : 0, &wakeg);
        if (r != 1) {
            if (pre)
                pg_free(base, pre);
            if (r == PG_CLOSED)
                rc = PG_CLOSED;
            break;
        }
        if (pre && len <= PG_INLINE)
            pg_free(base, pre);
        if (wakeg) {
            G(base, wakeg)->schedlink = wakes; /* parked: schedlink unused */
            wakes = wakeg;
        }
        pos += len;
        i++;
    }
    out[0] = i;
    if (rc == 0 && i < n && block && g) {
        int64_t b = pg_alloc_copy(base, blob + pos, lens[i]);
        if (b < 0) {
            rc = PG_NOMEM;
        } else {
            uint64_t sdo = pg_g_sudog(g);
            pg_sudog_t *sd = AT(base, sdo, pg_sudog_t);
            pg_sudog_init(sd, g, ch, -1, 0);
            sd->elem_off = (uint64_t)b;
            sd->elem_len = lens[i];
            G(base, g)->sel = 0;
            pg_park_prepare(base, g, WR_CHAN_SEND);
            pg_waitq_push(base, &c->sendq, sdo);
            rc = PG_PARKED;
        }
    }
    pg_unlock(&c->hdr.lock);
    while (wakes) {
        uint64_t nx = G(base, wakes)->schedlink;
        pg_ready(base, wakes);
        wakes = nx;
    }
    return rc ? rc : (int64_t)i;
}

/*
 * recv_many: up to maxn values packed in obuf as [u32 len][bytes]...
 * (out[2] = bytes used).  Returns the count (>= 1), PG_CLOSED (closed and drained), PG_WOULDBLOCK,
 * PG_PARKED (one value will come through pg_chan_recv_finish), or PG_BIG
 * when the first value alone does not fit obuf (out[0] block, out[1] len).
 */
PG_API int64_t pg_chan_recv_many(void *base, uint64_t ch, uint64_t g, uint64_t maxn, int block,
                                 uint8_t *obuf, uint64_t ocap, uint64_t *out) {
    pg_chan_t *c = C(base, ch);
    uint64_t n = 0, pos = 0, wakes = 0;
    int64_t rc = 0;
    out[2] = 0;
    if (pg_lock(&c->hdr.lock) != PG_OK)
        return PG_LOST;
    while (n < maxn) {
        /* peek the size so nothing is taken that cannot be delivered */
        uint64_t need;
        if (c->qcount > 0)
            need = SLOT(base, c, c->recvx)->len;
        else if (c->sendq.first)
            need = AT(base, c->sendq.first, pg_sudog_t)->elem_len;
        else
            break;
        if (pos + 4 + need > ocap && n > 0)
            break;
        rv_t r;
        if (chan_tryrecv(base, c, &r) != 1)
            break;
        if (r.wakeg) {
            G(base, r.wakeg)->schedlink = wakes;
            wakes = r.wakeg;
        }
        if (pos + 4 + r.len > ocap) { /* n == 0: the first value is too big */
            out[0] = r.block;
            out[1] = r.len;
            rc = PG_BIG;
            n = 1;
            break;
        }
        uint32_t l32 = (uint32_t)r.len;
        memcpy(obuf + pos, &l32, 4);
        if (r.block) {
            memcpy(obuf + pos + 4, AT(base, r.block, void), r.len);
            pg_free(base, r.block);
        } else {
            memcpy(obuf + pos + 4, r.buf, r.len);
        }
        pos += 4 + r.len;
        n++;
    }
    out[2] = pos; /* bytes of obuf used */
    if (n == 0) {
        if (c->closed)
            rc = PG_CLOSED;
        else if (!block || !g)
            rc = PG_WOULDBLOCK;
        else {
            uint64_t sdo = pg_g_sudog(g);
            pg_sudog_init(AT(base, sdo, pg_sudog_t), g, ch, -1, 0);
            G(base, g)->sel = 0;
            pg_park_prepare(base, g, WR_CHAN_RECV);
            pg_waitq_push(base, &c->recvq, sdo);
            rc = PG_PARKED;
        }
    }
    pg_unlock(&c->hdr.lock);
    while (wakes) {
        uint64_t nx = G(base, wakes)->schedlink;
        pg_ready(base, wakes);
        wakes = nx;
    }
    return rc ? rc : (int64_t)n;
}

/* ---------------- select (Go's selectgo) ---------------- */

static uint32_t sel_rand(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return (uint32_t)(x >> 11);
}

/* lock order: by channel offset, ties in poll order (so that a peer facing
 * several of our sudogs on one channel picks among them at random) */
static int sel_orders(const pg_case_t *cs, uint32_t n, uint64_t seed, uint16_t *poll,
                      uint16_t *lockord) {
    uint64_t s = seed | 1;
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (cs[i].dir == SELDIR_NIL || cs[i].ch == 0)
            continue;
        uint32_t j = sel_rand(&s) % (m + 1); /* inside-out Fisher-Yates */
        poll[m] = poll[j];
        poll[j] = (uint16_t)i;
        m++;
    }
    for (uint32_t k = 0; k < m; k++) { /* insertion sort: n is small */
        uint16_t v = poll[k];
        uint32_t j = k;
        while (j > 0 && cs[lockord[j - 1]].ch > cs[v].ch) {
            lockord[j] = lockord[j - 1];
            j--;
        }
        lockord[j] = v;
    }
    return (int)m;
}

static void sel_unlock(void *base, const pg_case_t *cs, const uint16_t *lo, int m) {
    for (int k = m - 1; k >= 0; k--)
        if (k == 0 || cs[lo[k]].ch != cs[lo[k - 1]].ch)
            pg_unlock(&C(base, cs[lo[k]].ch)->hdr.lock);
}

/* lock every channel once, in lock order; PG_LOST: one's owner died, and
 * the ones locked before it are unlocked again */
static int sel_lock(void *base, const pg_case_t *cs, const uint16_t *lo, int m) {
    for (int k = 0; k < m; k++)
        if ((k == 0 || cs[lo[k]].ch != cs[lo[k - 1]].ch) &&
            pg_lock(&C(base, cs[lo[k]].ch)->hdr.lock) != PG_OK) {
            sel_unlock(base, cs, lo, k);
            return PG_LOST;
        }
    return PG_OK;
}

/*
 * select: cases[n] (dir 0 = nil case), send values in blob.
 * Returns PG_OK with out[0] = case index, out[1] = RES_*, out[2] = length,
 * out[3] = block (SEL_BLOCK); or PG_WOULDBLOCK (block == 0), PG_NOMEM,
 * PG_INVAL (too many cases), PG_LOST (nothing locked, nothing sent), or
 * PG_PARKED (then pg_select_finish).  seed: the poll order's random seed;
 * 0 = drawn from the calling thread's generator (pg_rand64).
 */
PG_API int64_t pg_select(void *base, uint64_t g, const pg_case_t *cs, uint32_t n,
                         const uint8_t *blob, int block, uint64_t seed, void *obuf, uint64_t ocap,
                         uint64_t *out) {
    uint16_t poll[SEL_MAX], lo[SEL_MAX];
    if (n > SEL_MAX)
        return PG_INVAL;
    if (!seed) /* the caller's thread draws it (one argument less to convert) */
        seed = pg_rand64();
    int m = sel_orders(cs, n, seed, poll, lo);
    /* large send values are copied into blocks before taking any lock */
    uint64_t pre[SEL_MAX];
    for (int k = 0; k < m; k++) {
        uint16_t i = poll[k];
        pre[i] = 0;
        if (cs[i].dir == SELDIR_SEND && (cs[i].len > PG_INLINE || (!block ? 0 : 1))) {
            int64_t b = pg_alloc_copy(base, blob + cs[i].data, cs[i].len);
            if (b < 0) {
                for (int j = 0; j < k; j++)
                    if (pre[poll[j]])
                        pg_free(base, pre[poll[j]]);
                return PG_NOMEM;
            }
            pre[i] = (uint64_t)b;
        }
    }
    if (sel_lock(base, cs, lo, m) != PG_OK) {
        for (int k = 0; k < m; k++)
            if (pre[poll[k]])
                pg_free(base, pre[poll[k]]);
        return PG_LOST;
    }
    int64_t rc = PG_WOULDBLOCK;
    uint64_t wakeg = 0;
    int chosen = -1;
    rv_t r;
    r.block = 0;
    r.len = 0;
    for (int k = 0; k < m && chosen < 0; k++) {
        uint16_t i = poll[k];
        pg_chan_t *c = C(base, cs[i].ch);
        if (cs[i].dir == SELDIR_RECV) {
            int got = chan_tryrecv(base, c, &r);
            if (got == 1) {
                chosen = i;
                wakeg = r.wakeg;
                out[1] = r.block ? SEL_BLOCK : SEL_VALUE;
            } else if (got == 2) {
                chosen = i;
                out[1] = SEL_CLOSED;
            }
        } else {
            uint64_t len = cs[i].len;
            int s = chan_trysend(base, c, blob + cs[i].data, len, len > PG_INLINE ? pre[i] : 0,
                                 &wakeg);
            if (s == 1) {
                chosen = i;
                out[1] = SEL_SENT;
                if (len > PG_INLINE)
                    pre[i] = 0; /* consumed */
            } else if (s == PG_CLOSED) {
                chosen = i;
                out[1] = SEL_SENDCLOSED;
            }
        }
    }
    if (chosen >= 0) {
        rc = PG_OK;
        out[0] = (uint64_t)chosen;
        out[2] = 0;
        if (out[1] == SEL_VALUE)
            out[2] = (uint64_t)deliver_inl(r.buf, r.len, obuf);
    } else if (block && g) {
        /* pass 2: enqueue one sudog per case, all sharing g's ticket */
        int64_t blk = pg_alloc(base, (uint64_t)m * sizeof(pg_sudog_t) + 1);
        if (blk < 0) {
            rc = PG_NOMEM;
        } else {
            pg_g_t *gp = G(base, g);
            gp->sel = (uint64_t)blk;
            pg_park_prepare(base, g, WR_SELECT);
            for (int k = 0; k < m; k++) {
                uint16_t i = lo[k];
                uint64_t sdo = (uint64_t)blk + (uint64_t)k * sizeof(pg_sudog_t);
                pg_sudog_t *sd = AT(base, sdo, pg_sudog_t);
                pg_sudog_init(sd, g, cs[i].ch, (int32_t)i, 1);
                pg_chan_t *c = C(base, cs[i].ch);
                if (cs[i].dir == SELDIR_RECV) {
                    pg_waitq_push(base, &c->recvq, sdo);
                } else {
                    sd->elem_off = pre[i];
                    sd->elem_len = cs[i].len;
                    pre[i] = 0;
                    pg_waitq_push(base, &c->sendq, sdo);
                }
            }
            rc = PG_PARKED;
        }
    }
    sel_unlock(base, cs, lo, m);
    for (int k = 0; k < m; k++)
        if (pre[poll[k]])
            pg_free(base, pre[poll[k]]);
    if (rc == PG_OK && out[1] == SEL_BLOCK) {
        int64_t d = deliver_block(base, r.block, r.len, obuf, ocap, out + 4);
        if (d >= 0) {
            out[1] = SEL_VALUE;
            out[2] = (uint64_t)d;
        } else {
            out[2] = r.len;
            out[3] = r.block;
        }
    }
    if (wakeg)
        pg_ready(base, wakeg);
    return rc;
}

/* under the locks of their channels: take sudogs [from, to) of blk off
 * their queues and free the losers' send values */
static void sel_dequeue(void *base, pg_g_t *gp, uint64_t blk, int from, int to) {
    for (int k = from; k < to; k++) {
        uint64_t sdo = blk + (uint64_t)k * sizeof(pg_sudog_t);
        pg_sudog_t *sd = AT(base, sdo, pg_sudog_t);
        pg_sudog_unlink(base, sdo);
        if (sd->elem_off && sd->case_idx != gp->wake_case) {
            pg_free(base, sd->elem_off);
            sd->elem_off = 0;
        }
    }
}

/* after a parked select was woken (or to abandon it: the G must have been
 * claimed or cancelled): dequeue the losers, free their send values, and
 * report the winner as pg_select does.  PG_LOST: a channel's lock owner
 * died (the sudogs on the others are dequeued all the same). */
PG_API int64_t pg_select_finish(void *base, uint64_t g, const pg_case_t *cs, uint32_t n,
                                void *obuf, uint64_t ocap, uint64_t *out) {
    uint16_t poll[SEL_MAX], lo[SEL_MAX];
    pg_g_t *gp = G(base, g);
    int m = sel_orders(cs, n, 1, poll, lo);
    uint64_t blk = gp->sel;
    if (blk && sel_lock(base, cs, lo, m) == PG_OK) {
        sel_dequeue(base, gp, blk, 0, m);
        sel_unlock(base, cs, lo, m);
        gp->sel = 0;
        pg_free(base, blk);
    } else if (blk) {
        /* a channel's owner died: take our sudogs off every other channel,
         * one channel at a time (sudog k waits on case lo[k]'s channel);
         * blk stays allocated, since the dead channel's queue may still
         * link into it */
        for (int k = 0, j; k < m; k = j) {
            uint32_t *l = &C(base, cs[lo[k]].ch)->hdr.lock;
            for (j = k + 1; j < m && cs[lo[j]].ch == cs[lo[k]].ch; j++)
                ;
            if (pg_lock(l) == PG_OK) {
                sel_dequeue(base, gp, blk, k, j);
                pg_unlock(l);
            }
        }
        gp->sel = 0;
        return PG_LOST;
    }
    int i = gp->wake_case;
    out[0] = (uint64_t)(int64_t)i;
    out[2] = 0;
    if (i < 0)
        return PG_WOULDBLOCK; /* cancelled */
    if (cs[i].dir == SELDIR_SEND) {
        out[1] = gp->wake_res == WAKE_OK ? SEL_SENT : SEL_SENDCLOSED;
        return PG_OK;
    }
    if (gp->wake_res != WAKE_OK) {
        out[1] = SEL_CLOSED;
        return PG_OK;
    }
    int64_t d = pg_chan_recv_finish(base, g, obuf, ocap, out + 4);
    if (d >= 0) {
        out[1] = SEL_VALUE;
        out[2] = (uint64_t)d;
    } else {
        out[1] = SEL_BLOCK;
        out[2] = out[5];
        out[3] = out[4];
    }
    return PG_OK;
}

/* ---------------- timer channels (timer.c) ---------------- */

/*
 * Go's sendTime, with the caller (timer.c) holding the channel lock: the
 * timer's state check and this send are one step, so a stop or reset
 * (which take the same lock) either comes before it -- no send -- or after
 * it, and then finds the value buffered and drains it.  An inline value
 * only (len <= PG_INLINE).  A full buffer: replace != 0 gives up the older
 * value for this one (a Ticker's unreceived tick, Go 1.23), else this one
 * is dropped (Go 1.22's non-blocking send).  Returns 1 sent, 0 dropped, or
 * PG_CLOSED; *wakeg: a receiver to ready once the lock is released.
 */
int pg_chan_timer_send_locked(void *base, uint64_t ch, const void *data, uint64_t len, int replace,
                              uint64_t *wakeg) {
    pg_chan_t *c = C(base, ch);
    *wakeg = 0;
    if (len > PG_INLINE)
        return 0;
    if (replace && !c->closed && c->cap && c->qcount == c->cap) {
        pg_slot_t *s = SLOT(base, c, c->recvx); /* the oldest value goes */
        if (!s->inl && s->off)
            pg_free(base, s->off);
        c->recvx = (c->recvx + 1) % c->cap;
        pg_store_rlx(&c->qcount, c->qcount - 1);
    }
    return chan_trysend(base, c, data, len, 0, wakeg);
}

/* Go's timerchandrain, with the caller holding the channel lock: drop
 * every buffered value (a timer channel has no waiting senders).
 * Returns whether there was any. */
int pg_chan_drain_locked(void *base, uint64_t ch) {
    pg_chan_t *c = C(base, ch);
    int any = c->qcount > 0;
    while (c->qcount > 0) {
        pg_slot_t *s = SLOT(base, c, c->recvx);
        if (!s->inl && s->off)
            pg_free(base, s->off);
        c->recvx = (c->recvx + 1) % c->cap;
        pg_store_rlx(&c->qcount, c->qcount - 1);
    }
    return any;
}
