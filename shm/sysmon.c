/*
 * sysmon.c -- one C thread per P process (Go's sysmon): fires the P's
 * timers and watches its hub, with no Python and no GIL, all signals
 * blocked.
 *
 *   sysmon thread (this file)                     the P's hub thread (Python)
 *   ------------------------------------------    ------------------------------
 *   futex-wait on pg_p.tgen until the earliest    arm a timer: push, tgen++,
 *   timer (twhen) or the next watch               futex wake (timer.c)
 *   fire due timers (pg_timers_run); compact a
 *   heap that is mostly stale (pg_timers_tidy)
 *   watch, every 1 ms while the P is P_RUNNING
 *   (10 ms otherwise), sampling pg_p.schedtick:
 *   (a) a goroutine ran >= 10 ms and another is    SIGUSR2 handler (sysmon.py):
 *       runnable (or main has finished: P0's      bits = xchg(sysreq, 0);
 *       pg_p.exiting): preempt++, sysreq |=        rt.on_sysmon(bits, frame)
 *       PREEMPT, SIGUSR2 (again every 10 ms while stuck)
 *   (b) stuck >= 1 ms with unstarted Gs queued:
 *       wake an idle P to take them (pg_wake_idle)
 *   (c) teardown (arena.shutdown) not acked by    the hub stores pg_p.ack bits
 *       the hub for 100 ms, or the hub stuck in   when it acts on the flags
 *       a goroutine for 100 ms while it is on:
 *       sysreq |= SHUTDOWN, SIGUSR2; P0 only, the
 *       same for a recorded failure (FAILURE), and
 *       SHUTDOWN for a goroutine that kept the hub
 *       100 ms after main finished (pg_p.exiting)
 *
 * Teardown (arena.shutdown: main returned) fires no timer any more -- Go's
 * program is over -- so none is in flight while Ps leave; a stop request
 * (pg_sysmon_join) also ends any lock wait of this thread (PG_LOST: the
 * firing is dropped), and the join returns to Python in bounded steps.
 *
 * The signal is how C reaches Python: the handler runs in the hub thread
 * between two bytecodes of whatever goroutine holds the P.  The heap lock
 * is this process's; other Ps' locks are taken only for the few hundred ns
 * of a channel send or a context's cancellation (a lock whose owner P died
 * is PG_LOST: that firing is dropped, the run is being aborted) -- so
 * timers fire on time whatever the goroutines of this P do.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "pg_internal.h"

static struct {
    void *base;
    int p;
    int running;     /* hub thread only */
    uint32_t stop;   /* atomic: set by pg_sysmon_join */
    uint64_t stall_ns; /* test hook: sysmonstall (hub thread at start, then read only) */
    pthread_t thread;
    pthread_t hub;   /* the thread the signals go to */
} sm;

typedef struct {
    uint64_t tick, since;              /* schedtick as last seen changing, and when */
    uint64_t preempted, woke, signalled; /* when (a), (b), (c) last acted */
    uint64_t sd_since, fail_since;     /* since when a flag waits for its ack */
} watch_t;

/* unstarted goroutines wait on p: only these can move to another P */
static int unstarted_queued(pg_p_t *pp) {
    return pg_load_acq(&pp->runnext) || pg_load_acq(&pp->runqtail) != pg_load_acq(&pp->runqhead) ||
           pg_load_acq(&pp->inbox_n);
}

/* reach the hub: the reason bits first (the handler exchanges them) */
static void sysmon_signal(pg_p_t *pp, uint32_t bits) {
    uint32_t v = pg_load_rlx(&pp->sysreq);
    while (!pg_cas_sc(&pp->sysreq, &v, v | bits))
        ;
    pthread_kill(sm.hub, SIGUSR2);
}

/* a flag the hub must act on: signal after PATIENCE_NS without its ack,
 * or at once when the hub has been stuck in a goroutine that long */
static int flag_due(uint64_t *since, int raised, int acked, uint64_t stuck, uint64_t now) {
    if (!raised || acked) {
        *since = 0;
        return raised && stuck >= PATIENCE_NS;
    }
    if (!*since)
        *since = now;
    return now - *since >= PATIENCE_NS || stuck >= PATIENCE_NS;
}

