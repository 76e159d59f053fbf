using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Runtime;
using SteerEngine.Runtime.Cuda;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Cuda;

/// <summary>
/// Paged KV caches (CudaTransformer.KvCache.cs, KvPages in kernels/common.cuh) on native/cuemu
/// against one contiguous region per sequence: the same logits bit for bit while sequences cross
/// page boundaries, finish and join, with no device-to-device copy and pages reused.
/// </summary>
[TestFixture]
public class KvPageTests
{
    static (CudaTransformer Model, FaultyDevice[] Devices) Emulated(int tp, int pagePositions)
    {
        if (!EmulatedCudaDevice.IsAvailable) Assert.Ignore("native/cuemu is not built (run ./build.sh)");
        FaultyDevice[] devices = Enumerable.Range(0, tp).Select(i => new FaultyDevice(i)).ToArray();
        var model = CudaTransformer.Load(TestModels.Get("tiny"), devices, tp == 1 ? null : new EmulatedCollectives(tp));
        model.KvPagePositions = pagePositions;
        model.DecodeChunk = 24; // key splits that start inside a page and span two
        return (model, devices);
    }

    [TestCase(1)]
    [TestCase(2)]
    public void Paged_caches_equal_contiguous_ones_as_rows_grow_finish_and_join(int tp)
    {
        // Pages of 8 positions: every prefill tile of 16 keys spans two pages.
        (CudaTransformer paged, FaultyDevice[] pagedDevices) = Emulated(tp, 8);
        (CudaTransformer contiguous, FaultyDevice[] contiguousDevices) = Emulated(tp, 0);
        using var _ = paged;
        using var __ = contiguous;
        int V = paged.Config.VocabSize;
        var rng = new Random(7 + tp);
        var rows = new List<(KvCache P, KvCache C)>();

        void Step(int[] which, int[][] tokens, string what)
        {
            List<ForwardSequence> Batch(bool p) => which.Select((r, i) => new ForwardSequence(p ? rows[r].P : rows[r].C, tokens[i])).ToList();
            float[][] got = paged.Forward(Batch(true)), want = contiguous.Forward(Batch(false));
            for (int i = 0; i < which.Length; i++) Assert.That(got[i], Is.EqualTo(want[i]), $"{what}: row {which[i]}");
        }
        int Add(int capacity)
        {
            rows.Add((paged.NewCache(capacity), contiguous.NewCache(capacity)));
            return rows.Count - 1;
        }
        int[][] Decode(int n) => Enumerable.Range(0, n).Select(_ => new[] { rng.Next(V) }).ToArray();

        // Three rows of odd lengths; the contiguous caches start small, so one grows by copying.
        int a = Add(13), b = Add(29), c = Add(5);
        Step([a, b, c], [Compare.RandomTokens(rng, 13, V), Compare.RandomTokens(rng, 29, V), Compare.RandomTokens(rng, 5, V)], "prefill");
        for (int step = 0; step < 4; step++) Step([a, b, c], Decode(3), $"decode step {step}");

        // Row b finishes: its pages go back to the pools, and a joining row takes them.
        paged.Release(rows[b].P);
        contiguous.Release(rows[b].C);
        (int allocated, int free) = paged.KvPages;
        Assert.That(free, Is.EqualTo(5 * tp), "row b's 33 positions were 5 pages per rank");
        int d = Add(17);
        Step([d], [Compare.RandomTokens(rng, 17, V)], "joining row's prefill");
        Assert.That(paged.KvPages, Is.EqualTo((allocated, free - 3 * tp)), "the joining row reuses 3 free pages per rank");
        for (int step = 0; step < 6; step++) Step([a, c, d], Decode(3), $"after the join, decode step {step}");

        Assert.That(contiguousDevices.Sum(x => x.DeviceCopies), Is.GreaterThan(0), "the contiguous cache of row c grew by copying");
        Assert.That(pagedDevices.Sum(x => x.DeviceCopies), Is.Zero, "paged caches grow without a copy");
    }
}
