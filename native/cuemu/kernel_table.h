// The kernels of kernels/*.cu compiled for the emulator, by name, with a thunk that unpacks a
// cuLaunchKernel-style argument array (void** pointing at each argument's value).
#pragma once
#include <type_traits>
#include <utility>

namespace cuemu {

struct KernelEntry
{
    const char* name;
    void* fn;
    void (*invoke)(void* fn, void** args);
};

template <typename... A, size_t... I>
void call_unpacked(void (*f)(A...), void** args, std::index_sequence<I...>)
{
    f(*static_cast<std::remove_cv_t<A>*>(args[I])...);
}

template <typename... A>
void invoke_thunk(void* fn, void** args)
{
    call_unpacked(reinterpret_cast<void (*)(A...)>(fn), args, std::index_sequence_for<A...>{});
}

template <typename... A>
KernelEntry kernel_entry(const char* name, void (*f)(A...))
{
    return {name, reinterpret_cast<void*>(f), &invoke_thunk<A...>};
}

const KernelEntry* kernel_table();
int kernel_table_size();

} // namespace cuemu
