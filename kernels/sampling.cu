// Next-token sampling on the device, one row per block, equal to Generation/Sampler.Sample for
// the same uniform draw: greedy (argmax, lowest id on ties), plain temperature sampling in token
// order, or temperature with top-k / top-p / min-p in sorted order (logit descending, id ascending,
// expressed as the 64-bit order key logit bits << 32 | ~id). Every term is the host's:
// z = (l − max)·(1/T) in float, then exp(z) in double, summed in double — with float sums, a flat
// distribution's (about 1/V per token) cuts moved by a token.
//
// A top-k cut is the k-th largest order key, found by a radix select (top_k_cut: 16 compare-only
// passes, 4 bits of the key each); both paths below start from it.
// Filtered draws take one of two paths:
// - Candidates (the common, peaked case): counting passes (float compares, no exp) find the at most
//   STEER_SAMPLE_CANDIDATES most likely tokens; they are sorted in shared memory and the host's
//   ReferenceSampler.DrawFiltered runs over their terms, in its sorted order and with its
//   expressions: Σ, top-p's running Σ e_j/Σ ≥ p, min-p's e_j ≥ min_p·e_0, the draw's running sum
//   against u·Σ_kept. It is taken only when the candidates provably hold the kept set (a prefix of
//   the sorted order): the top-k set fits, or top-p's running sum reaches p inside them, or min-p
//   drops one of them. Why the token is the bisection's: both find the same cuts of the same sorted
//   terms and differ only in how sums are rounded. The bisection adds in tree order; this path adds
//   in the host's order, so where top-k fits it does exactly the host's arithmetic. The one sum it
//   cannot form as the host does is Σ when the kept-by-top-k set is larger than the candidates: the
//   host adds the rest in sorted order after the candidates, here the rest's tree-order sum is added
//   to the candidates' — the same terms, a few ulps of Σ apart. So a token can differ from the
//   bisection's only when a running sum lies within rounding of its threshold, where the bisection
//   itself may differ from the host; on the tests' draws all three agree.
// - Bisection (a flat row, or candidates without enough mass): every cut is a binary search over the
//   order key, each step one counting or summing pass over the row, sums in tree order: 1 + 64
//   full-row passes of a double exp per element for the top-p cut and 1 + 64 for the draw.
// Each full pass over the row is counted (RowPasses) and, when the caller gives a stats buffer,
// written out, so tests and the README can tell which path ran and what it cost.
// The draw comes from the sequence's own seeded generator on the host, so a sequence's tokens do
// not depend on its batch neighbours.
#include "common.cuh"

// The most candidates the sorted path takes (shared memory: a key and a term each).
#define STEER_SAMPLE_CANDIDATES 1024

// Full passes over a row's V logits: `exp` evaluate a double exp per element, `plain` only compare.
struct RowPasses
{
    int exp, plain;
};

// A logit's place in float order as an unsigned (monotone map of float order to unsigned order);
// −0 and +0 tie, as they do in float compares and the host sampler's sort.
__device__ __forceinline__ unsigned logit_order(float logit)
{
    unsigned u = __float_as_uint(logit);
    if (u == 0x80000000u) u = 0u;
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ unsigned long long order_key(float logit, int i)
{
    return ((unsigned long long)logit_order(logit) << 32) | (unsigned long long)(0xffffffffu - (unsigned)i);
}

__device__ __forceinline__ int key_token(unsigned long long key) { return (int)(0xffffffffu - (unsigned)(key & 0xffffffffu)); }

template <typename Scratch>
__device__ __forceinline__ unsigned long long block_reduce_u64(unsigned long long v, Scratch& scratch, bool take_max)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1)
    {
        unsigned long long w = __shfl_xor_sync(0xffffffffu, v, o);
        v = take_max ? (w > v ? w : v) : (w < v ? w : v);
    }
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : (take_max ? 0ull : ~0ull);
    for (int o = 16; o > 0; o >>= 1)
    {
        unsigned long long w = __shfl_xor_sync(0xffffffffu, v, o);
        v = take_max ? (w > v ? w : v) : (w < v ? w : v);
    }
    return v;
}

