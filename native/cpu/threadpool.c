/* A persistent thread pool. The calling thread is worker 0 and takes tasks too. Workers spin
 * briefly between jobs (ops of one forward pass follow each other closely), then sleep on a
 * futex (WaitOnAddress on Windows).
 *
 * A job is published by bumping `generation`; tasks are claimed from `state` = (job << 32) | next
 * with a compare-and-swap, so a worker that wakes late for an old job can never run a task of
 * the next one. */
#define _GNU_SOURCE
#include <stdlib.h>

#include "internal.h"

#if defined(_WIN32)
#include <windows.h>
#pragma comment(lib, "synchronization.lib")
typedef HANDLE steer_thread;
#else
#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>
typedef pthread_t steer_thread;
#endif

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#define LOAD32(p) InterlockedOr((volatile long*)(p), 0)
#define LOAD64(p) InterlockedOr64((volatile long long*)(p), 0)
#define STORE32(p, v) InterlockedExchange((volatile long*)(p), (long)(v))
#define STORE64(p, v) InterlockedExchange64((volatile long long*)(p), (long long)(v))
#define ADD32(p, v) InterlockedAdd((volatile long*)(p), (long)(v))
#define CAS64(p, expected, desired) \
    (InterlockedCompareExchange64((volatile long long*)(p), (long long)(desired), (long long)(expected)) == (long long)(expected))
#define CPU_RELAX() _mm_pause()
#else
#define LOAD32(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define LOAD64(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define STORE32(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define STORE64(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define ADD32(p, v) __atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST)
#define CAS64(p, expected, desired) \
    __atomic_compare_exchange_n((p), &(uint64_t){(expected)}, (desired), 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)
#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#else
#define CPU_RELAX() ((void)0)
#endif
#endif

#define SPIN_ROUNDS 20000
#define MAX_THREADS 256

typedef struct pool {
    int threads;
    steer_thread handles[MAX_THREADS];
    volatile int32_t generation; /* futex word: bumped once per job */
    volatile int32_t sleepers;
    volatile int32_t stop;
    volatile uint64_t state;     /* (job generation << 32) | next task */
    volatile int32_t done;       /* tasks finished in the current job */
    steer_task_fn fn;
    void* ctx;
    int32_t ntasks;
    void* scratch[MAX_THREADS];
    size_t scratch_size[MAX_THREADS];
} pool;

static pool g_pool;
static int g_started;

void* steer_aligned_alloc(size_t bytes) {
    bytes = (bytes + 63) & ~(size_t)63;
#if defined(_WIN32)
    return _aligned_malloc(bytes ? bytes : 64, 64);
#else
    return aligned_alloc(64, bytes ? bytes : 64);
#endif
}

void steer_aligned_free(void* p) {
#if defined(_WIN32)
    _aligned_free(p);
#else
    free(p);
#endif
}

