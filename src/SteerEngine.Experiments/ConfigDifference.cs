using System.Text.Json;
using System.Text.Json.Nodes;

namespace SteerEngine.Experiments;

/// <summary>
/// Where an experiment file's resolved config differs from the config.json an output folder holds: the first key, in
/// the file's order, whose value differs or that one side lacks (an older folder written before a key was recorded).
/// </summary>
public static class ConfigDifference
{
    /// <summary>"generate.op: "cap" in study.yaml, absent from the folder's config.json", or a phrase saying why there is no key to name.</summary>
    public static string Describe(string resolved, string held, string fileName)
    {
        JsonNode? now, then;
        try
        {
            now = JsonNode.Parse(resolved);
            then = JsonNode.Parse(held);
        }
        catch (JsonException)
        {
            return "its config.json is not valid JSON";
        }
        return First(now, then, "") is var (key, a, b)
            ? $"{key}: {(a is null ? "absent from" : a + " in")} {fileName}, {(b is null ? "absent from" : b + " in")} the folder's config.json"
            : "the same keys and values, written differently";
    }

    static string Show(JsonNode? v)
    {
        string s = v?.ToJsonString() ?? "null";
        return s.Length <= 80 ? s : s[..77] + "...";
    }

    /// <summary>The first differing key (dotted) and its value on each side as JSON text; null text: that side lacks the key.</summary>
    static (string Key, string? Now, string? Then)? First(JsonNode? now, JsonNode? then, string at)
    {
        if (now is JsonObject a && then is JsonObject b)
        {
            foreach (string key in a.Select(p => p.Key).Concat(b.Select(p => p.Key).Where(k => !a.ContainsKey(k))))
            {
                string path = at.Length == 0 ? key : $"{at}.{key}";
                if (!a.ContainsKey(key) || !b.ContainsKey(key))
                    return (path, a.ContainsKey(key) ? Show(a[key]) : null, b.ContainsKey(key) ? Show(b[key]) : null);
                if (First(a[key], b[key], path) is { } d) return d;
            }
            return null;
        }
        return JsonNode.DeepEquals(now, then) ? null : (at, Show(now), Show(then));
    }
}
