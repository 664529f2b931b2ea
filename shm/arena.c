/*
 * arena.c -- the shared arena: header, commit, allocator, exported tables.
 *
 * The arena is a memfd of `size` bytes (sparse).  Memory is *committed* in
 * PG_CHUNK steps with fallocate() before the bump pointer may pass it, so
 * exhaustion is an ENOSPC/ENOMEM returned here as PG_NOMEM -- never a SIGBUS
 * on first touch.
 *
 * Allocator: size classes of 16, 24, 32, 48, 64, 96 ... bytes (powers of two
 * and their halfway points, including the 16-byte block header), each with a lock-free Treiber free list whose head is
 * tagged (tag << 32 | off >> 4) so a pop racing a pop+push (ABA) fails its
 * CAS.  A block's `next` may be read after another P took it: the read is
 * of committed arena memory (never unmapped), and the tag makes that CAS
 * fail.  New blocks come from the bump pointer.  Blocks never change class.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <stdio.h>
#include "pg_internal.h"

int pg_wakefd[PG_MAXP];
static int pg_memfd = -1;

/* ---------------- exported layout and constant tables ---------------- */

struct pg_field_desc {
    const char *s, *f;
    uint64_t off, size;
};

#define PG_TAB_FIELD(s, t, n, dims, doc) {#s, #n, offsetof(struct s, n), sizeof(((struct s *)0)->n)},
static const struct pg_field_desc pg_fields[] = {PG_ALL_STRUCTS(PG_TAB_FIELD)};
#define PG_TAB_SIZE(s) {#s, "__size__", 0, sizeof(struct s)},
static const struct pg_field_desc pg_sizes[] = {
    PG_TAB_SIZE(pg_map) PG_TAB_SIZE(pg_mapshard) PG_TAB_SIZE(pg_mapent) PG_TAB_SIZE(pg_mapval) PG_TAB_SIZE(pg_maprec)
    PG_TAB_SIZE(pg_block) PG_TAB_SIZE(pg_objhdr) PG_TAB_SIZE(pg_waitq) PG_TAB_SIZE(pg_sudog)
    PG_TAB_SIZE(pg_g) PG_TAB_SIZE(pg_p) PG_TAB_SIZE(pg_arena) PG_TAB_SIZE(pg_chan)
    PG_TAB_SIZE(pg_slot) PG_TAB_SIZE(pg_sync) PG_TAB_SIZE(pg_timer) PG_TAB_SIZE(pg_tfunc) PG_TAB_SIZE(pg_tentry)
    PG_TAB_SIZE(pg_ctx) PG_TAB_SIZE(pg_wg) PG_TAB_SIZE(pg_mutex) PG_TAB_SIZE(pg_rw) PG_TAB_SIZE(pg_sema)
    PG_TAB_SIZE(pg_once) PG_TAB_SIZE(pg_atom) PG_TAB_SIZE(pg_buf)};

struct pg_const_desc {
    const char *name;
    int64_t value;
};
#define PG_TAB_CONST(n, v) {#n, (int64_t)(v)},
static const struct pg_const_desc pg_consts[] = {PG_ALL_CONSTS(PG_TAB_CONST)};

#define NFIELDS (sizeof(pg_fields) / sizeof(pg_fields[0]))
#define NSIZES (sizeof(pg_sizes) / sizeof(pg_sizes[0]))

/* entry i of the {struct, field, offset, size} table; -1 past the end */
PG_API int pg_layout_entry(int i, const char **s, const char **f, uint64_t *off, uint64_t *size) {
    const struct pg_field_desc *d;
    if (i < 0)
        return -1;
    if ((size_t)i < NFIELDS)
        d = &pg_fields[i];
    else if ((size_t)i < NFIELDS + NSIZES)
        d = &pg_sizes[i - NFIELDS];
    else
        return -1;
    *s = d->s;
    *f = d->f;
    *off = d->off;
    *size = d->size;
    return 0;
}

PG_API int pg_const_entry(int i, const char **name, int64_t *value) {
    if (i < 0 || (size_t)i >= sizeof(pg_consts) / sizeof(pg_consts[0]))
        return -1;
    *name = pg_consts[i].name;
    *value = pg_consts[i].value;
    return 0;
}

/* entry i of the wait reasons table (value, Go's text); -1 past the end */
struct pg_wr_desc {
    int64_t value;
    const char *text;
};
#define PG_TAB_WR(n, v, t) {(int64_t)(v), t},
static const struct pg_wr_desc pg_wrs[] = {PG_WAITREASON_LIST(PG_TAB_WR)};

