/*
 * layout.h -- every structure that lives in the parago arena, declared once.
 *
 * The arena is one memfd mapped by every P process at a different address,
 * so everything in it refers to everything else by *offset* from the arena
 * base (0 means "none"), never by pointer (STYLE 10).
 *
 * Each struct is written as an X-macro list of (struct, type, field, dims).
 * From that one list come:
 *   - the C struct itself                         (PG_DECLARE_STRUCT)
 *   - the exported {struct, field, offset, size}  (arena.c: pg_layout_entry)
 * Python builds its views from the exported table and checks the layout
 * hash stored in the arena header (parago/_shim/layout.py).
 *
 * The comment beside each field says what protects it:
 *   "atomic"      -- only touched with the pg_* helpers of pg_atomic.h
 *   "chan lock", "obj lock", "gq lock" -- the spin/futex lock of the owner
 *   "owner P"     -- written only by the P that owns the record
 *   "immutable"   -- written once before the record is published
 */
#ifndef PARAGO_LAYOUT_H
#define PARAGO_LAYOUT_H

#include <stdint.h>
#include <stddef.h>

#define PG_ABI_VERSION 7u
#define PG_MAGIC 0x70617261676f3031ull /* "parago01" */
#define PG_MAXP 128
#define PG_RUNQ 256            /* Go's runq size */
#define PG_NCLASS 68           /* size classes 16, 24, 32, 48, 64, 96 ... 2^37 */
#define PG_CHUNK (4u << 20)    /* fallocate granularity */
#define PG_SITE 96             /* at most this many bytes of "created by" text */
#define PG_INLINE 48           /* encoded values up to this size sit in the slot */
#define PG_ARENA_PAD 4         /* pg_arena.pad: u64 words before the P array (cache alignment) */

/* ---- status codes: every C entry point returns one of these (or >= 0) ---- */
#define PG_STATUS_LIST(X) \
    X(PG_OK, 0) \
    X(PG_PARKED, -1)      /* a waiter was enqueued: the caller must park */ \
    X(PG_WOULDBLOCK, -2)  /* non-blocking form found nothing ready */ \
    X(PG_CLOSED, -3)      /* channel closed (send/close) or closed+drained (recv) */ \
    X(PG_NOMEM, -4)       /* arena exhausted */ \
    X(PG_BIG, -5)         /* value larger than the out buffer: see out[] */ \
    X(PG_NEGATIVE, -6)    /* counter would go negative */ \
    X(PG_UNLOCKED, -7)    /* unlock of unlocked lock */ \
    X(PG_INVAL, -8)       /* bad argument */ \
    X(PG_RUNFN, -9)       /* Once: the caller must run fn */ \
    X(PG_BADLAYOUT, -10)  /* attach: ABI or layout mismatch */ \
    X(PG_SYSERR, -11)     /* a system call failed; errno in out */ \
    X(PG_LOST, -12)       /* a lock's owner P is gone: the run is aborted (object untouched) */

/* Gstatus: Go's numbering (runtime2.go). Owner: see parago/_runtime/g.py */
#define PG_GSTATUS_LIST(X) \
    X(G_IDLE, 0) X(G_RUNNABLE, 1) X(G_RUNNING, 2) X(G_SYSCALL, 3) \
    X(G_WAITING, 4) X(G_DEAD, 6)

/* park state of a G: the sudog ticket (Go's selectDone), changed by CAS.
 * A claimed word also names its claimer: PARK_CLAIMED | (P + 1) << 8 (0:
 * no P), so that a claim whose P died before its ready can be cancelled. */
#define PG_PARK_LIST(X) \
    X(PARK_NONE, 0) X(PARK_WAITING, 1) X(PARK_CLAIMED, 2) X(PARK_CANCELLED, 3) \
    X(PARK_STATE_MASK, 0xff) X(PARK_CLAIMER_SHIFT, 8)

/* G kinds: who resumes it when readied */
#define PG_GKIND_LIST(X) \
    X(GK_GREENLET, 0) X(GK_TASK, 1) X(GK_THREAD, 2) X(GK_SYSTEM, 4)

/* G flags (pg_g.flags, owner P once started); GF_HERE is a pg_go flag only */
#define PG_GFLAG_LIST(X) X(GF_LOCAL, 1) X(GF_STARTED, 2) X(GF_HERE, 4)

/* where pg_findrunnable / pg_gstart leave a G to run (out[0], "how"): a
 * started G to resume; a new one's encoded (fn, args) in the caller's obuf;
 * or in a payload block the caller reads and frees */
#define PG_START_LIST(X) X(START_STARTED, 0) X(START_OBUF, 1) X(START_BLOCK, 2)

/* wake results stored in g->wake_res */
#define PG_WAKE_LIST(X) \
    X(WAKE_NONE, 0) X(WAKE_OK, 1) X(WAKE_CLOSED, 2) X(WAKE_RETRY, 3) \
    X(WAKE_HANDOFF, 4)

/* wait reasons (pg_g.waitreason): what a parked G waits for, Go's strings
 * (they show in dumps and Deadlock reports).  X(name, value, text) */
#define PG_WAITREASON_LIST(X) \
    X(WR_CHAN_RECV, 1, "chan receive") X(WR_CHAN_SEND, 2, "chan send") X(WR_SELECT, 3, "select") \
    X(WR_WAITGROUP, 4, "sync.WaitGroup.Wait") X(WR_MUTEX, 5, "sync.Mutex.Lock") \
    X(WR_RLOCK, 6, "sync.RWMutex.RLock") X(WR_WLOCK, 7, "sync.RWMutex.Lock") X(WR_SEMA, 8, "semacquire") \
    X(WR_COND, 9, "sync.Cond.Wait") X(WR_ONCE, 10, "sync.Once.Do") X(WR_SLEEP, 11, "sleep") \
    X(WR_SELECT_NOCASES, 12, "select (no cases)") X(WR_SYSCALL, 13, "syscall") X(WR_IO, 14, "IO wait") \
    X(WR_NILCHAN, 16, "chan receive (nil chan)")
