// Kernel launches and device memory of the emulated device.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include "block.h"
#include "cuemu_api.h"
#include "kernel_table.h"

namespace {
thread_local std::string last_error;
}

CUEMU_API const char* cuemu_last_error() { return last_error.c_str(); }

CUEMU_API int cuemu_kernel_count() { return cuemu::kernel_table_size(); }
CUEMU_API const char* cuemu_kernel_name(int i) { return cuemu::kernel_table()[i].name; }

CUEMU_API int cuemu_launch(const char* kernel, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                           unsigned bz, unsigned shared_bytes, void** args)
{
    const cuemu::KernelEntry* entry = nullptr;
    for (int i = 0; i < cuemu::kernel_table_size(); i++)
        if (strcmp(cuemu::kernel_table()[i].name, kernel) == 0) entry = &cuemu::kernel_table()[i];
    if (!entry) { last_error = std::string("cuemu: no kernel named ") + kernel; return 1; }
    if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0 || bx * by * bz > 1024 || shared_bytes != 0)
    {
        last_error = std::string("cuemu: invalid launch configuration for ") + kernel;
        return 2;
    }
    cuemu::grid_dim = {gx, gy, gz};
    cuemu::block_dim = {bx, by, bz};
    std::function<void()> body = [&] { entry->invoke(entry->fn, args); };
    for (unsigned z = 0; z < gz; z++)
        for (unsigned y = 0; y < gy; y++)
            for (unsigned x = 0; x < gx; x++)
            {
                cuemu::block_idx = {x, y, z};
                if (!cuemu::run_block(body, last_error))
                {
                    last_error = std::string(kernel) + ": " + last_error;
                    return 3;
                }
            }
    return 0;
}

CUEMU_API void* cuemu_malloc(size_t bytes)
{
    void* p = nullptr;
    if (posix_memalign(&p, 256, bytes ? bytes : 1) != 0) return nullptr;
    return p;
}

CUEMU_API void cuemu_free(void* p) { free(p); }
