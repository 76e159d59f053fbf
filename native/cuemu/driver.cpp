// The CUDA driver API over the emulator, under the driver's own symbol names, so the backend's
// driver path (DriverCudaDevice, NcclCollectives) runs unchanged on the CPU when the "cuda",
// "cublas" and "nccl" libraries resolve to this one (STEER_CUDA_DRIVER=cuemu). It keeps the
// driver's rules that an emulated device would otherwise hide:
// - a context must be current on the calling thread (CUDA_ERROR_INVALID_CONTEXT otherwise), and a
//   stream or module is only usable while its own context is current;
// - NCCL and the CUDA runtime work in each device's primary context (collectives.cpp rejects a
//   stream of any other context);
// - a kernel that faults does not fail its launch: the error is sticky and reported by the next
//   synchronising call, as on a GPU (CUDA_ERROR_ILLEGAL_ADDRESS / CUDA_ERROR_LAUNCH_FAILED).
// Streams run their work at once (the host waits for every launch), device memory is host
// memory (memory.cpp); module images are ignored, the kernels are the ones compiled into this
// library from the same sources.
#include "driver.h"

#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "cuemu_api.h"
#include "kernel_table.h"
#include "memory.h"

#define CU_API extern "C" __attribute__((visibility("default")))

namespace cuemu {

namespace {

enum
{
    Success = 0, InvalidValue = 1, NotInitialized = 3, InvalidDevice = 101, InvalidContext = 201,
    InvalidHandle = 400, NotFound = 500, IllegalState = 401, IllegalAddress = 700, LaunchFailed = 719,
};

bool initialized;
Context primary[MaxDevices];
std::mutex mu;
thread_local Context* current;
thread_local std::string error_text;

int device_count()
{
    const char* env = getenv("CUEMU_DEVICES");
    int n = env ? atoi(env) : 2;
    return n < 1 ? 1 : n > MaxDevices ? MaxDevices : n;
}

// The state every context-bound call checks first: a current context without a sticky error.
int ready()
{
    if (!initialized) return NotInitialized;
    if (!current) return InvalidContext;
    return current->sticky;
}

struct Module { Context* context; };

// Each device's size: CUEMU_DEVICE_BYTES (as EmulatedCudaDevice reads it), else 80 GiB, an H100's. Its memory is
// host memory mapped on demand, so the size is what cuMemGetInfo and cuDeviceTotalMem report, not a limit.
size_t device_bytes()
{
    const char* env = getenv("CUEMU_DEVICE_BYTES");
    long long n = env ? atoll(env) : 0;
    return n > 0 ? (size_t)n : (size_t)80 << 30;
}

// Live cuMemAlloc allocations (address → device, bytes) and each device's total of them, for cuMemGetInfo.
std::map<unsigned long long, std::pair<int, size_t>> allocations;
size_t allocated[MaxDevices];

} // namespace

Context* current_context() { return current; }

int enqueue(Stream* stream, std::function<int()> work)
{
    if (stream->capture)
    {
        stream->capture->nodes.push_back(std::move(work));
        return 0;
    }
    return work();
}
Context* primary_context(int device) { return device >= 0 && device < MaxDevices ? &primary[device] : nullptr; }

} // namespace cuemu

using namespace cuemu;

CU_API int cuInit(unsigned)
{
    for (int d = 0; d < MaxDevices; d++) { primary[d].device = d; primary[d].primary = true; }
    initialized = true;
    return Success;
}

CU_API int cuDriverGetVersion(int* v) { *v = 12040; return Success; }

CU_API int cuDeviceGetCount(int* n)
{
    if (!initialized) return NotInitialized;
    *n = device_count();
    return Success;
}

CU_API int cuDeviceGet(int* device, int ordinal)
{
    if (!initialized) return NotInitialized;
    if (ordinal < 0 || ordinal >= device_count()) return InvalidDevice;
    *device = ordinal;
    return Success;
}