#define PG_ENUM_ITEM3(n, v, text) n = v,
enum pg_waitreason { PG_WAITREASON_LIST(PG_ENUM_ITEM3) };

/* select: a case's direction, and what the chosen case did (pg_select out[1]) */
#define PG_SELECT_LIST(X) \
    X(SELDIR_NIL, 0) X(SELDIR_RECV, 1) X(SELDIR_SEND, 2) \
    X(SEL_VALUE, 0) X(SEL_BLOCK, 1) X(SEL_CLOSED, 2) X(SEL_SENT, 3) X(SEL_SENDCLOSED, 4)

/* pg_mutex_lock flags */
#define PG_MUTEX_LIST(X) X(MX_TRY, 1) X(MX_RETRY, 2)

/* shared object kinds (pg_objhdr.kind) */
#define PG_OBJ_LIST(X) \
    X(OBJ_FREE, 0) X(OBJ_CHAN, 1) X(OBJ_SYNC, 2) X(OBJ_BUFFER, 3) \
    X(OBJ_COUNTER, 4)

/* why sysmon signalled a P's hub thread (pg_p.sysreq bits) */
#define PG_SYSREQ_LIST(X) \
    X(SYS_PREEMPT, 1) X(SYS_SHUTDOWN, 2) X(SYS_FAILURE, 4) X(SYS_URGENT, 8)

/* what the hub has acted on (pg_p.ack bits): sysmon stops signalling */
#define PG_ACK_LIST(X) X(ACK_SHUTDOWN, 2) X(ACK_FAILURE, 4)

/* what the failure record holds (pg_arena.fail_kind) */
#define PG_FAIL_LIST(X) X(FAIL_PAYLOAD, 0) X(FAIL_LOST, 1)

/* P sleep states */
#define PG_PSTATE_LIST(X) \
    X(P_RUNNING, 0) X(P_SLEEPING, 1) X(P_SPINNING, 2) X(P_GONE, 3)

#define PG_ENUM_ITEM(n, v) n = v,
enum pg_status { PG_STATUS_LIST(PG_ENUM_ITEM) };
enum pg_gstatus { PG_GSTATUS_LIST(PG_ENUM_ITEM) };
enum pg_park { PG_PARK_LIST(PG_ENUM_ITEM) };
enum pg_gkind { PG_GKIND_LIST(PG_ENUM_ITEM) };
enum pg_gflag { PG_GFLAG_LIST(PG_ENUM_ITEM) };
enum pg_start { PG_START_LIST(PG_ENUM_ITEM) };
enum pg_wake { PG_WAKE_LIST(PG_ENUM_ITEM) };
enum pg_objkind { PG_OBJ_LIST(PG_ENUM_ITEM) };
enum pg_pstate { PG_PSTATE_LIST(PG_ENUM_ITEM) };
enum pg_sysreq { PG_SYSREQ_LIST(PG_ENUM_ITEM) };
enum pg_ack { PG_ACK_LIST(PG_ENUM_ITEM) };
enum pg_fail { PG_FAIL_LIST(PG_ENUM_ITEM) };
enum pg_select { PG_SELECT_LIST(PG_ENUM_ITEM) };
enum pg_mutex_flag { PG_MUTEX_LIST(PG_ENUM_ITEM) };

/* ------------------------------------------------------------------------
 * The struct lists.  X(struct, type, field, dims, protection)
 * ------------------------------------------------------------------------ */

/* a block in the allocator: the 16-byte header in front of every block */
#define PG_STRUCT_BLOCK(X) \
    X(pg_block, uint32_t, magic, , "immutable while allocated") \
    X(pg_block, uint32_t, cls, , "immutable: size class") \
    X(pg_block, uint64_t, next, , "free list link; atomic while free")

/* every shared object starts with this header */
#define PG_STRUCT_OBJHDR(X) \
    X(pg_objhdr, uint32_t, kind, , "immutable while live") \
    X(pg_objhdr, uint32_t, refcnt, , "atomic: one per P intern entry + one per payload") \
    X(pg_objhdr, uint32_t, gen, , "atomic: bumped when freed") \
    X(pg_objhdr, uint32_t, lock, , "the object's spin/futex lock word")

/* a FIFO of sudogs (Go's waitq) -- protected by the owning object's lock */
#define PG_STRUCT_WAITQ(X) \
    X(pg_waitq, uint64_t, first, , "owner's lock") \
    X(pg_waitq, uint64_t, last, , "owner's lock")

/* Go's sudog: a G waiting on one object (several for a select) */
#define PG_STRUCT_SUDOG(X) \
    X(pg_sudog, uint64_t, g, , "immutable while enqueued") \
    X(pg_sudog, uint64_t, next, , "owner's lock") \
    X(pg_sudog, uint64_t, prev, , "owner's lock") \
    X(pg_sudog, uint64_t, obj, , "immutable while enqueued: channel/object") \
    X(pg_sudog, uint64_t, elem_off, , "payload block (send: ours; recv: handed to us)") \
    X(pg_sudog, uint64_t, elem_len, , "payload length, or weight for semaphores") \
    X(pg_sudog, int32_t, case_idx, , "immutable: select case index, -1 otherwise") \
    X(pg_sudog, uint32_t, is_select, , "immutable") \
    X(pg_sudog, uint32_t, queued, , "owner's lock: 1 while on a waitq") \
    X(pg_sudog, uint32_t, pad, , "") \
    X(pg_sudog, uint64_t, q, , "immutable while enqueued: the waitq it is on")

