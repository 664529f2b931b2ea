/*
 * watch.c -- the death watch: a dead P is noticed without the GIL, without
 * any hub, and nobody waits for ever on its locks (the locks: lock.h, lock.c).
 *
 *   P0 (pg_watch_start)                        every other P (pg_deathpipe_watch)
 *   ---------------------------------------    ----------------------------------
 *   C thread, signals blocked: poll one pidfd  C thread, signals blocked: poll the
 *   per P (or its multiprocessing sentinel)    death pipe's read end (P0 holds the
 *   + a stop eventfd                           only write end)
 *   P i ended:                                 EOF / HUP (P0 gone, whatever
 *     (1) p[i].exit_status (plain)               killed it):
 *     (2) p[i].gone = 1 (release)                (1) p[0].gone = 1 (release)
 *     (3) nlost++                                (2) a short grace, so a hub in
 *     (4) no teardown, no failure yet:               pg_lock sees PG_LOST
 *         record FAIL_LOST (the CAS protocol     (3) _exit(3)
 *         of pg_panic_record)
 *     (5) write every live P's eventfd
 *
 * A locker waiting on a word tagged by P i loads p[i].gone (acquire, pairs
 * with (2)) after every bounded futex wait (lock.c) and returns PG_LOST: the lock is
 * never taken and the object never touched (never "repaired").  A P that
 * leaves the run normally marks itself gone too (pg_p_leave, after its
 * sysmon is joined and its references are given back), and a sysmon asked
 * to stop gives up its lock waits (pg_lock_abort_on): no teardown waits on
 * an owner that will not come back.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include "pg_internal.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* ---------------- P0: one pidfd per P ---------------- */

static struct {
    void *base;
    int n;                /* nprocs */
    int fd[PG_MAXP];      /* fd[i]: P i's pidfd or sentinel, -1 none */
    int kind[PG_MAXP];    /* 0 pidfd, 1 a sentinel (readable once the P ended) */
    int stopfd;
    int running;
    pthread_t th;
} W = {.stopfd = -1};

/* the P's wait status if it is our child (WNOWAIT: multiprocessing still
 * reaps it), else -1 (a forkserver's child, or already reaped) */
static int32_t exit_status_of(int pidfd) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED | WNOHANG | WNOWAIT) != 0 ||
        si.si_pid == 0)
        return -1;
    if (si.si_code == CLD_EXITED)
        return (si.si_status & 0xff) << 8;
    if (si.si_code == CLD_KILLED)
        return si.si_status & 0x7f;
    if (si.si_code == CLD_DUMPED)
        return (si.si_status & 0x7f) | 0x80;
    return -1;
}

static void wake_fd(int fd) {
    if (fd >= 0) {
        uint64_t one = 1;
        ssize_t r = write(fd, &one, sizeof one);
        (void)r; /* EAGAIN: the counter is already non-zero, it is awake */
    }
}

static void p_died(void *base, int i, int32_t status) {
    pg_arena_t *a = ARENA(base);
    a->p[i].exit_status = status;        /* (1), published by (2) */
    pg_store_rel(&a->p[i].gone, PG_GONE_DIED); /* (2) pairs with owner_gone's acquire */
    pg_add_sc(&a->nlost, 1);             /* (3) */
    uint32_t z = 0;                      /* (4) as pg_panic_record */
    if (!pg_load_acq(&a->shutdown) && pg_cas_acqrel(&a->panicking, &z, 1)) {
        a->fail_kind = FAIL_LOST;
        a->lost_p = i;
        a->panic_off = 0;
        a->panic_len = 0;
        pg_store_rel(&a->panicking, 2); /* pairs with the reader's acquire */
    }
    for (uint32_t p = 0; p < a->nprocs && p < PG_MAXP; p++) /* (5) */
        if (!pg_load_acq(&a->p[p].gone))
            wake_fd(pg_wakefd[p]);
}

