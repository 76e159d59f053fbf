// Runs one CUDA block on the calling OS thread: every CUDA thread is a fiber with its own stack;
// a fiber runs until it reaches __syncthreads, a warp collective, or its end. A block barrier
// releases when every live thread of the block waits at it; a warp collective when every live
// lane of that warp has contributed. Anything else is a deadlock (threads diverged at a barrier),
// reported as a launch error.
#include "block.h"
#include "shared.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace cuemu {

thread_local Lane* current_lane;
thread_local uint3 block_idx;
thread_local dim3 block_dim;
thread_local dim3 grid_dim;
thread_local unsigned shared_epoch;
thread_local unsigned shared_block_start;
thread_local std::string shared_violation;

void report_shared(const char* kind, const char* name, long index)
{
    if (!shared_violation.empty()) return; // the first one of the block
    char s[256];
    snprintf(s, sizeof s, "%s shared %s[%ld] by thread (%u,%u,%u) of block (%u,%u,%u)", kind, name, index, current_lane->thread_idx.x,
             current_lane->thread_idx.y, current_lane->thread_idx.z, block_idx.x, block_idx.y, block_idx.z);
    shared_violation = s;
}

namespace {

constexpr size_t StackBytes = 128 * 1024;
constexpr int SlotBytes = 64;

enum class State { Ready, BlockWait, WarpWait, Done };

struct Fiber
{
    void* sp = nullptr;
    Lane lane{};
    State state = State::Ready;
    int exchanges = 0; // warp collectives so far; its parity picks the slot buffer
};

struct Runner
{
    std::vector<Fiber> fibers;
    std::vector<char*> stacks;
    std::vector<unsigned char> slots; // (warps, 2, 32, SlotBytes)
    void* scheduler_sp = nullptr;
    Fiber* running = nullptr;
    const std::function<void()>* body = nullptr;

    ~Runner()
    {
        for (char* s : stacks) munmap(s, StackBytes + getpagesize());
    }
};

thread_local Runner runner;

} // namespace
} // namespace cuemu

// Context switch: saves the callee-saved registers and the stack pointer of the current context
// into *from, loads to. A new fiber starts in cuemu_fiber_start with its entry in r13, argument in r12.
extern "C" void cuemu_switch(void** from, void* to);
extern "C" void cuemu_fiber_start();
#if defined(__x86_64__)
asm(R"(
.text
.globl cuemu_switch
.type cuemu_switch,@function
cuemu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
.size cuemu_switch,.-cuemu_switch
.globl cuemu_fiber_start
.type cuemu_fiber_start,@function
cuemu_fiber_start:
    movq %r12, %rdi
    callq *%r13
    ud2
.size cuemu_fiber_start,.-cuemu_fiber_start
)");
#else
#error "cuemu: the fiber switch is written for x86-64"
#endif

