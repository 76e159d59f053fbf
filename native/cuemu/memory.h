// Bounds-checked device allocations of the emulated device (see memory.cpp).
#pragma once
#include <cstddef>
#include <cstdint>

namespace cuemu {

void* allocate(size_t bytes);
bool release(void* ptr);
// A one-line description of a fault at address if it hit the guard page after an allocation.
bool describe_fault(uintptr_t address, char* out, size_t size);

} // namespace cuemu
