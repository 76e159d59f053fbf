using SteerEngine.Capture;
using SteerEngine.Judging.Data;
using SteerEngine.Judging.Providers;
using SteerEngine.Judging.Rubrics;
using SteerEngine.Judging.Run;

namespace SteerEngine.Tests.Judging;

/// <summary>The research layouts written from a judged file: persona CSVs that steer extract reads, the EM CSV's columns, the BiPO paths.</summary>
public class ResearchLayoutTests
{
    [Test]
    [CancelAfter(60_000)]
    public async Task Persona_em_and_bipo_layouts()
    {
        string dir = Directory.CreateTempSubdirectory("steer-judge-").FullName;
        using var server = new FakeJudgeServer((prompt, _) => prompt.Contains("evil")
            ? new FakeReply.Text("REF", [("REF", Math.Log(0.9))])
            : new FakeReply.Text("90", [("90", Math.Log(0.9))]));
        var endpoint = new OpenAiEndpoint(new Uri(server.BaseUrl), "m", "k", TimeSpan.FromSeconds(10));
        using var judge = new RetryingJudge(new OpenAiJudge(endpoint), new RetryOptions(2));
        string input = Path.Combine(dir, "pos.csv");
        File.WriteAllText(input, "question,prompt,answer,question_id,model,layer,epoch,multiplier\nq1,p1,kind words,a_0,llama,12,3,1.5\nq2,p2,\"evil, words\",a_1,llama,12,3,2\n");
        Rubric trait = new() { Name = "optimism", Kind = ScorerKind.Weighted, Prompt = "{question} {answer}", TextAnswers = ["REFUSAL"], OutputColumn = "optimism" };
        var plan = new JudgePlan(input, new InputFields(), [trait, BuiltInRubrics.Coherence]);
        string judged = Path.Combine(dir, "judged.jsonl");
        await JudgeRun.RunAsync(plan.Units, judge, judged, false, 2, Prices.None, new JudgeProgress());

        string persona = Path.Combine(dir, "persona.csv");
        ResearchLayouts.Write("persona", judged, persona);
        var pairs = PersonaPairs.Load(persona, persona, "optimism");
        Assert.That(pairs.Positive.Select(p => (p.QuestionId, p.Trait, p.Coherence)), Is.EqualTo(new[] { ("a_0", (double?)90, (double?)90), ("a_1", null, null) }),
            "REFUSAL (from both rubrics here) leaves the columns empty");

        string em = Path.Combine(dir, "em.csv");
        ResearchLayouts.Write("em", judged, em);
        string[] lines = File.ReadAllLines(em);
        Assert.That(lines[0], Does.Contain("optimism_score").And.Contain("coherent_score").And.Contain("question_id"));
        Assert.That(lines[2], Does.Contain("REFUSAL"), "text answers kept as such");

        var files = ResearchLayouts.Write("bipo", judged, Path.Combine(dir, "evals"));
        Assert.That(files.Select(f => Path.GetRelativePath(dir, f)), Is.EquivalentTo(new[]
        {
            Path.Combine("evals", "llama", "layer12", "coherence_scores_ep3.jsonl"), Path.Combine("evals", "llama", "layer12", "optimism_scores_ep3.jsonl"),
        }));
        Assert.That(File.ReadAllLines(files[0]), Has.Length.EqualTo(2));
        Directory.Delete(dir, true);
    }
}
