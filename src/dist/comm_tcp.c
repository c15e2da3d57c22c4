/* comm_tcp.c: the TCP backend of comm.h (host buffers), for ranks started without MPI: torchrun (RANK, WORLD_SIZE,
 * LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) or srun without an MPI plugin (SLURM_PROCID, SLURM_NTASKS,
 * SLURM_LOCALID with MASTER_ADDR/MASTER_PORT). Rank 0 listens, the others connect (retrying until the deadline) and
 * say who they are; every collective then goes through rank 0 (a star): the others send their part, rank 0 reduces
 * in rank order and sends the result back. It serves the ncclUniqueId of the NCCL backend and the CPU collectives of
 * a small job; the bulk traffic between GPUs is NCCL's. Every wait is a poll() with the collective deadline, so a dead
 * rank (the connection closes) or a hung one (the deadline passes) becomes an error naming the collective. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "dist/comm_backend.h"

#define TCP_MAGIC 0x71627463u /* "qbtc" */

typedef struct tcp_state {
    int *fd;    /* rank 0: fd[r] the connection of rank r (fd[0] unused); other ranks: fd[0] the connection to rank 0 */
    int n_fd;
    void *tmp;  /* rank 0: one rank's part during a reduction */
    size_t tmp_bytes;
} tcp_state;

/* One message: a header naming the collective (kind, byte count) and the payload. */
typedef struct msg_head {
    uint32_t magic, kind;
    int64_t bytes;
} msg_head;

enum { K_HELLO = 1, K_REDUCE, K_BCAST, K_GATHER };

