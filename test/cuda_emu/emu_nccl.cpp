/* emu_nccl.cpp: the NCCL calls of nccl.h that qdqbert's NCCL backend (src/dist/comm_nccl.c) makes, served by MPI on
 * the emulator's device memory (docs/cuda.md, docs/distributed.md). Every rank is a process started by mpirun; the
 * communicator is MPI_COMM_WORLD in rank order (a rank's NCCL rank must be its MPI rank). ncclGetUniqueId makes a
 * random id and ncclCommInitRank checks that every rank holds the same one, so the rendezvous that carried it (MPI or
 * TCP) is tested too. Collectives run at once, in the order they are issued, like every emulated stream; an MPI error
 * becomes the communicator's asynchronous error (ncclRemoteError), as a lost peer is on a GPU. Point-to-point calls
 * (ncclSend/Recv) are not emulated. MPI is initialised here when nobody did (a TCP rendezvous under mpirun). */
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <nccl.h>

#include <unistd.h>

#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

namespace qbemu {
cudaError_t check_device_buffer(const char *call, const char *what, const void *p, size_t n);
bool device_present();
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
} /* namespace qbemu */

struct ncclComm {
    MPI_Comm comm;
    int rank, size, device;
    ncclResult_t async;
    bool aborted;
    char last[256];
};

namespace {

const char ID_MAGIC[] = "qbemu-nccl";
thread_local char g_last_error[256];
int g_group_depth = 0;
bool g_owns_mpi = false; /* MPI_Init was ours: MPI_Finalize when the last communicator goes */
int g_live = 0;

ncclResult_t fail(ncclComm *c, ncclResult_t r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
ncclResult_t fail(ncclComm *c, ncclResult_t r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_last_error, sizeof g_last_error, fmt, ap);
    va_end(ap);
    if (c) snprintf(c->last, sizeof c->last, "%s", g_last_error);
    qbemu::note("%s", g_last_error);
    return r;
}

bool type_of(ncclDataType_t t, MPI_Datatype *m, size_t *size) {
    switch (t) {
    case ncclInt8: *m = MPI_INT8_T, *size = 1; return true;
    case ncclUint8: *m = MPI_UINT8_T, *size = 1; return true;
    case ncclInt32: *m = MPI_INT32_T, *size = 4; return true;
    case ncclUint32: *m = MPI_UINT32_T, *size = 4; return true;
    case ncclInt64: *m = MPI_INT64_T, *size = 8; return true;
    case ncclUint64: *m = MPI_UINT64_T, *size = 8; return true;
    case ncclFloat32: *m = MPI_FLOAT, *size = 4; return true;
    case ncclFloat64: *m = MPI_DOUBLE, *size = 8; return true;
    default: return false; /* half, bf16, fp8: no MPI type */
    }
}

bool op_of(ncclRedOp_t op, MPI_Op *m) {
    switch (op) {
    case ncclSum: *m = MPI_SUM; return true;
    case ncclProd: *m = MPI_PROD; return true;
    case ncclMax: *m = MPI_MAX; return true;
    case ncclMin: *m = MPI_MIN; return true;
    default: return false; /* ncclAvg and PreMulSum ops: not emulated */
    }
}

ncclResult_t usable(ncclComm *c, const char *call) {
    if (!c) return fail(nullptr, ncclInvalidArgument, "%s: NULL communicator", call);
    if (c->aborted) return fail(c, ncclInvalidUsage, "%s: the communicator was aborted", call);
    if (c->async != ncclSuccess) return fail(c, c->async, "%s: the communicator has an asynchronous error", call);
    return ncclSuccess;
}

/* An MPI error in a collective: the communicator's asynchronous error, as on a GPU. */
ncclResult_t mpi_failed(ncclComm *c, const char *call, int code) {
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(code, text, &len);
    c->async = ncclRemoteError;
    snprintf(c->last, sizeof c->last, "%s: MPI: %s (a peer failed)", call, text);
    return ncclSuccess;
}

} /* namespace */

extern "C" {

const char *ncclGetErrorString(ncclResult_t r) {
    switch (r) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code";
    }
}