PG_API int pg_waitreason_entry(int i, int64_t *value, const char **text) {
    if (i < 0 || (size_t)i >= sizeof(pg_wrs) / sizeof(pg_wrs[0]))
        return -1;
    *value = pg_wrs[i].value;
    *text = pg_wrs[i].text;
    return 0;
}

/* FNV-1a over the layout table and the ABI version */
PG_API uint32_t pg_layout_hash(void) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < NFIELDS + NSIZES; i++) {
        const struct pg_field_desc *d = i < NFIELDS ? &pg_fields[i] : &pg_sizes[i - NFIELDS];
        for (const char *c = d->s; *c; c++)
            h = (h ^ (uint8_t)*c) * 16777619u;
        for (const char *c = d->f; *c; c++)
            h = (h ^ (uint8_t)*c) * 16777619u;
        h = (h ^ (uint32_t)d->off) * 16777619u;
        h = (h ^ (uint32_t)d->size) * 16777619u;
    }
    return (h ^ PG_ABI_VERSION) * 16777619u;
}

/* ---------------- header, attach ---------------- */

/* -1 when the arena cannot grow: full, fallocate failed, or the commit
 * lock's owner died (PG_LOST).  pg_alloc reports all three as PG_NOMEM,
 * which every caller already handles; a lost P has been recorded by the
 * death watch, and its WorkerLost is what pg.run raises. */
static int pg_commit_to(void *base, uint64_t end) {
    pg_arena_t *a = ARENA(base);
    if (pg_load_acq(&a->committed) >= end)
        return 0;
    if (end > a->size)
        return -1;
    if (pg_lock(&a->commit_lock) != PG_OK)
        return -1;
    uint64_t c = pg_load_acq(&a->committed);
    int rc = 0;
    if (c < end) {
        uint64_t want = (end + PG_CHUNK - 1) / PG_CHUNK * PG_CHUNK;
        if (want > a->size)
            want = a->size;
        if (fallocate(pg_memfd, 0, (off_t)c, (off_t)(want - c)) != 0)
            rc = -1;
        else
            pg_store_rel(&a->committed, want); /* pairs with the acquire above */
    }
    pg_unlock(&a->commit_lock);
    return rc;
}

/* P0: the memfd is ftruncate'd to size and mapped at base. */
PG_API int64_t pg_arena_init(void *base, int fd, uint64_t size, uint64_t nonce, uint32_t nprocs) {
    pg_memfd = fd;
    uint64_t hdr = (sizeof(pg_arena_t) + 63) & ~63ull;
    pg_arena_t *a = ARENA(base);
    if (fallocate(fd, 0, 0, (off_t)hdr) != 0)
        return PG_NOMEM;
    memset(a, 0, sizeof(*a));
    a->size = size;
    a->committed = hdr;
    a->bump = hdr;
    a->nonce = nonce;
    a->nprocs = nprocs;
    a->abi = PG_ABI_VERSION;
    a->layout_hash = pg_layout_hash();
    /* a starting P is young (no steal victim) for START_GRACE_NS: sched.c's
     * "Placement" */
    uint64_t young = pg_nanotime_real() + START_GRACE_NS;
    for (uint32_t i = 0; i < PG_MAXP; i++) {
        a->p[i].state = i < nprocs ? P_RUNNING : P_GONE;
        a->p[i].lastsched = young;
    }
    pg_store_rel(&a->magic, PG_MAGIC);
    return PG_OK;
}

/* Every P (and P0 after init): check the build matches the arena. */
PG_API int64_t pg_arena_attach(void *base, int fd, uint32_t *abi_out, uint32_t *hash_out) {
    pg_arena_t *a = ARENA(base);
    *abi_out = a->abi;
    *hash_out = a->layout_hash;
    if (pg_load_acq(&a->magic) != PG_MAGIC || a->abi != PG_ABI_VERSION ||
        a->layout_hash != pg_layout_hash())
        return PG_BADLAYOUT;
    pg_memfd = fd;
    for (int i = 0; i < PG_MAXP; i++)
        pg_wakefd[i] = -1;
    pg_lock_register(base, a->size);
    return PG_OK;
}

PG_API void pg_set_wakefd(int p, int fd) {
    if (p >= 0 && p < PG_MAXP)
        pg_wakefd[p] = fd;
}

/* ---------------- allocator ---------------- */

/* class c holds blocks of 16 << c/2 bytes, times 1.5 for odd c */
static inline uint64_t pg_class_size(int c) {
    uint64_t b = 16ull << (c / 2);
    return (c & 1) ? ((b + b / 2 + 15) & ~15ull) : b; /* 16-aligned: off >> 4 */
}

static inline int pg_class_of(uint64_t total) {
    int c = 0;
    while (c < PG_NCLASS && pg_class_size(c) < total)
        c++;
    return c;
}

