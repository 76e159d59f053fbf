// Device memory of the emulated device, bounds-checked as compute-sanitizer's memcheck would: every
// allocation ends exactly at a page boundary followed by an inaccessible guard page, so a kernel
// that reads or writes past the end faults; the fault is turned into a launch error that names
// the kernel, the block, the address and the allocation (see launch.cpp). Allocations start
// 16-byte aligned (the widest load a kernel makes), so an overrun into the up to 15 bytes of
// slack before the guard page is not caught.
#include "memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>

#include "cuemu_api.h"

namespace cuemu {
namespace {

struct Region
{
    uintptr_t map_base;  // the mapping: [map_base, guard) readable, [guard, guard + page) not
    size_t map_bytes;
    uintptr_t data;      // what the caller gets
    size_t bytes;        // what the caller asked for
};

std::mutex mu;
std::map<uintptr_t, Region> by_guard; // guard page address → region

size_t page() { static const size_t p = (size_t)sysconf(_SC_PAGESIZE); return p; }

} // namespace

void* allocate(size_t bytes)
{
    size_t p = page(), payload = ((bytes ? bytes : 1) + 15) & ~(size_t)15;
    size_t readable = (payload + p - 1) / p * p, total = readable + p;
    void* m = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return nullptr;
    uintptr_t guard = (uintptr_t)m + readable;
    mprotect((void*)guard, p, PROT_NONE);
    Region r{(uintptr_t)m, total, guard - payload, bytes};
    std::lock_guard<std::mutex> lock(mu);
    by_guard[guard] = r;
    return (void*)r.data;
}

bool release(void* ptr)
{
    Region r;
    {
        std::lock_guard<std::mutex> lock(mu);
        for (auto it = by_guard.begin(); it != by_guard.end(); ++it)
            if (it->second.data == (uintptr_t)ptr)
            {
                r = it->second;
                by_guard.erase(it);
                goto found;
            }
        return false;
    }
found:
    munmap((void*)r.map_base, r.map_bytes);
    return true;
}

bool describe_fault(uintptr_t address, char* out, size_t size)
{
    std::lock_guard<std::mutex> lock(mu);
    auto it = by_guard.upper_bound(address);
    if (it == by_guard.begin()) return false;
    --it;
    if (address >= it->first + page()) return false;
    const Region& r = it->second;
    snprintf(out, size, "out-of-bounds global access at 0x%lx: %lu bytes past the end of the %lu-byte device allocation at 0x%lx",
             (unsigned long)address, (unsigned long)(address - r.data - r.bytes), (unsigned long)r.bytes, (unsigned long)r.data);
    return true;
}

} // namespace cuemu

CUEMU_API void* cuemu_malloc(size_t bytes) { return cuemu::allocate(bytes); }

CUEMU_API void cuemu_free(void* p)
{
    if (p) cuemu::release(p);
}