static void *watch_main(void *arg) {
    (void)arg;
    struct pollfd pf[PG_MAXP + 1];
    int n = W.n;
    pf[0].fd = W.stopfd;
    pf[0].events = POLLIN;
    for (int i = 1; i < n; i++) {
        pf[i].fd = W.fd[i];
        pf[i].events = POLLIN;
    }
    for (;;) {
        int r = poll(pf, (nfds_t)n, -1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        if (pf[0].revents)
            return NULL; /* pg_watch_stop */
        for (int i = 1; i < n; i++) {
            if (pf[i].fd < 0 || !pf[i].revents)
                continue;
            if (!(pf[i].revents & POLLNVAL))
                p_died(W.base, i, W.kind[i] == 0 ? exit_status_of(pf[i].fd) : -1);
            pf[i].fd = -1; /* poll skips it from now on */
        }
    }
}

static int start_thread(pthread_t *th, void *(*fn)(void *), void *arg) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread inherits "all blocked" */
    int rc = pthread_create(th, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/*
 * P0: watch P 1..n-1 through fds[i] (kinds[i]: 0 a pidfd, 1 a sentinel fd
 * that becomes readable when the P ends; fds[i] < 0: not watched).  The fds
 * stay the caller's: pg_watch_stop before closing them.  PG_OK, PG_INVAL
 * (already running, bad n) or PG_SYSERR.
 */
PG_API int64_t pg_watch_start(void *base, const int *fds, const int *kinds, int n) {
    if (W.running || n < 1 || n > PG_MAXP)
        return PG_INVAL;
    W.base = base;
    W.n = n;
    for (int i = 0; i < n; i++) {
        W.fd[i] = i ? fds[i] : -1;
        W.kind[i] = i ? kinds[i] : 0;
    }
    W.stopfd = eventfd(0, EFD_CLOEXEC);
    if (W.stopfd < 0)
        return PG_SYSERR;
    if (start_thread(&W.th, watch_main, NULL) != 0) {
        close(W.stopfd);
        W.stopfd = -1;
        return PG_SYSERR;
    }
    W.running = 1;
    return PG_OK;
}

/* teardown: stop and join the watch (before its fds are closed) */
PG_API void pg_watch_stop(void) {
    if (!W.running)
        return;
    wake_fd(W.stopfd);
    pthread_join(W.th, NULL);
    close(W.stopfd);
    W.stopfd = -1;
    W.running = 0;
}

/* ---------------- every other P: the death pipe ---------------- */

static struct {
    void *base;
    int fd;
} D;

static void *deathpipe_main(void *arg) {
    (void)arg;
    struct pollfd pf = {.fd = D.fd, .events = POLLIN};
    for (;;) {
        if (poll(&pf, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pf.revents & POLLNVAL)
            break;
        char c;
        ssize_t r = read(D.fd, &c, 1);
        if (r > 0 || (r < 0 && (errno == EINTR || errno == EAGAIN)))
            continue; /* P0 never writes: only EOF matters */
        break;
    }
    /* P0 is gone: nobody will tear this P down */
    ARENA(D.base)->p[0].exit_status = -1;
    pg_store_rel(&ARENA(D.base)->p[0].gone, PG_GONE_DIED); /* (1) pairs with owner_gone */
    struct timespec ts = {0, (long)DEATH_GRACE_NS}; /* (2) */
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    _exit(3); /* (3) */
}

/* a P: exit (status 3) when the death pipe's read end fd reaches EOF */
PG_API int64_t pg_deathpipe_watch(void *base, int fd) {
    D.base = base;
    D.fd = fd;
    pthread_t th;
    if (start_thread(&th, deathpipe_main, NULL) != 0)
        return PG_SYSERR;
    pthread_detach(th);
    return PG_OK;
}

/* ---------------- a P leaves the run ---------------- */

/*
 * P p leaves the run by itself (teardown: its sysmon joined, its hub done,
 * its references given back; nothing of it takes a lock any more): marked
 * gone now, not only once the death watch sees its process end, so no
 * locker ever waits on a word it left tagged.  An earlier mark (the watch's)
 * stays.
 */
PG_API void pg_p_leave(void *base, int p) {
    if (p < 0 || p >= PG_MAXP)
        return;
    uint32_t z = 0;
    pg_cas_acqrel(&ARENA(base)->p[p].gone, &z, PG_GONE_LEFT); /* pairs with owner_gone's acquire */
}