CU_API int cuDeviceGetName(char* name, int length, int device)
{
    if (device < 0 || device >= device_count()) return InvalidDevice;
    snprintf(name, (size_t)length, "cuemu emulated device %d", device);
    return Success;
}

CU_API int cuDeviceGetAttribute(int* value, int attribute, int device)
{
    if (device < 0 || device >= device_count()) return InvalidDevice;
    switch (attribute)
    {
    case 1: *value = 1024; break;      // max threads per block
    case 8: *value = 49152; break;     // shared memory per block
    case 13: *value = 1980000; break;  // clock rate, kHz
    case 16: *value = 132; break;      // multiprocessors
    case 36: *value = 2619000; break;  // memory clock, kHz
    case 37: *value = 5120; break;     // memory bus width, bits
    case 75: *value = 9; break;        // compute capability major
    case 76: *value = 0; break;        // compute capability minor
    default: *value = 0;
    }
    return Success;
}

CU_API int cuDeviceTotalMem_v2(size_t* bytes, int device)
{
    if (device < 0 || device >= device_count()) return InvalidDevice;
    *bytes = device_bytes();
    return Success;
}

CU_API int cuDevicePrimaryCtxRetain(Context** context, int device)
{
    if (!initialized) return NotInitialized;
    if (device < 0 || device >= device_count()) return InvalidDevice;
    std::lock_guard<std::mutex> lock(mu);
    primary[device].references++;
    *context = &primary[device];
    return Success;
}

CU_API int cuDevicePrimaryCtxRelease_v2(int device)
{
    if (device < 0 || device >= device_count()) return InvalidDevice;
    std::lock_guard<std::mutex> lock(mu);
    if (primary[device].references == 0) return InvalidContext;
    if (--primary[device].references == 0) primary[device].sticky = Success; // destroyed: a fresh one next time
    return Success;
}

CU_API int cuCtxCreate_v2(Context** context, unsigned, int device)
{
    if (!initialized) return NotInitialized;
    if (device < 0 || device >= device_count()) return InvalidDevice;
    *context = current = new Context{device, false, 1, Success};
    return Success;
}

CU_API int cuCtxDestroy_v2(Context* context)
{
    if (!context || context->primary) return InvalidContext;
    if (current == context) current = nullptr;
    delete context;
    return Success;
}

CU_API int cuCtxSetCurrent(Context* context) { current = context; return Success; }
CU_API int cuCtxGetCurrent(Context** context) { *context = current; return Success; }
CU_API int cuCtxSynchronize() { return ready(); }

CU_API int cuModuleLoadData(Module** module, const void* image)
{
    if (int e = ready()) return e;
    if (!image) return InvalidValue;
    *module = new Module{current};
    return Success;
}

CU_API int cuModuleUnload(Module* module)
{
    delete module;
    return Success;
}

CU_API int cuModuleGetFunction(const KernelEntry** function, Module* module, const char* name)
{
    if (int e = ready()) return e;
    if (!module || module->context != current) return InvalidHandle;
    for (int i = 0; i < kernel_table_size(); i++)
        if (strcmp(kernel_table()[i].name, name) == 0) { *function = &kernel_table()[i]; return Success; }
    return NotFound;
}

CU_API int cuFuncGetAttribute(int* value, int attribute, const KernelEntry* function)
{
    if (!function) return InvalidHandle;
    *value = attribute == 0 ? 1024 : attribute == 4 ? 32 : 0; // max threads per block; registers (nominal)
    return Success;
}

CU_API int cuStreamCreate(Stream** stream, unsigned)
{
    if (int e = ready()) return e;
    *stream = new Stream{current};
    return Success;
}

CU_API int cuStreamDestroy_v2(Stream* stream)
{
    delete stream;
    return Success;
}

