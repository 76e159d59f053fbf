using SteerEngine.Capture;
using SteerEngine.Model;

namespace SteerEngine.Experiments.Persona;

/// <summary>Per entry (HF numbering): mean projection of pos-instructed minus neg-instructed prompts, and the share of pairs ordered right.</summary>
public sealed record MonitorEntry(int Entry, double MeanGap, double Accuracy);

/// <summary>
/// The monitoring check on held-out questions: each eval question under each instruction pair, as pos and as
/// neg system prompt; the last prompt token's hidden state (before any answer) projected on the unit vector of
/// each entry. A vector that monitors the trait puts the pos prompt above the neg one.
/// </summary>
public static class PersonaMonitor
{
    /// <param name="vector">the persona vector, [entries, H]</param>
    public static IReadOnlyList<MonitorEntry> Check(LanguageModel lm, TraitDefinition eval, float[][] vector, int batchSize = 16)
    {
        var pos = new List<CaptureExample>();
        var neg = new List<CaptureExample>();
        foreach (InstructionPair pair in eval.Instructions)
            foreach (string q in eval.Questions)
            {
                pos.Add(LastToken(lm.Tokenizer.Encode(lm.FormatChat(q, pair.Pos), addBos: false)));
                neg.Add(LastToken(lm.Tokenizer.Encode(lm.FormatChat(q, pair.Neg), addBos: false)));
            }
        var posActs = ActivationCollector.Collect(lm.Model, pos, [Reduction.PromptLast], batchSize).Select(r => r[Reduction.PromptLast]).ToList();
        var negActs = ActivationCollector.Collect(lm.Model, neg, [Reduction.PromptLast], batchSize).Select(r => r[Reduction.PromptLast]).ToList();
        var entries = new List<MonitorEntry>();
        for (int e = 0; e < vector.Length; e++)
        {
            double norm = Math.Sqrt(vector[e].Sum(x => (double)x * x));
            if (norm == 0) { entries.Add(new MonitorEntry(e, 0, 0)); continue; }
            double gap = 0;
            int right = 0;
            for (int k = 0; k < pos.Count; k++)
            {
                double d = Dot(posActs[k][e], vector[e]) / norm - Dot(negActs[k][e], vector[e]) / norm;
                gap += d;
                if (d > 0) right++;
            }
            entries.Add(new MonitorEntry(e, gap / pos.Count, (double)right / pos.Count));
        }
        return entries;
    }

    /// <summary>The whole prompt with its last token as the only "response" token, so prompt_last is the final prompt position.</summary>
    static CaptureExample LastToken(int[] tokens) => new(tokens, tokens.Length);

    static double Dot(float[] a, float[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }
}
