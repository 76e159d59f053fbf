// Kernel launches of the emulated device. A fault inside a kernel (an access past a device
// allocation's end, a null or wild pointer, a CUDA thread's stack overflow) does not kill the
// process: the launch fails with a message naming the kernel, block, thread and address.
#include <setjmp.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>

#include "block.h"
#include "cuemu_api.h"
#include "kernel_table.h"
#include "memory.h"

namespace {

thread_local std::string last_error;
thread_local sigjmp_buf* fault_jump;
thread_local uintptr_t fault_address;
struct sigaction previous_segv, previous_bus;

// A fault while this thread runs a kernel jumps back to its launch; any other goes to the
// handler that was there before (the .NET runtime's).
void on_fault(int sig, siginfo_t* info, void* context)
{
    if (fault_jump)
    {
        fault_address = (uintptr_t)info->si_addr;
        siglongjmp(*fault_jump, sig);
    }
    const struct sigaction& prev = sig == SIGSEGV ? previous_segv : previous_bus;
    if (prev.sa_flags & SA_SIGINFO) prev.sa_sigaction(sig, info, context);
    else if (prev.sa_handler == SIG_DFL) { signal(sig, SIG_DFL); raise(sig); }
    else if (prev.sa_handler != SIG_IGN) prev.sa_handler(sig);
}

void install_fault_handler()
{
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction sa{};
        sa.sa_sigaction = on_fault;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, &previous_segv);
        sigaction(SIGBUS, &sa, &previous_bus);
    });
    // The handler must run even when a CUDA thread's stack overflowed: an alternate signal stack.
    static thread_local bool has_alt_stack;
    if (has_alt_stack) return;
    stack_t current{};
    sigaltstack(nullptr, &current);
    if (current.ss_flags & SS_DISABLE)
    {
        stack_t alt{};
        alt.ss_size = 64 * 1024;
        alt.ss_sp = malloc(alt.ss_size);
        sigaltstack(&alt, nullptr);
    }
    has_alt_stack = true;
}

std::string describe(uintptr_t address)
{
    char s[256];
    if (cuemu::describe_fault(address, s, sizeof s)) return s;
    if (cuemu::is_stack_guard(address)) return "stack overflow of a CUDA thread (deep recursion or a huge local array)";
    if (address < 65536) snprintf(s, sizeof s, "access through a null device pointer (address 0x%lx)", (unsigned long)address);
    else snprintf(s, sizeof s, "access to 0x%lx, outside every device allocation", (unsigned long)address);
    return s;
}

} // namespace

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
    install_fault_handler();
    cuemu::grid_dim = {gx, gy, gz};
    cuemu::block_dim = {bx, by, bz};
    std::function<void()> body = [&] { entry->invoke(entry->fn, args); };
    sigjmp_buf jump;
    if (sigsetjmp(jump, 1) != 0)
    {
        fault_jump = nullptr;
        char where[96];
        snprintf(where, sizeof where, ": block (%u,%u,%u) ", cuemu::block_idx.x, cuemu::block_idx.y, cuemu::block_idx.z);
        last_error = std::string(kernel) + where + cuemu::faulting_thread() + ": " + describe(fault_address);
        return 4;
    }
    fault_jump = &jump;
    for (unsigned z = 0; z < gz; z++)
        for (unsigned y = 0; y < gy; y++)
            for (unsigned x = 0; x < gx; x++)
            {
                cuemu::block_idx = {x, y, z};
                if (!cuemu::run_block(body, last_error))
                {
                    fault_jump = nullptr;
                    last_error = std::string(kernel) + ": " + last_error;
                    return 3;
                }
            }
    fault_jump = nullptr;
    return 0;
}
