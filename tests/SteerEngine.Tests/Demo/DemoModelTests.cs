using SteerEngine.Capture;
using SteerEngine.Cli.Demo;
using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Demo;

/// <summary>The committed demo model: it loads, matches the PyTorch oracle, and speaks its language.</summary>
public class DemoModelTests
{
    [Test]
    public void F32_forward_and_hidden_states_match_the_torch_oracle()
    {
        DemoFiles.RequireModel();
        using LanguageModel lm = LanguageModel.Load(DemoFiles.ModelDir, kernels: SteerEngine.Runtime.Cpu.CpuKernelChoice.Exact);
        int[][] sequences =
        [
            [.. lm.EncodePrompt("tell me about the garden."), .. lm.Tokenizer.Encode("indeed, the garden is quite lovely.", addBos: false)],
            lm.EncodePrompt("how do you feel?", system: "answer in a sad mood."),
            [.. lm.EncodePrompt("how was your day?"), .. lm.Tokenizer.Encode("yeah, my dog smiles. dude, i feel super glad today.", addBos: false)],
        ];
        var recorder = new HiddenStateRecorder(lm.Config.NumLayers + 1, lm.Config.HiddenSize);
        float[][] logits = lm.Transformer.Forward(sequences.Select(s => new ForwardSequence(lm.Transformer.NewCache(), s, allLogits: true)).ToList(), recorder);
        using var oracle = TorchOracle.Forward(DemoFiles.ModelDir, sequences, hiddenStates: true);
        int H = lm.Config.HiddenSize;
        for (int i = 0; i < sequences.Length; i++)
        {
            Assert.That(Compare.RelativeMaxError(logits[i], TorchOracle.Tensor(oracle, $"logits.{i}")), Is.LessThanOrEqualTo(1e-4), $"logits {i}");
            float[] hidden = TorchOracle.Tensor(oracle, $"hidden.{i}"); // (L+1, T, H)
            int T = sequences[i].Length;
            for (int entry = 0; entry <= lm.Config.NumLayers; entry++)
                Assert.That(Compare.RelativeMaxError(recorder.Get(entry, i), hidden.AsSpan(entry * T * H, T * H)), Is.LessThanOrEqualTo(1e-4), $"hidden {entry} of {i}");
        }
    }

    [Test]
    public void Greedy_answers_are_well_formed_and_end_the_turn()
    {
        DemoFiles.RequireModel();
        using LanguageModel lm = LanguageModel.Load(DemoFiles.ModelDir);
        DemoLanguage language = DemoModel.Language(DemoFiles.ModelDir);
        string[] questions = ["how was your day?", "tell me about the river.", "describe your sisters.", "what do you think of the city?", "how do you feel?", "how are the birds?"];
        var requests = questions.Select(q => new GenerationRequest(lm.EncodePrompt(q), 64, new SamplingOptions(), StopTokens: lm.Tokenizer.EosTokenIds)).ToList();
        var results = new Generator(lm.Transformer, lm.Tokenizer).Generate(requests);
        foreach (GenerationResult r in results)
        {
            DemoMeasure m = language.Measure(r.Text!);
            Assert.That(r.FinishReason, Is.EqualTo("stop"), r.Text);
            Assert.That(m.Sentences, Is.GreaterThanOrEqualTo(2), r.Text);
            Assert.That(m.Coherence, Is.EqualTo(1.0), r.Text);
        }
    }

    [Test]
    public void A_system_prompt_sets_the_mood()
    {
        DemoFiles.RequireModel();
        using LanguageModel lm = LanguageModel.Load(DemoFiles.ModelDir);
        DemoLanguage language = DemoModel.Language(DemoFiles.ModelDir);
        double Rate(string system)
        {
            var requests = Enumerable.Range(0, 16).Select(i => new GenerationRequest(lm.EncodePrompt("how was your day?", system), 48,
                new SamplingOptions(Temperature: 1f), Seed: (ulong)i, StopTokens: lm.Tokenizer.EosTokenIds)).ToList();
            var measures = new Generator(lm.Transformer, lm.Tokenizer).Generate(requests).Select(r => language.Measure(r.Text!)).ToList();
            return measures.Sum(m => m.Counts["happy"]) / (double)measures.Sum(m => m.Counts["happy"] + m.Counts["sad"]);
        }
        Assert.That(Rate("answer in a happy mood."), Is.GreaterThan(0.9));
        Assert.That(Rate("answer in a sad mood."), Is.LessThan(0.1));
    }
}