CU_API int cuStreamSynchronize(Stream* stream)
{
    if (!initialized) return NotInitialized;
    if (!stream) return InvalidHandle;
    if (stream->capture) return IllegalState; // a sync inside a capture breaks it on a GPU too
    return stream->context->sticky;
}

CU_API int cuLaunchKernel(const KernelEntry* function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                          unsigned bz, unsigned shared_bytes, Stream* stream, void** params, void** extra)
{
    if (int e = ready()) return e;
    if (!function || !stream || stream->context != current) return InvalidHandle;
    if (extra) return InvalidValue;
    std::shared_ptr<ArgPack> args(stream->capture ? function->pack(params) : nullptr);
    Context* context = current;
    return enqueue(stream, [=] {
        int status = cuemu_launch(function->name, gx, gy, gz, bx, by, bz, shared_bytes, args ? args->pointers.data() : params);
        if (status == 1 || status == 2) return (int)InvalidValue; // refused at launch, as the driver refuses a bad configuration
        if (status != 0)
        {
            // The kernel ran and failed: the context is broken from here on, reported by the next sync.
            context->sticky = status == 4 ? IllegalAddress : LaunchFailed;
            context->fault = cuemu_last_error();
        }
        return (int)Success;
    });
}

// Stream capture: the launches, GEMMs and collectives queued on a capturing stream become the
// nodes of a graph instead of running; cuGraphLaunch runs them in order. So do device-to-device
// copies; copies from or to the host and memsets on a capturing stream are refused (the backend
// captures only kernels, GEMMs, collectives and device copies).
CU_API int cuStreamBeginCapture_v2(Stream* stream, int)
{
    if (int e = ready()) return e;
    if (!stream || stream->context != current) return InvalidHandle;
    if (stream->capture) return IllegalState;
    stream->capture = new Graph{current, {}};
    return Success;
}

CU_API int cuStreamEndCapture(Stream* stream, Graph** graph)
{
    if (!stream || !stream->capture) return IllegalState;
    *graph = stream->capture;
    stream->capture = nullptr;
    return ready();
}

struct GraphExec { Graph graph; };

CU_API int cuGraphInstantiateWithFlags(GraphExec** exec, Graph* graph, unsigned long long)
{
    if (int e = ready()) return e;
    if (!graph) return InvalidValue;
    *exec = new GraphExec{*graph};
    return Success;
}

CU_API int cuGraphLaunch(GraphExec* exec, Stream* stream)
{
    if (int e = ready()) return e;
    if (!exec || !stream || stream->context != current || exec->graph.context != current) return InvalidHandle;
    if (stream->capture) return IllegalState;
    // A node's own error (a refused launch; a GEMM's or collective's status) ends the launch.
    for (auto& node : exec->graph.nodes)
        if (int e = node()) return e == InvalidValue ? e : LaunchFailed;
    return Success;
}

CU_API int cuGraphExecDestroy(GraphExec* exec)
{
    delete exec;
    return Success;
}

CU_API int cuGraphDestroy(Graph* graph)
{
    delete graph;
    return Success;
}

CU_API int cuMemAlloc_v2(unsigned long long* pointer, size_t bytes)
{
    if (int e = ready()) return e;
    if (bytes == 0) return InvalidValue;
    void* p = allocate(bytes);
    if (!p) return 2; // CUDA_ERROR_OUT_OF_MEMORY
    *pointer = (unsigned long long)p;
    std::lock_guard<std::mutex> lock(mu);
    allocations[*pointer] = {current->device, bytes};
    allocated[current->device] += bytes;
    return Success;
}

CU_API int cuMemFree_v2(unsigned long long pointer)
{
    if (int e = ready()) return e;
    if (!release((void*)pointer)) return InvalidValue;
    std::lock_guard<std::mutex> lock(mu);
    auto it = allocations.find(pointer);
    if (it != allocations.end())
    {
        allocated[it->second.first] -= it->second.second;
        allocations.erase(it);
    }
    return Success;
}

