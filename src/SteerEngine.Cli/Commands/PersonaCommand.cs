using System.CommandLine;
using System.Globalization;
using System.Text;
using SteerEngine.Capture;
using SteerEngine.Experiments;
using SteerEngine.Experiments.Persona;
using SteerEngine.Judging.Providers;
using SteerEngine.Judging.Rubrics;
using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Steering;

namespace SteerEngine.Cli.Commands;

/// <summary>
/// <c>steer persona</c>: a persona vector from a trait name. <c>new</c> asks a generator model for the trait's
/// instructions, questions and eval prompt; <c>generate</c> answers the extract questions under the pos or neg
/// instructions and judges them into the persona-vectors CSV; <c>run</c> chains new → pos → neg → extract → a
/// monitoring check, skipping every step whose output exists, and writes a report.
/// </summary>
public static class PersonaCommand
{
    static readonly string[] Steps = ["new", "pos", "neg", "extract", "monitor"];

    public static Command Create()
    {
        var command = new Command("persona", "persona vectors from a trait name: generate trait data, answers, judge scores, the vector");
        command.Subcommands.Add(New());
        command.Subcommands.Add(Generate());
        command.Subcommands.Add(Run());
        command.Subcommands.Add(Baseline());
        command.Subcommands.Add(Stability());
        return command;
    }

    sealed class Shared
    {
        public readonly Option<string> Trait = new("--trait") { Required = true, Description = "trait name (letters, digits, _ and -): names the files and the CSV score column" };
        public readonly Option<string> Dir = new("--dir") { Description = "where trait_data_extract/, trait_data_eval/ and the outputs go", DefaultValueFactory = _ => "." };
        public readonly Option<string?> Description = new("--description") { Description = "new: what the trait is, in a sentence or two" };
        public readonly Option<string?> Generator = new("--generator") { Description = "new: PROVIDER:MODEL, e.g. anthropic:claude-sonnet-4-5, openai:gpt-4.1, or local:MODEL_DIR" };
        public readonly Option<string?> GeneratorUrl = new("--generator-base-url") { Description = "new: the generator API's base URL (default: OpenAI's or Anthropic's)" };
        public readonly Option<string?> GeneratorKey = new("--generator-api-key-env") { Description = "new: environment variable holding the generator's API key" };
        public readonly Option<int> Attempts = new("--attempts") { Description = "new: replies asked for before giving up on malformed JSON", DefaultValueFactory = _ => 3 };
        public readonly Option<string?> Model = new("--model") { Description = "the model to answer with (directory)" };
        public readonly Option<string> Kernels = new("--kernels") { Description = "auto | native | managed | exact", DefaultValueFactory = _ => "auto" };
        public readonly Option<int> PerQuestion = new("--n-per-question") { Description = "samples per instruction and question", DefaultValueFactory = _ => 10 };
        public readonly Option<int> MaxTokens = new("--max-new-tokens") { Description = "tokens per answer", DefaultValueFactory = _ => 200 };
        public readonly Option<float> Temperature = new("--temperature") { DefaultValueFactory = _ => 1f };
        public readonly Option<ulong> Seed = new("--seed") { DefaultValueFactory = _ => 0UL };
        public readonly Option<string?> Judge = new("--judge") { Description = "openai | anthropic | local:MODEL_DIR (needs log-probs: the trait score is logprob-weighted 0-100)" };
        public readonly Option<string?> JudgeModel = new("--judge-model") { Description = "judge model name (openai, anthropic)" };
        public readonly Option<string?> JudgeUrl = new("--judge-base-url") { Description = "judge API base URL" };
        public readonly Option<string?> JudgeKey = new("--judge-api-key-env") { Description = "environment variable holding the judge's API key" };
        public readonly Option<string> Coherence = new("--coherence-rubric") { Description = "coherence rubric: built-in coherence or a rubric file", DefaultValueFactory = _ => "coherence" };
        public readonly Option<int> Concurrent = new("--max-concurrent") { Description = "judge calls in flight (local: the batch size)", DefaultValueFactory = _ => 8 };
        public readonly Option<double> Threshold = new("--threshold") { Description = "extract: trait score a pair must pass (pos ≥ t, neg < 100 − t)", DefaultValueFactory = _ => 50 };

