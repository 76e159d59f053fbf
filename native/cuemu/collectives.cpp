// NCCL's all-reduce and all-gather across emulated devices: one communicator per rank, each rank
// driven by its own thread. Every rank sums in rank order, so all ranks hold bit-identical results
// (as NCCL guarantees for all-reduce). ncclCommAbort on any rank's communicator ends every
// collective of the group, waiting or to come, with an error: a failing rank cannot leave the
// others waiting forever.
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <vector>

#include "cuemu_api.h"

namespace {

enum { Success = 0, SystemError = 2, InvalidArgument = 4, InvalidUsage = 5, RemoteError = 6 };
enum { Float32 = 7 };
enum { Sum = 0 };

struct Group
{
    int n;
    std::mutex mu;
    std::condition_variable cv;
    int arrived = 0;
    long generation = 0;
    int alive;
    bool aborted = false;
    std::vector<const void*> send;

    explicit Group(int ranks) : n(ranks), alive(ranks), send(ranks) {}

    // false when the group was aborted before or while waiting
    bool barrier()
    {
        std::unique_lock<std::mutex> lock(mu);
        if (aborted) return false;
        long gen = generation;
        if (++arrived == n) { arrived = 0; generation++; cv.notify_all(); return true; }
        cv.wait(lock, [&] { return generation != gen || aborted; });
        return !aborted;
    }

    void abort()
    {
        std::lock_guard<std::mutex> lock(mu);
        aborted = true;
        cv.notify_all();
    }
};

struct Comm
{
    Group* group;
    int rank;
    int device;
};

} // namespace

CUEMU_API int cuemu_comm_init_all(void** comms, int n)
{
    if (n < 1) return InvalidArgument;
    auto* g = new Group(n);
    for (int r = 0; r < n; r++) comms[r] = new Comm{g, r, r};
    return Success;
}

CUEMU_API int cuemu_comm_destroy(void* comm)
{
    auto* c = (Comm*)comm;
    bool last;
    {
        std::lock_guard<std::mutex> lock(c->group->mu);
        last = --c->group->alive == 0;
    }
    if (last) delete c->group;
    delete c;
    return Success;
}

CUEMU_API int cuemu_all_reduce(const void* send, void* recv, size_t count, int datatype, int op, void* comm)
{
    if (datatype != Float32 || op != Sum) return InvalidArgument;
    auto* c = (Comm*)comm;
    Group& g = *c->group;
    g.send[c->rank] = send;
    if (!g.barrier()) return RemoteError;
    std::vector<float> sum(count, 0.f);
    for (int r = 0; r < g.n; r++)
    {
        const float* s = (const float*)g.send[r];
        for (size_t i = 0; i < count; i++) sum[i] += s[i];
    }
    if (!g.barrier()) return RemoteError; // every rank has read every send buffer: recv may alias send
    memcpy(recv, sum.data(), count * sizeof(float));
    return Success;
}

CUEMU_API int cuemu_all_gather(const void* send, void* recv, size_t count, int datatype, void* comm)
{
    if (datatype != Float32) return InvalidArgument;
    auto* c = (Comm*)comm;
    Group& g = *c->group;
    g.send[c->rank] = send;
    if (!g.barrier()) return RemoteError;
    std::vector<float> all(count * g.n);
    for (int r = 0; r < g.n; r++) memcpy(&all[count * r], g.send[r], count * sizeof(float));
    if (!g.barrier()) return RemoteError;
    memcpy(recv, all.data(), all.size() * sizeof(float));
    return Success;
}

CUEMU_API int cuemu_comm_abort(void* comm)
{
    ((Comm*)comm)->group->abort();
    return Success;
}

// NCCL's own entry points over the emulated driver (see driver.cpp). A communicator of device d
// works in d's primary context: a collective on a stream of any other context is refused.
#include "driver.h"

#define NCCL_API extern "C" __attribute__((visibility("default")))

namespace {
int check_stream(void* comm, cuemu::Stream* stream)
{
    if (!stream || stream->context != cuemu::primary_context(((Comm*)comm)->device)) return InvalidUsage;
    return stream->context->sticky != 0 ? SystemError : Success;
}
} // namespace

NCCL_API int ncclGetVersion(int* version) { *version = 22000; return Success; }

NCCL_API int ncclCommInitAll(void** comms, int n, const int* devices)
{
    int status = cuemu_comm_init_all(comms, n);
    if (status == Success && devices)
        for (int r = 0; r < n; r++) ((Comm*)comms[r])->device = devices[r];
    return status;
}

NCCL_API int ncclCommDestroy(void* comm) { return cuemu_comm_destroy(comm); }
// The communicator's memory is left to the process: a rank may still be inside a collective on it.
NCCL_API int ncclCommAbort(void* comm) { return cuemu_comm_abort(comm); }

NCCL_API int ncclAllReduce(const void* send, void* recv, size_t count, int datatype, int op, void* comm, cuemu::Stream* stream)
{
    if (int e = check_stream(comm, stream)) return e;
    return cuemu::enqueue(stream, [=] { return cuemu_all_reduce(send, recv, count, datatype, op, comm); });
}

NCCL_API int ncclAllGather(const void* send, void* recv, size_t count, int datatype, void* comm, cuemu::Stream* stream)
{
    if (int e = check_stream(comm, stream)) return e;
    return cuemu::enqueue(stream, [=] { return cuemu_all_gather(send, recv, count, datatype, comm); });
}

NCCL_API const char* ncclGetErrorString(int result)
{
    switch (result)
    {
    case Success: return "no error";
    case SystemError: return "unhandled system error";
    case InvalidArgument: return "invalid argument";
    case InvalidUsage: return "invalid usage (a stream outside the device's primary context)";
    case RemoteError: return "remote process exited or there was a network error (communicator aborted)";
    default: return "unknown result";
    }
}
