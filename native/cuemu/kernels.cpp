// The very kernels NVRTC compiles for the GPU, compiled here by the host compiler against cuemu.h,
// their shared memory checked (the copies CMakeLists.txt rewrites for shared.h).
#include "cuemu.h"
#include "shared.h"

#include "attention_decode.cu"
#include "attention_prefill.cu"
#include "attention_steer.cu"
#include "capture.cu"
#include "attention_backward.cu"
#include "gather.cu"
#include "logprobs.cu"
#include "logprobs_backward.cu"
#include "residual.cu"
#include "rmsnorm.cu"
#include "rmsnorm_backward.cu"
#include "rope.cu"
#include "rope_backward.cu"
#include "sampling.cu"
#include "swiglu.cu"
#include "swiglu_backward.cu"
#include "steering_gradient.cu"
#include "mma_probe.cu"
#include "shared_checks.cu"

#include "kernel_table.h"

namespace cuemu {

#define KERNEL(f) kernel_entry(#f, &f)

static const KernelEntry table[] = {
    KERNEL(embedding_gather),     KERNEL(gather_rows_bf16),       KERNEL(rmsnorm),
    KERNEL(qk_norm_rope),         KERNEL(residual_add_steer),     KERNEL(swiglu),
    KERNEL(log_softmax_rows),     KERNEL(sample_rows),            KERNEL(attention_prefill_hd32),
    KERNEL(attention_prefill_hd64), KERNEL(attention_prefill_hd128), KERNEL(attention_decode_hd32),
    KERNEL(attention_decode_hd64), KERNEL(attention_decode_hd128), KERNEL(attention_decode_combine),
    KERNEL(mma_probe),            KERNEL(shared_neighbour_sum),   KERNEL(shared_write_past_end),
    KERNEL(shared_read_unwritten), KERNEL(top_logprobs_rows), KERNEL(top_k_cut_rows),
    KERNEL(join_vocab_slices),    KERNEL(repetition_penalty_rows), KERNEL(project_rows),
    KERNEL(sum_rows_by_mask),     KERNEL(attention_heads_to_rows), KERNEL(attention_steer),
    // The training backward (BiPO).
    KERNEL(rmsnorm_backward),     KERNEL(swiglu_backward),        KERNEL(qk_norm_rope_backward),
    KERNEL(attention_backward_query), KERNEL(attention_backward_key), KERNEL(log_softmax_partial),
    KERNEL(log_softmax_backward), KERNEL(steer_rows),             KERNEL(sum_rows),
    KERNEL(gather_rows_f32),      KERNEL(rows_to_bf16),
};

const KernelEntry* kernel_table() { return table; }
int kernel_table_size() { return (int)(sizeof table / sizeof table[0]); }

} // namespace cuemu