// A term of the host sampler's sums: exp(z) in double of z = (l − max)·(1/T) rounded to float.
__device__ __forceinline__ double sample_term(float logit, float m, float inv_t)
{
    float z = (logit - m) * inv_t;
    return exp((double)z);
}

template <typename Scratch>
__device__ __forceinline__ double block_sum_f64(double v, Scratch& scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads(); // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.0;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Σ over the row of e_i = sample_term(l_i) for the tokens whose key ≥ lo and e_i ≥ min_e.
template <typename Scratch>
__device__ __forceinline__ double mass_at_or_above(const float* l, int vocab, float m, float inv_t,
                                                   unsigned long long lo, double min_e, Scratch& scratch, RowPasses& passes)
{
    double sum = 0.0;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x)
        if (order_key(l[i], i) >= lo)
        {
            double e = sample_term(l[i], m, inv_t);
            if (e >= min_e) sum += e;
        }
    passes.exp++;
    return block_sum_f64(sum, scratch);
}

// Sums 15 per-thread counts over the block; every thread gets all 15. counts: shared [15][32].
template <typename Counts>
__device__ __forceinline__ void block_sum_counts(int c[15], Counts& counts)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads(); // counts may still be read by a previous call
    for (int j = 0; j < 15; j++)
    {
        int v = c[j];
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0) counts[j][warp] = v;
    }
    __syncthreads();
    for (int j = 0; j < 15; j++)
    {
        int v = 0;
        for (int w = 0; w < warps; w++) v += counts[j][w];
        c[j] = v;
    }
}

// The top-k cut: the k-th largest order key of the row, 0 (no cut) unless 0 < k < vocab. A radix
// select, 4 bits of the key a pass from the top: each pass counts, among the keys that carry the
// digits found so far, those whose next digit is ≥ d for d = 1..15 (no shared atomics: 15 per-thread
// counts and a block reduction), and takes the largest d where those and the keys already above
// reach k. 16 compare-only passes; an exact integer selection, so the key is top_k_cut_bisection's.
template <typename Counts>
__device__ unsigned long long top_k_cut(const float* l, int vocab, int k, Counts& counts, RowPasses& passes)
{
    if (k <= 0 || k >= vocab) return 0ull;
    unsigned long long cut = 0; // the digits found so far, the rest 0: count(key ≥ cut) ≥ k throughout
    int above = 0;              // the keys above every key that carries cut's digits
    for (int shift = 60; shift >= 0; shift -= 4)
    {
        unsigned long long found = shift == 60 ? 0ull : ~0ull << (shift + 4);
        int c[15];
        for (int j = 0; j < 15; j++) c[j] = 0;
        for (int i = threadIdx.x; i < vocab; i += blockDim.x)
        {
            unsigned long long key = order_key(l[i], i);
            if ((key & found) != cut) continue;
            int digit = (int)(key >> shift) & 15;
            for (int j = 0; j < 15; j++) c[j] += digit > j ? 1 : 0;
        }
        passes.plain++;
        block_sum_counts(c, counts); // c[j]: the keys carrying cut's digits whose next digit is ≥ j + 1
        int digit = 0, beyond = 0;
        for (int j = 0; j < 15; j++)
            if (above + c[j] >= k) digit = j + 1;
        for (int j = 0; j < 15; j++)
            if (j == digit) beyond = c[j]; // next digit > digit (none when digit is 15)
        above += beyond;
        cut |= (unsigned long long)digit << shift;
    }
    return cut;
}

// top_k_cut's reference: the same key by bisection, one bit a pass (64 passes), the largest c with
// count(key ≥ c) ≥ k. Kept for the test that compares the two (top_k_cut_rows).
template <typename Scratch>
__device__ unsigned long long top_k_cut_bisection(const float* l, int vocab, int k, Scratch& scratch, RowPasses& passes)
{
    unsigned long long cut = 0;
    if (k > 0 && k < vocab)
        for (int bit = 63; bit >= 0; bit--)
        {
            unsigned long long c = cut | (1ull << bit);
            float count = 0.f;
            for (int i = threadIdx.x; i < vocab; i += blockDim.x) count += order_key(l[i], i) >= c ? 1.f : 0.f;
            passes.plain++;
            if (block_sum(count, scratch) >= (float)k) cut = c;
        }
    return cut;
}