static int io_all(int fd, void *buf, size_t n, bool sending, double deadline, const char *what, int peer, qb_err *err) {
    char *p = buf;
    while (n > 0) {
        double left = deadline - qb_comm_now();
        if (left <= 0) return qb_errorf(err, "%s did not complete within the deadline: rank %d died or hangs (QB_COMM_TIMEOUT sets the limit)", what, peer);
        struct pollfd pf = {.fd = fd, .events = sending ? POLLOUT : POLLIN};
        int ready = poll(&pf, 1, left > 1.0 ? 1000 : (int)(left * 1000) + 1);
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) return qb_errorf(err, "%s: poll: %s", what, strerror(errno));
        if (ready == 0) continue;
        ssize_t k = sending ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
        if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (k <= 0) return qb_errorf(err, "%s: the connection to rank %d %s%s%s: that rank died", what, peer, k == 0 ? "closed" : "failed (",
                                     k == 0 ? "" : strerror(errno), k == 0 ? "" : ")");
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int send_msg(int fd, uint32_t kind, const void *buf, int64_t bytes, double deadline, const char *what, int peer, qb_err *err) {
    msg_head h = {.magic = TCP_MAGIC, .kind = kind, .bytes = bytes};
    return io_all(fd, &h, sizeof h, true, deadline, what, peer, err) || io_all(fd, (void *)buf, (size_t)bytes, true, deadline, what, peer, err) ? -1 : 0;
}

static int recv_msg(int fd, uint32_t kind, void *buf, int64_t bytes, double deadline, const char *what, int peer, qb_err *err) {
    msg_head h;
    if (io_all(fd, &h, sizeof h, false, deadline, what, peer, err)) return -1;
    if (h.magic != TCP_MAGIC || h.kind != kind || h.bytes != bytes)
        return qb_errorf(err, "%s: rank %d is in another collective (kind %u, %lld bytes; expected kind %u, %lld bytes)", what, peer, h.kind,
                         (long long)h.bytes, kind, (long long)bytes);
    return io_all(fd, buf, (size_t)bytes, false, deadline, what, peer, err);
}

static double deadline_of(const qb_comm *c) { return qb_comm_now() + c->timeout_s; }

static void reduce_into(void *acc, const void *part, int64_t count, qb_comm_type t, qb_comm_op op) {
    for (int64_t i = 0; i < count; i++) {
        if (t == QB_COMM_F32) {
            float *a = (float *)acc + i, b = ((const float *)part)[i];
            *a = op == QB_COMM_SUM ? *a + b : op == QB_COMM_MAX ? (b > *a ? b : *a) : (b < *a ? b : *a);
        } else if (t == QB_COMM_F64) {
            double *a = (double *)acc + i, b = ((const double *)part)[i];
            *a = op == QB_COMM_SUM ? *a + b : op == QB_COMM_MAX ? (b > *a ? b : *a) : (b < *a ? b : *a);
        } else {
            int64_t *a = (int64_t *)acc + i, b = ((const int64_t *)part)[i];
            *a = op == QB_COMM_SUM ? *a + b : op == QB_COMM_MAX ? (b > *a ? b : *a) : (b < *a ? b : *a);
        }
    }
}

static void *scratch(tcp_state *s, size_t bytes) {
    if (bytes > s->tmp_bytes) {
        void *p = realloc(s->tmp, bytes);
        if (!p) return NULL;
        s->tmp = p;
        s->tmp_bytes = bytes;
    }
    return s->tmp;
}

/* Reduced in rank order on rank 0 (rank 0's part, then rank 1's, ...), so the result is the same on every run. */
static int tcp_allreduce_start(qb_comm *c, void *buf, int64_t count, qb_comm_type t, qb_comm_op op, qb_comm_req *req, qb_err *err) {
    tcp_state *s = c->impl;
    int64_t bytes = count * qb_comm_type_size(t);
    double deadline = deadline_of(c);
    if (c->rank != 0)
        return send_msg(s->fd[0], K_REDUCE, buf, bytes, deadline, req->what, 0, err) || recv_msg(s->fd[0], K_REDUCE, buf, bytes, deadline, req->what, 0, err)
                   ? -1 : 0;
    void *part = scratch(s, (size_t)bytes);
    if (!part && bytes) return qb_errorf(err, "%s: out of memory", req->what);
    for (int r = 1; r < c->size; r++) {
        if (recv_msg(s->fd[r], K_REDUCE, part, bytes, deadline, req->what, r, err)) return -1;
        reduce_into(buf, part, count, t, op);
    }
    for (int r = 1; r < c->size; r++)
        if (send_msg(s->fd[r], K_REDUCE, buf, bytes, deadline, req->what, r, err)) return -1;
    return 0;
}

static int tcp_wait(qb_comm *c, qb_comm_req *req, qb_err *err) { return 0; }

static int tcp_broadcast(qb_comm *c, void *buf, int64_t bytes, int root, const char *what, qb_err *err) {
    tcp_state *s = c->impl;
    double deadline = deadline_of(c);
    if (c->rank != 0) {
        if (c->rank == root) return send_msg(s->fd[0], K_BCAST, buf, bytes, deadline, what, 0, err);
        return recv_msg(s->fd[0], K_BCAST, buf, bytes, deadline, what, 0, err);
    }
    if (root != 0 && recv_msg(s->fd[root], K_BCAST, buf, bytes, deadline, what, root, err)) return -1;
    for (int r = 1; r < c->size; r++)
        if (r != root && send_msg(s->fd[r], K_BCAST, buf, bytes, deadline, what, r, err)) return -1;
    return 0;
}

static int tcp_gatherv(qb_comm *c, const void *send, int64_t bytes, void *recv, const int64_t *counts, const int64_t *displs, int root,
                       const char *what, qb_err *err) {
    tcp_state *s = c->impl;
    double deadline = deadline_of(c);
    if (root != 0) return qb_errorf(err, "%s: the tcp backend gathers on rank 0 only (root %d)", what, root);
    if (c->rank != 0) return send_msg(s->fd[0], K_GATHER, send, bytes, deadline, what, 0, err);
    if (bytes && recv != send) memmove((char *)recv + displs[0], send, (size_t)bytes);
    for (int r = 1; r < c->size; r++)
        if (recv_msg(s->fd[r], K_GATHER, (char *)recv + displs[r], counts[r], deadline, what, r, err)) return -1;
    return 0;
}

static void tcp_free(tcp_state *s) {
    if (!s) return;
    for (int i = 0; i < s->n_fd; i++)
        if (s->fd[i] >= 0) close(s->fd[i]);
    free(s->fd);
    free(s->tmp);
    free(s);
}

/* The peers see the connections close and fail their next collective with "that rank died". */
static _Noreturn void tcp_abort(qb_comm *c, int code) {
    tcp_free(c->impl);
    c->impl = NULL;
    _exit(code);
}

static void tcp_close(qb_comm *c) {
    tcp_free(c->impl);
    c->impl = NULL;
}

static const qb_comm_backend tcp_backend = {.name = "tcp", .allreduce_start = tcp_allreduce_start, .wait = tcp_wait,
                                            .broadcast = tcp_broadcast, .gatherv = tcp_gatherv, .abort = tcp_abort, .close = tcp_close};

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

static int env_int(const char *name, int lo, int hi, int fallback, int *out, qb_err *err) {
    const char *v = env(name);
    if (!v) return *out = fallback, 0;
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || x < lo || x > hi) return qb_errorf(err, "%s: '%s' is not a number in [%d, %d]", name, v, lo, hi);
    *out = (int)x;
    return 0;
}

