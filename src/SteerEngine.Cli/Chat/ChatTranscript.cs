using System.Text.Json;
using System.Text.Json.Nodes;
using SteerEngine.Steering;

namespace SteerEngine.Cli.Chat;

/// <summary>
/// /save: the conversation as JSONL, one message a line in order (the system prompt first). An
/// assistant line carries what produced it: model, vector, layer, multiplier, positions and
/// finish_reason; /compare answers are marked "alternative": true (the model never saw them).
/// The file appears whole or not at all.
/// </summary>
public static class ChatTranscript
{
    public static int Save(string path, ChatSession session)
    {
        var lines = new List<string>();
        if (session.System is string system) lines.Add(Line("system", system));
        foreach (ChatTurn t in session.Turns)
        {
            var record = new JsonObject { ["role"] = t.Role, ["content"] = t.Content };
            if (t.Steering is ChatSteering s)
            {
                record["model"] = session.Model.Directory;
                record["vector"] = s.Vector;
                record["layer"] = s.Vector is null ? null : s.Layer;
                record["multiplier"] = s.Vector is null ? null : s.Multiplier;
                record["positions"] = s.Positions.Name();
                record["op"] = session.Settings.Shape.Template.Op.Name();
                record["finish_reason"] = t.FinishReason;
                if (t.Alternative) record["alternative"] = true;
            }
            lines.Add(record.ToJsonString());
        }
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string temp = full + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write))
        using (var writer = new StreamWriter(stream))
        {
            foreach (string line in lines) writer.Write(line + "\n");
            writer.Flush();
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, full, overwrite: true);
        return lines.Count;
    }

    static string Line(string role, string content) => JsonSerializer.Serialize(new { role, content });
}
