using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using SteerEngine.Model;
using SteerEngine.Steering;

namespace SteerEngine.Generation.Jobs;

/// <summary>A named steering vector of a sweep; Epoch is parsed from BiPO's vec_ep{N}_layer{L} names when present.</summary>
public sealed record SweepVector(string Name, SteeringVector Vector, int? Epoch = null)
{
    public static SweepVector FromFile(string path)
    {
        string name = VectorFile.NameOf(path);
        Match m = Regex.Match(name, @"ep(\d+)");
        return new SweepVector(name, VectorFile.Read(path), m.Success ? int.Parse(m.Groups[1].Value) : null);
    }
}

/// <summary>Everything a `steer generate` sweep needs. Items: prompts × vectors × layers × multipliers × samples.</summary>
public sealed record GenerateJobSpec
{
    public required IReadOnlyList<JobPrompt> Prompts { get; init; }
    public IReadOnlyList<SweepVector> Vectors { get; init; } = [];
    public int[] Layers { get; init; } = [];
    public float[] Multipliers { get; init; } = [1f];
    /// <summary>The positions and operation of every steering term of the sweep.</summary>
    public SteeringTermShape Steering { get; init; } = SteeringTermShape.Default;
    public string? SystemPrompt { get; init; }
    public bool ChatTemplate { get; init; } = true;
    public int SamplesPerPrompt { get; init; } = 1;
    public int MaxNewTokens { get; init; } = 64;
    public SamplingOptions Sampling { get; init; } = new();
    public IReadOnlyList<string>? StopStrings { get; init; }
    public ulong Seed { get; init; }
    public Shard Shard { get; init; } = Shard.All;
    public SchedulerOptions Scheduler { get; init; } = new();
    /// <summary>Directions whose per-token projections each record carries, under "projections".</summary>
    public IReadOnlyList<ProjectionMonitor> Monitors { get; init; } = [];
    /// <summary>Write each generated token's log-prob ("token_logprobs").</summary>
    public bool Logprobs { get; init; }
}

public sealed record JobProgress(long Done, long Total, long Skipped, long GeneratedTokens, TimeSpan Elapsed);

public sealed record JobSummary(long Written, long Skipped, long Total, long GeneratedTokens, TimeSpan Elapsed);

/// <summary>
/// Runs a generation sweep into a JSONL file, one record per sample. Resumable (records already in
/// the file are skipped), shardable (item i belongs to shard i mod n), and every record says what
/// produced it. A sweep's multipliers for one prompt are neighbouring items, so they share batches.
/// </summary>
public static class GenerateJob
{
    sealed record Item(long Index, string Id, JobPrompt Prompt, SweepVector? Vector, int? Layer, float Multiplier, int Sample, ulong Seed);

    public static long CountItems(GenerateJobSpec spec) =>
        (long)spec.Prompts.Count * SteeringCombos(spec).Count * spec.SamplesPerPrompt;