typedef struct hello {
    uint32_t magic;
    int32_t rank, size, local_rank;
} hello;

static int rank0_accept(qb_comm *c, tcp_state *s, int port, qb_err *err) {
    int lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, zero = 0;
    bool v6 = lfd >= 0;
    if (!v6) lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0) return qb_errorf(err, "rendezvous: socket: %s", strerror(errno));
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (v6) {
        setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6, a->sin6_addr = in6addr_any, a->sin6_port = htons((uint16_t)port);
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET, a->sin_addr.s_addr = htonl(INADDR_ANY), a->sin_port = htons((uint16_t)port);
        len = sizeof *a;
    }
    if (bind(lfd, (struct sockaddr *)&ss, len) || listen(lfd, c->size)) {
        int e = errno;
        close(lfd);
        return qb_errorf(err, "rendezvous: rank 0 cannot listen on port %d: %s (another job on it? set MASTER_PORT)", port, strerror(e));
    }
    double deadline = deadline_of(c);
    int joined = 0, rc = 0;
    while (joined < c->size - 1 && !rc) {
        double left = deadline - qb_comm_now();
        struct pollfd pf = {.fd = lfd, .events = POLLIN};
        if (left <= 0) {
            rc = qb_errorf(err, "rendezvous: %d of %d ranks connected to rank 0 on port %d within %.0f s (QB_COMM_TIMEOUT sets the limit)", joined + 1,
                           c->size, port, c->timeout_s);
            break;
        }
        int ready = poll(&pf, 1, (int)(left * 1000) + 1);
        if (ready <= 0) continue;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        hello h;
        qb_err e2 = {0};
        if (recv_msg(fd, K_HELLO, &h, sizeof h, qb_comm_now() + 10.0, "rendezvous", -1, &e2) || h.magic != TCP_MAGIC) {
            close(fd); /* not one of ours (a port scanner, a stale rank of another job) */
            continue;
        }
        if (h.size != c->size || h.rank <= 0 || h.rank >= c->size || s->fd[h.rank] >= 0) {
            rc = qb_errorf(err, "rendezvous: a rank says it is rank %d of %d (this job: %d ranks; a duplicate RANK?)", h.rank, h.size, c->size);
            close(fd);
            break;
        }
        s->fd[h.rank] = fd;
        joined++;
    }
    close(lfd);
    return rc;
}

