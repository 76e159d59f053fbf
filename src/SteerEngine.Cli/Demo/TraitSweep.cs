using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Steering;

namespace SteerEngine.Cli.Demo;

/// <summary>The measured outcome at one multiplier, pooled over its prompts and samples.</summary>
/// <param name="TraitRate">share of the trait's positive words among its words (NaN when the outputs have none)</param>
/// <param name="Coherence">share of complete sentences that are well-formed</param>
public sealed record SweepPoint(float Multiplier, double TraitRate, double Coherence, IReadOnlyList<string> Outputs);

/// <summary>
/// A steered multiplier sweep on the demo model: every multiplier × prompt × sample is one row of a
/// single batch, each row with its own steering. A sample's seed depends only on its prompt and
/// sample index, so every multiplier sees the same random draws and the curves are not noise.
/// </summary>
public static class TraitSweep
{
    public static readonly string[] DefaultPrompts = ["how was your day?", "tell me about the garden.", "what do you think of your friends?", "how do you feel?"];

    public static IReadOnlyList<SweepPoint> Run(LanguageModel lm, DemoLanguage language, string trait, float[] vector, int layer,
        IReadOnlyList<float> multipliers, IReadOnlyList<string> prompts, int samples, int maxNewTokens, float temperature = 1f, ulong seed = 0)
    {
        if (!language.Traits.ContainsKey(trait))
            throw new ArgumentException($"trait '{trait}' is not in the demo language (it has {string.Join(", ", language.Traits.Keys)})");
        if (samples < 1) throw new ArgumentException($"--samples {samples} must be ≥ 1");
        var requests = new List<GenerationRequest>();
        foreach (float m in multipliers)
            for (int p = 0; p < prompts.Count; p++)
            {
                int[] prompt = lm.EncodePrompt(prompts[p]);
                for (int s = 0; s < samples; s++)
                    requests.Add(new GenerationRequest(prompt, maxNewTokens, new SamplingOptions(temperature),
                        [new SteeringAdd(layer, vector, m, SteeringPositions.Response)],
                        SplitMix64.Hash(seed ^ SplitMix64.Hash(((ulong)p << 20) ^ (ulong)s)), lm.Tokenizer.EosTokenIds));
            }
        var generator = new Generator(lm.Transformer, lm.Tokenizer, new SchedulerOptions(MaxSequences: Math.Max(64, requests.Count), MaxTokensPerStep: 4096));
        var results = generator.Generate(requests);

        var (positive, negative) = language.Traits[trait];
        int perMultiplier = prompts.Count * samples;
        var points = new List<SweepPoint>();
        for (int k = 0; k < multipliers.Count; k++)
        {
            var outputs = results.Skip(k * perMultiplier).Take(perMultiplier).Select(r => r.Text ?? "").ToList();
            var measures = outputs.Select(language.Measure).ToList();
            int a = measures.Sum(x => x.Counts[positive]), b = measures.Sum(x => x.Counts[negative]);
            int sentences = measures.Sum(x => x.Sentences), good = measures.Sum(x => x.WellFormed);
            points.Add(new SweepPoint(multipliers[k], a + b == 0 ? double.NaN : (double)a / (a + b),
                sentences == 0 ? 0 : (double)good / sentences, outputs));
        }
        return points;
    }
}
