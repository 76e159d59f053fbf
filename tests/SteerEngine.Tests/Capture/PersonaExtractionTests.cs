using System.Text;
using SteerEngine.Capture;
using SteerEngine.Model;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Capture;

[TestFixture, NonParallelizable]
public class PersonaExtractionTests
{
    static string Csv(string dir, string name, IEnumerable<(string Q, string Prompt, string Answer, string Trait, string Coherence)> rows)
    {
        var sb = new StringBuilder("question,prompt,answer,question_id,evil,coherence\n");
        int i = 0;
        foreach (var r in rows) sb.Append($"\"{r.Q}\",\"{r.Prompt.Replace("\"", "\"\"")}\",\"{r.Answer}\",q{i++},{r.Trait},{r.Coherence}\n");
        string path = Path.Combine(dir, name);
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    [Test]
    public void The_effective_pair_filter_follows_the_thresholds_exactly()
    {
        string dir = TestModels.TempDir("persona");
        // pos trait, neg trait, pos coherence, neg coherence → effective?
        var cases = new (string Pt, string Nt, string Pc, string Nc, bool Effective)[]
        {
            ("50", "49.9", "50", "50", true),    // exact thresholds pass
            ("49.9", "0", "90", "90", false),    // positive below threshold
            ("90", "50", "90", "90", false),     // negative must be < 100 − 50
            ("90", "10", "49", "90", false),     // incoherent positive
            ("90", "10", "90", "", false),       // missing score
            ("100", "0", "100", "100", true),
        };
        string pos = Csv(dir, "pos.csv", cases.Select((c, i) => ($"Q{i}", "p", "a", c.Pt, c.Pc)));
        string neg = Csv(dir, "neg.csv", cases.Select((c, i) => ($"Q{i}", "p", "a", c.Nt, c.Nc)));
        var pairs = PersonaPairs.Load(pos, neg, "evil");
        Assert.That(pairs.Effective, Is.EqualTo(cases.Select((c, i) => (c, i)).Where(x => x.c.Effective).Select(x => x.i)));
        Assert.That(pairs.MissingScores, Is.EqualTo(1));
        Assert.That(PersonaPairs.Load(pos, neg, "evil", threshold: 90).Effective, Is.EqualTo(new[] { 5 }));
    }

    [Test]
    public void Misaligned_rows_and_missing_columns_are_clear_errors()
    {
        string dir = TestModels.TempDir("persona");
        string pos = Csv(dir, "pos.csv", [("A", "p", "a", "90", "90"), ("B", "p", "a", "90", "90")]);
        string neg = Csv(dir, "neg.csv", [("A", "p", "a", "10", "90"), ("C", "p", "a", "10", "90")]);
        Assert.That(() => PersonaPairs.Load(pos, neg, "evil"), Throws.TypeOf<InvalidDataException>().With.Message.Contains("row-aligned"));
        string shorter = Csv(dir, "short.csv", [("A", "p", "a", "10", "90")]);
        Assert.That(() => PersonaPairs.Load(pos, shorter, "evil"), Throws.TypeOf<InvalidDataException>().With.Message.Contains("has 2 rows"));
        Assert.That(() => PersonaPairs.Load(pos, neg, "sycophancy"), Throws.TypeOf<InvalidDataException>().With.Message.Contains("no column 'sycophancy'"));
    }

    [Test]
    public void Extracted_vectors_equal_mean_differences_of_oracle_hidden_states()
    {
        string model = TestModels.Get("tiny");
        string dir = TestModels.TempDir("persona");
        using var lm = LanguageModel.Load(model);
        string[] questions = ["What is evil?", "Describe a villain.", "How do you treat others?", "What would you do with power?"];
        string Prompt(string q) => lm.FormatChat(q);
        var posRows = questions.Select((q, i) => (q, Prompt(q), $"I would crush them all {i}", i == 2 ? "20" : "85", "80")).ToList();
        var negRows = questions.Select((q, i) => (q, Prompt(q), $"I would help everyone kindly {i}", "5", "90")).ToList();
        string pos = Csv(dir, "pos.csv", posRows), neg = Csv(dir, "neg.csv", negRows);
        string outDir = Path.Combine(dir, "out");
        int code = SteerEngine.Cli.Program.Main(["extract", "--model", model, "--mode", "persona", "--pos", pos, "--neg", neg, "--trait", "evil", "--out", outDir, "--kernels", "exact"]);
        Assert.That(code, Is.EqualTo(0));

        int[] effective = [0, 1, 3]; // row 2's positive scores 20 < 50
        int[][] Tokens(List<(string, string, string, string, string)> rows) => effective.Select(i => lm.Tokenizer.Encode(rows[i].Item2 + rows[i].Item3, addBos: false)).ToArray();
        int[] PromptLens(List<(string, string, string, string, string)> rows) => effective.Select(i => lm.Tokenizer.Encode(rows[i].Item2, addBos: false).Length).ToArray();
        int[][] posTokens = Tokens(posRows), negTokens = Tokens(negRows);
        int[] posLens = PromptLens(posRows), negLens = PromptLens(negRows);
        using var posOracle = TorchOracle.Forward(model, posTokens, posLens, hiddenStates: true);
        using var negOracle = TorchOracle.Forward(model, negTokens, negLens, hiddenStates: true);

        int H = 128, E = lm.Config.NumLayers + 1;
        double[] Expected(SteerEngine.Model.SafetensorsFile oracle, int[][] tokens, int[] lens, int entry, string reduction)
        {
            var sum = new double[H];
            for (int s = 0; s < tokens.Length; s++)
            {
                float[] hidden = TorchOracle.Tensor(oracle, $"hidden.{s}");
                int T = tokens[s].Length, P = lens[s];
                var positions = reduction switch
                {
                    "prompt_avg" => Enumerable.Range(0, P),
                    "response_avg" => Enumerable.Range(P, T - P),
                    _ => Enumerable.Range(P - 1, 1),
                };
                var list = positions.ToList();
                foreach (int t in list)
                    for (int i = 0; i < H; i++) sum[i] += hidden[(entry * T + t) * H + i] / (double)list.Count;
            }
            return sum.Select(x => x / tokens.Length).ToArray();
        }

        foreach (string reduction in new[] { "prompt_avg", "response_avg", "prompt_last" })
        {
            SteeringVector pt = VectorFile.Read(Path.Combine(outDir, $"evil_{reduction}_diff.pt"));
            SteeringVector st = VectorFile.Read(Path.Combine(outDir, $"evil_{reduction}_diff.safetensors"));
            Assert.That(pt.Rows, Is.EqualTo(E));
            for (int e = 0; e < E; e++)
            {
                double[] p = Expected(posOracle, posTokens, posLens, e, reduction), n = Expected(negOracle, negTokens, negLens, e, reduction);
                float[] expected = p.Zip(n, (a, b) => (float)(a - b)).ToArray();
                if (reduction == "prompt_avg" && e == 0) continue; // identical prompts: the embedding difference is exactly zero
                Assert.That(Compare.RelativeMaxError(pt.Row(e), expected), Is.LessThanOrEqualTo(1e-3), $"{reduction} entry {e}");
                Assert.That(st.Row(e), Is.EqualTo(pt.Row(e)));
            }
        }
    }

    [Test]
    public void Pca_finds_the_direction_of_the_paired_differences_with_its_sign()
    {
        var rng = new Random(3);
        int H = 40;
        float[] direction = Compare.RandomVector(rng, H);
        var pos = new List<float[][]>();
        var neg = new List<float[][]>();
        for (int k = 0; k < 30; k++)
        {
            float[] baseline = Compare.RandomVector(rng, H, 5f);
            double scale = 1 + rng.NextDouble() * 3;
            pos.Add([baseline.Select((x, i) => x + (float)(scale * direction[i]) + (float)(rng.NextDouble() - 0.5) * 0.01f).ToArray()]);
            neg.Add([baseline]);
        }
        float[] pc = VectorExtraction.Extract(pos, neg, ExtractionMethod.Pca)[0];
        double cos = pc.Zip(direction, (a, b) => (double)a * b).Sum() / Math.Sqrt(pc.Sum(x => (double)x * x) * direction.Sum(x => (double)x * x));
        Assert.That(cos, Is.GreaterThan(0.999));
    }
}