const char *ncclGetLastError(ncclComm_t comm) { return comm && comm->last[0] ? comm->last : g_last_error; }

ncclResult_t ncclGetVersion(int *version) {
    if (!version) return fail(nullptr, ncclInvalidArgument, "ncclGetVersion: NULL");
    *version = NCCL_VERSION_CODE;
    return ncclSuccess;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    if (!id) return fail(nullptr, ncclInvalidArgument, "ncclGetUniqueId: NULL");
    memset(id, 0, sizeof *id);
    memcpy(id->internal, ID_MAGIC, sizeof ID_MAGIC);
    std::random_device rd;
    uint64_t words[4] = {rd(), rd(), (uint64_t)std::chrono::steady_clock::now().time_since_epoch().count(), (uint64_t)getpid()};
    memcpy(id->internal + 16, words, sizeof words);
    return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *out, int nranks, ncclUniqueId id, int rank) {
    if (!out || nranks < 1 || rank < 0 || rank >= nranks) return fail(nullptr, ncclInvalidArgument, "ncclCommInitRank: rank %d of %d", rank, nranks);
    *out = nullptr;
    if (!qbemu::device_present()) return fail(nullptr, ncclUnhandledCudaError, "ncclCommInitRank: no (emulated) CUDA device");
    if (memcmp(id.internal, ID_MAGIC, sizeof ID_MAGIC))
        return fail(nullptr, ncclInvalidArgument, "ncclCommInitRank: rank %d holds no ncclUniqueId made by ncclGetUniqueId", rank);
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK") && !getenv("PMI_RANK"))
            return fail(nullptr, ncclInvalidUsage, "ncclCommInitRank: the emulated NCCL runs over MPI: start the ranks with mpirun");
        if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return fail(nullptr, ncclSystemError, "ncclCommInitRank: MPI_Init failed");
        g_owns_mpi = true;
    }
    int mrank = 0, msize = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &mrank);
    MPI_Comm_size(MPI_COMM_WORLD, &msize);
    if (msize != nranks || mrank != rank)
        return fail(nullptr, ncclInvalidUsage, "ncclCommInitRank: rank %d of %d, but MPI has this process as rank %d of %d (the emulated NCCL needs the MPI ranks)",
                    rank, nranks, mrank, msize);
    ncclComm *c = new ncclComm{};
    c->rank = rank, c->size = nranks;
    cudaGetDevice(&c->device);
    int code = MPI_Comm_dup(MPI_COMM_WORLD, &c->comm);
    if (code != MPI_SUCCESS) return delete c, fail(nullptr, ncclSystemError, "ncclCommInitRank: MPI_Comm_dup failed");
    MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
    /* every rank must hold rank 0's id: compare the byte-wise max and min over the ranks with this rank's */
    unsigned char lo[NCCL_UNIQUE_ID_BYTES], hi[NCCL_UNIQUE_ID_BYTES];
    code = MPI_Allreduce(id.internal, lo, NCCL_UNIQUE_ID_BYTES, MPI_UNSIGNED_CHAR, MPI_MIN, c->comm);
    if (code == MPI_SUCCESS) code = MPI_Allreduce(id.internal, hi, NCCL_UNIQUE_ID_BYTES, MPI_UNSIGNED_CHAR, MPI_MAX, c->comm);
    if (code != MPI_SUCCESS) return MPI_Comm_free(&c->comm), delete c, fail(nullptr, ncclRemoteError, "ncclCommInitRank: a peer failed");
    if (memcmp(lo, hi, sizeof lo))
        return MPI_Comm_free(&c->comm), delete c,
               fail(nullptr, ncclInvalidArgument, "ncclCommInitRank: the ranks hold different ncclUniqueIds (the rendezvous did not deliver rank 0's)");
    *out = c;
    g_live++;
    return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t c) {
    if (!c) return ncclSuccess;
    if (!c->aborted) MPI_Comm_free(&c->comm);
    delete c;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (--g_live == 0 && g_owns_mpi && !finalized) MPI_Finalize();
    return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t c) {
    if (!c) return ncclSuccess;
    c->aborted = true; /* the duplicate is left to MPI: freeing it would wait for the peers */
    delete c;
    return ncclSuccess;
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t c, ncclResult_t *async) {
    if (!c || !async) return fail(c, ncclInvalidArgument, "ncclCommGetAsyncError: NULL");
    *async = c->async;
    return ncclSuccess;
}