// The candidates' floor: the largest logit order value g with more than STEER_SAMPLE_CANDIDATES
// tokens whose logit_order ≥ g, so the tokens above g are the most likely ones, at most
// STEER_SAMPLE_CANDIDATES of them, whole groups of tied logits in or out. 4 bits of g per pass, each
// pass 15 counts of float-order compares per element, no exp: 8 passes. vocab > STEER_SAMPLE_CANDIDATES.
template <typename Counts>
__device__ unsigned candidate_floor(const float* l, int vocab, Counts& counts, RowPasses& passes)
{
    unsigned g = 0; // count(logit_order ≥ g) > STEER_SAMPLE_CANDIDATES holds throughout
    for (int shift = 28; shift >= 0; shift -= 4)
    {
        int c[15];
        for (int j = 0; j < 15; j++) c[j] = 0;
        for (int i = threadIdx.x; i < vocab; i += blockDim.x)
        {
            unsigned u = logit_order(l[i]);
            for (int j = 0; j < 15; j++) c[j] += u >= (g | ((unsigned)(j + 1) << shift)) ? 1 : 0;
        }
        passes.plain++;
        block_sum_counts(c, counts);
        int digit = 0;
        for (int j = 0; j < 15; j++)
            if (c[j] > STEER_SAMPLE_CANDIDATES) digit = j + 1;
        g |= (unsigned)digit << shift;
    }
    return g;
}

// The candidates: the row's keys ≥ lo, written to keys[0..n) unordered; returns n (nothing is
// written when n > STEER_SAMPLE_CANDIDATES). A counting pass, a scan of the threads' counts, a
// writing pass (each thread its own stride of the row, as every pass here reads it). With
// with_rest, also rest = Σ e_i (tree order) over the tokens with floor ≤ key < lo: the
// kept-by-top-k tokens outside the candidates.
template <typename Keys, typename Slots, typename Scratch>
__device__ int gather_candidates(const float* l, int vocab, unsigned long long lo, unsigned long long floor, bool with_rest,
                                 float m, float inv_t, Keys& keys, Slots& slots, Scratch& scratchd, double& rest, RowPasses& passes)
{
    int tid = threadIdx.x, mine = 0;
    double part = 0.0;
    for (int i = tid; i < vocab; i += blockDim.x)
    {
        unsigned long long key = order_key(l[i], i);
        if (key >= lo) mine++;
        else if (with_rest && key >= floor) part += sample_term(l[i], m, inv_t);
    }
    if (with_rest) passes.exp++;
    else passes.plain++;
    rest = with_rest ? block_sum_f64(part, scratchd) : 0.0;
    slots[tid] = mine;
    __syncthreads();
    if (tid == 0)
    {
        int run = 0;
        for (int t = 0; t < (int)blockDim.x; t++) { int c = slots[t]; slots[t] = run; run += c; }
        slots[blockDim.x] = run;
    }
    __syncthreads();
    int at = slots[tid], n = slots[blockDim.x];
    if (n <= STEER_SAMPLE_CANDIDATES)
        for (int i = tid; i < vocab; i += blockDim.x)
        {
            unsigned long long key = order_key(l[i], i);
            if (key >= lo) keys[at++] = key;
        }
    passes.plain++;
    __syncthreads();
    return n;
}

// keys[0..n) sorted descending — the host's order: logit descending, id ascending — by a bitonic
// network over the next power of two, padded with key 0 (below every token's key: ~id ≠ 0).
template <typename Keys>
__device__ void sort_candidates(Keys& keys, int n)
{
    int size = 1;
    while (size < n) size <<= 1;
    for (int i = n + threadIdx.x; i < size; i += blockDim.x) keys[i] = 0ull;
    __syncthreads();
    for (int span = 2; span <= size; span <<= 1)
        for (int stride = span >> 1; stride > 0; stride >>= 1)
        {
            for (int i = threadIdx.x; i < size; i += blockDim.x)
            {
                int j = i ^ stride;
                if (j < i) continue; // the pair belongs to i's partner
                unsigned long long a = keys[i], b = keys[j];
                bool descending = (i & span) == 0;
                if (descending ? a < b : a > b)
                {
                    keys[i] = b;
                    keys[j] = a;
                }
            }
            __syncthreads();
        }
}

