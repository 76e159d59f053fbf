using System.Text.Json;
using SteerEngine.Model;
using SteerEngine.Tokenization;

namespace SteerEngine.Tests.Demo;

/// <summary>The demo model's tokenizer.json through our TextTokenizer: the ids models/demo/vocab.py trained on, and exact round trips.</summary>
public class DemoTokenizerTests
{
    [Test]
    public void Corpus_chats_encode_to_the_training_ids_and_decode_back_exactly()
    {
        var tokenizer = TextTokenizer.Load(DemoFiles.ModelDir);
        string[] examples = DemoFiles.Python("corpus.py", "sample -n 300 --seed 21");
        string[] expectedIds = DemoFiles.Python("vocab.py", "encode", string.Join('\n', examples));
        Assert.That(expectedIds, Has.Length.EqualTo(examples.Length));
        var template = ChatTemplate.ForModel(tokenizer, "llama3", warn: null);
        for (int i = 0; i < examples.Length; i++)
        {
            JsonElement e = JsonDocument.Parse(examples[i]).RootElement;
            var messages = new List<ChatMessage>();
            if (e.GetProperty("system").ValueKind == JsonValueKind.String) messages.Add(new ChatMessage("system", e.GetProperty("system").GetString()!));
            messages.Add(new ChatMessage("user", e.GetProperty("user").GetString()!));
            messages.Add(new ChatMessage("assistant", e.GetProperty("assistant").GetString()!));
            string text = template.Render(messages, addGenerationPrompt: false);

            int[] ids = tokenizer.Encode(text, addBos: false);
            Assert.That(ids, Is.EqualTo(JsonSerializer.Deserialize<int[]>(expectedIds[i])), text);
            Assert.That(tokenizer.Decode(ids), Is.EqualTo(text));
            string answer = e.GetProperty("assistant").GetString()!;
            int[] answerIds = tokenizer.Encode(answer, addBos: false);
            Assert.That(answerIds, Has.Length.EqualTo(answer.Split(' ').Length + answer.Count(c => c is '.' or ',')), "one token per word and mark");
            Assert.That(tokenizer.Decode(answerIds), Is.EqualTo(answer));
        }
    }

    [Test]
    public void Every_id_the_model_can_emit_decodes_and_text_outside_the_language_still_round_trips()
    {
        var tokenizer = TextTokenizer.Load(DemoFiles.ModelDir);
        var config = ModelConfig.Load(Path.Combine(DemoFiles.ModelDir, "config.json"));
        Assert.That(tokenizer.VocabSize, Is.EqualTo(config.VocabSize));
        for (int id = 0; id < config.VocabSize; id++)
            Assert.DoesNotThrow(() => tokenizer.Decode([id]));
        Assert.That(tokenizer.EosTokenIds, Does.Contain(tokenizer.TokenToId("<|eot_id|>")));
        const string odd = "Zebras ✓ 42 ünïcode\n\tend";
        Assert.That(tokenizer.Decode(tokenizer.Encode(odd, addBos: false)), Is.EqualTo(odd));
    }
}