ncclResult_t ncclCommCount(const ncclComm_t c, int *count) {
    if (!c || !count) return fail(nullptr, ncclInvalidArgument, "ncclCommCount: NULL");
    *count = c->size;
    return ncclSuccess;
}

ncclResult_t ncclCommUserRank(const ncclComm_t c, int *rank) {
    if (!c || !rank) return fail(nullptr, ncclInvalidArgument, "ncclCommUserRank: NULL");
    *rank = c->rank;
    return ncclSuccess;
}

ncclResult_t ncclCommCuDevice(const ncclComm_t c, int *device) {
    if (!c || !device) return fail(nullptr, ncclInvalidArgument, "ncclCommCuDevice: NULL");
    *device = c->device;
    return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t t, ncclRedOp_t op, ncclComm_t c, cudaStream_t stream) {
    (void)stream; /* emulated streams run their work at once, in order */
    if (ncclResult_t r = usable(c, "ncclAllReduce")) return r;
    MPI_Datatype mt;
    MPI_Op mop;
    size_t size = 0;
    if (!type_of(t, &mt, &size) || !op_of(op, &mop)) return fail(c, ncclInvalidArgument, "ncclAllReduce: type %d, op %d not emulated", (int)t, (int)op);
    if (count == 0) return ncclSuccess;
    if (qbemu::check_device_buffer("ncclAllReduce", "sendbuff", send, count * size) != cudaSuccess ||
        qbemu::check_device_buffer("ncclAllReduce", "recvbuff", recv, count * size) != cudaSuccess)
        return fail(c, ncclInvalidArgument, "ncclAllReduce: a buffer is not device memory");
    if (send != recv) memmove(recv, send, count * size);
    for (size_t at = 0; at < count;) {
        int n = count - at > (size_t)1 << 30 ? 1 << 30 : (int)(count - at);
        int code = MPI_Allreduce(MPI_IN_PLACE, (char *)recv + at * size, n, mt, mop, c->comm);
        if (code != MPI_SUCCESS) return mpi_failed(c, "ncclAllReduce", code);
        at += (size_t)n;
    }
    return ncclSuccess;
}

ncclResult_t ncclBroadcast(const void *send, void *recv, size_t count, ncclDataType_t t, int root, ncclComm_t c, cudaStream_t stream) {
    (void)stream;
    if (ncclResult_t r = usable(c, "ncclBroadcast")) return r;
    MPI_Datatype mt;
    size_t size = 0;
    if (!type_of(t, &mt, &size) || root < 0 || root >= c->size)
        return fail(c, ncclInvalidArgument, "ncclBroadcast: type %d, root %d", (int)t, root);
    if (count == 0) return ncclSuccess;
    if ((c->rank == root && qbemu::check_device_buffer("ncclBroadcast", "sendbuff", send, count * size) != cudaSuccess) ||
        qbemu::check_device_buffer("ncclBroadcast", "recvbuff", recv, count * size) != cudaSuccess)
        return fail(c, ncclInvalidArgument, "ncclBroadcast: a buffer is not device memory");
    if (c->rank == root && send != recv) memmove(recv, send, count * size);
    for (size_t at = 0; at < count;) {
        int n = count - at > (size_t)1 << 30 ? 1 << 30 : (int)(count - at);
        int code = MPI_Bcast((char *)recv + at * size, n, mt, root, c->comm);
        if (code != MPI_SUCCESS) return mpi_failed(c, "ncclBroadcast", code);
        at += (size_t)n;
    }
    return ncclSuccess;
}

ncclResult_t ncclGroupStart(void) {
    g_group_depth++;
    return ncclSuccess;
}

ncclResult_t ncclGroupEnd(void) {
    if (g_group_depth == 0) return fail(nullptr, ncclInvalidUsage, "ncclGroupEnd without ncclGroupStart");
    g_group_depth--;
    return ncclSuccess;
}

} /* extern "C" */
