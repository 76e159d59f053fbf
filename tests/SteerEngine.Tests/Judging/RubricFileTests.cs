using SteerEngine.Judging.Rubrics;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Judging;

public class RubricFileTests
{
    [Test]
    public void Yaml_rubric_with_scale_examples_and_text_answers()
    {
        Rubric r = RubricFile.Parse("""
            name: helpful
            kind: rating
            system: You are a strict grader.
            prompt: |
              Q: {question}
              A: {answer}
              Rate 1-5.
            scale: [1, 5]
            examples:
              - user: "Q: hi\nA: hello\nRate 1-5."
                assistant: "5"
            text_answers: [REFUSAL]
            """, "helpful.yaml", "x");
        Assert.That((r.Name, r.Kind, r.ScaleMin, r.ScaleMax, r.TextAnswers.Single()), Is.EqualTo(("helpful", ScorerKind.Rating, 1, 5, "REFUSAL")));
        var messages = r.Messages(r.Render("why?", "because {answer}"));
        Assert.That(messages.Select(m => m.Role), Is.EqualTo(new[] { "system", "user", "assistant", "user" }));
        Assert.That(messages[^1].Content, Is.EqualTo("Q: why?\nA: because {answer}\nRate 1-5.\n"), "placeholders are replaced once, literally");
    }

    [Test]
    public void The_judge_models_json_rubrics_load()
    {
        foreach (string f in Directory.GetFiles(Repo.Path("models", "judge", "rubrics"), "*.json"))
        {
            Rubric r = RubricFile.Load(f);
            Assert.That(r.Name, Is.EqualTo(Path.GetFileNameWithoutExtension(f)));
        }
        Assert.That(RubricFile.Load(Repo.Path("models", "judge", "rubrics", "mood_0_100.json")).Kind, Is.EqualTo(ScorerKind.Weighted));
        Assert.That(RubricFile.Load(Repo.Path("models", "judge", "rubrics", "mood_pairwise.json")).ChoiceA, Is.EqualTo("a"));
    }

    [TestCase("kind: rating\nprompt: no placeholder", "no {answer} placeholder")]
    [TestCase("kind: pairwise\nprompt: '{answer_a}'", "needs {answer_b}")]
    [TestCase("kind: rating\nprompt: '{answer}'\ncolour: red", "unknown key 'colour'")]
    [TestCase("kind: vote\nprompt: '{answer}'", "kind 'vote'")]
    [TestCase("kind: weighted\nprompt: '{answer}'\nscale: [0, 1000]", "within 0-100")]
    [TestCase("kind: rating\nprompt: '{answer}'\nscale: {min: 5}", "needs min and max")]
    [TestCase("prompt: '{answer}'", "'kind' is missing")]
    [TestCase("kind: rating\nprompt: [", "not valid YAML/JSON")]
    public void Bad_rubrics_name_the_file_and_the_problem(string text, string message)
    {
        var e = Assert.Throws<InvalidDataException>(() => RubricFile.Parse(text, "bad.yaml", "bad"));
        Assert.That(e!.Message, Does.StartWith("bad.yaml: ").And.Contain(message));
    }

    [Test]
    public void Trait_file_eval_prompt_becomes_a_weighted_rubric()
    {
        string dir = Directory.CreateTempSubdirectory("steer-judge-").FullName;
        string path = Path.Combine(dir, "optimistic.json");
        File.WriteAllText(path, """{"instruction": [], "questions": ["q"], "eval_prompt": "How optimistic is this?\nQ: {question}\nA: {answer}\nReply 0-100 or REFUSAL."}""");
        Rubric r = BuiltInRubrics.Resolve("trait:" + path);
        Assert.That((r.Kind, r.Column, r.TextAnswers.Single()), Is.EqualTo((ScorerKind.Weighted, "optimistic", "REFUSAL")));
        Assert.That(BuiltInRubrics.Resolve("pairwise:warmth").Kind, Is.EqualTo(ScorerKind.Pairwise));
        Assert.That(BuiltInRubrics.Resolve("alignment").TextAnswers, Is.EqualTo(new[] { "CODE", "REFUSAL" }));
        Assert.Throws<FileNotFoundException>(() => BuiltInRubrics.Resolve("no-such-rubric"));
        Directory.Delete(dir, true);
    }
}
