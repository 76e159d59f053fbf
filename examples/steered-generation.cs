#:package SteerEngine@0.1.0
#:property PublishAot=false
// The README's library example as a .NET 10 file-based script, on the demo model: a "happy"
// direction by mean difference of block-1 hidden states over the model's mood pairs, then one
// steered generation per multiplier. Run from the repository root after ./build.sh and
// `dotnet pack src/SteerEngine -c Release -o out/packages` (examples/NuGet.config names that folder):
//   dotnet run examples/steered-generation.cs -- models/demo
using System.Text.Json;
using SteerEngine.Capture;
using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Steering;

string modelDir = args.Length > 0 ? args[0] : "models/demo";
const int block = 1;

// Native kernels, found in the package's runtimes/linux-x64/native: no environment variable needed.
using var lm = LanguageModel.Load(modelDir, kernels: CpuKernelChoice.Native);
Console.WriteLine("kernels: native (libsteer_cpu)");

// The steering vector: mean over pairs of (happy answer − sad answer) block-1 states, answer tokens averaged.
var pairs = File.ReadLines(Path.Combine(modelDir, "mood_pairs.jsonl")).Select(line => JsonDocument.Parse(line).RootElement).ToList();
List<float[][]> States(string answerField) => ActivationCollector.Collect(lm.Model, pairs.Select(p =>
{
    int[] prompt = lm.EncodePrompt(p.GetProperty("question").GetString()!);
    int[] answer = lm.Tokenizer.Encode(p.GetProperty(answerField).GetString()!, addBos: false);
    return new CaptureExample([.. prompt, .. answer], prompt.Length);
}).ToList(), [Reduction.ResponseAvg]).Select(r => r[Reduction.ResponseAvg]).ToList();
float[][] perLayer = VectorExtraction.Extract(States("positive"), States("negative"), ExtractionMethod.MeanDiff);
float[] v = SteeringVector.PerLayerSet(perLayer, "happy").ForBlock(block);

// From here on, the README's example.
int[] prompt = lm.EncodePrompt("tell me about your day.");
float[] multipliers = [-4f, 0f, 4f];
var requests = multipliers.Select(m => new GenerationRequest(
    prompt, MaxNewTokens: 40, new SamplingOptions(Temperature: 0.7f, TopP: 0.9f),
    [new SteeringAdd(Layer: block, v, m, SteeringPositions.Response)], Seed: 1, lm.Tokenizer.EosTokenIds)).ToList();
var results = new Generator(lm.Model).Generate(requests);
for (int i = 0; i < results.Count; i++)
    Console.WriteLine($"multiplier {multipliers[i],3}: {lm.Tokenizer.Decode(results[i].Tokens, skipSpecialTokens: true)}");