/* a goroutine record (Go's g) */
#define PG_STRUCT_G(X) \
    X(pg_g, uint64_t, goid, , "immutable") \
    X(pg_g, uint32_t, status, , "atomic (Gstatus)") \
    X(pg_g, int32_t, ownerp, , "owner P once started; -1 unstarted/any") \
    X(pg_g, uint32_t, kind, , "immutable (GK_*)") \
    X(pg_g, uint32_t, park, , "atomic (PARK_*, + the claimer P): the wake ticket; futex word for threads") \
    X(pg_g, uint32_t, waitreason, , "owner P") \
    X(pg_g, uint32_t, wake_res, , "written by the claimer before ready (WAKE_*)") \
    X(pg_g, int32_t, wake_case, , "written by the claimer before ready") \
    X(pg_g, uint32_t, flags, , "GF_*: GF_LOCAL set at creation; GF_STARTED set by the starting P (owner P after)") \
    X(pg_g, uint64_t, waitsince, , "owner P: CLOCK_MONOTONIC ns") \
    X(pg_g, uint64_t, schedlink, , "run queue / ready list link (queue's protocol)") \
    X(pg_g, uint64_t, fn_off, , "immutable until started: encoded (fn, args)") \
    X(pg_g, uint64_t, fn_len, , "immutable until started") \
    X(pg_g, uint64_t, wake_off, , "payload handed over by the claimer") \
    X(pg_g, uint64_t, wake_len, , "payload length handed over") \
    X(pg_g, uint32_t, wake_inl, , "1 = the handed-over bytes are in wake_buf") \
    X(pg_g, uint32_t, wake_pad, , "") \
    X(pg_g, uint8_t, wake_buf, [PG_INLINE], "small hand-offs, written by the claimer") \
    X(pg_g, uint64_t, sel, , "owner P: block of select sudogs while parked") \
    X(pg_g, uint64_t, parent, , "immutable: goid of the creator") \
    X(pg_g, uint64_t, site, , "immutable: created-by text (NUL-terminated, interned per call site), 0 none") \
    X(pg_g, pg_sudog_t, sd, , "the G's own sudog for single-object waits")

/* a P: run queue, ready list, sleep state */
#define PG_STRUCT_P(X) \
    X(pg_p, uint32_t, runqhead, , "atomic: consumers CAS (owner and thieves)") \
    X(pg_p, uint32_t, runqtail, , "atomic: only the owner stores (release)") \
    X(pg_p, uint64_t, runnext, , "atomic: owner sets, thieves CAS") \
    X(pg_p, uint64_t, runq, [PG_RUNQ], "slots between head and tail; see runqput") \
    X(pg_p, uint64_t, readyq, , "atomic: Treiber stack of readied Gs (many producers)") \
    X(pg_p, uint64_t, privhead, , "owner P: readied Gs in FIFO order") \
    X(pg_p, uint64_t, privtail, , "owner P") \
    X(pg_p, uint32_t, state, , "atomic (P_*): sleep protocol, see pg_p_idle") \
    X(pg_p, int32_t, pid, , "owner P") \
    X(pg_p, uint64_t, schedtick, , "owner P: goroutines run") \
    X(pg_p, uint64_t, syscalltick, , "owner P: pg.blocking calls") \
    X(pg_p, uint64_t, ntimers, , "owner P: pending timers on its loop") \
    X(pg_p, uint64_t, nexternal, , "owner P: blocking threads, await_, user threads") \
    X(pg_p, uint64_t, nlive, , "owner P: goroutines started here and not dead") \
    X(pg_p, uint32_t, dumpreq, , "atomic: P0 asks for a goroutine dump (a sequence number)") \
    X(pg_p, uint32_t, dumpack, , "atomic: the P answered dumpreq (release after dump_*)") \
    X(pg_p, uint64_t, dump_off, , "owner P: block with its dump text") \
    X(pg_p, uint64_t, dump_len, , "owner P") \
    X(pg_p, uint32_t, gone, , "atomic: PG_GONE_DIED once the death watch saw this P's process end, PG_GONE_LEFT once it left the run itself (never cleared)") \
    X(pg_p, int32_t, exit_status, , "written by the death watch before gone: wait status, -1 unknown") \
    X(pg_p, uint64_t, lastsched, , "owner P and the waker that woke it store, others load (atomic): CLOCK_MONOTONIC ns of its last findRunnable or wake-up; START_GRACE_NS after the run began until its first") \
    X(pg_p, uint32_t, inbox_lock, , "lock word of the inbox (owner-tagged)") \
    X(pg_p, uint32_t, inbox_n, , "inbox lock (read racily as load)") \
    X(pg_p, uint64_t, inbox_head, , "inbox lock: unstarted Gs placed here by other Ps, FIFO through schedlink") \
    X(pg_p, uint64_t, inbox_tail, , "inbox lock") \
    X(pg_p, uint32_t, preempt, , "atomic: sysmon's preemption requests (a sequence number)") \
    X(pg_p, uint32_t, sysreq, , "atomic: reason bits (SYS_*) of sysmon's last signal") \
    X(pg_p, uint32_t, busy, , "owner P: recent busy fraction of its hub, permille") \
    X(pg_p, uint32_t, nlocal, , "owner P: goroutines runnable in the hub's own queues (sysmon, schedtrace)") \
    X(pg_p, uint64_t, npreempt, , "owner P: goroutines preempted (time slice or async)") \
    X(pg_p, uint64_t, nplaced, , "atomic: goroutines other Ps placed here") \
    X(pg_p, uint64_t, nstolen, , "owner P: goroutines this P stole") \
    X(pg_p, uint32_t, ack, , "owner P stores (release): flags its hub has acted on (ACK_*)") \
    X(pg_p, uint32_t, tlock, , "lock word of the timer heap (owner-tagged)") \
    X(pg_p, uint64_t, theap, , "timer lock: block of heap entries") \
    X(pg_p, uint32_t, tn, , "timer lock: entries in the heap") \
    X(pg_p, uint32_t, tcap, , "timer lock: capacity of theap") \
    X(pg_p, uint64_t, twhen, , "atomic: when of the earliest entry (ns), 0 none") \
    X(pg_p, uint32_t, tgen, , "atomic futex word: bumped to wake this P's sysmon") \
    X(pg_p, uint32_t, nready, , "atomic: started Gs on readyq/privhead, readied and not yet resumed (diagnostics)") \
    X(pg_p, uint64_t, nnetpoll, , "owner P: goroutines parked in its netpoller (_runtime/netpoll.py; schedtrace)") \
    X(pg_p, uint32_t, exiting, , "owner P stores, its sysmon loads: 1 once main finished (P0 only: Go's program is over, the hub must get the P back)") \
    X(pg_p, uint32_t, pad32, , "") \
    X(pg_p, uint64_t, pad, [1], "size to a cache-line multiple")