/* Returns the offset of usable memory (16-byte aligned), or PG_NOMEM. */
int64_t pg_alloc(void *base, uint64_t size) {
    pg_arena_t *a = ARENA(base);
    if (size > a->size) /* also keeps size + header from wrapping around */
        return PG_NOMEM;
    int c = pg_class_of(size + sizeof(pg_block_t));
    if (c >= PG_NCLASS)
        return PG_NOMEM;
    uint64_t *head = &a->freelist[c];
    uint64_t h = pg_load_acq(head);
    while ((h & 0xffffffffu) != 0) {
        uint64_t boff = (h & 0xffffffffu) << 4;
        /* may read a block another P just popped: the tag fails our CAS */
        uint64_t next = pg_load_rlx(&AT(base, boff, pg_block_t)->next);
        uint64_t nh = ((h >> 32) + 1) << 32 | (next >> 4);
        if (pg_cas_acqrel(head, &h, nh)) {
            pg_block_t *b = AT(base, boff, pg_block_t);
            b->magic = BLOCK_MAGIC;
            b->next = 1; /* recycled: may hold old bytes (see pg_alloc_zeroed) */
            pg_add_rlx(&a->inuse, pg_class_size(c));
            return (int64_t)(boff + sizeof(pg_block_t));
        }
    }
    uint64_t bsz = pg_class_size(c);
    uint64_t cur = pg_load_rlx(&a->bump);
    for (;;) {
        if (cur + bsz > a->size || cur + bsz < cur)
            return PG_NOMEM;
        if (pg_commit_to(base, cur + bsz) != 0)
            return PG_NOMEM;
        if (pg_cas_acqrel(&a->bump, &cur, cur + bsz))
            break;
    }
    pg_block_t *b = AT(base, cur, pg_block_t);
    b->magic = BLOCK_MAGIC;
    b->cls = (uint32_t)c;
    b->next = 0;
    pg_add_rlx(&a->inuse, bsz);
    return (int64_t)(cur + sizeof(pg_block_t));
}

void pg_free(void *base, uint64_t off) {
    if (off < sizeof(pg_block_t))
        return;
    pg_arena_t *a = ARENA(base);
    uint64_t boff = off - sizeof(pg_block_t);
    pg_block_t *b = AT(base, boff, pg_block_t);
    if (b->magic != BLOCK_MAGIC || b->cls >= PG_NCLASS)
        return; /* double free or a wild offset: refuse rather than corrupt */
    b->magic = 0;
    uint32_t c = b->cls;
    pg_add_rlx(&a->inuse, (uint64_t)-(int64_t)pg_class_size((int)c));
    uint64_t *head = &a->freelist[c];
    uint64_t h = pg_load_rlx(head);
    do {
        pg_store_rlx(&b->next, (h & 0xffffffffu) << 4);
    } while (!pg_cas_acqrel(head, &h, ((h >> 32) + 1) << 32 | (boff >> 4)));
}

/* zeroed memory: a block fresh from the bump pointer is still all zeros
 * (never-touched memfd pages), so only a recycled one is cleared -- which
 * spares a large Buffer from faulting in every page at creation */
int64_t pg_alloc_zeroed(void *base, uint64_t size) {
    int64_t off = pg_alloc(base, size);
    if (off > 0 && AT(base, (uint64_t)off - sizeof(pg_block_t), pg_block_t)->next)
        memset(AT(base, off, void), 0, size);
    return off;
}

int64_t pg_alloc_copy(void *base, const void *data, uint64_t len) {
    int64_t off = pg_alloc(base, len ? len : 1);
    if (off > 0 && len)
        memcpy(AT(base, off, void), data, len);
    return off;
}

PG_API int64_t pg_malloc(void *base, uint64_t size) { return pg_alloc(base, size); }
PG_API void pg_mfree(void *base, uint64_t off) { pg_free(base, off); }
PG_API int64_t pg_store_bytes(void *base, const void *data, uint64_t len) {
    return pg_alloc_copy(base, data, len);
}

/* Record the first panic program-wide: returns 1 if ours won. */
PG_API int pg_panic_record(void *base, const void *data, uint64_t len) {
    pg_arena_t *a = ARENA(base);
    uint32_t z = 0;
    if (!pg_cas_acqrel(&a->panicking, &z, 1))
        return 0;
    int64_t off = pg_alloc_copy(base, data, len);
    if (off > 0) {
        a->panic_off = (uint64_t)off;
        a->panic_len = len;
    }
    pg_store_rel(&a->panicking, 2); /* pairs with the reader's acquire */
    return 1;
}