namespace cuemu {
namespace {

void yield_to_scheduler(State s)
{
    Fiber* f = runner.running;
    f->state = s;
    cuemu_switch(&f->sp, runner.scheduler_sp);
}

void fiber_main(void*)
{
    (*runner.body)();
    yield_to_scheduler(State::Done);
    abort(); // a finished fiber is never resumed
}

void* initial_stack(char* stack, Fiber* f)
{
    // Frame popped by cuemu_switch: r15 r14 r13 r12 rbx rbp, then the return address. The start
    // routine's call must see a 16-byte aligned stack.
    char* top = stack + getpagesize() + StackBytes;
    void** sp = (void**)(top - 72);
    sp[0] = nullptr;                          // r15
    sp[1] = nullptr;                          // r14
    sp[2] = (void*)&fiber_main;               // r13: entry
    sp[3] = f;                                // r12: argument
    sp[4] = nullptr;                          // rbx
    sp[5] = nullptr;                          // rbp
    sp[6] = (void*)&cuemu_fiber_start;        // return address
    return sp;
}

} // namespace

void sync_block() { yield_to_scheduler(State::BlockWait); }

std::string faulting_thread()
{
    Fiber* f = runner.running;
    runner.running = nullptr;
    if (!f) return "no thread";
    char s[64];
    snprintf(s, sizeof s, "thread (%u,%u,%u)", f->lane.thread_idx.x, f->lane.thread_idx.y, f->lane.thread_idx.z);
    return s;
}

bool is_stack_guard(uintptr_t address)
{
    for (char* s : runner.stacks)
        if (address >= (uintptr_t)s && address < (uintptr_t)s + getpagesize()) return true;
    return false;
}

const unsigned char* warp_exchange(const void* mine, int bytes)
{
    Fiber* f = runner.running;
    int warp = f->lane.linear / 32, parity = f->exchanges++ & 1;
    unsigned char* base = runner.slots.data() + ((size_t)warp * 2 + parity) * 32 * SlotBytes;
    if (bytes > 0) memcpy(base + f->lane.lane * SlotBytes, mine, bytes);
    yield_to_scheduler(State::WarpWait);
    return base;
}

bool run_block(const std::function<void()>& body, std::string& error)
{
    Runner& r = runner;
    int n = (int)(block_dim.x * block_dim.y * block_dim.z);
    int warps = (n + 31) / 32;
    long page = getpagesize();
    while ((int)r.stacks.size() < n)
    {
        void* m = mmap(nullptr, StackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) { error = "cuemu: out of memory for thread stacks"; return false; }
        mprotect(m, page, PROT_NONE); // guard page: a stack overflow faults instead of corrupting
        r.stacks.push_back((char*)m);
    }
    r.fibers.assign(n, Fiber{});
    r.slots.assign((size_t)warps * 2 * 32 * SlotBytes, 0);
    r.body = &body;
    shared_block_start = ++shared_epoch; // what earlier blocks left in shared memory is uninitialised here
    shared_violation.clear();
    for (int i = 0; i < n; i++)
    {
        Fiber& f = r.fibers[i];
        f.lane.linear = i;
        f.lane.lane = i % 32;
        f.lane.thread_idx = {i % block_dim.x, (i / block_dim.x) % block_dim.y, i / (block_dim.x * block_dim.y)};
        f.sp = initial_stack(r.stacks[i], &f);
    }

    for (;;)
    {
        for (Fiber& f : r.fibers)
            if (f.state == State::Ready)
            {
                r.running = &f;
                current_lane = &f.lane;
                cuemu_switch(&r.scheduler_sp, f.sp);
            }
        r.running = nullptr;

        bool released = false;
        for (int w = 0; w < warps; w++)
        {
            int live = 0, waiting = 0;
            for (int i = w * 32; i < n && i < w * 32 + 32; i++)
            {
                if (r.fibers[i].state != State::Done) live++;
                if (r.fibers[i].state == State::WarpWait) waiting++;
            }
            if (live > 0 && waiting == live)
            {
                for (int i = w * 32; i < n && i < w * 32 + 32; i++) r.fibers[i].state = State::Ready;
                released = true;
            }
        }
        if (released) continue;

        int live = 0, at_barrier = 0;
        for (Fiber& f : r.fibers)
        {
            if (f.state != State::Done) live++;
            if (f.state == State::BlockWait) at_barrier++;
        }
        if (live == 0)
        {
            if (shared_violation.empty()) return true;
            error = "cuemu: " + shared_violation;
            return false;
        }
        if (at_barrier == live)
        {
            for (Fiber& f : r.fibers) f.state = State::Ready;
            shared_epoch++;
            continue;
        }
        char msg[160];
        snprintf(msg, sizeof msg, "cuemu: deadlock in block (%u,%u,%u): %d threads at __syncthreads, %d at a warp collective, %d finished",
                 block_idx.x, block_idx.y, block_idx.z, at_barrier, live - at_barrier, n - live);
        error = msg;
        return false;
    }
}

} // namespace cuemu

unsigned __ballot_sync(unsigned, int predicate)
{
    int p = predicate != 0;
    const unsigned char* all = cuemu::warp_exchange(&p, sizeof p);
    int me = cuemu::current_lane->linear, first = me - me % 32;
    int n = (int)(cuemu::block_dim.x * cuemu::block_dim.y * cuemu::block_dim.z);
    unsigned bits = 0;
    for (int l = 0; l < 32 && first + l < n; l++)
    {
        int v;
        memcpy(&v, all + 64 * l, sizeof v);
        if (v) bits |= 1u << l;
    }
    return bits;
}

void cuemu_mma_m16n8k16_bf16(float d[4], const unsigned a[4], const unsigned b[2], const float c[4])
{
    struct Fragment { unsigned a[4]; unsigned b[2]; float c[4]; } mine;
    memcpy(mine.a, a, sizeof mine.a);
    memcpy(mine.b, b, sizeof mine.b);
    memcpy(mine.c, c, sizeof mine.c);
    const unsigned char* all = cuemu::warp_exchange(&mine, sizeof mine);

    // Reassemble A (16×16, row) and B (16×8, col) from the 32 lanes' registers.
    auto bf = [](unsigned reg, int half) { unsigned bits = half ? reg >> 16 : reg & 0xffffu; return __uint_as_float(bits << 16); };
    float A[16][16], B[16][8];
    for (int lane = 0; lane < 32; lane++)
    {
        Fragment f;
        memcpy(&f, all + 64 * lane, sizeof f);
        int g = lane >> 2, t = lane & 3;
        for (int h = 0; h < 2; h++)
        {
            A[g][2 * t + h] = bf(f.a[0], h);
            A[g + 8][2 * t + h] = bf(f.a[1], h);
            A[g][2 * t + 8 + h] = bf(f.a[2], h);
            A[g + 8][2 * t + 8 + h] = bf(f.a[3], h);
            B[2 * t + h][g] = bf(f.b[0], h);
            B[2 * t + 8 + h][g] = bf(f.b[1], h);
        }
    }
    int lane = cuemu::current_lane->lane, g = lane >> 2, t = lane & 3;
    for (int i = 0; i < 4; i++)
    {
        int row = i < 2 ? g : g + 8, col = 2 * t + (i & 1);
        float acc = 0.f; // bf16 products are exact in f32
        for (int k = 0; k < 16; k++) acc += A[row][k] * B[k][col];
        d[i] = acc + c[i];
    }
}
