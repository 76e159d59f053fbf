// The emulated driver's contexts and streams, shared with the emulated cuBLAS and NCCL entry points.
#pragma once
#include <string>

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

struct Stream { Context* context; };

Context* current_context();
Context* primary_context(int device);

} // namespace cuemu