        public IEnumerable<Option> GeneratorOptions => [Description, Generator, GeneratorUrl, GeneratorKey, Attempts];
        public IEnumerable<Option> AnswerOptions => [Model, Kernels, PerQuestion, MaxTokens, Temperature, Seed, Judge, JudgeModel, JudgeUrl, JudgeKey, Coherence, Concurrent];

        public PersonaSampling Sampling(ParseResult p) => new(p.GetValue(PerQuestion), p.GetValue(MaxTokens), p.GetValue(Temperature), p.GetValue(Seed));

        public IJudgeProvider OpenJudge(ParseResult p) => JudgeProviders.Open(p.GetValue(Judge) ?? throw new ArgumentException("--judge is required to score the answers"),
            p.GetValue(JudgeModel), p.GetValue(JudgeUrl), p.GetValue(JudgeKey), new RetryOptions(), p.GetValue(Concurrent));

        public LanguageModel LoadModel(ParseResult p) => LanguageModel.Load(p.GetValue(Model) ?? throw new ArgumentException("--model is required to answer the questions"),
            w => Console.Error.WriteLine($"warning: {w}"), CpuKernels.Parse(p.GetValue(Kernels)!));
    }

    static Command New()
    {
        var s = new Shared();
        var command = new Command("new", "ask a generator model for the trait's instruction pairs, 40 questions and eval prompt") { s.Trait, s.Dir };
        foreach (Option o in s.GeneratorOptions) command.Options.Add(o);
        command.SetAction(p => CliErrors.Run(() =>
        {
            var (extract, eval) = NewTrait(s, p);
            Console.WriteLine($"wrote {extract} and {eval}");
            return 0;
        }));
        return command;
    }

    static (string Extract, string Eval) NewTrait(Shared s, ParseResult p)
    {
        string trait = TraitGenerator.CheckName(p.GetValue(s.Trait)!);
        string description = p.GetValue(s.Description) ?? throw new ArgumentException("--description is required to write a new trait");
        string spec = p.GetValue(s.Generator) ?? throw new ArgumentException("--generator PROVIDER:MODEL is required to write a new trait");
        using IJudgeProvider generator = OpenModel("--generator", spec, p.GetValue(s.GeneratorUrl), p.GetValue(s.GeneratorKey));
        TraitDefinition definition;
        try
        {
            definition = TraitGenerator.GenerateAsync(generator, trait, description, p.GetValue(s.Attempts), m => Console.Error.WriteLine(m)).GetAwaiter().GetResult();
        }
        catch (JudgeCallException e)
        {
            throw new IOException($"generator {spec}: {e.Message}", e);
        }
        return definition.WriteSplits(p.GetValue(s.Dir)!, trait);
    }

    /// <summary>An API or local model named PROVIDER:MODEL (anthropic:..., openai:..., local:DIR), through the judge providers.</summary>
    static IJudgeProvider OpenModel(string option, string spec, string? baseUrl, string? keyEnv)
    {
        int colon = spec.IndexOf(':');
        if (colon <= 0 || colon == spec.Length - 1) throw new ArgumentException($"{option} '{spec}': expected PROVIDER:MODEL (anthropic:..., openai:..., local:DIR)");
        string provider = spec[..colon];
        return provider == "local"
            ? JudgeProviders.Open(spec, null, null, null, new RetryOptions(), 1)
            : JudgeProviders.Open(provider, spec[(colon + 1)..], baseUrl, keyEnv, new RetryOptions(), 8);
    }

    static Command Generate()
    {
        var s = new Shared();
        var kind = new Option<string>("--kind") { Required = true, Description = "pos | neg: which instruction of each pair is the system prompt" };
        var command = new Command("generate", "answer the extract questions under the pos or neg instructions and judge them into the persona-vectors CSV") { s.Trait, s.Dir, kind };
        foreach (Option o in s.AnswerOptions) command.Options.Add(o);
        command.SetAction(p => CliErrors.Run(() =>
        {
            string trait = TraitGenerator.CheckName(p.GetValue(s.Trait)!);
            using LanguageModel lm = s.LoadModel(p);
            using IJudgeProvider judge = s.OpenJudge(p);
            string csv = GenerateKind(s, p, lm, judge, trait, PersonaGeneration.CheckKind(p.GetValue(kind)!));
            Console.WriteLine($"wrote {csv}");
            return 0;
        }));
        return command;
    }

