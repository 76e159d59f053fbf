namespace SteerEngine.Model;

/// <summary>
/// The model shapes <c>steer model init</c> can generate: real architectures' dimensions with random
/// weights, for tests and benchmarks. All use the Llama 3 tokenizer's 128 256-token vocabulary
/// (qwen3-tiny adds Qwen3's chat tokens after it).
/// </summary>
public static class ModelShapes
{
    public const int Llama3Vocab = 128256;
    public const int Qwen3ExtraTokens = 5; // <|im_start|> <|im_end|> <|endoftext|> <think> </think>

    public static IReadOnlyList<string> Names { get; } = ["tiny", "qwen3-tiny", "llama-3.2-1b", "llama-3.1-8b"];

    public static ModelConfig Get(string name) => name switch
    {
        "tiny" => new ModelConfig
        {
            Arch = ModelArch.Llama, HiddenSize = 128, IntermediateSize = 344, NumLayers = 4, NumHeads = 4, NumKvHeads = 2,
            HeadDim = 32, VocabSize = Llama3Vocab, RmsNormEps = 1e-5, RopeTheta = 500000,
            // A small original context so that prompts of a few dozen tokens reach the scaled and interpolated bands.
            RopeScaling = new Llama3RopeScaling(8, 1, 4, 64), TieWordEmbeddings = false,
            BosTokenId = 128000, EosTokenIds = [128001, 128008, 128009],
        },
        "qwen3-tiny" => new ModelConfig
        {
            Arch = ModelArch.Qwen3, HiddenSize = 128, IntermediateSize = 384, NumLayers = 3, NumHeads = 4, NumKvHeads = 2,
            HeadDim = 64, VocabSize = Llama3Vocab + Qwen3ExtraTokens, RmsNormEps = 1e-6, RopeTheta = 1000000,
            TieWordEmbeddings = true, MaxPositionEmbeddings = 40960,
            BosTokenId = null, EosTokenIds = [Llama3Vocab + 1],
        },
        "llama-3.2-1b" => new ModelConfig
        {
            Arch = ModelArch.Llama, HiddenSize = 2048, IntermediateSize = 8192, NumLayers = 16, NumHeads = 32, NumKvHeads = 8,
            HeadDim = 64, VocabSize = Llama3Vocab, RmsNormEps = 1e-5, RopeTheta = 500000,
            RopeScaling = new Llama3RopeScaling(32, 1, 4, 8192), TieWordEmbeddings = true,
            BosTokenId = 128000, EosTokenIds = [128001, 128008, 128009],
        },
        "llama-3.1-8b" => new ModelConfig
        {
            Arch = ModelArch.Llama, HiddenSize = 4096, IntermediateSize = 14336, NumLayers = 32, NumHeads = 32, NumKvHeads = 8,
            HeadDim = 128, VocabSize = Llama3Vocab, RmsNormEps = 1e-5, RopeTheta = 500000,
            RopeScaling = new Llama3RopeScaling(8, 1, 4, 8192), TieWordEmbeddings = false,
            BosTokenId = 128000, EosTokenIds = [128001, 128008, 128009],
        },
        _ => throw new ArgumentException($"unknown model shape '{name}' (expected one of: {string.Join(", ", Names)})"),
    };
}
