using SteerEngine.Generation;
using SteerEngine.Runtime.Cuda;

namespace SteerEngine.Tests.Cuda;

/// <summary>
/// sample_rows' top-k cut (kernels/sampling.cu top_k_cut, a radix select over the 64-bit order key)
/// against its reference, the bisection, and against the k-th key of the host's sorted order.
/// </summary>
public partial class KernelTests
{
    /// <summary>The kernel's order key from the host sampler's sort key (logit descending, −0 tied with +0), then the id reversed.</summary>
    static ulong OrderKey(float logit, int id) => (ulong)~SamplerKernels.DescendingKey(logit) << 32 | (0xffffffffu - (uint)id);

    /// <summary>The k-th largest key of the row by sorting, 0 when there is no cut (k ≤ 0 or k ≥ V).</summary>
    static ulong SortedCut(float[] row, int k)
    {
        if (k <= 0 || k >= row.Length) return 0;
        ulong[] keys = row.Select(OrderKey).ToArray();
        Array.Sort(keys);
        return keys[row.Length - k];
    }

    (ulong[] Cut, int[] Passes) TopKCuts(float[][] rows, int[] k, bool bisect)
    {
        int n = rows.Length;
        DevicePtr cut = Zeros(n * 8), passes = Zeros(n * 4);
        _d.Launch("top_k_cut_rows", new Dim3((uint)n), new Dim3(256), Up(rows.SelectMany(r => r).ToArray()), rows[0].Length, Up(k),
            bisect ? 1 : 0, cut, passes);
        return (Down<ulong>(cut, n), Down<int>(passes, n));
    }

    [Test]
    public void The_radix_top_k_cut_is_the_bisection_key_in_16_passes()
    {
        const int V = 5000;
        float[] random = Random(V, 6f);
        float[] fewValues = Enumerable.Range(0, V).Select(i => (float)(i % 3)).ToArray(); // ties everywhere
        float[] constant = Enumerable.Repeat(0.25f, V).ToArray();
        float[] tiedTop = Random(V, 1f);
        for (int i = 0; i < 1500; i++) tiedTop[(i * 7919) % V] = i < 30 ? 9f : 4f; // ties across the 1024th place
        float[] masked = Random(V, 3f);
        for (int i = 0; i < V; i += 2) masked[i] = float.NegativeInfinity; // half the row masked out
        float[] signs = Enumerable.Range(0, V).Select(i => i % 4 == 0 ? -0f : i % 4 == 1 ? 0f : (i % 2 == 0 ? -1e-30f : 1e-30f)).ToArray();
        float[] peaked = PeakedRow(V, 20f);
        float[][] sources = [random, fewValues, constant, tiedTop, masked, signs, peaked];
        int[] ks = [1, 2, 3, 29, 30, 31, 1023, 1024, 1025, 1500, V / 2, V / 2 + 1, V - 2, V - 1, V, V + 7, 0];
        var cases = (from row in sources from k in ks.Append(1 + _rng.Next(V - 1)) select (row, k)).ToArray();
        float[][] rows = cases.Select(c => c.row).ToArray();
        int[] topK = cases.Select(c => c.k).ToArray();
        (ulong[] radix, int[] radixPasses) = TopKCuts(rows, topK, bisect: false);
        (ulong[] bisection, int[] bisectionPasses) = TopKCuts(rows, topK, bisect: true);
        for (int r = 0; r < rows.Length; r++)
        {
            bool cut = topK[r] > 0 && topK[r] < V;
            string at = $"row {r} (source {Array.IndexOf(sources, rows[r])}), k {topK[r]}";
            Assert.That(bisection[r], Is.EqualTo(SortedCut(rows[r], topK[r])), $"{at}: the bisection is the sorted order's k-th key");
            Assert.That(radix[r], Is.EqualTo(bisection[r]), $"{at}: radix {radix[r]:x16}, bisection {bisection[r]:x16}");
            Assert.That(radixPasses[r], Is.EqualTo(cut ? 16 : 0), at);
            Assert.That(bisectionPasses[r], Is.EqualTo(cut ? 64 : 0), at);
        }
    }

    [Test]
    public void The_radix_top_k_cut_on_128k_rows_equals_the_sorted_order()
    {
        float[] peaked = PeakedRow(LlamaVocab, 22f), flat = Random(LlamaVocab, 0.5f);
        for (int i = 0; i < 3000; i++) flat[_rng.Next(LlamaVocab)] = 0.125f; // a tie group somewhere in the middle
        int[] ks = [1, 40, 1024, 3000, 64_128, LlamaVocab - 1];
        var cases = (from row in new[] { peaked, flat } from k in ks select (row, k)).ToArray();
        float[][] rows = cases.Select(c => c.row).ToArray();
        int[] topK = cases.Select(c => c.k).ToArray();
        (ulong[] radix, int[] passes) = TopKCuts(rows, topK, bisect: false);
        for (int r = 0; r < rows.Length; r++)
        {
            Assert.That(radix[r], Is.EqualTo(SortedCut(rows[r], topK[r])), $"row {r}, k {topK[r]}");
            Assert.That(passes[r], Is.EqualTo(16));
        }
    }

    [Test]
    public void Minus_and_plus_zero_tie_as_in_the_host_sampler()
    {
        // The largest logits are −0 (ids 3, 9) and +0 (ids 5, 12): the host orders them by id alone.
        float[] row = Random(2000, 3f).Select(x => -4f - Math.Abs(x)).ToArray();
        row[3] = row[9] = -0f;
        row[5] = row[12] = 0f;
        SamplingOptions[] options =
        [
            new(Temperature: 0f), new(Temperature: 1f, TopK: 1), new(Temperature: 1f, TopK: 2), new(Temperature: 1f, TopK: 3),
            new(Temperature: 1f, TopK: 3, TopP: 0.5f),
        ];
        var cases = (from o in options from u in new[] { 0.1, 0.4, 0.6, 0.9 } select (o, u)).ToArray();
        float[][] rows = cases.Select(_ => row).ToArray();
        AssertHostTokens(rows, cases, DrawOnDevice(rows, cases));
    }
}