// ReferenceSampler.DrawFiltered over the sorted candidates' terms e[0..n), in its order and with its
// expressions: Σ (the candidates' terms in sorted order, then the sum of the kept-by-top-k tokens
// after them, rest), top-p's running Σ e_j/Σ ≥ p, min-p's e_j ≥ min_p·e_0, then the draw: the first
// whose running sum passes u·Σ_kept, else the last kept. Returns the token, or -1 when the kept set
// may reach past the candidates (not covered, and neither top-p nor min-p cut inside them).
template <typename Keys, typename Terms>
__device__ int draw_from_candidates(Keys& keys, Terms& e, int n, bool covered, double rest, float p, float min_p, double u)
{
    double sum = 0.0;
    for (int j = 0; j < n; j++) sum += e[j];
    sum += rest;
    if (sum != sum) return -1; // a NaN logit: the bisection's behaviour
    int kept = covered ? n : -1;
    if (p < 1.f)
    {
        double cumulative = 0.0;
        for (int j = 0; j < n; j++)
        {
            cumulative += e[j] / sum;
            if (cumulative >= (double)p) { kept = j + 1; break; }
        }
    }
    if (min_p > 0.f)
    {
        int limit = kept >= 0 ? kept : n, keep = 1;
        double least = (double)min_p * e[0];
        while (keep < limit && e[keep] >= least) keep++;
        if (kept >= 0 || keep < limit) kept = keep;
    }
    if (kept < 0) return -1;
    double total = 0.0;
    for (int j = 0; j < kept; j++) total += e[j];
    double target = u * total, acc = 0.0;
    for (int j = 0; j < kept; j++)
    {
        acc += e[j];
        if (target < acc) return key_token(keys[j]);
    }
    return key_token(keys[kept - 1]);
}

// The row's pass counts, for tests and measurements: stats (rows, 3) = exp passes, plain passes,
// 1 when the sorted candidates decided a filtered draw (else 0); null in production.
__device__ __forceinline__ void record_passes(int* stats, int r, RowPasses passes, int candidates)
{
    if (stats == nullptr || threadIdx.x != 0) return;
    stats[3 * r] = passes.exp;
    stats[3 * r + 1] = passes.plain;
    stats[3 * r + 2] = candidates;
}

// The repetition penalty of Generation/Sampler.ApplyRepetitionPenalty, before a draw: row r's
// tokens history[start[r] .. start[r+1]) (distinct) are divided by penalty[r] where positive and
// multiplied by it where not. logits (rows, V) f32, updated. grid (rows), block (any).
extern "C" __global__ void repetition_penalty_rows(float* __restrict__ logits, int vocab, const float* __restrict__ penalty,
                                                   const int* __restrict__ start, const int* __restrict__ history)
{
    float p = penalty[blockIdx.x];
    if (p == 1.f) return;
    float* l = logits + (long long)blockIdx.x * vocab;
    for (int j = start[blockIdx.x] + threadIdx.x; j < start[blockIdx.x + 1]; j += blockDim.x)
    {
        int t = history[j];
        float v = l[t];
        l[t] = v > 0.f ? v / p : v * p;
    }
}