static void sysmon_watch(void *base, int p, watch_t *w, uint64_t now) {
    pg_arena_t *a = ARENA(base);
    pg_p_t *pp = &a->p[p];
    uint64_t tick = pg_load_rlx(&pp->schedtick);
    if (tick != w->tick || pg_load_acq(&pp->state) != P_RUNNING) {
        w->tick = tick;
        w->since = now;
    }
    uint64_t stuck = now - w->since;
    /* main has finished (P0; until teardown takes over): Go's program is
     * over, but the hub runs on in whatever goroutine it resumed last, and
     * one that never parks (a busy loop, a select that always has a ready
     * case) would keep it for ever -- nothing else is runnable, so (a)
     * alone never asks it to yield */
    int exiting = pg_load_acq(&pp->exiting) && !pg_load_acq(&a->shutdown);
    /* (a) Go's retake: the running goroutine's time slice is over, or the
     * hub must get the P back to end the program */
    if (stuck >= PREEMPT_NS && now - w->preempted >= PREEMPT_NS &&
        (exiting || pg_p_has_runnable(base, p))) {
        w->preempted = now;
        pg_add_sc(&pp->preempt, 1);
        sysmon_signal(pp, SYS_PREEMPT);
    }
    /* (b) queued goroutines that could start elsewhere */
    if (stuck >= WAKE_IDLE_NS && now - w->woke >= WAKE_IDLE_NS && unstarted_queued(pp)) {
        w->woke = now;
        pg_wake_idle(base, p);
    }
    /* (c) the flags that end the program */
    uint32_t ack = pg_load_acq(&pp->ack), bits = 0;
    if (flag_due(&w->sd_since, pg_load_acq(&a->shutdown) != 0, (ack & ACK_SHUTDOWN) != 0, stuck, now))
        bits |= SYS_SHUTDOWN;
    if (p == 0 && flag_due(&w->fail_since, pg_load_acq(&a->panicking) == 2,
                           (ack & ACK_FAILURE) != 0, stuck, now))
        bits |= SYS_FAILURE;
    /* ... and a goroutine that does not yield to (a) (not at a safe point,
     * async preemption off) is unwound as teardown would (Shutdown) */
    if (exiting && stuck >= PATIENCE_NS)
        bits |= SYS_SHUTDOWN;
    if (bits && now - w->signalled >= PATIENCE_NS) {
        w->signalled = now;
        sysmon_signal(pp, bits);
    }
}

static void *sysmon_main(void *arg) {
    (void)arg;
    /* wake on time: the default 50 us of timer slack would be most of a
     * short timer's lateness */
    prctl(PR_SET_TIMERSLACK, 1ul, 0, 0, 0);
    prctl(PR_SET_NAME, "parago-sysmon", 0, 0, 0);
    /* best effort (needs CAP_SYS_NICE): it sleeps nearly always, and when a
     * timer is due it should not queue behind the busy goroutines it is
     * there to interrupt */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), -10);
    void *base = sm.base;
    int p = sm.p;
    pg_p_t *pp = &ARENA(base)->p[p];
    watch_t w = {0};
    /* a lock wait of this thread gives up once it is asked to stop: the
     * join in pg_sysmon_join never waits on another P's lock */
    pg_lock_abort_on(&sm.stop);
    w.tick = pg_load_rlx(&pp->schedtick);
    w.since = pg_nanotime_real();
    uint64_t next_watch = 0;
    while (!pg_load_acq(&sm.stop)) {
        /* tgen before twhen: an arming after this load changes tgen, so
         * the futex wait below returns at once instead of missing it.
         * Timers are on the timer clock (virtual in synctest, where only a
         * tgen wake moves it), the watch on the real one. */
        uint32_t gen = pg_load_acq(&pp->tgen);
        uint64_t now = pg_nanotime();
        uint64_t tw = pg_load_acq(&pp->twhen); /* pairs with heap_push's release */
        /* teardown (main returned: Go's program is over): no timer fires
         * into the run any more, so none is in flight once the Ps leave */
        if (pg_load_acq(&ARENA(base)->shutdown))
            tw = 0;
        if (tw && tw <= now) {
            /* synctest's clock waits until this firing is over
             * (pg_vclock_next reads twhen, then vfiring) */
            pg_add_sc(&ARENA(base)->vfiring, 1);
            pg_timers_run(base, p);
            pg_add_sc(&ARENA(base)->vfiring, -1);
            continue;
        }
        uint64_t rnow = pg_nanotime_real();
        if (rnow >= next_watch) {
            sysmon_watch(base, p, &w, rnow);
            pg_timers_tidy(base, p);
            next_watch =
                rnow + (pg_load_acq(&pp->state) == P_RUNNING ? WATCH_RUNNING_NS : WATCH_IDLE_NS);
        }
        uint64_t wait = next_watch - rnow;
        if (tw && tw - now < wait)
            wait = tw - now;
        pg_futex_wait(&pp->tgen, gen, wait);
    }
    /* test hook (PARAGO_DEBUG=sysmonstall=MS, P0): a sysmon that does not
     * end when asked -- the forced teardown stall of the SIGTERM test.  It
     * touches nothing of the arena meanwhile */
    if (sm.stall_ns) {
        static const char msg[] = "parago: sysmonstall: P0's sysmon stalls in teardown\n";
        ssize_t r = write(2, msg, sizeof msg - 1);
        (void)r;
    }
    for (uint64_t end = pg_nanotime_real() + sm.stall_ns; pg_nanotime_real() < end;) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* the test hook's MS from PARAGO_DEBUG=...,sysmonstall=MS,... (0: none) */