/* ---- synctest's virtual clock (shm/synctest.c, parago/_runtime/vclock.py) ----
 * Words of the arena header, after the P array (their place keeps the P
 * array's alignment).  vclock is 0 outside pg.synctest.run: every timer
 * then runs on CLOCK_MONOTONIC (pg_nanotime, pg_atomic.h). */
#define PG_SYNCTEST_EPOCH 946684800ull /* s: 2000-01-01 00:00:00 UTC, where Go's bubble clock starts */
#define PG_STRUCT_ARENA_SYNCTEST(X) \
    X(pg_arena, uint64_t, vclock, , "atomic: synctest's virtual CLOCK_MONOTONIC ns (0: real time); only P0's deadlock check moves it") \
    X(pg_arena, uint64_t, vbase, , "immutable: vclock when the run started (pg.now() = 2000-01-01 UTC + vclock - vbase)") \
    X(pg_arena, uint64_t, vwaiter, , "atomic: the channel synctest.wait() parks on (the word holds a reference), 0 none") \
    X(pg_arena, int64_t, vfiring, , "atomic: sysmons firing due timers now (the clock waits for them)")

/* the arena header at offset 0 */
#define PG_STRUCT_ARENA(X) \
    X(pg_arena, uint64_t, magic, , "immutable") \
    X(pg_arena, uint32_t, abi, , "immutable") \
    X(pg_arena, uint32_t, layout_hash, , "immutable") \
    X(pg_arena, uint64_t, size, , "immutable: the limit (PARAGO_ARENA_SIZE)") \
    X(pg_arena, uint64_t, nonce, , "immutable: this run's id") \
    X(pg_arena, uint64_t, committed, , "atomic; grows under commit_lock") \
    X(pg_arena, uint64_t, bump, , "atomic: first never-used byte") \
    X(pg_arena, uint64_t, inuse, , "atomic: bytes in live blocks") \
    X(pg_arena, uint32_t, commit_lock, , "lock word for fallocate") \
    X(pg_arena, uint32_t, nprocs, , "immutable") \
    X(pg_arena, uint64_t, freelist, [PG_NCLASS], "atomic: tagged heads (tag<<32 | off>>4)") \
    X(pg_arena, uint64_t, goidgen, , "atomic") \
    X(pg_arena, int64_t, ngoroutines, , "atomic: live user goroutines") \
    X(pg_arena, int64_t, nsystem, , "atomic: live system goroutines") \
    X(pg_arena, int64_t, nparked, , "atomic: goroutines parked on arena objects") \
    X(pg_arena, uint64_t, epoch, , "atomic: bumped by every park and ready") \
    X(pg_arena, uint32_t, npidle, , "atomic: Ps sleeping") \
    X(pg_arena, uint32_t, nspinning, , "atomic: Ps spinning") \
    X(pg_arena, uint32_t, shutdown, , "atomic: 1 once teardown began") \
    X(pg_arena, uint32_t, panicking, , "atomic: 0 none, 1 recording, 2 recorded") \
    X(pg_arena, uint64_t, panic_off, , "written by the panic winner before panicking=2") \
    X(pg_arena, uint64_t, panic_len, , "as panic_off") \
    X(pg_arena, uint32_t, gq_lock, , "lock word of the global run queue") \
    X(pg_arena, uint32_t, gq_size, , "gq lock") \
    X(pg_arena, uint64_t, gq_head, , "gq lock") \
    X(pg_arena, uint64_t, gq_tail, , "gq lock") \
    X(pg_arena, uint32_t, fail_kind, , "written by the failure winner before panicking=2 (FAIL_*)") \
    X(pg_arena, int32_t, lost_p, , "as fail_kind: the P that died (FAIL_LOST)") \
    X(pg_arena, int64_t, ntimers, , "atomic: armed timers program-wide (the deadlock check)") \
    X(pg_arena, uint32_t, ctx_lock, , "lock word of every context's parent/children links") \
    X(pg_arena, uint32_t, nlost, , "atomic: Ps marked gone") \
    X(pg_arena, uint64_t, nraces, , "atomic: --race findings program-wide") \
    X(pg_arena, uint64_t, pad, [PG_ARENA_PAD], "keeps the P array cache aligned") \
    X(pg_arena, pg_p_t, p, [PG_MAXP], "per P") \
    PG_STRUCT_ARENA_SYNCTEST(X)

/* a channel (Go's hchan) */
#define PG_STRUCT_CHAN(X) \
    X(pg_chan, pg_objhdr_t, hdr, , "see pg_objhdr") \
    X(pg_chan, uint32_t, closed, , "chan lock (read racily for ch.closed)") \
    X(pg_chan, uint32_t, cap, , "immutable") \
    X(pg_chan, uint32_t, qcount, , "chan lock (read racily for len)") \
    X(pg_chan, uint32_t, slotsize, , "immutable") \
    X(pg_chan, uint32_t, sendx, , "chan lock") \
    X(pg_chan, uint32_t, recvx, , "chan lock") \
    X(pg_chan, uint64_t, buf, , "immutable: ring of cap slots") \
    X(pg_chan, uint64_t, type_off, , "immutable: pickled element type, 0 untyped") \
    X(pg_chan, uint64_t, type_len, , "immutable") \
    X(pg_chan, pg_waitq_t, recvq, , "chan lock") \
    X(pg_chan, pg_waitq_t, sendq, , "chan lock")

/* one slot of a channel ring: inline bytes, or a payload block */
#define PG_STRUCT_SLOT(X) \
    X(pg_slot, uint32_t, len, , "chan lock") \
    X(pg_slot, uint32_t, inl, , "chan lock: 1 = bytes inline") \
    X(pg_slot, uint64_t, off, , "chan lock: payload block when not inline") \
    X(pg_slot, uint8_t, data, [PG_INLINE], "chan lock")

/* The kind-specific words of a sync record (pg_sync.u, by skind): one
 * struct per kind, each field with what protects it.  The first word of
 * every kind is the one ``value`` Python reads (views.sync_value). */
