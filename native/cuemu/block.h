// Runs one block of a kernel launch on the calling thread (see block.cpp).
#pragma once
#include <functional>
#include <string>

#include "cuemu.h"

namespace cuemu {

// block_idx, block_dim and grid_dim must be set; body runs once per CUDA thread.
bool run_block(const std::function<void()>& body, std::string& error);

} // namespace cuemu
