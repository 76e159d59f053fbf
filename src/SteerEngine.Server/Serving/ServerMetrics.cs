using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace SteerEngine.Server.Serving;

/// <summary>Counters for GET /metrics in Prometheus' text format.</summary>
public sealed class ServerMetrics(ModelCatalog catalog)
{
    readonly ConcurrentDictionary<(string Route, int Status), long> _requests = new();
    readonly DateTime _start = DateTime.UtcNow;
    readonly ConcurrentDictionary<string, (DateTime At, long CompletionTokens)> _lastScrape = new();
    long _promptTokens, _completionTokens;

    public void Request(string route, int status) => _requests.AddOrUpdate((route, status), 1, (_, n) => n + 1);

    public void Tokens(int prompt, int completion)
    {
        Interlocked.Add(ref _promptTokens, prompt);
        Interlocked.Add(ref _completionTokens, completion);
    }

    public long RequestsWithStatus(int status) => _requests.Where(kv => kv.Key.Status == status).Sum(kv => kv.Value);

    public string Render()
    {
        var s = new StringBuilder();
        void Line(string text) => s.Append(text).Append('\n');
        Line("# HELP steer_requests_total HTTP requests by route and status.");
        Line("# TYPE steer_requests_total counter");
        foreach (var ((route, status), n) in _requests.OrderBy(kv => kv.Key.Route).ThenBy(kv => kv.Key.Status))
            Line($"steer_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
        Line("# TYPE steer_prompt_tokens_total counter");
        Line($"steer_prompt_tokens_total {Interlocked.Read(ref _promptTokens)}");
        Line("# TYPE steer_completion_tokens_total counter");
        Line($"steer_completion_tokens_total {Interlocked.Read(ref _completionTokens)}");
        foreach (ServedModel m in catalog.Models)
        {
            var st = m.Engine.Stats;
            // Decode rate since the previous scrape (since the start at the first).
            DateTime now = DateTime.UtcNow;
            var (then, before) = _lastScrape.GetValueOrDefault(m.Name, (_start, 0L));
            _lastScrape[m.Name] = (now, st.CompletionTokens);
            double seconds = Math.Max(1e-3, (now - then).TotalSeconds);
            string label = $"{{model=\"{m.Name}\"}}";
            Line($"steer_running_sequences{label} {st.Running}");
            Line($"steer_waiting_sequences{label} {st.Waiting}");
            Line($"steer_engine_tokens_total{label} {m.Engine.TokensProcessed}");
            Line($"steer_decode_tokens_per_second{label} {((st.CompletionTokens - before) / seconds).ToString("0.###", CultureInfo.InvariantCulture)}");
            Line($"steer_cancelled_sequences_total{label} {st.Cancelled}");
            Line($"steer_failed_sequences_total{label} {st.Failed}");
        }
        return s.ToString();
    }
}