    static string GenerateKind(Shared s, ParseResult p, LanguageModel lm, IJudgeProvider judge, string trait, string kind)
    {
        string dir = p.GetValue(s.Dir)!;
        TraitDefinition extract = TraitDefinition.Load(TraitDefinition.ExtractPath(dir, trait));
        var files = PersonaFiles.For(dir, trait, kind);
        Console.Error.WriteLine($"{kind}: answering {extract.Instructions.Count} instructions × {extract.Questions.Count} questions × {p.GetValue(s.PerQuestion)} samples");
        PersonaGeneration.Answer(lm, extract, trait, kind, s.Sampling(p), files);
        Console.Error.WriteLine($"{kind}: judging trait and coherence with {judge.Name}");
        long failed = PersonaGeneration.JudgeAsync(judge, PersonaGeneration.TraitRubric(extract, trait), BuiltInRubrics.Resolve(p.GetValue(s.Coherence)!),
            files, p.GetValue(s.Concurrent)).GetAwaiter().GetResult();
        if (failed > 0) Console.Error.WriteLine($"warning: {failed} judge calls failed; their scores are empty (run again to retry them)");
        return files.Csv;
    }

    static Command Run()
    {
        var s = new Shared();
        var until = new Option<string?>("--until") { Description = $"stop after this step ({string.Join(", ", Steps)})" };
        var command = new Command("run", "new → pos → neg → extract → monitor, each step skipped when its output exists; writes report.md") { s.Trait, s.Dir, until, s.Threshold };
        foreach (Option o in s.GeneratorOptions.Concat(s.AnswerOptions)) command.Options.Add(o);
        command.SetAction(p => CliErrors.Run(() =>
        {
            string trait = TraitGenerator.CheckName(p.GetValue(s.Trait)!);
            string dir = p.GetValue(s.Dir)!;
            string? stop = p.GetValue(until);
            if (stop is not null && !Steps.Contains(stop)) throw new ArgumentException($"--until '{stop}': expected one of {string.Join(", ", Steps)}");
            bool Done(string step) { Console.Error.WriteLine($"step {step}: done"); return step == stop; }

            if (File.Exists(TraitDefinition.ExtractPath(dir, trait)) && File.Exists(TraitDefinition.EvalPath(dir, trait)))
                Console.Error.WriteLine("step new: trait files exist, skipped");
            else
                NewTrait(s, p);
            if (Done("new")) return 0;

            using LanguageModel lm = s.LoadModel(p);
            IJudgeProvider? judge = null;
            try
            {
                foreach (string kind in PersonaGeneration.Kinds)
                {
                    if (File.Exists(PersonaFiles.For(dir, trait, kind).Csv)) Console.Error.WriteLine($"step {kind}: {PersonaFiles.For(dir, trait, kind).Csv} exists, skipped");
                    else GenerateKind(s, p, lm, judge ??= s.OpenJudge(p), trait, kind);
                    if (Done(kind)) return 0;
                }
            }
            finally
            {
                judge?.Dispose();
            }

            var pairs = PersonaPairs.Load(PersonaFiles.For(dir, trait, "pos").Csv, PersonaFiles.For(dir, trait, "neg").Csv, trait, p.GetValue(s.Threshold));
            string vectors = Path.Combine(dir, "vectors");
            string responseAvg = Path.Combine(vectors, $"{trait}_response_avg_diff.pt");
            if (File.Exists(responseAvg)) Console.Error.WriteLine($"step extract: {responseAvg} exists, skipped");
            else if (pairs.Effective.Count == 0) throw new InvalidDataException($"step extract: no effective pairs of {pairs.Positive.Count}.\n{string.Join("\n", PersonaReport.Hints(pairs, p.GetValue(s.Threshold)))}");
            else Extract(p, s, trait, dir, vectors);
            if (Done("extract")) return 0;

            SteeringVector read = VectorFile.Read(responseAvg);
            float[][] vector = Enumerable.Range(0, read.Rows).Select(read.Row).ToArray();
            var monitor = PersonaMonitor.Check(lm, TraitDefinition.Load(TraitDefinition.EvalPath(dir, trait)), vector);
            string report = Path.Combine(dir, "report.md");
            AtomicFile.WriteAllText(report, PersonaReport.Markdown(trait, pairs, p.GetValue(s.Threshold), vector, monitor));
            Console.Write(File.ReadAllText(report));
            Done("monitor");
            return 0;
        }));
        return command;
    }