// The current context's device: its size, and that minus what cuMemAlloc holds on it.
CU_API int cuMemGetInfo_v2(size_t* free, size_t* total)
{
    if (int e = ready()) return e;
    std::lock_guard<std::mutex> lock(mu);
    size_t size = device_bytes(), used = allocated[current->device];
    *total = size;
    *free = used < size ? size - used : 0;
    return Success;
}

CU_API int cuMemAllocHost_v2(void** pointer, size_t bytes)
{
    if (int e = ready()) return e;
    *pointer = malloc(bytes ? bytes : 1);
    return *pointer ? Success : 2;
}

CU_API int cuMemFreeHost(void* pointer)
{
    free(pointer);
    return Success;
}

CU_API int cuMemcpyHtoD_v2(unsigned long long destination, const void* source, size_t bytes)
{
    if (int e = ready()) return e;
    memcpy((void*)destination, source, bytes);
    return Success;
}

CU_API int cuMemcpyDtoH_v2(void* destination, unsigned long long source, size_t bytes)
{
    if (int e = ready()) return e;
    memcpy(destination, (const void*)source, bytes);
    return Success;
}

CU_API int cuMemcpyDtoD_v2(unsigned long long destination, unsigned long long source, size_t bytes)
{
    if (int e = ready()) return e;
    memmove((void*)destination, (const void*)source, bytes);
    return Success;
}

CU_API int cuMemsetD8_v2(unsigned long long destination, unsigned char value, size_t count)
{
    if (int e = ready()) return e;
    memset((void*)destination, value, count);
    return Success;
}

static int on_stream(Stream* stream)
{
    if (int e = ready()) return e;
    if (stream && stream->capture) return IllegalState;
    return stream && stream->context == current ? Success : InvalidHandle;
}

CU_API int cuMemcpyHtoDAsync_v2(unsigned long long destination, const void* source, size_t bytes, Stream* stream)
{
    if (int e = on_stream(stream)) return e;
    memcpy((void*)destination, source, bytes);
    return Success;
}

CU_API int cuMemcpyDtoHAsync_v2(void* destination, unsigned long long source, size_t bytes, Stream* stream)
{
    if (int e = on_stream(stream)) return e;
    memcpy(destination, (const void*)source, bytes);
    return Success;
}

// A device-to-device copy may be captured (a memcpy node of the graph), as on a GPU.
CU_API int cuMemcpyDtoDAsync_v2(unsigned long long destination, unsigned long long source, size_t bytes, Stream* stream)
{
    if (int e = ready()) return e;
    if (!stream || stream->context != current) return InvalidHandle;
    return enqueue(stream, [=] { memmove((void*)destination, (const void*)source, bytes); return (int)Success; });
}

CU_API int cuMemsetD8Async(unsigned long long destination, unsigned char value, size_t count, Stream* stream)
{
    if (int e = on_stream(stream)) return e;
    memset((void*)destination, value, count);
    return Success;
}

CU_API int cuGetErrorString(int error, const char** text)
{
    const char* base;
    switch (error)
    {
    case Success: base = "no error"; break;
    case InvalidValue: base = "invalid argument"; break;
    case 2: base = "out of memory"; break;
    case NotInitialized: base = "initialization error"; break;
    case InvalidDevice: base = "invalid device ordinal"; break;
    case InvalidContext: base = "invalid device context"; break;
    case InvalidHandle: base = "invalid resource handle"; break;
    case NotFound: base = "named symbol not found"; break;
    case IllegalState: base = "operation not permitted when stream is capturing"; break;
    case IllegalAddress: base = "an illegal memory access was encountered"; break;
    case LaunchFailed: base = "unspecified launch failure"; break;
    default: base = "unknown error";
    }
    error_text = base;
    if ((error == IllegalAddress || error == LaunchFailed) && current && !current->fault.empty()) error_text += " (cuemu: " + current->fault + ")";
    *text = error_text.c_str();
    return Success;
}