#define PG_STRUCT_WG(X) \
    X(pg_wg, int64_t, count, , "obj lock (read racily by wg.value())")
#define PG_STRUCT_MUTEX(X) \
    X(pg_mutex, int64_t, locked, , "atomic: 0/1; a locker's fast path CASes 0->1 without the obj lock; unlock stores it") \
    X(pg_mutex, int64_t, nwait, , "seq_cst: raised under the obj lock before a waiter is queued, read by unlock's fast path without it (Dekker pair with locked)") \
    X(pg_mutex, uint32_t, starving, , "obj lock: Go's starvation mode (unlock hands the lock to the oldest waiter)") \
    X(pg_mutex, uint32_t, pad, , "")
#define PG_STRUCT_RW(X) \
    X(pg_rw, int64_t, writer, , "obj lock: 1 while a writer holds it") \
    X(pg_rw, int64_t, readers, , "obj lock: readers holding it") \
    X(pg_rw, int64_t, wwait, , "obj lock: writers waiting (new readers queue behind them)")
#define PG_STRUCT_SEMA(X) \
    X(pg_sema, int64_t, size, , "immutable") \
    X(pg_sema, int64_t, held, , "obj lock: units acquired")
#define PG_STRUCT_ONCE(X) \
    X(pg_once, int64_t, state, , "obj lock: 0 new, 1 running, 2 done (the result in res_off/res_len)")
#define PG_STRUCT_ATOM(X) \
    X(pg_atom, int64_t, value, , "atomic (seq_cst); never under the obj lock")
#define PG_STRUCT_BUF(X) \
    X(pg_buf, int64_t, nbytes, , "immutable: written before the handle exists anywhere")

/* the one record behind every sync object (kinds: PG_SYNC_KIND_LIST) */
#define PG_STRUCT_SYNC(X) \
    X(pg_sync, pg_objhdr_t, hdr, , "see pg_objhdr") \
    X(pg_sync, uint32_t, skind, , "immutable (SK_*)") \
    X(pg_sync, uint32_t, pad, , "") \
    X(pg_sync, pg_sync_u, u, , "by skind: pg_wg, pg_mutex, pg_rw, pg_sema, pg_once, pg_atom, pg_buf") \
    X(pg_sync, uint64_t, res_off, , "obj lock: Once's result; immutable: a Buffer's data, a Counter's shards") \
    X(pg_sync, uint64_t, res_len, , "as res_off") \
    X(pg_sync, pg_waitq_t, q1, , "obj lock: waiters (RWMutex: readers)") \
    X(pg_sync, pg_waitq_t, q2, , "obj lock: RWMutex's waiting writers")

#define PG_SYNC_KIND_LIST(X) \
    X(SK_WAITGROUP, 1) X(SK_MUTEX, 2) X(SK_RWMUTEX, 3) X(SK_SEMA, 4) \
    X(SK_COND, 5) X(SK_ONCE, 6) X(SK_ATOMIC, 7) X(SK_BUFFER, 8) X(SK_TIMER, 9) \
    X(SK_EVENT, 10)
enum pg_sync_kind { PG_SYNC_KIND_LIST(PG_ENUM_ITEM) };

/* ---- C declarations generated from the lists ---- */
#define PG_DECL_FIELD(s, t, n, dims, doc) t n dims;

typedef struct pg_block { PG_STRUCT_BLOCK(PG_DECL_FIELD) } pg_block_t;
typedef struct pg_objhdr { PG_STRUCT_OBJHDR(PG_DECL_FIELD) } pg_objhdr_t;
typedef struct pg_waitq { PG_STRUCT_WAITQ(PG_DECL_FIELD) } pg_waitq_t;
typedef struct pg_sudog { PG_STRUCT_SUDOG(PG_DECL_FIELD) } pg_sudog_t;
typedef struct pg_g { PG_STRUCT_G(PG_DECL_FIELD) } pg_g_t;
typedef struct pg_p { PG_STRUCT_P(PG_DECL_FIELD) } pg_p_t;
typedef struct pg_arena { PG_STRUCT_ARENA(PG_DECL_FIELD) } pg_arena_t;
typedef struct pg_chan { PG_STRUCT_CHAN(PG_DECL_FIELD) } pg_chan_t;
typedef struct pg_slot { PG_STRUCT_SLOT(PG_DECL_FIELD) } pg_slot_t;
typedef struct pg_wg { PG_STRUCT_WG(PG_DECL_FIELD) } pg_wg_t;
typedef struct pg_mutex { PG_STRUCT_MUTEX(PG_DECL_FIELD) } pg_mutex_t;
typedef struct pg_rw { PG_STRUCT_RW(PG_DECL_FIELD) } pg_rw_t;
typedef struct pg_sema { PG_STRUCT_SEMA(PG_DECL_FIELD) } pg_sema_t;
typedef struct pg_once { PG_STRUCT_ONCE(PG_DECL_FIELD) } pg_once_t;
typedef struct pg_atom { PG_STRUCT_ATOM(PG_DECL_FIELD) } pg_atom_t;
typedef struct pg_buf { PG_STRUCT_BUF(PG_DECL_FIELD) } pg_buf_t;
typedef union pg_sync_u {
    pg_wg_t wg;
    pg_mutex_t mu;
    pg_rw_t rw;
    pg_sema_t sema;
    pg_once_t once;
    pg_atom_t atom;
    pg_buf_t buf;
    int64_t value; /* the first word of every kind */
} pg_sync_u;
typedef struct pg_sync { PG_STRUCT_SYNC(PG_DECL_FIELD) } pg_sync_t;

/* ---- timers and contexts (shm/timer.c; fired by each P's sysmon, shm/sysmon.c) ---- */

/* the kinds of shared object that timer.c adds (pg_objhdr.kind, after PG_OBJ_LIST) */
#define PG_TOBJ_LIST(X) X(OBJ_TIMER, 5) X(OBJ_CTX, 6)

