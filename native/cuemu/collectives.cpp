// NCCL's all-reduce and all-gather across emulated devices: one communicator per rank, each rank
// driven by its own thread. Every rank sums in rank order, so all ranks hold bit-identical results
// (as NCCL guarantees for all-reduce).
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <vector>

#include "cuemu_api.h"

namespace {

enum { Success = 0, InvalidArgument = 4 };
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
    std::vector<const void*> send;

    explicit Group(int ranks) : n(ranks), alive(ranks), send(ranks) {}

    void barrier()
    {
        std::unique_lock<std::mutex> lock(mu);
        long gen = generation;
        if (++arrived == n) { arrived = 0; generation++; cv.notify_all(); return; }
        cv.wait(lock, [&] { return generation != gen; });
    }
};

struct Comm
{
    Group* group;
    int rank;
};

} // namespace

CUEMU_API int cuemu_comm_init_all(void** comms, int n)
{
    if (n < 1) return InvalidArgument;
    auto* g = new Group(n);
    for (int r = 0; r < n; r++) comms[r] = new Comm{g, r};
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
    g.barrier();
    std::vector<float> sum(count, 0.f);
    for (int r = 0; r < g.n; r++)
    {
        const float* s = (const float*)g.send[r];
        for (size_t i = 0; i < count; i++) sum[i] += s[i];
    }
    g.barrier(); // every rank has read every send buffer: recv may alias send
    memcpy(recv, sum.data(), count * sizeof(float));
    return Success;
}

CUEMU_API int cuemu_all_gather(const void* send, void* recv, size_t count, int datatype, void* comm)
{
    if (datatype != Float32) return InvalidArgument;
    auto* c = (Comm*)comm;
    Group& g = *c->group;
    g.send[c->rank] = send;
    g.barrier();
    std::vector<float> all(count * g.n);
    for (int r = 0; r < g.n; r++) memcpy(&all[count * r], g.send[r], count * sizeof(float));
    g.barrier();
    memcpy(recv, all.data(), all.size() * sizeof(float));
    return Success;
}
