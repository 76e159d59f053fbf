using System.CommandLine;
using System.Text;
using System.Text.Json;
using SteerEngine.Generation;
using SteerEngine.Generation.Jobs;
using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;

namespace SteerEngine.Cli.Commands;

/// <summary>
/// <c>steer score</c>: the log-likelihood of each input line's completion given its prompt. Lines carry
/// <c>prompt</c> + <c>completion</c> text (with --chat the prompt goes through the chat template) or
/// <c>prompt_ids</c> + <c>completion_ids</c>. Output keeps the input's id as it was (a number stays a
/// number, a string a string; without one, the 0-based line number as a string); resumable like generate.
/// </summary>
public static class ScoreCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Required = true, Description = "model directory" };
        var kernels = new Option<string>("--kernels") { Description = "auto | native | managed | exact (the f32 reference path)", DefaultValueFactory = _ => "auto" };
        var backend = new Option<string>("--backend") { Description = "cpu | cuda | cuda-emu (the CUDA backend on the CPU emulator)", DefaultValueFactory = _ => "cpu" };
        var tp = new Option<int>("--tp") { Description = "tensor-parallel devices (cuda, cuda-emu)", DefaultValueFactory = _ => 1 };
        var input = new Option<string>("--input") { Required = true, Description = "JSONL: prompt + completion text or prompt_ids + completion_ids, and an id (written back unchanged; default: the line number)" };
        var output = new Option<string>("--out") { Required = true, Description = "JSONL output" };
        var chat = new Option<bool>("--chat") { Description = "format the prompt text with the chat template" };
        var system = new Option<string?>("--system") { Description = "system prompt (with --chat)" };
        var resume = new Option<bool>("--resume") { Description = "continue an interrupted run: keep its records, score the rest" };
        var steering = new SteeringOptions();
        var command = new Command("score", "log-probs and perplexity of completions, optionally steered") { model, kernels, backend, tp, input, output, chat, system, resume };
        steering.AddTo(command);
        command.SetAction(p => CliErrors.Run(() =>
        {
            using LanguageModel lm = LanguageModel.Load(p.GetValue(model)!, w => Console.Error.WriteLine($"warning: {w}"), CpuKernels.Parse(p.GetValue(kernels)!), p.GetValue(backend)!, p.GetValue(tp));
            var adds = steering.Resolve(p, lm.Config);
            string inPath = p.GetValue(input)!;
            if (!File.Exists(inPath)) throw new FileNotFoundException($"{inPath}: input file not found");
            using JsonlOutput outFile = JsonlOutput.Open(p.GetValue(output)!, p.GetValue(resume), out var done);
            int lineNo = 0, written = 0;
            foreach (string line in File.ReadLines(inPath))
            {
                lineNo++;
                if (string.IsNullOrWhiteSpace(line)) continue;
                JsonElement o;
                try { o = JsonDocument.Parse(line).RootElement; }
                catch (JsonException e) { throw new InvalidDataException($"{inPath}:{lineNo}: not valid JSON ({e.Message})"); }
                if (o.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{inPath}:{lineNo}: expected a JSON object");
                string? idJson = CallerId.Read(o, "id", $"{inPath}:{lineNo}");
                string fallbackId = (lineNo - 1).ToString();
                if (done.Contains(idJson is null ? CallerId.Key(fallbackId) : CallerId.KeyOfJson(idJson))) continue;
                var (promptIds, completionIds) = Tokens(lm, o, p.GetValue(chat), p.GetValue(system), $"{inPath}:{lineNo}");
                CompletionScore s = Scoring.ScoreCompletions(lm.Model, promptIds, [completionIds], adds)[0];
                outFile.Append(Encoding.UTF8.GetBytes(JsonlOutput.ToLine(w =>
                {
                    if (idJson is null) w.WriteString("id", fallbackId); else CallerId.Write(w, "id", idJson);
                    w.WriteNumber("sum_logprob", s.SumLogprob);
                    w.WriteNumber("mean_logprob", s.MeanLogprob);
                    w.WriteNumber("n_tokens", s.Tokens);
                    w.WriteNumber("perplexity", s.Perplexity);
                    if (adds.Count > 0) { w.WriteNumber("layer", adds[0].Layer); w.WriteNumber("multiplier", adds[0].Multiplier); }
                })));
                written++;
            }
            Console.Error.WriteLine($"scored {written} completions ({done.Count} already in {p.GetValue(output)})");
            return 0;
        }));
        return command;
    }

    static (int[] Prompt, int[] Completion) Tokens(LanguageModel lm, JsonElement o, bool chat, string? system, string where)
    {
        if (o.TryGetProperty("prompt_ids", out var pi) && o.TryGetProperty("completion_ids", out var ci))
        {
            try { return (pi.EnumerateArray().Select(x => x.GetInt32()).ToArray(), ci.EnumerateArray().Select(x => x.GetInt32()).ToArray()); }
            catch (Exception e) when (e is InvalidOperationException or FormatException)
            { throw new InvalidDataException($"{where}: prompt_ids and completion_ids must be arrays of integers"); }
        }
        if (!o.TryGetProperty("prompt", out var pt) || pt.ValueKind != JsonValueKind.String
            || !o.TryGetProperty("completion", out var ct) || ct.ValueKind != JsonValueKind.String)
            throw new InvalidDataException($"{where}: needs string fields prompt and completion (or prompt_ids and completion_ids)");
        int[] prompt = lm.EncodePrompt(pt.GetString()!, system, chat);
        return (prompt, lm.Tokenizer.Encode(ct.GetString()!, addBos: false));
    }
}