/* what a firing timer does (pg_timer.tkind) */
#define PG_TKIND_LIST(X) \
    X(TK_SEND, 1)   /* send time.time() on its channel, without blocking (pg.after, Timer) */ \
    X(TK_TICK, 2)   /* the same, then re-arm one period later (Ticker) */ \
    X(TK_CTX, 3)    /* cancel its context with CTX_DEADLINE */ \
    X(TK_READY, 4)  /* ready the G parked in pg.sleep */ \
    X(TK_FUNC, 5)   /* start a goroutine running its (fn, args) (pg.after_func) */
/* pg_timer.flags (immutable) */
#define PG_TFLAG_LIST(X) \
    X(TF_ASYNC, 1)  /* PARAGO_DEBUG=asynctimerchan=1: Go 1.22's buffered channel, never drained */

/* the low two bits of pg_timer.state (seq << 2 | T_*); only the CAS
 * seq|T_PENDING -> seq|T_RUNNING fires an arming (a channel timer's: the
 * move out of seq|T_PENDING under its channel's lock, shm/timer.c) */
#define PG_TSTATE_LIST(X) X(T_PENDING, 0) X(T_FIRED, 1) X(T_STOPPED, 2) X(T_RUNNING, 3)

/* a context's error (pg_ctx.err): set once, before its done channel is closed */
#define PG_CTXERR_LIST(X) X(CTX_NONE, 0) X(CTX_CANCELED, 1) X(CTX_DEADLINE, 2)

enum pg_tobj { PG_TOBJ_LIST(PG_ENUM_ITEM) };
enum pg_tkind { PG_TKIND_LIST(PG_ENUM_ITEM) };
enum pg_tflag { PG_TFLAG_LIST(PG_ENUM_ITEM) };
enum pg_tstate { PG_TSTATE_LIST(PG_ENUM_ITEM) };
enum pg_ctxerr { PG_CTXERR_LIST(PG_ENUM_ITEM) };

/* a timer (Go's runtime timer), refcounted: held by its Python handle (if
 * any) and by each heap entry that names it */
#define PG_STRUCT_TIMER(X) \
    X(pg_timer, pg_objhdr_t, hdr, , "see pg_objhdr (the lock word is unused)") \
    X(pg_timer, uint64_t, state, , "atomic: seq << 2 | T_*") \
    X(pg_timer, uint32_t, tkind, , "immutable (TK_*)") \
    X(pg_timer, uint32_t, flags, , "immutable (TF_*)") \
    X(pg_timer, uint64_t, period, , "atomic: TK_TICK's period (ns); reset stores it before re-arming") \
    X(pg_timer, uint64_t, target, , "atomic: chan (TK_SEND/TK_TICK) or ctx (TK_CTX) held by a reference, " \
      "0 once released; TK_READY: the sleeping G (no reference: the sleeper waits out T_RUNNING); " \
      "TK_FUNC: its pg_tfunc block (owned)")
/* TK_FUNC's target: one block, this header then nrefs u64 handle offsets
 * (the timer holds a reference on each) then fn_len bytes of encoded
 * (fn, args, kw) -- what pg_go copies into each goroutine it starts */
#define PG_STRUCT_TFUNC(X) \
    X(pg_tfunc, uint64_t, fn_len, , "immutable") \
    X(pg_tfunc, uint64_t, nrefs, , "immutable") \
    X(pg_tfunc, uint64_t, site, , "immutable: created-by text of the after_func call (interned), 0 none") \
    X(pg_tfunc, uint64_t, parent, , "immutable: goid of the after_func caller")

/* one entry of a P's timer heap (pg_p.theap: a min-heap on when) */
#define PG_STRUCT_TENTRY(X) \
    X(pg_tentry, uint64_t, when, , "timer lock: CLOCK_MONOTONIC ns") \
    X(pg_tentry, uint64_t, timer, , "timer lock: the timer (the entry holds a reference on it)") \
    X(pg_tentry, uint64_t, seq, , "timer lock: the arming it fires; stale once the timer's state moved on")

/* a cancelable context (Go's cancelCtx): the tree of links lives under
 * arena.ctx_lock; a parent's children list holds a reference on each child */
#define PG_STRUCT_CTX(X) \
    X(pg_ctx, pg_objhdr_t, hdr, , "see pg_objhdr (the lock word is unused)") \
    X(pg_ctx, uint32_t, err, , "atomic (CTX_*): set once under ctx lock, before done is closed") \
    X(pg_ctx, uint32_t, pad, , "") \
    X(pg_ctx, uint64_t, done, , "immutable: its done channel (a reference)") \
    X(pg_ctx, uint64_t, timer, , "immutable: its deadline's TK_CTX timer (a reference), 0 none") \
    X(pg_ctx, uint64_t, parent, , "ctx lock: the context whose children list holds us, 0 none") \
    X(pg_ctx, uint64_t, child, , "ctx lock: first child") \
    X(pg_ctx, uint64_t, next, , "ctx lock: next sibling") \
    X(pg_ctx, uint64_t, prev, , "ctx lock: previous sibling") \
    X(pg_ctx, uint64_t, wl, , "ctx lock: worklist link while one cancel collects its subtree") \
    X(pg_ctx, uint64_t, cause, , "set once under ctx lock before err (seq_cst), then immutable: the " \
      "cause (a Buffer object holding its encoding; a reference), 0 none (Go's Cause: err)") \
    X(pg_ctx, uint64_t, dcause, , "immutable: the cause its own deadline cancels with (a reference), 0 none")

typedef struct pg_timer { PG_STRUCT_TIMER(PG_DECL_FIELD) } pg_timer_t;
typedef struct pg_tfunc { PG_STRUCT_TFUNC(PG_DECL_FIELD) } pg_tfunc_t;
typedef struct pg_tentry { PG_STRUCT_TENTRY(PG_DECL_FIELD) } pg_tentry_t;
typedef struct pg_ctx { PG_STRUCT_CTX(PG_DECL_FIELD) } pg_ctx_t;

_Static_assert(offsetof(pg_timer_t, hdr) == 0 && offsetof(pg_ctx_t, hdr) == 0,
               "objects start with their header");
_Static_assert(sizeof(pg_tentry_t) == 24, "heap entries are packed");

