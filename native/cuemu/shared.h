// Checked __shared__ memory, what compute-sanitizer's racecheck and initcheck see on a GPU: the
// build rewrites every `__shared__ T name[N]` (and [N][M], and scalars) of kernels/*.cu into one of
// these types (see CMakeLists.txt). Each element keeps a shadow of its last writer and readers and
// the barrier interval ("epoch") of each access, so a launch fails when a kernel
// - indexes a shared array out of its bounds,
// - reads an element no thread of this block has written (uninitialised: left from another block),
// - lets two threads touch one element between the same two barriers, one of them writing (a race).
// Warp-synchronous exchanges through shared memory (without __syncthreads) count as races; the
// kernels here use shuffles for those.
#pragma once
#include <cstdio>
#include <string>

#include "cuemu.h"

namespace cuemu {

// The barrier interval of the running block (0 before any block), its first one, and the first
// violation of the block (empty while there is none); set by block.cpp.
extern thread_local unsigned shared_epoch;
extern thread_local unsigned shared_block_start;
extern thread_local std::string shared_violation;

struct Shadow
{
    unsigned write_epoch = 0, read_epoch = 0;
    int writer = -1, reader = -1; // reader -2: several threads read in read_epoch
};

void report_shared(const char* kind, const char* name, long index);

template <typename T>
class SharedRef
{
    T* value_;
    Shadow* shadow_;
    const char* name_;
    long index_;

public:
    SharedRef(T* v, Shadow* s, const char* name, long index) : value_(v), shadow_(s), name_(name), index_(index) {}

    operator T() const
    {
        Shadow& s = *shadow_;
        int me = current_lane->linear;
        if (s.write_epoch < shared_block_start || s.write_epoch == 0) report_shared("uninitialised read of", name_, index_);
        else if (s.write_epoch == shared_epoch && s.writer != me) report_shared("race (read after another thread's write, no barrier between) on", name_, index_);
        if (s.read_epoch != shared_epoch) { s.read_epoch = shared_epoch; s.reader = me; }
        else if (s.reader != me) s.reader = -2;
        return *value_;
    }

    SharedRef& operator=(T v)
    {
        Shadow& s = *shadow_;
        int me = current_lane->linear;
        if (s.write_epoch == shared_epoch && s.write_epoch >= shared_block_start && s.writer != me)
            report_shared("race (two threads write, no barrier between) on", name_, index_);
        else if (s.read_epoch == shared_epoch && s.reader != me && s.read_epoch >= shared_block_start)
            report_shared("race (write after another thread's read, no barrier between) on", name_, index_);
        s.write_epoch = shared_epoch;
        s.writer = me;
        *value_ = v;
        return *this;
    }
    SharedRef& operator=(const SharedRef& other) { return *this = (T)other; }
    SharedRef& operator+=(T v) { return *this = (T)*this + v; }
    SharedRef& operator-=(T v) { return *this = (T)*this - v; }
    SharedRef& operator*=(T v) { return *this = (T)*this * v; }
};

template <typename T, long N>
class Shared1
{
    T data_[N];
    Shadow shadow_[N];
    T spare_;
    Shadow spare_shadow_;
    const char* name_;

public:
    explicit Shared1(const char* name) : name_(name) {}
    SharedRef<T> at(long i)
    {
        if (i < 0 || i >= N) { report_shared("out-of-bounds access to", name_, i); return SharedRef<T>(&spare_, &spare_shadow_, name_, i); }
        return SharedRef<T>(&data_[i], &shadow_[i], name_, i);
    }
    SharedRef<T> operator[](long i) { return at(i); }
};

template <typename T, long N, long M>
class Shared2
{
    Shared1<T, N * M> flat_;
    const char* name_;

public:
    class Row
    {
        Shared2* a_;
        long i_;
    public:
        Row(Shared2* a, long i) : a_(a), i_(i) {}
        SharedRef<T> operator[](long j)
        {
            if (j < 0 || j >= M) report_shared("out-of-bounds access (inner index) to", a_->name_, j);
            return a_->flat_.at(i_ < 0 || i_ >= N || j < 0 || j >= M ? -1 : i_ * M + j);
        }
    };
    explicit Shared2(const char* name) : flat_(name), name_(name) {}
    Row operator[](long i)
    {
        if (i < 0 || i >= N) report_shared("out-of-bounds access (outer index) to", name_, i);
        return Row(this, i);
    }
};

template <typename T>
class Shared0 : public SharedRef<T>
{
    T value_;
    Shadow shadow_;
public:
    explicit Shared0(const char* name) : SharedRef<T>(&value_, &shadow_, name, 0) {}
    using SharedRef<T>::operator=;
};

} // namespace cuemu

#define CUEMU_SHARED0(T, name) static thread_local cuemu::Shared0<T> name(#name)
#define CUEMU_SHARED1(T, name, n) static thread_local cuemu::Shared1<T, (n)> name(#name)
#define CUEMU_SHARED2(T, name, n, m) static thread_local cuemu::Shared2<T, (n), (m)> name(#name)
