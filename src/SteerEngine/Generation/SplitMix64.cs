namespace SteerEngine.Generation;

/// <summary>
/// SplitMix64: a tiny, well-mixed generator. One per sequence (seeded from seed, request id and
/// sample index) makes sampling independent of batch composition; one per chunk makes random
/// weights deterministic under parallel generation.
/// </summary>
public struct SplitMix64(ulong seed)
{
    ulong _state = seed;

    public static ulong Hash(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong Next() => Hash(_state += 0x9E3779B97F4A7C15UL);

    /// <summary>Uniform in (0, 1): never 0, so its log is finite.</summary>
    public double NextOpenUnit() => ((Next() >> 11) + 0.5) * (1.0 / (1UL << 53));

    public float NextGaussian()
    {
        double u1 = NextOpenUnit(), u2 = NextOpenUnit();
        return (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
    }
}
