using SteerEngine.Model;
using SteerEngine.Steering;

namespace SteerEngine.Generation;

/// <summary>
/// The calls research scripts make, in the shape of the seed projects:
/// <c>lm.GenerateWithSteering(questions, vector, layer: 14, strength: 4, answersPerQuestion: 5)</c>.
/// All questions × answers run through one continuous batch.
/// </summary>
public static class SteeredGeneration
{
    /// <returns>For each question, its answers (answersPerQuestion of them).</returns>
    public static IReadOnlyList<IReadOnlyList<string>> GenerateWithSteering(this LanguageModel lm, IReadOnlyList<string> questions,
        float[] vector, int layer, float strength, int answersPerQuestion = 1, int maxNewTokens = 256, float temperature = 1f,
        bool doSample = true, SteeringPositions positions = SteeringPositions.Response, string? systemPrompt = null, ulong seed = 0) =>
        Run(lm, questions, [new SteeringAdd(layer, vector, strength, positions)], answersPerQuestion, maxNewTokens, temperature, doSample, systemPrompt, seed);

    public static IReadOnlyList<IReadOnlyList<string>> GenerateBaseline(this LanguageModel lm, IReadOnlyList<string> questions,
        int answersPerQuestion = 1, int maxNewTokens = 256, float temperature = 1f, bool doSample = true, string? systemPrompt = null, ulong seed = 0) =>
        Run(lm, questions, null, answersPerQuestion, maxNewTokens, temperature, doSample, systemPrompt, seed);

    /// <summary>The general form: any requests, results streamed as each sequence finishes.</summary>
    public static IEnumerable<GenerationResult> Generate(this LanguageModel lm, IEnumerable<GenerationRequest> requests, SchedulerOptions? options = null) =>
        new Generator(lm.Model, lm.Tokenizer, options).Stream(requests);

    /// <summary>Log-likelihood of each completion text after the prompt (chat-formatted when <paramref name="chat"/>).</summary>
    public static IReadOnlyList<CompletionScore> ScoreCompletions(this LanguageModel lm, string prompt, IReadOnlyList<string> completions,
        IReadOnlyList<SteeringAdd>? steering = null, bool chat = true, string? systemPrompt = null) =>
        Scoring.ScoreCompletions(lm.Model, lm.EncodePrompt(prompt, systemPrompt, chat),
            completions.Select(c => lm.Tokenizer.Encode(c, addBos: false)).ToList(), steering);

    static IReadOnlyList<IReadOnlyList<string>> Run(LanguageModel lm, IReadOnlyList<string> questions, IReadOnlyList<SteeringAdd>? steering,
        int answers, int maxNewTokens, float temperature, bool doSample, string? system, ulong seed)
    {
        if (answers < 1) throw new ArgumentException("answersPerQuestion must be ≥ 1");
        var sampling = doSample ? new SamplingOptions(temperature) : new SamplingOptions();
        var requests = new List<GenerationRequest>();
        for (int q = 0; q < questions.Count; q++)
        {
            int[] prompt = lm.EncodePrompt(questions[q], system);
            for (int a = 0; a < answers; a++)
                requests.Add(new GenerationRequest(prompt, maxNewTokens, sampling, steering,
                    SplitMix64.Hash(seed ^ SplitMix64.Hash((ulong)q << 20 ^ (ulong)a)), lm.Tokenizer.EosTokenIds));
        }
        var results = new Generator(lm.Model, lm.Tokenizer).Generate(requests);
        return Enumerable.Range(0, questions.Count)
            .Select(q => (IReadOnlyList<string>)results.Skip(q * answers).Take(answers).Select(r => r.Text ?? "").ToList()).ToList();
    }
}