/* ---- pg.Map: Go's sync.Map in the arena (shm/map.c) ----
 *
 * A map is PG_MAP_NSHARD shards, each its own chained hash table under its
 * own owner-tagged lock: operations on keys of different shards never
 * share a lock, and a shard grows (or shrinks) alone, under its lock, so
 * no resize stops the whole map.  Keys arrive canonically encoded (equal
 * keys, equal bytes: parago/_map.py) with a kind tag (MK_*); C hashes them
 * (seeded with the run's nonce), compares bytes and never decodes. */
#define PG_MOBJ_LIST(X) X(OBJ_MAP, 16) /* pg_objhdr.kind; 16: clear of the kinds other files add */
#define PG_MAP_SHARD_BITS 6
#define PG_MAP_NSHARD (1u << PG_MAP_SHARD_BITS)
#define PG_MAP_MINBUCKETS 8u /* a shard's first bucket array */

/* pg_map_write's operations */
#define PG_MAPOP_LIST(X) \
    X(MAP_STORE, 1) X(MAP_SWAP, 2) X(MAP_LOAD_OR_STORE, 3) X(MAP_LOAD_AND_DELETE, 4) \
    X(MAP_DELETE, 5) X(MAP_CAS, 6) X(MAP_CAD, 7)

/* key kinds: the tag hashed and compared with the key's bytes.  MK_EXACT
 * marks a range record whose key bytes are a self-tagged exact encoding
 * (a key holding a bool, kept as first stored, as a dict keeps it) */
#define PG_MAPKEY_LIST(X) \
    X(MK_EXACT, 0) X(MK_STR, 1) X(MK_BYTES, 2) X(MK_INT, 3) X(MK_NONE, 4) X(MK_TUPLE, 5) X(MK_BOOL, 6)

enum pg_mobj { PG_MOBJ_LIST(PG_ENUM_ITEM) };
enum pg_mapop { PG_MAPOP_LIST(PG_ENUM_ITEM) };
enum pg_mapkey { PG_MAPKEY_LIST(PG_ENUM_ITEM) };

#define PG_STRUCT_MAP(X) \
    X(pg_map, pg_objhdr_t, hdr, , "see pg_objhdr (the lock word is unused: each shard has its own)") \
    X(pg_map, uint64_t, shards, , "immutable: PG_MAP_NSHARD pg_mapshard records, cache aligned, inside shards_blk") \
    X(pg_map, uint64_t, shards_blk, , "immutable: the block that holds them")

/* one shard: a cache line, so Ps working on different shards share none */
#define PG_STRUCT_MAPSHARD(X) \
    X(pg_mapshard, uint32_t, lock, , "the shard's lock word (owner-tagged, pg_lock)") \
    X(pg_mapshard, uint32_t, nbuckets, , "shard lock: a power of two, 0 before the first store") \
    X(pg_mapshard, uint64_t, count, , "shard lock; stored relaxed, read racily (len)") \
    X(pg_mapshard, uint64_t, buckets, , "shard lock: block of nbuckets chain heads (entry offsets)") \
    X(pg_mapshard, uint64_t, seq, , "shard lock: bumped by every value change (compare_and_swap tickets)") \
    X(pg_mapshard, uint64_t, pad, [4], "to a cache line")

/* one key: its canonical bytes (klen), then its exact bytes (xlen), follow
 * the record in the same block */
#define PG_STRUCT_MAPENT(X) \
    X(pg_mapent, uint64_t, next, , "shard lock: bucket chain link") \
    X(pg_mapent, uint64_t, hash, , "immutable") \
    X(pg_mapent, uint64_t, seq, , "shard lock: the shard's seq when val was set") \
    X(pg_mapent, uint64_t, val, , "shard lock: the value (a pg_mapval block the entry owns)") \
    X(pg_mapent, uint32_t, ktag, , "immutable (MK_*)") \
    X(pg_mapent, uint32_t, klen, , "immutable: canonical key bytes") \
    X(pg_mapent, uint32_t, xlen, , "immutable: exact key bytes after them, 0 = the canonical ones decode exactly") \
    X(pg_mapent, uint32_t, pad, , "")

/* a stored value: nref handle offsets (the value holds an arena reference
 * on each) then vlen encoded bytes follow the record in the same block */
#define PG_STRUCT_MAPVAL(X) \
    X(pg_mapval, uint64_t, vlen, , "immutable") \
    X(pg_mapval, uint32_t, nref, , "immutable") \
    X(pg_mapval, uint32_t, pad, , "")

/* one key/value of pg_map_range's output (8-aligned): nref handle offsets
 * (a reference each, taken for the reader), the key bytes padded to 8, the
 * value bytes padded to 8 */
#define PG_STRUCT_MAPREC(X) \
    X(pg_maprec, uint32_t, ktag, , "MK_*; MK_EXACT: the key bytes are self-tagged") \
    X(pg_maprec, uint32_t, klen, , "") \
    X(pg_maprec, uint32_t, nref, , "") \
    X(pg_maprec, uint32_t, pad, , "") \
    X(pg_maprec, uint64_t, vlen, , "")

typedef struct pg_map { PG_STRUCT_MAP(PG_DECL_FIELD) } pg_map_t;
typedef struct pg_mapshard { PG_STRUCT_MAPSHARD(PG_DECL_FIELD) } pg_mapshard_t;
typedef struct pg_mapent { PG_STRUCT_MAPENT(PG_DECL_FIELD) } pg_mapent_t;
typedef struct pg_mapval { PG_STRUCT_MAPVAL(PG_DECL_FIELD) } pg_mapval_t;
typedef struct pg_maprec { PG_STRUCT_MAPREC(PG_DECL_FIELD) } pg_maprec_t;

_Static_assert(offsetof(pg_map_t, hdr) == 0, "objects start with their header");
_Static_assert(sizeof(pg_mapshard_t) == 64, "a shard is one cache line");
_Static_assert(sizeof(pg_mapent_t) % 8 == 0 && sizeof(pg_mapval_t) % 8 == 0 &&
                   sizeof(pg_maprec_t) % 8 == 0,
               "map records keep 8-byte alignment");

