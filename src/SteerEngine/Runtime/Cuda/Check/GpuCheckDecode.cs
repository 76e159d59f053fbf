using System.Diagnostics;
using System.Text.Json.Nodes;
using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Steering;

namespace SteerEngine.Runtime.Cuda.Check;

/// <summary>
/// The decode step's graphs and paged KV caches on the device: both must give the logits of
/// direct launches over contiguous caches bit for bit (they change only how the same kernels are
/// launched and where the cache rows live), and what graphs save per step is measured.
/// </summary>
sealed unsafe partial class GpuCheckSteps
{
    void DecodeGraphsAndPages(GpuCheckStep step)
    {
        ModelConfig shape = o.Emulate ? ModelShapes.Get("tiny") : Llama70BDimensions(2);
        string dir = RandomModelDir(o.Emulate ? "tiny" : "llama-70b-dimensions-2-layers", shape);
        using (var model = CudaTransformer.Load(dir, CudaPlatform.Driver))
        {
            List<float[]> reference = Scenario(model, graphs: false, pagePositions: 0, o.Emulate);
            foreach ((bool graphs, int pages) in new[] { (true, 256), (false, 256), (true, 0) })
            {
                (int Captures, int Replays) before = model.GraphCounts;
                List<float[]> got = Scenario(model, graphs, pages, o.Emulate);
                long differing = 0;
                double worst = 0;
                for (int i = 0; i < reference.Count; i++)
                    for (int j = 0; j < reference[i].Length; j++)
                        if (BitConverter.SingleToInt32Bits(got[i][j]) != BitConverter.SingleToInt32Bits(reference[i][j]))
                        {
                            differing++;
                            worst = Math.Max(worst, Math.Abs((double)got[i][j] - reference[i][j]));
                        }
                string name = $"{(graphs ? "graphs" : "direct")}_{(pages > 0 ? $"pages_{pages}" : "contiguous")}";
                (int captures, int replays) = (model.GraphCounts.Captures - before.Captures, model.GraphCounts.Replays - before.Replays);
                step.Details[name] = new JsonObject { ["differing_logits"] = differing, ["max_abs_difference"] = worst, ["captures"] = captures, ["replays"] = replays };
                step.Lines.Add($"{name.Replace('_', ' ')}: {(differing == 0 ? "bit for bit equal to direct launches over contiguous caches" : $"{differing} logits differ (max {worst:E2})")}" +
                               (graphs ? $"; {captures} graphs captured, {replays} replays" : ""));
                if (differing > 0) step.Fail($"{name}: {differing} logits differ from direct launches over contiguous caches (max {worst:E2})");
                if (graphs && replays == 0) step.Fail($"{name}: no decode step replayed a graph");
            }
        }
        GraphSavings(step);
    }

    /// <summary>
    /// Steered rows of odd lengths prefilled, decoded, one finishing and another joining, decoded
    /// again (shorter prompts when small): every forward's logits, in order.
    /// </summary>
    static List<float[]> Scenario(CudaTransformer model, bool graphs, int pagePositions, bool small)
    {
        model.DecodeGraphs = graphs;
        model.KvPagePositions = pagePositions;
        ModelConfig c = model.Config;
        var rng = new Random(5);
        int[] Tokens(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(c.VocabSize)).ToArray();
        float[] vector = Enumerable.Range(0, c.HiddenSize).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        SequenceSteering? Steer(float multiplier, int prompt) => multiplier == 0 ? null : new([new SteeringAdd(c.NumLayers / 2, vector, multiplier)], prompt);
        int steps = small ? 3 : 6;
        var rows = new List<(KvCache Cache, SequenceSteering? Steering)>();
        var logits = new List<float[]>();
        void Forward(IEnumerable<int> which, Func<int, int[]> tokens) =>
            logits.AddRange(model.Forward(which.Select(r => new ForwardSequence(rows[r].Cache, tokens(r), rows[r].Steering)).ToList()));
        void Join(int[] prompt, float multiplier)
        {
            rows.Add((model.NewCache(prompt.Length + 2 * steps), Steer(multiplier, prompt.Length)));
            Forward([rows.Count - 1], _ => prompt);
        }

        foreach ((int length, float multiplier) in new[] { (37, 2f), (small ? 29 : 300, -3f), (5, 0f), (small ? 9 : 129, 1f) }) Join(Tokens(length), multiplier);
        for (int i = 0; i < steps; i++) Forward(Enumerable.Range(0, rows.Count), _ => Tokens(1));
        model.Release(rows[1].Cache);
        rows.RemoveAt(1);
        Join(Tokens(small ? 7 : 61), 4f);
        for (int i = 0; i < steps; i++) Forward(Enumerable.Range(0, rows.Count), _ => Tokens(1));
        foreach (var row in rows) model.Release(row.Cache);
        return logits;
    }

    /// <summary>Decode steps of the 8B shape with and without graphs: the host's launch cost a graph takes away.</summary>
    void GraphSavings(GpuCheckStep step)
    {
        ModelConfig shape = ModelShapes.Get(o.Emulate ? "tiny" : "llama-3.1-8b");
        using var model = CudaTransformer.Load(RandomModelDir(o.Emulate ? "tiny" : "llama-3.1-8b", shape), CudaPlatform.Driver);
        var rng = new Random(13);
        int[] Tokens(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(shape.VocabSize)).ToArray();
        const int Prompt = 16;
        int steps = o.Emulate ? 2 : 32;
        foreach (int batch in new[] { 1, o.Emulate ? 4 : 64 })
        {
            var perStep = new Dictionary<bool, double>();
            foreach (bool graphs in new[] { false, true })
            {
                model.DecodeGraphs = graphs;
                var caches = Enumerable.Range(0, batch).Select(_ => model.NewCache(Prompt + steps + 3)).ToArray();
                model.Forward(caches.Select(k => new ForwardSequence(k, Tokens(Prompt))).ToList());
                for (int i = 0; i < 2; i++) model.Forward(caches.Select(k => new ForwardSequence(k, Tokens(1))).ToList()); // warm-up (and capture)
                var clock = Stopwatch.StartNew();
                for (int i = 0; i < steps; i++) model.Forward(caches.Select(k => new ForwardSequence(k, Tokens(1))).ToList());
                perStep[graphs] = clock.Elapsed.TotalSeconds / steps;
                foreach (KvCache k in caches) model.Release(k);
            }
            step.Details[$"decode_batch_{batch}_ms_per_step"] = new JsonObject
            {
                ["direct"] = Math.Round(perStep[false] * 1e3, 3), ["graphs"] = Math.Round(perStep[true] * 1e3, 3),
                ["direct_over_graphs"] = Math.Round(perStep[false] / perStep[true], 3),
            };
            step.Lines.Add($"{shape.NumLayers}-layer decode batch {batch}: {perStep[false] * 1e3:F2} ms a step launched directly, {perStep[true] * 1e3:F2} ms as a graph ({perStep[false] / perStep[true]:F2}×)");
        }
    }
}
