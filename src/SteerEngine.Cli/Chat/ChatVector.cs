using SteerEngine.Cli.Demo;
using SteerEngine.Model;
using SteerEngine.Steering;

namespace SteerEngine.Cli.Chat;

/// <summary>
/// A direction the chat steers or monitors with, named by a vector file or, on a model trained on the
/// demo language, by a trait of it ("mood": the mean difference of its contrastive pairs at the steered
/// block, as <c>steer demo</c> makes it).
/// </summary>
public sealed class ChatVector
{
    readonly Func<int, float[]> _forBlock;
    readonly Dictionary<int, float[]> _byBlock = [];

    ChatVector(string name, Func<int, float[]> forBlock)
    {
        Name = name;
        _forBlock = forBlock;
    }

    /// <summary>What the user typed: a trait name or the file's path.</summary>
    public string Name { get; }

    /// <summary>The direction at the output of decoder block <paramref name="layer"/>. (H)</summary>
    public float[] ForBlock(int layer)
    {
        if (!_byBlock.TryGetValue(layer, out float[]? v)) _byBlock[layer] = v = _forBlock(layer);
        return v;
    }

    /// <summary>A vector file (.pt, .safetensors, .gguf, .npy), else a trait with a NAME_pairs.jsonl file in the model directory.</summary>
    public static ChatVector Resolve(string nameOrFile, LanguageModel lm)
    {
        if (File.Exists(nameOrFile))
        {
            SteeringVector vector = VectorFile.Read(nameOrFile);
            vector.CheckHidden(lm.Config.HiddenSize);
            return new ChatVector(nameOrFile, vector.ForBlock);
        }
        string pairsPath = Path.Combine(lm.Directory, $"{nameOrFile}_pairs.jsonl");
        if (!nameOrFile.Contains('/') && File.Exists(pairsPath))
        {
            var pairs = TraitVector.ReadPairs(pairsPath);
            return new ChatVector(nameOrFile, layer => TraitVector.MeanDifference(lm, pairs, layer));
        }
        throw new FileNotFoundException($"vector '{nameOrFile}': no such file, and {pairsPath} (a trait's contrastive pairs) does not exist");
    }
}
