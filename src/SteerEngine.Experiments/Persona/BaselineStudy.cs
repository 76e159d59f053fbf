using SteerEngine.Judging.Data;
using SteerEngine.Judging.Providers;
using SteerEngine.Judging.Rubrics;
using SteerEngine.Judging.Run;
using SteerEngine.Model;
using SteerEngine.Steering;

namespace SteerEngine.Experiments.Persona;

/// <summary>What the baseline compares: the trait's eval split, the vector at one block, the level count and the multiplier scale, the samples.</summary>
public sealed record BaselineSettings(string Trait, TraitDefinition Eval, SteeringVector Vector, int Layer, int LevelCount, double Scale,
    int Samples, int MaxNewTokens, float Temperature, ulong Seed, string OutDir);

/// <summary>
/// <c>steer persona baseline</c>: prompted answers (the instruction asks for level k; the local model unsteered or an
/// API model) and steered answers (the local model at the matched multiplier) to every eval question, both scored
/// with the trait's eval prompt, then judged pairwise at matched levels; writes levels.csv, baseline.md and
/// baseline.png. Answer files are reused when present and the judge resumes, so a stopped run continues.
/// </summary>
public static class BaselineStudy
{
    public static IReadOnlyList<BaselineRow> Run(BaselineSettings s, LanguageModel lm, IJudgeProvider? apiAnswerer, IJudgeProvider judge, Rubric pairwise, int maxConcurrent)
    {
        Directory.CreateDirectory(s.OutDir);
        var levels = PromptingBaseline.Levels(s.LevelCount);
        AtomicFile.WriteAllText(Path.Combine(s.OutDir, "levels.csv"), "level,multiplier,steered_multiplier,instruction\n" + string.Concat(levels.Select(l =>
            $"{l.Level},{Num(l.Multiplier)},{Num(l.Multiplier * s.Scale)},\"{PromptingBaseline.Instruction(s.Trait, s.Eval.Instructions[0], l.Level, s.LevelCount).Replace("\"", "\"\"")}\"\n")));
        var rows = levels.SelectMany(l => s.Eval.Questions.SelectMany(q => Enumerable.Repeat((Level: l, Question: q), s.Samples))).ToList();

        string prompted = Path.Combine(s.OutDir, "prompted.jsonl"), steered = Path.Combine(s.OutDir, "steered.jsonl");
        if (!File.Exists(prompted))
        {
            var chats = rows.Select(r => new ChatToAnswer([new ChatTurn("system", PromptingBaseline.Instruction(s.Trait, s.Eval.Instructions[0], r.Level.Level, s.LevelCount)),
                new ChatTurn("user", r.Question)])).ToList();
            var answers = apiAnswerer is null ? ChatAnswerer.Engine(lm, chats, s.MaxNewTokens, s.Temperature, s.Seed) : ChatAnswerer.Api(apiAnswerer, chats, s.MaxNewTokens);
            PromptingBaseline.WriteAnswers(prompted, "prompted", rows, answers);
        }
        if (!File.Exists(steered))
        {
            float[] direction = s.Vector.ForBlock(s.Layer);
            var chats = rows.Select(r => new ChatToAnswer([new ChatTurn("user", r.Question)],
                new SteeringAdd(s.Layer, direction, (float)(r.Level.Multiplier * s.Scale), SteeringPositions.Response))).ToList();
            PromptingBaseline.WriteAnswers(steered, "steered", rows, ChatAnswerer.Engine(lm, chats, s.MaxNewTokens, s.Temperature, s.Seed));
        }

        Rubric trait = PersonaGeneration.TraitRubric(s.Eval, s.Trait);
        var fields = new InputFields("answer", "question", "id");
        string Judge(string input, string name, IReadOnlyList<Rubric> rubrics, string? against)
        {
            string judged = Path.Combine(s.OutDir, name);
            var plan = new JudgePlan(input, fields, rubrics, against, against is null ? null : "level");
            JudgeRun.RunAsync(plan.Units, judge, judged, File.Exists(judged), maxConcurrent, Prices.None, new JudgeProgress()).GetAwaiter().GetResult();
            return judged;
        }
        var promptedScores = PromptingBaseline.MeanByLevel(Judge(prompted, "prompted_judged.jsonl", [trait], null), s.Trait);
        var steeredScores = PromptingBaseline.MeanByLevel(Judge(steered, "steered_judged.jsonl", [trait], null), s.Trait);
        var wins = JudgeSummary.Of(Judge(steered, "pairwise_judged.jsonl", [pairwise], prompted)).Single().WinRates;

        var table = levels.Select(l =>
        {
            var w = wins.GetValueOrDefault(l.Level.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return new BaselineRow(l, promptedScores.GetValueOrDefault(l.Level, double.NaN), steeredScores.GetValueOrDefault(l.Level, double.NaN), w.Pairs,
                w.Pairs == 0 ? double.NaN : w.WinRate);
        }).ToList();
        AtomicFile.WriteAllText(Path.Combine(s.OutDir, "baseline.md"), PromptingBaseline.Markdown(s.Trait, s.Scale, table));
        PromptingBaseline.Plot(Path.Combine(s.OutDir, "baseline.png"), s.Trait, table);
        return table;
    }

    static string Num(double x) => x.ToString("0.0##", System.Globalization.CultureInfo.InvariantCulture);
}
