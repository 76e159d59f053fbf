using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using SteerEngine.Judging.Batch;
using SteerEngine.Judging.Data;
using SteerEngine.Judging.Providers;
using SteerEngine.Judging.Rubrics;
using SteerEngine.Judging.Run;

namespace SteerEngine.Cli.Commands;

/// <summary>
/// <c>steer judge</c>: every answer of a generations file judged under one or more rubrics by an
/// OpenAI-compatible server, Anthropic, or a model in-process (<c>local:DIR</c>); resumable, with
/// a progress bar, and optionally written in the research projects' layouts.
/// </summary>
public static class JudgeCommand
{
    public static Command Create()
    {
        var input = new Option<string>("--input") { Description = "answers to judge: .jsonl or .csv (ours, BiPO study, emergent misalignment, persona vectors)", Required = true };
        var rubrics = new Option<string[]>("--rubric") { Description = $"rubric file (.yaml/.json) or built-in: {string.Join(", ", BuiltInRubrics.Names)} (repeatable)", Required = true };
        var output = new Option<string>("--out") { Description = "judged JSONL (one record per answer and rubric, raw replies kept)", Required = true };
        var resume = new Option<bool>("--resume") { Description = "continue an interrupted run: keep its records, judge the rest" };
        var provider = new Option<string>("--provider") { Description = "openai | anthropic | local:MODEL_DIR", DefaultValueFactory = _ => "openai" };
        var model = new Option<string?>("--model") { Description = "judge model name (openai, anthropic)" };
        var baseUrl = new Option<string?>("--base-url") { Description = "API base URL (default: OpenAI's or Anthropic's; e.g. http://127.0.0.1:8000/v1 for steer serve)" };
        var keyEnv = new Option<string?>("--api-key-env") { Description = "environment variable holding the API key (default OPENAI_API_KEY / ANTHROPIC_API_KEY)" };
        var concurrent = new Option<int>("--max-concurrent") { Description = "judge calls in flight at once (local: the batch size)", DefaultValueFactory = _ => 8 };
        var attempts = new Option<int>("--max-attempts") { Description = "attempts per call on 429, 5xx, time-outs and broken replies", DefaultValueFactory = _ => 6 };
        var timeout = new Option<double>("--timeout") { Description = "seconds one attempt may take", DefaultValueFactory = _ => 120 };
        var prices = new Option<string?>("--prices") { Description = "price list for the cost estimate (default: judge_prices.json beside the binary)" };
        var answerField = new Option<string?>("--answer-field") { Description = "field holding the answer (default: response, answer, completion or output)" };
        var questionField = new Option<string?>("--question-field") { Description = "field holding the question (default: question, prompt or user_prompt)" };
        var idField = new Option<string?>("--id-field") { Description = "field holding the record id (default: id or generation_id, else the row number)" };
        var against = new Option<string?>("--against") { Description = "pairwise: the answers each input answer is compared with (matched by question and occurrence)" };
        var condition = new Option<string?>("--condition") { Description = "pairwise: field whose values group the win rates (default: multiplier)" };
        var batch = new Option<bool>("--batch") { Description = "openai: go through the Batch API; its state lives in OUT.batch/, so rerunning the command resumes without resubmitting" };
        var poll = new Option<double>("--poll-seconds") { Description = "--batch: seconds between status checks", DefaultValueFactory = _ => 30 };
        var batchRequests = new Option<int>("--batch-max-requests") { Description = "--batch: requests per batch file (the API allows 50000)", DefaultValueFactory = _ => 50_000 };
        var layout = new Option<string?>("--layout") { Description = $"also write the judged answers as: {string.Join(", ", ResearchLayouts.Names)}" };
        var layoutOut = new Option<string?>("--layout-out") { Description = "where the layout goes (bipo: a directory; em, persona: a CSV file)" };

        var command = new Command("judge", "judge answers with an LLM: ratings, pairwise comparisons, logprob-weighted 0-100 scores")
        {
            input, rubrics, output, resume, provider, model, baseUrl, keyEnv, concurrent, attempts, timeout, prices,
            answerField, questionField, idField, against, condition, batch, poll, batchRequests, layout, layoutOut,
        };
        command.SetAction(p => CliErrors.Run(() =>
        {
            var rubricList = p.GetValue(rubrics)!.Select(BuiltInRubrics.Resolve).ToList();
            var duplicate = rubricList.GroupBy(r => r.Name).FirstOrDefault(g => g.Count() > 1);
            if (duplicate is not null) throw new ArgumentException($"--rubric: two rubrics are named '{duplicate.Key}'");
            string outPath = p.GetValue(output)!;
            string? layoutName = p.GetValue(layout);
            if (layoutName is not null && !ResearchLayouts.Names.Contains(layoutName))
                throw new ArgumentException($"--layout '{layoutName}': expected {string.Join(", ", ResearchLayouts.Names)}");
            if (layoutName is not null && p.GetValue(layoutOut) is null) throw new ArgumentException("--layout needs --layout-out");
            var plan = new JudgePlan(p.GetValue(input)!, new InputFields(p.GetValue(answerField), p.GetValue(questionField), p.GetValue(idField)),
                rubricList, p.GetValue(against), p.GetValue(condition));
            Prices priceList = LoadPrices(p.GetValue(prices));
            var retry = new RetryOptions(p.GetValue(attempts), AttemptTimeout: TimeSpan.FromSeconds(p.GetValue(timeout)));
            int maxConcurrent = p.GetValue(concurrent);

            if (p.GetValue(batch))
            {
                if (p.GetValue(provider) != "openai") throw new ArgumentException("--batch works with --provider openai (the OpenAI Batch API, or a server that speaks it)");
                var endpoint = JudgeProviders.OpenAi(p.GetValue(model), p.GetValue(baseUrl), p.GetValue(keyEnv), retry.Timeout);
                RunBatch(plan, endpoint, outPath, priceList, TimeSpan.FromSeconds(p.GetValue(poll)), p.GetValue(batchRequests));
                return Finish(outPath, layoutName, p.GetValue(layoutOut));
            }
            using IJudgeProvider judge = JudgeProviders.Open(p.GetValue(provider)!, p.GetValue(model), p.GetValue(baseUrl), p.GetValue(keyEnv), retry, maxConcurrent);
            if (rubricList.Any(r => r.Kind == ScorerKind.Weighted) && !judge.SupportsLogprobs)
                throw new ArgumentException($"--provider {judge.Name}: gives no log-probs, so it cannot run a weighted (0-100 logprob) rubric; use a rating rubric");
            RunLive(plan, judge, outPath, p.GetValue(resume), maxConcurrent, priceList);
            return Finish(outPath, layoutName, p.GetValue(layoutOut));
        }));
        return command;
    }

