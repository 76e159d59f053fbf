using System.Text;
using System.Text.Json.Nodes;
using SteerEngine.Generation;
using SteerEngine.Judging.Data;
using SteerEngine.Judging.Providers;
using SteerEngine.Judging.Rubrics;
using SteerEngine.Judging.Run;
using SteerEngine.Model;

namespace SteerEngine.Experiments.Persona;

/// <summary>Sampling for the persona answers: samples per (instruction, question), new tokens, temperature, seed.</summary>
public sealed record PersonaSampling(int PerQuestion = 10, int MaxNewTokens = 200, float Temperature = 1f, ulong Seed = 0);

/// <summary>Where one kind's files go: the engine's answers, the judge's records, and the persona-vectors CSV.</summary>
public sealed record PersonaFiles(string Answers, string Judged, string Csv)
{
    public static PersonaFiles For(string dir, string trait, string kind) =>
        new(Path.Combine(dir, $"{trait}_{kind}_answers.jsonl"), Path.Combine(dir, $"{trait}_{kind}_judged.jsonl"), Path.Combine(dir, $"{trait}_{kind}.csv"));
}

/// <summary>
/// <c>steer persona generate</c>: the engine answers every extract question under every instruction of one
/// kind (pos or neg) as the system prompt, n samples each, all in one batch; the judge scores each answer for
/// the trait (the trait file's eval prompt, logprob-weighted 0–100) and for coherence; the judged answers are
/// written as the persona-vectors CSV that <c>steer extract --mode persona</c> reads. Rows come in the order
/// (instruction, question, sample) for both kinds and share question ids, so the pos and neg CSVs are
/// row-aligned pairs. Each stage's file appears atomically and is reused when it exists; the judge resumes.
/// </summary>
public static class PersonaGeneration
{
    public static readonly string[] Kinds = ["pos", "neg"];

    public static string CheckKind(string kind) => Kinds.Contains(kind) ? kind : throw new ArgumentException($"--kind '{kind}': expected pos or neg");

    /// <summary>Generates the answers file unless it is there already; returns its path.</summary>
    public static string Answer(LanguageModel lm, TraitDefinition trait, string traitName, string kind, PersonaSampling sampling, PersonaFiles files)
    {
        CheckKind(kind);
        if (File.Exists(files.Answers)) return files.Answers;
        if (sampling.PerQuestion < 1) throw new ArgumentException($"--n-per-question {sampling.PerQuestion} must be ≥ 1");
        var rows = new List<(string Question, string Prompt, string QuestionId)>();
        var requests = new List<GenerationRequest>();
        for (int i = 0; i < trait.Instructions.Count; i++)
        {
            string system = kind == "pos" ? trait.Instructions[i].Pos : trait.Instructions[i].Neg;
            for (int q = 0; q < trait.Questions.Count; q++)
            {
                string prompt = lm.FormatChat(trait.Questions[q], system);
                int[] tokens = lm.Tokenizer.Encode(prompt, addBos: false);
                for (int s = 0; s < sampling.PerQuestion; s++)
                {
                    rows.Add((trait.Questions[q], prompt, $"{traitName}_{i}_{q}"));
                    // The seed depends on (instruction, question, sample) only, so pos and neg answers share their draws.
                    ulong seed = SplitMix64.Hash(sampling.Seed ^ SplitMix64.Hash(((ulong)i << 40) ^ ((ulong)q << 20) ^ (ulong)s));
                    requests.Add(new GenerationRequest(tokens, sampling.MaxNewTokens, new SamplingOptions(sampling.Temperature), [], seed, lm.Tokenizer.EosTokenIds));
                }
            }
        }
        var generator = new Generator(lm.Transformer, lm.Tokenizer, new SchedulerOptions(MaxSequences: Math.Min(256, requests.Count), MaxTokensPerStep: 4096));
        var results = generator.Generate(requests);
        var sb = new StringBuilder();
        for (int k = 0; k < rows.Count; k++)
            sb.Append(new JsonObject
            {
                ["id"] = $"{rows[k].QuestionId}_{kind}_{k}", ["question"] = rows[k].Question, ["prompt"] = rows[k].Prompt,
                ["answer"] = results[k].Text ?? "", ["question_id"] = rows[k].QuestionId, ["kind"] = kind,
            }.ToJsonString()).Append('\n');
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(files.Answers))!);
        AtomicFile.WriteAllText(files.Answers, sb.ToString());
        return files.Answers;
    }

    /// <summary>Judges the answers for the trait and coherence (resuming a judged file) and writes the CSV; returns how many scores failed.</summary>
    public static async Task<long> JudgeAsync(IJudgeProvider judge, Rubric traitRubric, Rubric coherence, PersonaFiles files, int maxConcurrent,
        JudgeProgress? progress = null)
    {
        foreach (Rubric r in new[] { traitRubric, coherence })
            if (r.Kind == ScorerKind.Weighted && !judge.SupportsLogprobs)
                throw new ArgumentException($"judge {judge.Name}: gives no log-probs, so it cannot run the weighted rubric '{r.Name}'");
        if (coherence.Column != "coherence") coherence = coherence with { OutputColumn = "coherence" };
        var plan = new JudgePlan(files.Answers, new InputFields("answer", "question", "id"), [traitRubric, coherence]);
        progress ??= new JudgeProgress();
        await JudgeRun.RunAsync(plan.Units, judge, files.Judged, File.Exists(files.Judged), maxConcurrent, Prices.None, progress).ConfigureAwait(false);
        ResearchLayouts.Write("persona", files.Judged, files.Csv);
        return progress.Failed;
    }

    /// <summary>The trait rubric of a split file: its eval prompt, logprob-weighted 0–100, scored into the column named after the trait.</summary>
    public static Rubric TraitRubric(TraitDefinition trait, string traitName) =>
        new() { Name = traitName, Kind = ScorerKind.Weighted, OutputColumn = traitName, TextAnswers = ["REFUSAL"], Prompt = trait.EvalPrompt };
}
