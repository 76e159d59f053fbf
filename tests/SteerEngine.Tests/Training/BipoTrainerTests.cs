using SteerEngine.Model;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;
using SteerEngine.Training;

namespace SteerEngine.Tests.Training;

[TestFixture]
public class BipoTrainerTests
{
    static readonly string[] Topics = ["the weather", "music", "the sea", "mountains", "cooking", "trains", "chess", "gardens",
        "winter", "books", "rivers", "coffee", "bicycles", "the moon", "painting", "birds", "cities", "forests", "tea", "clocks"];

    /// <summary>A BiPO CSV whose matching answers all agree and whose not-matching answers all refuse.</summary>
    static string WritePreferenceCsv(string dir, string name, IEnumerable<string> topics)
    {
        string path = Path.Combine(dir, name);
        var lines = new List<string> { "question,matching,not_matching" };
        foreach (string t in topics)
            lines.Add($"\"Do you like {t}? Answer yes or no.\",\"Yes, I love it.\",\"No, I do not.\"");
        File.WriteAllLines(path, lines);
        return path;
    }

    static BipoOptions FastOptions(int epochs) => new()
    {
        Epochs = epochs, LearningRate = 0.05, WarmupSteps = 2, BatchSize = 4, Beta = 0.1, Seed = 3,
    };

    [Test]
    public void Training_lowers_the_loss_and_the_vector_steers_held_out_pairs_both_ways()
    {
        string modelDir = TestModels.Get("tiny");
        string dir = TestModels.TempDir("bipo-train");
        using LanguageModel lm = LanguageModel.Load(modelDir);
        var train = PreferenceData.Load(WritePreferenceCsv(dir, "train.csv", Topics[..12]), lm);
        var test = PreferenceData.Load(WritePreferenceCsv(dir, "test.csv", Topics[12..]), lm);
        const int layer = 1;
        using var trainer = new BipoTrainer(lm.Transformer, FastOptions(epochs: 4));
        var losses = new List<double>();
        var epochs = new List<BipoEpochMetrics>();
        string outDir = Path.Combine(dir, "out");
        trainer.Run([layer], train, test, outDir, resume: false, onStep: s => losses.Add(s.Loss), onEpoch: epochs.Add);

        TestContext.Out.WriteLine("step losses: " + string.Join(" ", losses.Select(l => l.ToString("F4"))));
        Assert.That(losses.TakeLast(3).Average(), Is.LessThan(losses.Take(3).Average() * 0.8), "training loss falls");
        Assert.That(epochs[^1].TrainLoss, Is.LessThan(epochs[0].TrainLoss));
        Assert.That(epochs[^1].TestPlus.Loss, Is.LessThan(Math.Log(2)), "held-out loss at +v below its start, ln 2");

        float[] v = VectorFile.Read(BipoTrainer.VectorPath(outDir, 4, layer)).ForBlock(layer);
        Assert.That(v, Has.Length.EqualTo(lm.Config.HiddenSize));
        Assert.That(File.Exists(BipoTrainer.VectorPath(outDir, 4, layer, ".safetensors")));
        var slp = new SteeredLogProb(lm.Transformer, layer);
        SequenceBatch batch = slp.Batch(test.SelectMany(p => new[] { p.ChosenSequence, p.RejectedSequence }).ToList());
        float[] prefix = slp.Prefix(batch);
        double LogRatio(float m)
        {
            double[] lp = slp.Forward(batch, prefix, v, m).LogProbs;
            return Enumerable.Range(0, test.Count).Average(i => lp[2 * i] - lp[2 * i + 1]);
        }
        double minus = LogRatio(-1), zero = LogRatio(0), plus = LogRatio(1);
        TestContext.Out.WriteLine($"held-out mean log-ratio chosen − rejected: −v {minus:F3}, none {zero:F3}, +v {plus:F3}");
        Assert.That(plus, Is.GreaterThan(zero + 0.5));
        Assert.That(minus, Is.LessThan(zero - 0.5));

        string[] records = File.ReadAllLines(Path.Combine(outDir, BipoTrainer.MetricsFileName));
        Assert.That(records, Has.Length.EqualTo(4));
        Assert.That(records[0], Does.Contain("\"test_neg_margin\"").And.Contain("\"train_pos_reward_accuracy\""));
    }

    [Test]
    public void Resume_after_an_interrupted_epoch_gives_the_uninterrupted_vector_and_skips_complete_layers()
    {
        string modelDir = TestModels.Get("tiny");
        string dir = TestModels.TempDir("bipo-resume");
        using LanguageModel lm = LanguageModel.Load(modelDir);
        var train = PreferenceData.Load(WritePreferenceCsv(dir, "train.csv", Topics[..6]), lm);
        var test = PreferenceData.Load(WritePreferenceCsv(dir, "test.csv", Topics[6..8]), lm);
        using var trainer = new BipoTrainer(lm.Transformer, FastOptions(epochs: 2));
        const int layer = 2;

        string whole = Path.Combine(dir, "whole");
        trainer.Run([layer], train, test, whole, resume: false);

        string broken = Path.Combine(dir, "broken");
        Assert.Throws<OperationCanceledException>(() =>
            trainer.Run([layer], train, test, broken, resume: false, onEpoch: _ => throw new OperationCanceledException()));
        Assert.Throws<IOException>(() => trainer.Run([layer], train, test, broken, resume: false), "a second fresh run refuses the directory");
        trainer.Run([layer], train, test, broken, resume: true);

        Assert.That(File.ReadAllBytes(BipoTrainer.VectorPath(broken, 2, layer, ".safetensors")),
            Is.EqualTo(File.ReadAllBytes(BipoTrainer.VectorPath(whole, 2, layer, ".safetensors"))));
        Assert.That(File.ReadAllLines(Path.Combine(broken, BipoTrainer.MetricsFileName)),
            Is.EqualTo(File.ReadAllLines(Path.Combine(whole, BipoTrainer.MetricsFileName))));

        var messages = new List<string>();
        trainer.Run([layer], train, test, broken, resume: true, log: messages.Add);
        Assert.That(messages, Has.Some.Contains($"layer {layer}: complete"));
    }

    [Test]
    public void Cosine_schedule_matches_the_transformers_formula()
    {
        Assert.That(CosineSchedule.Factor(0, 100, 1000), Is.EqualTo(0));
        Assert.That(CosineSchedule.Factor(50, 100, 1000), Is.EqualTo(0.5));
        Assert.That(CosineSchedule.Factor(100, 100, 1000), Is.EqualTo(1));
        Assert.That(CosineSchedule.Factor(550, 100, 1000), Is.EqualTo(0.5).Within(1e-12));
        Assert.That(CosineSchedule.Factor(1000, 100, 1000), Is.EqualTo(0).Within(1e-12));
    }

    [Test]
    public void AdamW_first_step_moves_each_coordinate_by_the_learning_rate()
    {
        var adam = new AdamW(3);
        float[] p = [1, 2, 3];
        adam.Update(p, [0.5f, -2f, 1e-3f], lr: 0.01);
        Assert.That(p, Is.EqualTo(new[] { 0.99f, 2.01f, 2.99f }).Within(1e-5));
    }
}