// logits (rows, V) f32; per row: temperature (≤ 0 = greedy), top_k (0 = off), top_p (1 = off),
// min_p (0 = off), uniform in [0, 1); token (rows) out; stats (rows, 3) or null (record_passes).
// grid (rows), block (multiple of 32, ≤ 1024).
extern "C" __global__ void sample_rows(const float* __restrict__ logits, int vocab, const float* __restrict__ temperature,
                                       const int* __restrict__ top_k, const float* __restrict__ top_p,
                                       const float* __restrict__ min_p, const double* __restrict__ uniform,
                                       int* __restrict__ token, int* __restrict__ stats)
{
    __shared__ float scratch[32];
    __shared__ double scratchd[32];
    __shared__ unsigned long long scratch64[32];
    __shared__ double prefix[1024];
    __shared__ int chosen;
    __shared__ int counts[15][32];
    __shared__ int slots[1025];
    __shared__ unsigned long long candidates[STEER_SAMPLE_CANDIDATES];
    __shared__ double terms[STEER_SAMPLE_CANDIDATES];
    int r = blockIdx.x, tid = threadIdx.x;
    const float* l = logits + (long long)r * vocab;
    RowPasses passes = {0, 1}; // the max or argmax pass

    if (!(temperature[r] > 0.f))
    {
        unsigned long long best = 0;
        for (int i = tid; i < vocab; i += blockDim.x) { unsigned long long k = order_key(l[i], i); best = k > best ? k : best; }
        best = block_reduce_u64(best, scratch64, true);
        if (tid == 0) token[r] = key_token(best);
        record_passes(stats, r, passes, 0);
        return;
    }

    float m = -STEER_INF;
    for (int i = tid; i < vocab; i += blockDim.x) m = fmaxf(m, l[i]);
    m = block_max(m, scratch);
    float inv_t = 1.f / temperature[r];
    int k = top_k[r];
    float p = top_p[r];
    double min_e = min_p[r];
    double u = uniform[r];

    if (k <= 0 && p >= 1.f && min_e <= 0.f)
    {
        // Token order: each thread owns a contiguous chunk; an exclusive scan of the chunk sums
        // finds the chunk where the running sum passes u · Σ.
        int per = (vocab + blockDim.x - 1) / blockDim.x, lo = tid * per, hi = min(lo + per, vocab);
        double part = 0.0;
        float last_nonzero = -1.f;
        for (int i = lo; i < hi; i++)
        {
            double e = sample_term(l[i], m, inv_t);
            part += e;
            if (e > 0.0) last_nonzero = (float)i;
        }
        prefix[tid] = part;
        if (tid == 0) chosen = -1;
        __syncthreads();
        if (tid == 0)
        {
            double run = 0.0;
            for (int x = 0; x < (int)blockDim.x; x++) { double v = prefix[x]; prefix[x] = run; run += v; }
            scratchd[0] = run;
        }
        __syncthreads();
        double total = scratchd[0], target = u * total, acc = prefix[tid];
        if (target >= acc && target < acc + part)
            for (int i = lo; i < hi; i++)
            {
                acc += sample_term(l[i], m, inv_t);
                if (target < acc) { chosen = i; break; }
            }
        last_nonzero = block_max(last_nonzero, scratch);
        __syncthreads();
        if (tid == 0) token[r] = chosen >= 0 ? chosen : (int)last_nonzero;
        passes.exp++;
        record_passes(stats, r, passes, 0);
        return;
    }

    unsigned long long cut = top_k_cut(l, vocab, k, counts, passes);

    // The sorted candidates (see the top of the file): the top-k set when it fits, else the most
    // likely tokens above candidate_floor; the kept-by-top-k tokens outside them count only
    // through their sum, and only top-p needs it.
    if (m > -STEER_INF && m < STEER_INF && inv_t < STEER_INF)
    {
        int kept_by_k = k > 0 && k < vocab ? k : vocab;
        bool covered = kept_by_k <= STEER_SAMPLE_CANDIDATES;
        unsigned long long lo = cut;
        if (!covered)
        {
            unsigned g = candidate_floor(l, vocab, counts, passes);
            unsigned long long above = g == 0xffffffffu ? ~0ull : (unsigned long long)(g + 1) << 32;
            lo = above > cut ? above : cut;
        }
        double rest;
        int n = gather_candidates(l, vocab, lo, cut, p < 1.f && !covered, m, inv_t, candidates, slots, scratchd, rest, passes);
        if (n >= 1 && n <= STEER_SAMPLE_CANDIDATES)
        {
            sort_candidates(candidates, n);
            for (int j = tid; j < n; j += blockDim.x) terms[j] = sample_term(l[key_token(candidates[j])], m, inv_t);
            __syncthreads();
            if (tid == 0) chosen = draw_from_candidates(candidates, terms, n, covered, rest, p, min_p[r], u);
            __syncthreads();
            if (chosen >= 0)
            {
                if (tid == 0) token[r] = chosen;
                record_passes(stats, r, passes, 1);
                return;
            }
        }
    }

    // The bisection.
    // top-p: the first key (in sorted order) where the mass of the kept tokens reaches p.
    if (p < 1.f)
    {
        double target = (double)p * mass_at_or_above(l, vocab, m, inv_t, cut, 0.0, scratchd, passes);
        unsigned long long cp = 0;
        for (int bit = 63; bit >= 0; bit--)
        {
            unsigned long long c = cp | (1ull << bit);
            if (mass_at_or_above(l, vocab, m, inv_t, c > cut ? c : cut, 0.0, scratchd, passes) >= target) cp = c;
        }
        cut = cp > cut ? cp : cut;
    }
    // min-p keeps e_i ≥ min_p (the top token has e = 1). The draw: the first key in sorted order
    // where the running mass passes u · Σ.
    double target = u * mass_at_or_above(l, vocab, m, inv_t, cut, min_e, scratchd, passes);
    unsigned long long pick = 0;
    bool found = false;
    for (int bit = 63; bit >= 0; bit--)
    {
        unsigned long long c = pick | (1ull << bit);
        if (mass_at_or_above(l, vocab, m, inv_t, c > cut ? c : cut, min_e, scratchd, passes) > target) { pick = c; found = true; }
    }
    if (!found)
    {
        // Rounding put the target past the end: the last kept token, as the host sampler does.
        unsigned long long smallest = ~0ull;
        for (int i = tid; i < vocab; i += blockDim.x)
        {
            unsigned long long key = order_key(l[i], i);
            if (key >= cut && sample_term(l[i], m, inv_t) >= min_e && key < smallest) smallest = key;
        }
        passes.exp++;
        pick = block_reduce_u64(smallest, scratch64, false);
    }
    if (tid == 0) token[r] = key_token(pick);
    record_passes(stats, r, passes, 0);
}

