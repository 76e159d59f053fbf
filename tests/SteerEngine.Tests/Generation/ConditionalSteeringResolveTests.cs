using System.Text.Json;
using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Server.Http;
using SteerEngine.Server.Serving;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Generation;

/// <summary>
/// A conditional term in one batch with others: where its condition holds the row's tokens are those of the
/// unconditional term, where it does not they are the unsteered row's, bit for bit; the score is the cosine
/// of the mean prompt state computed by hand; the server's steering field parses a condition.
/// </summary>
public class ConditionalSteeringResolveTests
{
    [Test]
    public void A_condition_switches_its_term_per_row_and_the_tokens_are_the_plain_runs()
    {
        using var lm = LanguageModel.Load(TestModels.Get("tiny"));
        int H = lm.Config.HiddenSize;
        float[] v = Compare.RandomVector(new Random(2), H, 3f), c = Compare.RandomVector(new Random(3), H);
        int[] p1 = lm.EncodePrompt("Hello there"), p2 = lm.EncodePrompt("Something else entirely, with more words");

        double Score(int[] prompt)
        {
            var recorder = new SteerEngine.Capture.HiddenStateRecorder(lm.Config.NumLayers + 1, H);
            lm.Model.Forward([new ForwardSequence(lm.Model.NewCache(prompt.Length), prompt)], recorder);
            float[] states = recorder.Get(2, 0);   // block 1's output, (T, H)
            var mean = new double[H];
            for (int t = 0; t < prompt.Length; t++)
                for (int i = 0; i < H; i++) mean[i] += states[t * H + i] / (double)prompt.Length;
            return SteeringCondition.Cosine(mean, c);
        }
        double s1 = Score(p1), s2 = Score(p2);
        Assert.That(s1, Is.Not.EqualTo(s2));
        float threshold = (float)((s1 + s2) / 2);
        var condition = new SteeringCondition(1, c, threshold, s1 > s2 ? ConditionComparator.Greater : ConditionComparator.Less);
        var plain = new SteeringAdd(0, v, 2f);
        var conditional = plain with { Condition = condition };

        GenerationRequest Request(int[] prompt, SteeringAdd? term) =>
            new(prompt, 8, new SamplingOptions(0.8f), term is null ? null : [term], 5, lm.Tokenizer.EosTokenIds);
        var results = new Generator(lm.Model, lm.Tokenizer).Generate([Request(p1, conditional), Request(p2, conditional), Request(p1, plain), Request(p2, null)]);
        Assert.That(results[0].Conditions!.Single().Met, Is.True);
        Assert.That(results[0].Conditions!.Single().Score, Is.EqualTo(s1).Within(1e-5));
        Assert.That(results[1].Conditions!.Single().Met, Is.False);
        Assert.That(results[0].Tokens, Is.EqualTo(results[2].Tokens), "condition met: the plain term's tokens");
        Assert.That(results[1].Tokens, Is.EqualTo(results[3].Tokens), "condition not met: the unsteered tokens");
        Assert.That(results[2].Conditions, Is.Null);
    }

    [Test]
    public void A_term_with_an_unresolved_condition_cannot_reach_a_forward_pass()
    {
        var term = new SteeringAdd(0, [1f], 1f) { Condition = new SteeringCondition(0, [1f], 0f) };
        Assert.That(() => new ForwardSequence(new KvCache(1, 1, 4), [1], new SequenceSteering([term], 1)),
            Throws.ArgumentException.With.Message.Contains("resolved"));
    }

    [Test]
    public void The_servers_steering_field_takes_a_condition_and_checks_it()
    {
        using var lm = LanguageModel.Load(TestModels.Get("tiny"));
        int H = lm.Config.HiddenSize;
        var library = new VectorLibrary();
        library.Add("c", SteeringVector.Direction(Compare.RandomVector(new Random(4), H)));
        library.Add("v", SteeringVector.Direction(Compare.RandomVector(new Random(5), H)));
        IReadOnlyList<SteeringAdd> Parse(string json) => SteeringSpec.Parse(JsonDocument.Parse(json).RootElement, library, lm.Config)!;

        SteeringAdd t = Parse("""{"vector": "v", "layer": 1, "condition": {"vector": "c", "layer": 0, "threshold": 0.25, "comparator": "less"}}""").Single();
        Assert.That((t.Condition!.Layer, t.Condition.Threshold, t.Condition.Comparator, t.Condition.Name), Is.EqualTo((0, 0.25f, ConditionComparator.Less, "c")));
        Assert.That(t.Condition.Vector, Is.EqualTo(library.Find("c")!.ForBlock(0)));
        Assert.That(() => Parse("""{"vector": "v", "layer": 1, "condition": {"vector": "c", "layer": 0}}"""),
            Throws.TypeOf<ApiException>().With.Message.Contains("'steering[0].condition.threshold' (a cosine similarity in [-1, 1]) is required"));
        Assert.That(() => Parse("""{"vector": "v", "layer": 1, "condition": {"vector": "c", "layer": 0, "threshold": 0, "comparator": "above"}}"""),
            Throws.TypeOf<ApiException>().With.Message.Contains("'steering[0].condition.comparator' is 'above'"));
        Assert.That(() => Parse("""{"vector": "v", "layer": 1, "condition": {"vector": "c", "layer": 0, "threshold": 0, "extra": 1}}"""),
            Throws.TypeOf<ApiException>().With.Message.Contains("extra"));
    }

    [Test]
    public void A_preset_takes_a_steering_field_as_json_and_names_itself_in_errors()
    {
        var lm = LanguageModel.Load(TestModels.Get("tiny"));
        using var catalog = new ModelCatalog();
        catalog.Add(new ServedModel("tiny", lm, new GenerationEngine(lm.Model, lm.Tokenizer)));
        var library = new VectorLibrary();
        library.Add("v", SteeringVector.Direction(Compare.RandomVector(new Random(5), lm.Config.HiddenSize)));
        catalog.AddPreset("capped={\"vector\": \"v\", \"layer\": 1, \"op\": \"cap\", \"hi\": 0.5, \"positions\": \"first_k\", \"k\": 3}", library);
        SteeringAdd t = catalog.Resolve("capped").Preset!.Single();
        Assert.That((t.Op, t.Hi, t.Positions, t.FirstK), Is.EqualTo((SteeringOp.Cap, 0.5f, SteeringPositions.FirstK, 3)));
        Assert.That(() => catalog.AddPreset("bad={\"vector\": \"v\", \"layer\": 1, \"op\": \"set\"}", library),
            Throws.ArgumentException.With.Message.EqualTo("--preset 'bad': op set needs 'steering[0].value'"));
        Assert.That(() => catalog.AddPreset("broken={\"vector\":", library), Throws.ArgumentException.With.Message.StartsWith("--preset 'broken': not valid JSON"));
    }
}
