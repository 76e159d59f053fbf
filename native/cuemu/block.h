// Runs one block of a kernel launch on the calling thread (see block.cpp).
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "cuemu.h"

namespace cuemu {

// block_idx, block_dim and grid_dim must be set; body runs once per CUDA thread.
bool run_block(const std::function<void()>& body, std::string& error);
// After a fault abandoned the running block: describes the CUDA thread that faulted ("thread (x,y,z)"),
// and whether address hit the guard page of a thread's stack (a stack overflow).
std::string faulting_thread();
bool is_stack_guard(uintptr_t address);

} // namespace cuemu