#define PG_MAP_STRUCTS(X) \
    PG_STRUCT_MAP(X) PG_STRUCT_MAPSHARD(X) PG_STRUCT_MAPENT(X) PG_STRUCT_MAPVAL(X) PG_STRUCT_MAPREC(X)
#define PG_MAP_CONSTS(X) \
    PG_MOBJ_LIST(X) PG_MAPOP_LIST(X) PG_MAPKEY_LIST(X) X(PG_MAP_NSHARD, PG_MAP_NSHARD)

#define PG_ALL_STRUCTS(X) \
    PG_MAP_STRUCTS(X) \
    PG_STRUCT_BLOCK(X) PG_STRUCT_OBJHDR(X) PG_STRUCT_WAITQ(X) \
    PG_STRUCT_SUDOG(X) PG_STRUCT_G(X) PG_STRUCT_P(X) PG_STRUCT_ARENA(X) \
    PG_STRUCT_CHAN(X) PG_STRUCT_SLOT(X) PG_STRUCT_SYNC(X) PG_STRUCT_WG(X) PG_STRUCT_MUTEX(X) \
    PG_STRUCT_RW(X) PG_STRUCT_SEMA(X) PG_STRUCT_ONCE(X) PG_STRUCT_ATOM(X) PG_STRUCT_BUF(X) \
    PG_STRUCT_TIMER(X) PG_STRUCT_TFUNC(X) PG_STRUCT_TENTRY(X) PG_STRUCT_CTX(X)

/* atomic.Value (atomics.c): a sync record of its own kind, so that its free
 * drops the references its stored block holds (pg_value_free) */
#define PG_VALUE_CONSTS(X) X(SK_VALUE, 32) /* pg_sync.skind; 32: clear of PG_SYNC_KIND_LIST */
enum pg_value_kind { PG_VALUE_CONSTS(PG_ENUM_ITEM) };

#define PG_ALL_CONSTS(X) \
    PG_MAP_CONSTS(X) PG_VALUE_CONSTS(X) \
    PG_STATUS_LIST(X) PG_GSTATUS_LIST(X) PG_PARK_LIST(X) PG_GKIND_LIST(X) PG_GFLAG_LIST(X) PG_START_LIST(X) \
    PG_WAKE_LIST(X) PG_OBJ_LIST(X) PG_PSTATE_LIST(X) PG_SYNC_KIND_LIST(X) \
    PG_SYSREQ_LIST(X) PG_ACK_LIST(X) PG_FAIL_LIST(X) PG_SELECT_LIST(X) PG_MUTEX_LIST(X) \
    PG_TOBJ_LIST(X) PG_TKIND_LIST(X) PG_TFLAG_LIST(X) PG_TSTATE_LIST(X) PG_CTXERR_LIST(X) \
    X(PG_MAXP, PG_MAXP) X(PG_RUNQ, PG_RUNQ) X(PG_NCLASS, PG_NCLASS) \
    X(PG_SITE, PG_SITE) X(PG_INLINE, PG_INLINE) X(PG_ABI_VERSION, PG_ABI_VERSION) \
    X(BLOCK_MAGIC, BLOCK_MAGIC) X(START_GRACE_NS, START_GRACE_NS)

/* ---- a P out of the run (pg_p.gone; shm/watch.c): no lock word tagged
 * by it is ever waited on, no waker targets it ---- */
#define PG_GONE_DIED 1u /* the death watch saw its process end (P0's pidfd; P0: the death pipe) */
#define PG_GONE_LEFT 2u /* it left the run itself (pg_p_leave): sysmon joined, hub done */

/* ---- limits and tunings one C file uses (not exported to Python) ---- */
#define BLOCK_MAGIC 0xb10cb10cu     /* arena.c: a live block's header (pg_free checks it; views.live_blocks walks them) */
#define VAL_HDR 8u                  /* atomics.c: a stored value's header: u32 tlen, u32 nrefs */
#define SEL_MAX 1024                /* chan.c: the most cases one select takes */
#define STARVE_NS 1000000ull        /* sync.c: Go's starvationThresholdNs (a mutex turns fair) */
#define HEAP_MIN 64                 /* timer.c: entries: the smallest timer heap block */

/* ---- the arena lock (lock.h, lock.c) ---- */
#define PG_LOCK_WAITERS 1u                 /* the word's waiters bit: the unlocker wakes */
#define PG_LOCK_NOP 0x7ffffffeu            /* owner index of a process that is no P */
#define LOCK_SPIN 200                      /* lock.c: spins before the futex (holds are ~100s of ns) */
#define LOCK_STEP_NS (2 * 1000 * 1000ull)  /* lock.c: each futex wait: bounded */
#define NMAPS 8                            /* lock.c: arena mappings remembered (which arena a lock is in) */

/* ---- the death watch (watch.c) and the sysmon thread (sysmon.c) ---- */
#define DEATH_GRACE_NS (50 * 1000 * 1000ull) /* P0 gone: a P's hub gets this long to see PG_LOST */
#define WATCH_RUNNING_NS 1000000ull          /* sysmon watches a running P every 1 ms */
#define WATCH_IDLE_NS 10000000ull            /* ... and an idle one every 10 ms */
#define START_GRACE_NS 50000000ull           /* sched.c: a starting P is no steal victim for 50 ms */
#define PREEMPT_NS 10000000ull               /* Go's forcePreemptNS: the time slice */
#define WAKE_IDLE_NS 1000000ull              /* queued work waits this long for an idle P */
#define PATIENCE_NS 100000000ull             /* the hub may take this long to notice a flag */

_Static_assert(sizeof(pg_block_t) == 16, "block header keeps 16-byte alignment");
_Static_assert(sizeof(pg_slot_t) == 64, "a slot is one cache line");
_Static_assert(sizeof(pg_p_t) % 64 == 0, "P records are cache-line multiples");
_Static_assert(offsetof(pg_arena_t, p) % 64 == 0, "P array is cache aligned");
_Static_assert(offsetof(pg_chan_t, hdr) == 0 && offsetof(pg_sync_t, hdr) == 0,
               "objects start with their header");

#endif