static uint64_t stall_from_env(int p) {
    const char *d = getenv("PARAGO_DEBUG");
    const char *k = d && p == 0 ? strstr(d, "sysmonstall=") : NULL;
    return k ? strtoull(k + strlen("sysmonstall="), NULL, 10) * 1000000ull : 0;
}

/* a child forked while a sysmon runs has no such thread (fork copies only
 * the caller): it may start its own */
static void sysmon_forked(void) { sm.running = 0; }

/*
 * Start this process's sysmon for P p; call it from the hub thread (the
 * one the signals go to), after installing the SIGUSR2 handler.
 * PG_OK, PG_INVAL (one is running), or PG_SYSERR.
 */
PG_API int pg_sysmon_start(void *base, int p) {
    static int atfork_done;
    if (sm.running || p < 0 || p >= PG_MAXP)
        return PG_INVAL;
    if (!atfork_done && pthread_atfork(NULL, NULL, sysmon_forked) == 0)
        atfork_done = 1;
    sm.base = base;
    sm.p = p;
    sm.hub = pthread_self();
    pg_store_rel(&sm.stop, 0);
    sm.stall_ns = stall_from_env(p);
    /* the new thread inherits the mask: no signal is ever handled there */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(&sm.thread, NULL, sysmon_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0)
        return PG_SYSERR;
    sm.running = 1;
    return PG_OK;
}

/*
 * Teardown's bounded stop: ask the sysmon to stop (its lock waits give up
 * at once, no timer fires) and wait for it at most timeout_ns.  PG_OK:
 * joined (or none runs); PG_WOULDBLOCK: not yet -- the caller (Python, the
 * GIL released) lets its signal handlers run and calls again, so SIGTERM
 * or SIGINT still end a teardown whatever holds the thread.
 */
PG_API int pg_sysmon_join(uint64_t timeout_ns) {
    if (!sm.running)
        return PG_OK;
    pg_p_t *pp = &ARENA(sm.base)->p[sm.p];
    pg_store_rel(&sm.stop, 1); /* pairs with the loop's and pg_lock_slow's acquire */
    pg_add_sc(&pp->tgen, 1);
    pg_futex_wake(&pp->tgen, 1);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* pthread_timedjoin_np's clock */
    uint64_t ns = (uint64_t)ts.tv_nsec + timeout_ns % 1000000000ull;
    ts.tv_sec += (time_t)(timeout_ns / 1000000000ull + ns / 1000000000ull);
    ts.tv_nsec = (long)(ns % 1000000000ull);
    if (pthread_timedjoin_np(sm.thread, NULL, &ts) != 0)
        return PG_WOULDBLOCK;
    sm.running = 0;
    return PG_OK;
}

/* the SIGUSR2 handler: the reason bits sysmon set since the last call */
PG_API uint32_t pg_sysreq_take(void *base, int p) {
    return pg_xchg_acqrel(&ARENA(base)->p[p].sysreq, 0);
}