static int connect_rank0(qb_comm *c, tcp_state *s, const char *addr, int port, qb_err *err) {
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    double deadline = deadline_of(c);
    const char *why = "";
    for (;;) {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
        int g = getaddrinfo(addr, service, &hints, &res);
        if (g) why = gai_strerror(g);
        for (struct addrinfo *a = res; a && !g; a = a->ai_next) {
            int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
            if (fd < 0) continue;
            if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                freeaddrinfo(res);
                s->fd[0] = fd;
                hello h = {.magic = TCP_MAGIC, .rank = c->rank, .size = c->size, .local_rank = c->local_rank};
                return send_msg(fd, K_HELLO, &h, sizeof h, deadline, "rendezvous", 0, err);
            }
            why = strerror(errno);
            close(fd);
        }
        if (res) freeaddrinfo(res);
        if (qb_comm_now() > deadline)
            return qb_errorf(err, "rendezvous: rank %d cannot reach rank 0 at %s:%d within %.0f s: %s (MASTER_ADDR, MASTER_PORT; QB_COMM_TIMEOUT)", c->rank,
                             addr, port, c->timeout_s, why);
        usleep(100 * 1000);
    }
}

int qb_comm_tcp_open(qb_comm *c, qb_err *err) {
    bool slurm = !env("WORLD_SIZE") && env("SLURM_PROCID");
    int rank = -1, size = -1, local_rank = 0, local_size = 1, port = -1;
    if (env_int(slurm ? "SLURM_PROCID" : "RANK", 0, 1 << 20, -1, &rank, err) || env_int(slurm ? "SLURM_NTASKS" : "WORLD_SIZE", 1, 1 << 20, -1, &size, err) ||
        env_int(slurm ? "SLURM_LOCALID" : "LOCAL_RANK", 0, 1 << 20, 0, &local_rank, err) ||
        env_int(slurm ? "SLURM_NTASKS_PER_NODE" : "LOCAL_WORLD_SIZE", 1, 1 << 20, 1, &local_size, err) ||
        env_int("MASTER_PORT", 1, 65535, -1, &port, err))
        return -1;
    const char *addr = env("MASTER_ADDR");
    if (rank < 0 || size < 0 || port < 0 || !addr)
        return qb_errorf(err, "rendezvous over TCP needs %s, %s, MASTER_ADDR and MASTER_PORT (as torchrun sets them)", slurm ? "SLURM_PROCID" : "RANK",
                         slurm ? "SLURM_NTASKS" : "WORLD_SIZE");
    if (rank >= size) return qb_errorf(err, "rendezvous: RANK %d is not below WORLD_SIZE %d", rank, size);
    /* torchrun's agent holds its own store on MASTER_PORT: ours is the next port */
    if (env("TORCHELASTIC_RUN_ID") || env("TORCHELASTIC_USE_AGENT_STORE")) port = port < 65535 ? port + 1 : port - 1;
    if (env_int("QB_COMM_PORT", 1, 65535, port, &port, err)) return -1;
    c->rank = rank, c->size = size, c->local_rank = local_rank, c->local_size = local_size > local_rank ? local_size : local_rank + 1;
    tcp_state *s = calloc(1, sizeof *s);
    if (!s || !(s->fd = malloc((size_t)size * sizeof *s->fd))) return free(s), qb_errorf(err, "rendezvous: out of memory");
    s->n_fd = rank == 0 ? size : 1;
    for (int i = 0; i < size; i++) s->fd[i] = -1;
    int rc = rank == 0 ? rank0_accept(c, s, port, err) : connect_rank0(c, s, addr, port, err);
    if (rc) return tcp_free(s), -1;
    c->be = &tcp_backend;
    c->impl = s;
    /* every rank has joined: a first collective tells the others (rank 0 answers each once all are in) */
    int64_t one = 1;
    if (qb_comm_allreduce(c, &one, 1, QB_COMM_I64, QB_COMM_SUM, "rendezvous", err)) return tcp_close(c), qb_comm_open_self(c), -1;
    return 0;
}
