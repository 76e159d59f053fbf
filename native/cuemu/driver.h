// The emulated driver's contexts and streams, shared with the emulated cuBLAS and NCCL entry points.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace cuemu {

constexpr int MaxDevices = 8;

struct Context
{
    int device = 0;
    bool primary = false;
    int references = 0;
    int sticky = 0;           // the CUresult every call returns after a kernel failed in this context
    std::string fault;        // that kernel's error
};

// A captured graph: the work queued on a capturing stream, in order. A node returns a CUresult:
// a refused launch fails cuGraphLaunch, a kernel that ran and faulted sets its context's sticky error.
struct Graph { Context* context; std::vector<std::function<int()>> nodes; };

struct Stream
{
    Context* context;
    Graph* capture = nullptr; // between cuStreamBeginCapture and cuStreamEndCapture
};

// Queues work on a stream: a capturing stream keeps it as a graph node, any other runs it now.
int enqueue(Stream* stream, std::function<int()> work);

Context* current_context();
Context* primary_context(int device);

} // namespace cuemu