    static Command Baseline()
    {
        var s = new Shared();
        var levels = new Option<int>("--levels") { Description = "7 (multipliers -1.5..+1.5) or 9 (-2..+2)", DefaultValueFactory = _ => 7 };
        var vector = new Option<string?>("--vector") { Description = "persona vector (default: DIR/vectors/NAME_response_avg_diff.pt)" };
        var layer = new Option<int>("--layer") { Required = true, Description = "decoder block to steer" };
        var scale = new Option<double>("--scale") { Description = "steered multiplier = level multiplier × this", DefaultValueFactory = _ => 1 };
        var samples = new Option<int>("--samples") { Description = "answers per level and eval question", DefaultValueFactory = _ => 1 };
        var answerer = new Option<string>("--answerer") { Description = "who answers the level instructions: local (the --model, unsteered) or PROVIDER:MODEL", DefaultValueFactory = _ => "local" };
        var answererUrl = new Option<string?>("--answerer-base-url") { Description = "the answering API's base URL" };
        var answererKey = new Option<string?>("--answerer-api-key-env") { Description = "environment variable holding the answering API's key" };
        var pairwise = new Option<string?>("--pairwise-rubric") { Description = "pairwise rubric (default: pairwise:NAME, which answer shows more of the trait)" };
        var command = new Command("baseline", "prompting baseline: level-instructed answers vs steered answers at the matched multipliers, scored and judged pairwise")
            { s.Trait, s.Dir, levels, vector, layer, scale, samples, answerer, answererUrl, answererKey, pairwise };
        foreach (Option o in s.AnswerOptions.Where(o => o != s.PerQuestion && o != s.Coherence)) command.Options.Add(o);
        command.SetAction(p => CliErrors.Run(() =>
        {
            string trait = TraitGenerator.CheckName(p.GetValue(s.Trait)!);
            string dir = p.GetValue(s.Dir)!;
            int count = p.GetValue(levels);
            PromptingBaseline.Levels(count);
            SteeringVector v = VectorFile.Read(p.GetValue(vector) ?? Path.Combine(dir, "vectors", $"{trait}_response_avg_diff.pt"));
            var settings = new BaselineSettings(trait, TraitDefinition.Load(TraitDefinition.EvalPath(dir, trait)), v, p.GetValue(layer), count, p.GetValue(scale),
                p.GetValue(samples), p.GetValue(s.MaxTokens), p.GetValue(s.Temperature), p.GetValue(s.Seed), Path.Combine(dir, $"baseline_{count}"));
            using LanguageModel lm = s.LoadModel(p);
            v.CheckHidden(lm.Config.HiddenSize);
            string who = p.GetValue(answerer)!;
            using IJudgeProvider? api = who == "local" ? null : OpenModel("--answerer", who, p.GetValue(answererUrl), p.GetValue(answererKey));
            using IJudgeProvider judge = s.OpenJudge(p);
            Rubric pair = BuiltInRubrics.Resolve(p.GetValue(pairwise) ?? "pairwise:" + trait);
            var rows = Remote(() => BaselineStudy.Run(settings, lm, api, judge, pair, p.GetValue(s.Concurrent)));
            Console.Write(File.ReadAllText(Path.Combine(settings.OutDir, "baseline.md")));
            Console.WriteLine($"wrote levels.csv, baseline.md and baseline.png to {settings.OutDir} ({rows.Count} levels)");
            return 0;
        }));
        return command;
    }