// The count[r] most likely tokens of each row (logit descending, id ascending, as
// TokenLogprob.Top orders them) with their log-probs l − lse[r]: count[r] passes, each the
// largest key below the last one taken. ids, logprob (rows, max_count); rows past count[r] untouched.
// grid (rows), block (multiple of 32, ≤ 1024).
extern "C" __global__ void top_logprobs_rows(const float* __restrict__ logits, int vocab, const int* __restrict__ count,
                                             int max_count, const float* __restrict__ lse, int* __restrict__ ids,
                                             float* __restrict__ logprob)
{
    __shared__ unsigned long long scratch64[32];
    int r = blockIdx.x;
    const float* l = logits + (long long)r * vocab;
    int k = min(min(count[r], max_count), vocab);
    unsigned long long below = ~0ull;
    for (int j = 0; j < k; j++)
    {
        unsigned long long best = 0;
        for (int i = threadIdx.x; i < vocab; i += blockDim.x)
        {
            unsigned long long key = order_key(l[i], i);
            if (key < below && key > best) best = key;
        }
        best = block_reduce_u64(best, scratch64, true);
        if (threadIdx.x == 0)
        {
            int t = key_token(best);
            ids[(long long)r * max_count + j] = t;
            logprob[(long long)r * max_count + j] = l[t] - lse[r];
        }
        below = best;
    }
}

// Each row's top-k cut (sample_rows' top_k_cut, or with bisect ≠ 0 its reference
// top_k_cut_bisection) and the compare passes it took, for the test that compares the two.
// logits (rows, V) f32, top_k (rows), cut (rows) u64 out, passes (rows) out. grid (rows), block
// (multiple of 32, ≤ 1024).
extern "C" __global__ void top_k_cut_rows(const float* __restrict__ logits, int vocab, const int* __restrict__ top_k, int bisect,
                                          unsigned long long* __restrict__ cut, int* __restrict__ passes)
{
    __shared__ float scratch[32];
    __shared__ int counts[15][32];
    int r = blockIdx.x;
    const float* l = logits + (long long)r * vocab;
    RowPasses counted = {0, 0};
    unsigned long long key = bisect ? top_k_cut_bisection(l, vocab, top_k[r], scratch, counted)
                                    : top_k_cut(l, vocab, top_k[r], counts, counted);
    if (threadIdx.x == 0)
    {
        cut[r] = key;
        passes[r] = counted.plain;
    }
}