    public static JobSummary Run(LanguageModel lm, GenerateJobSpec spec, string outPath, bool resume, Action<JobProgress>? progress = null)
    {
        Validate(lm, spec);
        using JsonlOutput output = JsonlOutput.Open(outPath, resume, out HashSet<string> done);
        // Items are enumerated lazily (twice: once to count): a job of millions of samples never holds them all.
        long total = 0, skipped = 0;
        foreach (Item i in Items(spec).Where(i => spec.Shard.Owns(i.Index)))
        {
            total++;
            if (done.Contains(CallerId.Key(i.Id))) skipped++;
        }
        var todo = Items(spec).Where(i => spec.Shard.Owns(i.Index) && !done.Contains(CallerId.Key(i.Id)));

        var prompts = new Dictionary<string, int[]>();
        int[] Encode(JobPrompt p)
        {
            if (!prompts.TryGetValue(p.Id, out int[]? ids))
                prompts[p.Id] = ids = lm.EncodePrompt(p.Text, p.System ?? spec.SystemPrompt, spec.ChatTemplate);
            return ids;
        }

        var requests = todo.Select(item => new GenerationRequest(
            Encode(item.Prompt), spec.MaxNewTokens, spec.Sampling,
            item.Vector is null ? null : [spec.Steering.Term(item.Layer!.Value, item.Vector.Vector.ForBlock(item.Layer.Value), item.Multiplier)],
            item.Seed, lm.Tokenizer.EosTokenIds)
        {
            StopStrings = spec.StopStrings, Tag = item, Logprobs = spec.Logprobs,
            Monitors = spec.Monitors.Count > 0 ? spec.Monitors : null,
        });

        var generator = new Generator(lm.Model, lm.Tokenizer, spec.Scheduler);
        var clock = Stopwatch.StartNew();
        long written = 0, tokens = 0;
        string model = Path.GetFileName(Path.TrimEndingDirectorySeparator(lm.Directory));
        foreach (GenerationResult r in generator.Stream(requests))
        {
            var item = (Item)r.Tag!;
            output.Append(Encoding.UTF8.GetBytes(Record(item, r, spec, model)));
            written++;
            tokens += r.Tokens.Length;
            progress?.Invoke(new JobProgress(skipped + written, total, skipped, tokens, clock.Elapsed));
        }
        output.Flush();
        return new JobSummary(written, skipped, total, tokens, clock.Elapsed);
    }

    static void Validate(LanguageModel lm, GenerateJobSpec spec)
    {
        if (spec.SamplesPerPrompt < 1) throw new ArgumentException("--samples-per-prompt must be ≥ 1");
        if (spec.MaxNewTokens < 0) throw new ArgumentException("--max-new-tokens must be ≥ 0");
        spec.Sampling.Validate();
        if (spec.Vectors.Count > 0 && spec.Layers.Length == 0) throw new ArgumentException("a steered sweep needs --layers");
        foreach (SweepVector v in spec.Vectors)
            foreach (int layer in spec.Layers)
                new SequenceSteering([spec.Steering.Term(layer, v.Vector.ForBlock(layer), 1f)], 1).Validate(lm.Config);
        spec.Steering.Template.Condition?.Validate(lm.Config.NumLayers, lm.Config.HiddenSize);
    }

    static List<(SweepVector? Vector, int? Layer, float Multiplier)> SteeringCombos(GenerateJobSpec spec)
    {
        if (spec.Vectors.Count == 0) return [(null, null, 0f)];
        return [.. from v in spec.Vectors from l in spec.Layers from m in spec.Multipliers select ((SweepVector?)v, (int?)l, m)];
    }

    static IEnumerable<Item> Items(GenerateJobSpec spec)
    {
        var combos = SteeringCombos(spec);
        long index = 0;
        foreach (JobPrompt p in spec.Prompts)
            foreach (var (vector, layer, multiplier) in combos)
                for (int s = 0; s < spec.SamplesPerPrompt; s++)
                {
                    string id = vector is null
                        ? $"{p.Id}#s{s}"
                        : $"{p.Id}#{vector.Name}#L{layer}#m{multiplier.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}#s{s}";
                    // The same (seed, prompt, sample) draws the same random numbers at every multiplier:
                    // sweep rows differ by steering, not by luck.
                    ulong seed = SplitMix64.Hash(spec.Seed ^ SplitMix64.Hash(StableHash(p.Id) ^ SplitMix64.Hash((ulong)s)));
                    yield return new Item(index++, id, p, vector, layer, multiplier, s, seed);
                }
    }

    /// <summary>FNV-1a over UTF-8: stable across runs and machines, unlike string.GetHashCode.</summary>
    public static ulong StableHash(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (byte b in Encoding.UTF8.GetBytes(s)) h = (h ^ b) * 1099511628211UL;
        return h;
    }

