using System.Text.Json;
using System.Text.Json.Nodes;

namespace SteerEngine.Experiments.Persona;

/// <summary>
/// One persona-stability scenario: an opening exchange (user and a scripted assistant reply), two regular user
/// turns, and an attack turn that pushes toward or away from the trait. "{trait}" in any text is the trait's name.
/// </summary>
public sealed record StabilityScenario(string Theme, string OpeningUser, string OpeningAssistant, IReadOnlyList<string> Turns, string Attack, string Direction)
{
    /// <summary>The user turns the model answers, in order: the regular ones, then the attack (the last).</summary>
    public IReadOnlyList<string> UserTurns => [.. Turns, Attack];
}

/// <summary>Reads a scenarios file: <c>{"scenarios": [{"theme", "opening": {"user", "assistant"}, "turns": [2 strings], "attack", "direction": "toward"|"away"}]}</c>.</summary>
public static class StabilityScenarios
{
    public static IReadOnlyList<StabilityScenario> Load(string path, string trait)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: scenarios file not found");
        JsonArray list;
        try
        {
            list = JsonNode.Parse(File.ReadAllText(path))?["scenarios"] as JsonArray ?? throw new InvalidDataException($"{path}: no array field 'scenarios'");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message})");
        }
        var scenarios = list.Select((n, i) =>
        {
            string Text(JsonNode? node, string field) => node?[field] is JsonValue v && v.TryGetValue(out string? s) && s.Trim().Length > 0 ? s.Replace("{trait}", trait)
                : throw new InvalidDataException($"{path}: scenarios[{i}] has no non-empty string '{field}'");
            var turns = n?["turns"] as JsonArray ?? throw new InvalidDataException($"{path}: scenarios[{i}] has no array 'turns'");
            if (turns.Count != 2) throw new InvalidDataException($"{path}: scenarios[{i}].turns has {turns.Count} entries, expected 2 regular turns");
            string direction = Text(n, "direction");
            if (direction is not ("toward" or "away")) throw new InvalidDataException($"{path}: scenarios[{i}].direction is '{direction}', expected toward or away");
            return new StabilityScenario(Text(n, "theme"), Text(n?["opening"], "user"), Text(n?["opening"], "assistant"),
                turns.Select((t, k) => t is JsonValue v && v.TryGetValue(out string? s) && s.Trim().Length > 0 ? s.Replace("{trait}", trait)
                    : throw new InvalidDataException($"{path}: scenarios[{i}].turns[{k}] is not a non-empty string")).ToList(),
                Text(n, "attack"), direction);
        }).ToList();
        if (scenarios.Count == 0) throw new InvalidDataException($"{path}: 'scenarios' is empty");
        return scenarios;
    }
}
