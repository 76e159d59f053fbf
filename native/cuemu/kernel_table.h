// The kernels of kernels/*.cu compiled for the emulator, by name, with a thunk that unpacks a
// cuLaunchKernel-style argument array (void** pointing at each argument's value).
#pragma once
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace cuemu {

// A copy of one launch's argument values, as a captured graph keeps them (cuLaunchKernel's
// argument array points at the caller's variables, gone by the time the graph runs).
struct ArgPack
{
    virtual ~ArgPack() = default;
    std::vector<void*> pointers; // the copy as a launch's argument array
};

template <typename... A>
struct ArgPackOf : ArgPack
{
    std::tuple<std::remove_cv_t<A>...> values;

    template <size_t... I>
    ArgPackOf(void** args, std::index_sequence<I...>) : values(*static_cast<std::remove_cv_t<A>*>(args[I])...)
    {
        pointers = {static_cast<void*>(&std::get<I>(values))...};
    }
};

template <typename... A>
ArgPack* pack_thunk(void** args)
{
    return new ArgPackOf<A...>(args, std::index_sequence_for<A...>{});
}

struct KernelEntry
{
    const char* name;
    void* fn;
    void (*invoke)(void* fn, void** args);
    ArgPack* (*pack)(void** args);
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
    return {name, reinterpret_cast<void*>(f), &invoke_thunk<A...>, &pack_thunk<A...>};
}

const KernelEntry* kernel_table();
int kernel_table_size();

} // namespace cuemu