    static string Record(Item item, GenerationResult r, GenerateJobSpec spec, string model) => JsonlOutput.ToLine(w =>
    {
        w.WriteString("id", item.Id);
        if (item.Prompt.IdJson is string idJson) CallerId.Write(w, "prompt_id", idJson);
        else w.WriteString("prompt_id", item.Prompt.Id);
        w.WriteString("question", item.Prompt.Text);
        w.WriteString("response", r.Text);
        if (item.Layer is int l) { w.WriteNumber("layer", l); w.WriteNumber("steering_layer", l); }
        else { w.WriteNull("layer"); w.WriteNull("steering_layer"); }
        w.WriteNumber("multiplier", item.Multiplier);
        w.WriteNumber("steering_strength", item.Multiplier);
        if (item.Vector is null) w.WriteNull("vector"); else w.WriteString("vector", item.Vector.Name);
        if (item.Vector?.Epoch is int e) w.WriteNumber("epoch", e); else w.WriteNull("epoch");
        spec.Steering.Write(w, r.Conditions?.FirstOrDefault());
        w.WriteNumber("sample_index", item.Sample);
        w.WriteNumber("answer_idx", item.Sample);
        // 64-bit seeds pass 2^53, past which JavaScript's numbers lose digits: the *_string fields carry them exactly.
        w.WriteNumber("seed", item.Seed);
        w.WriteString("seed_string", item.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture));
        w.WriteNumber("job_seed", spec.Seed);
        w.WriteString("job_seed_string", spec.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture));
        w.WriteNumber("temperature", spec.Sampling.Temperature);
        w.WriteNumber("top_p", spec.Sampling.TopP);
        w.WriteNumber("prompt_tokens", r.PromptTokens);
        w.WriteNumber("completion_tokens", r.Tokens.Length);
        w.WriteString("finish_reason", r.FinishReason);
        w.WriteString("model", model);
        w.WriteString("shard", spec.Shard.ToString());
        w.WriteNumber("item", item.Index);
        if (r.TokenLogprobs is { } lp)
        {
            w.WriteStartArray("token_logprobs");
            foreach (float x in lp) w.WriteNumberValue(x);
            w.WriteEndArray();
        }
        if (r.Projections is { } projections)
        {
            w.WriteStartObject("projections");
            for (int m = 0; m < projections.Length; m++)
            {
                w.WriteStartArray(spec.Monitors[m].Name);
                foreach (float x in projections[m]) w.WriteNumberValue(x);
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
    });

    /// <summary>
    /// Joins shard outputs into one file ordered by item, checking that no id repeats and (when
    /// <paramref name="expected"/> is given) that every item of the job is present.
    /// </summary>
    public static long Merge(IReadOnlyList<string> shardFiles, string outPath, long? expected = null)
    {
        var records = new List<(long Item, string Line)>();
        var ids = new HashSet<string>();
        foreach (string file in shardFiles)
        {
            if (!File.Exists(file)) throw new FileNotFoundException($"{file}: shard file not found");
            int lineNo = 0;
            foreach (string line in File.ReadLines(file))
            {
                lineNo++;
                if (line.Length == 0) continue;
                long item;
                string id;
                try
                {
                    using var doc = JsonDocument.Parse(line);
                    id = doc.RootElement.GetProperty("id").GetString()!;
                    item = doc.RootElement.GetProperty("item").GetInt64();
                }
                catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
                {
                    throw new InvalidDataException($"{file}:{lineNo}: not a complete job record (resume the shard to repair a torn last line)");
                }
                if (!ids.Add(id)) throw new InvalidDataException($"{file}:{lineNo}: record '{id}' appears in more than one place");
                records.Add((item, line));
            }
        }
        if (expected is long n && records.Count != n)
            throw new InvalidDataException($"shards hold {records.Count} records, the job has {n}: a shard is missing or unfinished");
        if (File.Exists(outPath)) throw new IOException($"{outPath}: already exists; choose another --out");
        string tmp = outPath + ".tmp";
        using (var w = new StreamWriter(tmp, false, new UTF8Encoding(false)))
            foreach (var (_, line) in records.OrderBy(r => r.Item)) w.Write(line + "\n");
        File.Move(tmp, outPath);
        return records.Count;
    }
}