    static int Finish(string outPath, string? layoutName, string? layoutOut)
    {
        PrintSummary(outPath);
        if (layoutName is not null)
            foreach (string f in ResearchLayouts.Write(layoutName, outPath, layoutOut!))
                Console.WriteLine($"wrote {f}");
        return 0;
    }

    static void RunBatch(JudgePlan plan, OpenAiEndpoint endpoint, string outPath, Prices prices, TimeSpan poll, int maxRequests)
    {
        if (maxRequests < 1) throw new ArgumentException($"--batch-max-requests {maxRequests} must be ≥ 1");
        var progress = new JudgeProgress();
        var run = new BatchJudgeRun(endpoint, new BatchLimits(MaxRequests: maxRequests), poll);
        Task task = run.RunAsync(plan.Units, outPath, prices, progress, step => Console.Error.WriteLine($"batch: {step}"));
        task.GetAwaiter().GetResult();
        Console.WriteLine($"judged {progress.Done} ({progress.Failed} failed) through the Batch API into {outPath}, {progress.Skipped} already there; " +
                          $"{progress.PromptTokens + progress.CompletionTokens} tokens, {CostText(progress)} (batch price)");
    }

    static Prices LoadPrices(string? path)
    {
        if (path is not null) return Prices.Load(path);
        string beside = Path.Combine(AppContext.BaseDirectory, "judge_prices.json");
        return File.Exists(beside) ? Prices.Load(beside) : Prices.None;
    }

    static void RunLive(JudgePlan plan, IJudgeProvider judge, string outPath, bool resume, int maxConcurrent, Prices prices)
    {
        var progress = new JudgeProgress();
        Task run = JudgeRun.RunAsync(plan.Units, judge, outPath, resume, maxConcurrent, prices, progress);
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("judging", maxValue: 1);
                while (!run.IsCompleted)
                {
                    Update(task, progress);
                    Thread.Sleep(250);
                }
                Update(task, progress);
            });
        run.GetAwaiter().GetResult(); // the run's own exception (a bad input line, say), not an AggregateException
        Console.WriteLine($"judged {progress.Done} ({progress.Failed} failed) into {outPath}, {progress.Skipped} already there; " +
                          $"{progress.PromptTokens + progress.CompletionTokens} tokens, {CostText(progress)} in {progress.Clock.Elapsed.TotalSeconds:0.0} s");
    }

    static void Update(ProgressTask task, JudgeProgress pr)
    {
        task.MaxValue = Math.Max(1, pr.Total);
        task.Value = pr.Skipped + pr.Done;
        string eta = pr.Eta is { } e ? $" · ETA {e:hh\\:mm\\:ss}" : "";
        task.Description = $"judging {pr.Skipped + pr.Done}/{pr.Total} · {pr.Rate:0.0}/s{eta} · {pr.PromptTokens + pr.CompletionTokens} tok · {CostText(pr)}" +
                           (pr.Failed > 0 ? $" · {pr.Failed} failed" : "");
    }

    static string CostText(JudgeProgress pr) => pr.CostKnown ? $"${pr.Cost.ToString("0.0000", CultureInfo.InvariantCulture)}" : "cost unknown (model not in the price list)";

    static void PrintSummary(string outPath)
    {
        foreach (RubricSummary s in JudgeSummary.Of(outPath))
        {
            string statuses = string.Join(", ", s.ByStatus.OrderBy(kv => kv.Key).Select(kv => $"{kv.Value} {kv.Key}"));
            string mean = s.MeanScore is double m ? $"mean {m.ToString("0.###", CultureInfo.InvariantCulture)}" : "no scores";
            Console.WriteLine($"{s.Rubric}: {s.Count} records ({statuses}); {mean}");
            foreach (var (cond, (pairs, rate, ties)) in s.WinRates.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                Console.WriteLine($"  {cond}: win rate {rate.ToString("0.000", CultureInfo.InvariantCulture)} over {pairs} pairs ({ties} ties)");
        }
    }
}
