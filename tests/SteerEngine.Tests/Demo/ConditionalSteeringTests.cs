using SteerEngine.Capture;
using SteerEngine.Cli.Demo;
using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Steering;

namespace SteerEngine.Tests.Demo;

/// <summary>
/// CAST on the demo model: a condition found by the grid search on questions about animals (dog, cat, bird)
/// against questions about places (garden, city, river, house) switches the happy-mood steering on for the
/// animal questions only. The search and the steering use the same questions (four question forms × the
/// nouns × singular/plural × the/your): on this small model a condition found on two question forms does not
/// carry over to the other two (README "Conditional steering").
/// </summary>
public class ConditionalSteeringTests
{
    static readonly string[] Animals = ["dog", "cat", "bird"], AnimalsPlural = ["dogs", "cats", "birds"];
    static readonly string[] Places = ["garden", "city", "river", "house"], PlacesPlural = ["gardens", "cities", "rivers", "houses"];

    /// <summary>Every noun singular and plural, with "the" and "your", in the given question forms ({0} = "the dog", {1} = is/are).</summary>
    public static List<string> Questions(string[] singular, string[] plural, params string[] forms) =>
        [.. from i in Enumerable.Range(0, singular.Length)
            from p in new[] { false, true }
            from det in new[] { "the", "your" }
            from form in forms
            select string.Format(form, $"{det} {(p ? plural[i] : singular[i])}", p ? "are" : "is")];

    public static readonly string[] Forms = ["tell me about {0}.", "what do you think of {0}?", "describe {0}.", "how {1} {0}?"];

    public static (List<string> A, List<string> B) TopicSets(params string[] forms) =>
        (Questions(Animals, AnimalsPlural, forms), Questions(Places, PlacesPlural, forms));

    [Test]
    public void The_grid_search_splits_animal_from_place_questions_and_the_condition_steers_only_the_animal_ones()
    {
        DemoFiles.RequireModel();
        using LanguageModel lm = LanguageModel.Load(DemoFiles.ModelDir);
        var (a, b) = TopicSets(Forms);
        ConditionSearchResult search = ConditionSearch.Run(lm.Model, a.Select(q => lm.EncodePrompt(q)).ToList(), b.Select(q => lm.EncodePrompt(q)).ToList());
        ConditionSplit best = search.Best;
        TestContext.Out.WriteLine($"best split: block {best.Layer}, {best.ComparatorName} {best.Threshold}, F1 {best.F1:0.000} " +
                                  string.Join(", ", search.PerLayer.Select(s => $"block {s.Layer}: F1 {s.F1:0.000}")));
        Assert.That(best.F1, Is.GreaterThanOrEqualTo(0.9));

        int moodLayer = (lm.Config.NumLayers - 1) / 2;
        float[] mood = TraitVector.MeanDifference(lm, TraitVector.ReadPairs(Path.Combine(DemoFiles.ModelDir, "mood_pairs.jsonl")), moodLayer);
        var condition = new SteeringCondition(best.Layer, search.Vectors[best.Layer + 1], best.Threshold, best.Comparator);
        SteeringAdd happy = new SteeringAdd(moodLayer, mood, 4f, SteeringPositions.Response) { Condition = condition };

        DemoLanguage language = DemoModel.Language(DemoFiles.ModelDir);
        (double Happy, double Met) Measure(List<string> questions, SteeringAdd? term)
        {
            var requests = questions.Select((q, i) => new GenerationRequest(lm.EncodePrompt(q), 30, new SamplingOptions(1f),
                term is null ? null : [term], (ulong)i + 1, lm.Tokenizer.EosTokenIds)).ToList();
            var results = new Generator(lm.Model, lm.Tokenizer, new SchedulerOptions(MaxSequences: 64, MaxTokensPerStep: 4096)).Generate(requests);
            return (HappyShare(language, results.Select(r => r.Text ?? "")), results.Count(r => r.Conditions is [{ Met: true }]) / (double)results.Count);
        }
        var (animalsBase, _) = Measure(a, null);
        var (placesBase, _) = Measure(b, null);
        var (animalsSteered, animalsMet) = Measure(a, happy);
        var (placesSteered, placesMet) = Measure(b, happy);
        AssertSteersAnimalsOnly("unsteered → conditionally steered", (animalsBase, animalsSteered, animalsMet), (placesBase, placesSteered, placesMet));
    }

    /// <summary>Happy words among the happy and sad words of <paramref name="texts"/> (0 when they have none).</summary>
    public static double HappyShare(DemoLanguage language, IEnumerable<string> texts)
    {
        var measures = texts.Select(language.Measure).ToList();
        int h = measures.Sum(m => m.Counts["happy"]), s = measures.Sum(m => m.Counts["sad"]);
        return (double)h / Math.Max(1, h + s);
    }

    /// <summary>
    /// The mood term conditioned on the animal topic: met on most animal questions and few place ones, raising the
    /// animal questions' happy share and leaving the place questions' where it was.
    /// </summary>
    /// <param name="change">what the Base → Steered shares compare, for the report</param>
    public static void AssertSteersAnimalsOnly(string change, (double Base, double Steered, double Met) animals, (double Base, double Steered, double Met) places)
    {
        string report = $"happy share, {change}: animals {animals.Base:0.00} → {animals.Steered:0.00} (condition met {animals.Met:0.00}), " +
                        $"places {places.Base:0.00} → {places.Steered:0.00} (condition met {places.Met:0.00})";
        TestContext.Out.WriteLine(report);
        Assert.That(animals.Met, Is.GreaterThanOrEqualTo(0.8), report);
        Assert.That(places.Met, Is.LessThanOrEqualTo(0.2), report);
        Assert.That(animals.Steered - animals.Base, Is.GreaterThan(0.25), report);
        Assert.That(Math.Abs(places.Steered - places.Base), Is.LessThan(0.15), report);
    }
}
