using System.Globalization;
using SteerEngine.Generation.Jobs;

namespace SteerEngine.Capture;

/// <summary>One row of a persona-vectors CSV: the chat-formatted prompt, the answer, and its judge scores (null when missing).</summary>
public sealed record PersonaExample(int Line, string QuestionId, string Question, string Prompt, string Answer, double? Trait, double? Coherence);

/// <summary>
/// The positive and negative CSVs of persona-vectors extraction (columns
/// <c>question,prompt,answer,question_id,&lt;trait&gt;,coherence</c>), row-aligned: row i of both files
/// answers the same question. A pair is effective when the positive trait score ≥ threshold, the
/// negative one &lt; 100 − threshold, and both coherence scores ≥ 50; a missing score fails its test,
/// as NaN does in the reference's pandas mask.
/// </summary>
public sealed class PersonaPairs
{
    public required IReadOnlyList<PersonaExample> Positive { get; init; }
    public required IReadOnlyList<PersonaExample> Negative { get; init; }
    public required IReadOnlyList<int> Effective { get; init; }
    public int MissingScores { get; init; }

    public static PersonaPairs Load(string positivePath, string negativePath, string trait, double threshold = 50)
    {
        var pos = ReadCsv(positivePath, trait);
        var neg = ReadCsv(negativePath, trait);
        if (pos.Count != neg.Count)
            throw new InvalidDataException($"{positivePath} has {pos.Count} rows but {negativePath} has {neg.Count}: the files must be row-aligned pairs");
        var effective = new List<int>();
        int missing = 0;
        for (int i = 0; i < pos.Count; i++)
        {
            if (pos[i].QuestionId != neg[i].QuestionId || pos[i].Question != neg[i].Question)
                throw new InvalidDataException($"{positivePath}:{pos[i].Line} and {negativePath}:{neg[i].Line} are not the same question " +
                                               $"('{pos[i].QuestionId}' vs '{neg[i].QuestionId}'): the files must be row-aligned pairs");
            if (pos[i].Trait is null || neg[i].Trait is null || pos[i].Coherence is null || neg[i].Coherence is null) missing++;
            if (IsEffective(pos[i], neg[i], threshold)) effective.Add(i);
        }
        return new PersonaPairs { Positive = pos, Negative = neg, Effective = effective, MissingScores = missing };
    }

    /// <summary>As persona-vectors does: the prompt column is already chat-formatted; tokens of prompt + answer, no BOS added.</summary>
    public static CaptureExample Capture(Tokenization.TextTokenizer tokenizer, PersonaExample x)
    {
        int[] tokens = tokenizer.Encode(x.Prompt + x.Answer, addBos: false);
        int promptLength = tokenizer.Encode(x.Prompt, addBos: false).Length;
        if (promptLength >= tokens.Length) throw new InvalidDataException($"line {x.Line}: the answer adds no tokens to the prompt");
        return new CaptureExample(tokens, promptLength);
    }

    public static bool IsEffective(PersonaExample pos, PersonaExample neg, double threshold) =>
        pos.Trait >= threshold && neg.Trait < 100 - threshold && pos.Coherence >= 50 && neg.Coherence >= 50;

    static List<PersonaExample> ReadCsv(string path, string trait)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: CSV not found");
        var list = new List<PersonaExample>();
        foreach (var (line, row) in CsvReader.Read(path))
        {
            string Field(string name) => row.TryGetValue(name, out string? v) ? v
                : throw new InvalidDataException($"{path}:{line}: no column '{name}' (expected question, prompt, answer, question_id, {trait}, coherence)");
            double? Score(string name)
            {
                string s = Field(name).Trim();
                if (s.Length == 0 || s.Equals("nan", StringComparison.OrdinalIgnoreCase) || s.Equals("none", StringComparison.OrdinalIgnoreCase)) return null;
                return double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v
                    : throw new InvalidDataException($"{path}:{line}: column '{name}' is '{s}', expected a number or empty");
            }
            list.Add(new PersonaExample(line, Field("question_id"), Field("question"), Field("prompt"), Field("answer"), Score(trait), Score("coherence")));
        }
        return list;
    }
}