    static Command Stability()
    {
        var s = new Shared();
        var scenarios = new Option<string>("--scenarios") { Required = true, Description = "scenarios file (examples/persona/stability_scenarios.json has five themes)" };
        var vector = new Option<string?>("--vector") { Description = "persona vector (default: DIR/vectors/NAME_response_avg_diff.pt)" };
        var layer = new Option<int?>("--layer") { Description = "decoder block to steer (with --model)" };
        var multipliers = new Option<string>("--multipliers") { Description = "the local model's steering multipliers, comma-separated", DefaultValueFactory = _ => "0" };
        var api = new Option<string?>("--api-model") { Description = "also converse with PROVIDER:MODEL (unsteered)" };
        var apiUrl = new Option<string?>("--api-base-url") { Description = "the API model's base URL" };
        var apiKey = new Option<string?>("--api-key-env") { Description = "environment variable holding the API model's key" };
        var command = new Command("stability", "persona stability: multi-turn conversations with an attack turn, every assistant turn scored, score by turn")
            { s.Trait, s.Dir, scenarios, vector, layer, multipliers, api, apiUrl, apiKey };
        foreach (Option o in s.AnswerOptions.Where(o => o != s.PerQuestion && o != s.Coherence)) command.Options.Add(o);
        command.SetAction(p => CliErrors.Run(() =>
        {
            string trait = TraitGenerator.CheckName(p.GetValue(s.Trait)!);
            string dir = p.GetValue(s.Dir)!;
            var list = StabilityScenarios.Load(p.GetValue(scenarios)!, trait);
            var conditions = new List<StabilityCondition>();
            using LanguageModel? lm = p.GetValue(s.Model) is null ? null : s.LoadModel(p);
            SteeringVector? v = null;
            int block = 0;
            if (lm is not null)
            {
                float[] ms = p.GetValue(multipliers)!.Split(',').Select(x => float.TryParse(x, NumberStyles.Float, CultureInfo.InvariantCulture, out float m) ? m
                    : throw new ArgumentException($"--multipliers: '{x}' is not a number")).ToArray();
                if (ms.Any(m => m != 0))
                {
                    block = p.GetValue(layer) ?? throw new ArgumentException("--multipliers other than 0 need --layer");
                    v = VectorFile.Read(p.GetValue(vector) ?? Path.Combine(dir, "vectors", $"{trait}_response_avg_diff.pt"));
                    v.CheckHidden(lm.Config.HiddenSize);
                }
                conditions.AddRange(ms.Select(m => new StabilityCondition($"local x{m.ToString("+0.##;-0.##;0", CultureInfo.InvariantCulture)}", m)));
            }
            string? apiSpec = p.GetValue(api);
            using IJudgeProvider? apiModel = apiSpec is null ? null : OpenModel("--api-model", apiSpec, p.GetValue(apiUrl), p.GetValue(apiKey));
            if (apiModel is not null) conditions.Add(new StabilityCondition(apiSpec!, null));
            if (conditions.Count == 0) throw new ArgumentException("nothing to converse with: give --model (steered by --multipliers) and/or --api-model");
            using IJudgeProvider judge = s.OpenJudge(p);
            string outDir = Path.Combine(dir, "stability");
            Remote(() => StabilityStudy.Run(trait, TraitDefinition.Load(TraitDefinition.EvalPath(dir, trait)), list, conditions, lm, v, block, apiModel, judge,
                p.GetValue(s.MaxTokens), p.GetValue(s.Temperature), p.GetValue(s.Seed), outDir, p.GetValue(s.Concurrent)));
            Console.Write(File.ReadAllText(Path.Combine(outDir, "stability.md")));
            Console.WriteLine($"wrote conversations.jsonl, stability.md and stability.png to {outDir}");
            return 0;
        }));
        return command;
    }

    /// <summary>A remote model's failure after its retries is one line for the user, not a trace.</summary>
    static T Remote<T>(Func<T> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is JudgeCallException || e is AggregateException { InnerException: JudgeCallException })
        {
            throw new IOException((e as JudgeCallException ?? (JudgeCallException)e.InnerException!).Message, e);
        }
    }

    /// <summary>The extract step is `steer extract --mode persona` itself, run in-process on the two CSVs.</summary>
    static void Extract(ParseResult p, Shared s, string trait, string dir, string vectors)
    {
        var root = new RootCommand { ExtractCommand.Create() };
        string[] args =
        [
            "extract", "--model", p.GetValue(s.Model)!, "--kernels", p.GetValue(s.Kernels)!, "--mode", "persona", "--trait", trait,
            "--pos", PersonaFiles.For(dir, trait, "pos").Csv, "--neg", PersonaFiles.For(dir, trait, "neg").Csv,
            "--threshold", p.GetValue(s.Threshold).ToString(CultureInfo.InvariantCulture), "--out", vectors, "--report",
        ];
        if (root.Parse(args).Invoke() != 0) throw new InvalidDataException("step extract failed (see above)");
    }
}
