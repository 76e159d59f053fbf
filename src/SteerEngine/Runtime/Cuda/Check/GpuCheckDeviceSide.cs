using SteerEngine.Capture;
using SteerEngine.Generation;
using SteerEngine.Model;

namespace SteerEngine.Runtime.Cuda.Check;

// What stays on the device: sampling (repetition penalty included) and capture reductions,
// each against the same backend's host path on the same logits or states.
sealed partial class GpuCheckSteps
{
    void DeviceSide(GpuCheckStep step, int tp)
    {
        ModelConfig shape = o.Emulate ? ModelShapes.Get("tiny") : Llama70BDimensions(2);
        string dir = RandomModelDir(o.Emulate ? "tiny" : "llama-70b-dimensions-2-layers", shape);
        using var gpu = (CudaTransformer)Backends.Create("cuda", dir, tp);
        ModelConfig c = gpu.Config;
        var rng = new Random(17);
        SamplingOptions[] options =
        [
            new(), new(Temperature: 0.8f), new(Temperature: 1f, TopK: 50), new(Temperature: 0.7f, TopP: 0.9f), new(Temperature: 1f, MinP: 0.05f),
            new(RepetitionPenalty: 1.5f), new(Temperature: 0.9f, TopK: 40, RepetitionPenalty: 1.3f),
        ];
        int[][] prompts = options.Select(_ => Enumerable.Range(0, 8).Select(_ => rng.Next(c.VocabSize)).ToArray()).ToArray();
        float[][] full = gpu.Forward(prompts.Select(p => new ForwardSequence(gpu.NewCache(), p)).ToList());
        TokenDraw?[] draws = options.Select((s, i) => (TokenDraw?)new TokenDraw(s, rng.NextDouble(), Logprob: true, TopLogprobs: 5)
            { History = s.RepetitionPenalty == 1f ? null : TokenLogprob.Top(full[i], 3).Select(t => t.Token).ToHashSet() }).ToArray();
        var batch = prompts.Select(p => new ForwardSequence(gpu.NewCache(), p)).ToList();
        DrawnToken?[] drawn = gpu.ForwardSample(batch, LogitBuffers.Allocate(batch, c.VocabSize), draws);
        int mismatches = 0;
        double logprobError = 0;
        for (int i = 0; i < options.Length; i++)
        {
            DrawnToken want = draws[i]!.OnHost(full[i]), got = drawn[i]!.Value;
            if (got.Token != want.Token) mismatches++;
            logprobError = Math.Max(logprobError, Math.Abs(got.Logprob!.Value - want.Logprob!.Value));
            for (int j = 0; j < want.TopLogprobs!.Length; j++)
                logprobError = Math.Max(logprobError, Math.Abs(got.TopLogprobs![j].Logprob - want.TopLogprobs[j].Logprob));
        }

        // Capture: prompt means and last states reduced on the device against the downloaded states.
        int[] promptLengths = [5, 8];
        ActivationReducer Capture(bool onDevice)
        {
            gpu.DeviceReductions = onDevice;
            var reducer = new ActivationReducer(c.NumLayers + 1, c.HiddenSize, promptLengths);
            gpu.Forward(prompts[..2].Select(p => new ForwardSequence(gpu.NewCache(), p)).ToList(), reducer);
            return reducer;
        }
        ActivationReducer device = Capture(true), host = Capture(false);
        double captureError = 0;
        foreach (Reduction r in new[] { Reduction.PromptAvg, Reduction.PromptLast, Reduction.AllAvg })
            for (int s = 0; s < promptLengths.Length; s++)
                for (int e = 0; e <= c.NumLayers; e++)
                    captureError = Math.Max(captureError, RelativeMaxError(device.Get(s, r)[e], host.Get(s, r)[e]));

        string tag = $"tp{tp}_";
        step.Details[tag + "sampled_token_mismatches"] = mismatches;
        step.Details[tag + "logprob_error"] = logprobError;
        step.Details[tag + "capture_sums_error"] = captureError;
        step.Lines.Add($"TP = {tp}: {options.Length} device draws (penalised ones included), {mismatches} differ from the host sampler; "
            + $"log-probs within {logprobError:E1}; capture sums on the device within {captureError:E1} of the downloaded states");
        if (mismatches > 0 || !(logprobError < 1e-3) || !(captureError < 1e-4))
            step.Fail($"TP = {tp}: device sampling or capture reductions differ from the host path");
    }
}