static void wait_on(volatile int32_t* addr, int32_t seen) {
#if defined(_WIN32)
    WaitOnAddress((volatile void*)addr, &seen, sizeof seen, INFINITE);
#else
    syscall(SYS_futex, (int32_t*)addr, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
#endif
}

static void wake_all(volatile int32_t* addr) {
#if defined(_WIN32)
    WakeByAddressAll((void*)addr);
#else
    syscall(SYS_futex, (int32_t*)addr, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
#endif
}

/* Claims and runs tasks of job `gen` until none is left. */
static void run_tasks(pool* p, uint32_t gen, int thread) {
    steer_task_fn fn = p->fn;
    void* ctx = p->ctx;
    uint32_t ntasks = (uint32_t)p->ntasks;
    for (;;) {
        uint64_t s = LOAD64(&p->state);
        if ((uint32_t)(s >> 32) != gen || (uint32_t)s >= ntasks) return;
        if (!CAS64(&p->state, s, s + 1)) continue;
        fn(ctx, (int)(uint32_t)s, thread);
        ADD32(&p->done, 1);
    }
}

typedef struct worker_arg { int index; } worker_arg;
static worker_arg g_args[MAX_THREADS];

#if defined(_WIN32)
static DWORD WINAPI worker_main(LPVOID arg)
#else
static void* worker_main(void* arg)
#endif
{
    pool* p = &g_pool;
    int index = ((worker_arg*)arg)->index;
    int32_t seen = LOAD32(&p->generation);
    for (;;) {
        int spins = 0;
        int32_t gen;
        while ((gen = LOAD32(&p->generation)) == seen && !LOAD32(&p->stop)) {
            if (++spins < SPIN_ROUNDS) { CPU_RELAX(); continue; }
            ADD32(&p->sleepers, 1);
            if (LOAD32(&p->generation) == seen && !LOAD32(&p->stop)) wait_on(&p->generation, seen);
            ADD32(&p->sleepers, -1);
            spins = 0;
        }
        if (LOAD32(&p->stop)) break;
        seen = gen;
        run_tasks(p, (uint32_t)gen, index);
    }
    return 0;
}

void steer_cpu_shutdown(void) {
    pool* p = &g_pool;
    if (!g_started) return;
    STORE32(&p->stop, 1);
    ADD32(&p->generation, 1);
    wake_all(&p->generation);
    for (int i = 1; i < p->threads; i++) {
#if defined(_WIN32)
        WaitForSingleObject(p->handles[i], INFINITE);
        CloseHandle(p->handles[i]);
#else
        pthread_join(p->handles[i], NULL);
#endif
    }
    for (int i = 0; i < MAX_THREADS; i++) {
        steer_aligned_free(p->scratch[i]);
        p->scratch[i] = NULL;
        p->scratch_size[i] = 0;
    }
    g_started = 0;
}

static int online_cpus(void) {
#if defined(_WIN32)
    SYSTEM_INFO info;
    GetSystemInfo(&info);
    return (int)info.dwNumberOfProcessors;
#else
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
#endif
}

int steer_cpu_init(int threads) {
    steer_cpu_shutdown();
    pool* p = &g_pool;
    if (threads <= 0) threads = online_cpus();
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    p->threads = threads;
    p->stop = 0;
    p->sleepers = 0;
    p->generation = 0;
    p->state = 0;
    p->done = 0;
    g_started = 1;
    for (int i = 1; i < threads; i++) {
        g_args[i].index = i;
#if defined(_WIN32)
        p->handles[i] = CreateThread(NULL, 0, worker_main, &g_args[i], 0, NULL);
#else
        pthread_create(&p->handles[i], NULL, worker_main, &g_args[i]);
#endif
    }
    return threads;
}

int steer_pool_threads(void) {
    if (!g_started) steer_cpu_init(0);
    return g_pool.threads;
}

int steer_cpu_threads(void) { return steer_pool_threads(); }

void steer_parallel_for(int ntasks, steer_task_fn fn, void* ctx) {
    pool* p = &g_pool;
    if (ntasks <= 0) return;
    if (steer_pool_threads() == 1 || ntasks == 1) {
        for (int t = 0; t < ntasks; t++) fn(ctx, t, 0);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->ntasks = ntasks;
    STORE32(&p->done, 0);
    uint32_t gen = (uint32_t)LOAD32(&p->generation) + 1;
    STORE64(&p->state, (uint64_t)gen << 32);
    STORE32(&p->generation, (int32_t)gen);
    if (LOAD32(&p->sleepers) > 0) wake_all(&p->generation);
    run_tasks(p, gen, 0);
    while (LOAD32(&p->done) < ntasks) CPU_RELAX();
}

void* steer_thread_scratch(int thread, size_t bytes) {
    pool* p = &g_pool;
    if (p->scratch_size[thread] < bytes) {
        steer_aligned_free(p->scratch[thread]);
        p->scratch[thread] = steer_aligned_alloc(bytes);
        p->scratch_size[thread] = bytes;
    }
    return p->scratch[thread];
}

static void* g_call_scratch;
static size_t g_call_scratch_size;

void* steer_call_scratch(size_t bytes) {
    if (g_call_scratch_size < bytes) {
        steer_aligned_free(g_call_scratch);
        g_call_scratch = steer_aligned_alloc(bytes);
        g_call_scratch_size = bytes;
    }
    return g_call_scratch;
}
