using SteerEngine.Model;
using SteerEngine.Steering;
using YamlDotNet.RepresentationModel;

namespace SteerEngine.Experiments;

public sealed partial record Experiment
{
    sealed partial class Parser
    {
        /// <summary>
        /// generate's steering term: op, lo, hi, value, k, tokens, hook, head and condition, each only with the op,
        /// positions or hook that use it. A term at attn_z or with a condition is also checked against every model's
        /// config.json (read, not the weights): the study's vectors, trained or extracted at the block output and so
        /// hidden wide, must have the hook's width, and the condition's layer and width must fit the model.
        /// </summary>
        (SteeringTermShape Shape, string? ConditionVector) TermShape(YamlMappingNode node, string k, SteeringPositions positions, int[] layers,
            IReadOnlyList<ExperimentModel> models)
        {
            string opName = OptionalString(node, "op", k) ?? "add";
            SteeringOp op;
            try { op = SteeringOpNames.Parse(opName); }
            catch (ArgumentException e) { throw Error(node.Children["op"], $"{k}.op", e.Message); }
            double? Number(string key) => node.Children.ContainsKey(key) ? DoubleOr(node, key, k, 0) : null;
            double? lo = Number("lo"), hi = Number("hi"), value = Number("value");
            if (op != SteeringOp.Cap && (lo ?? hi) is not null) throw Error(node, $"{k}.{(lo is null ? "hi" : "lo")}", $"applies to op cap only, not {opName}");
            if (op != SteeringOp.Set && value is not null) throw Error(node.Children["value"], $"{k}.value", $"applies to op set only, not {opName}");
            if (op == SteeringOp.Set && value is null) throw Error(node, $"{k}.value", "is required with op set");
            bool hasK = node.Children.ContainsKey("k"), hasTokens = node.Children.ContainsKey("tokens");
            if (hasK != (positions == SteeringPositions.FirstK)) throw Error(node, $"{k}.k", hasK ? "applies to positions first_k only" : "is required with positions first_k");
            if (hasTokens != (positions == SteeringPositions.Tokens)) throw Error(node, $"{k}.tokens", hasTokens ? "applies to positions tokens only" : "is required with positions tokens");
            int[]? tokens = hasTokens
                ? Sequence(node, "tokens").Select((n, i) => (int)Double(n, $"{k}.tokens[{i}]")).Distinct().Order().ToArray()
                : null;
            var (hook, head) = HookPoint(node, k, layers);
            var (condition, conditionVector) = node.Children.TryGetValue("condition", out YamlNode? c) ? Condition(c, $"{k}.condition") : (null, null);
            var shape = new SteeringTermShape(new SteeringAdd(0, [], 0f, positions)
            {
                Op = op,
                Lo = lo is { } l ? (float)l : float.NegativeInfinity,
                Hi = hi is { } h ? (float)h : float.PositiveInfinity,
                Value = (float)(value ?? 0),
                FirstK = hasK ? IntOr(node, "k", k, 0, 1) : 0,
                TokenPositions = tokens,
                Hook = hook,
                Head = head,
                Condition = condition,
            });
            try { shape.Validate(); }
            catch (ArgumentException e) { throw Error(node, k, e.Message); }
            if (hook == SteeringHook.AttnZ || condition is not null)
                foreach (ExperimentModel model in models) CheckAgainstModel(node, k, shape.Template, model);
            return (shape, conditionVector);
        }

        /// <summary>hook (a short or TransformerLens name; one with a block must name every layer of the study) and head (attn_z only).</summary>
        (SteeringHook Hook, int? Head) HookPoint(YamlMappingNode node, string k, int[] layers)
        {
            var hook = SteeringHook.ResidPost;
            if (OptionalString(node, "hook", k) is string text)
            {
                int? block;
                try { hook = SteeringHooks.Parse(text, out block); }
                catch (ArgumentException e) { throw Error(node.Children["hook"], $"{k}.hook", e.Message); }
                if (block is { } b && layers.Any(l => l != b))
                    throw Error(node.Children["hook"], $"{k}.hook", $"'{text}' names block {b}, but the study steers layers {string.Join(", ", layers)}: " +
                                                                   $"give the hook without its block ({hook.Name()})");
            }
            if (!node.Children.TryGetValue("head", out YamlNode? headNode)) return (hook, null);
            int head = Int(headNode, $"{k}.head", 0);
            if (hook != SteeringHook.AttnZ) throw Error(headNode, $"{k}.head", $"applies to hook attn_z only, not {hook.Name()}");
            return (hook, head);
        }

        /// <summary>
        /// condition: {vector, layer, threshold, comparator}. The vector is read as --condition reads it: a [layers+1, hidden]
        /// file (steer extract --condition's) whose row layer + 1 is taken, or a single vector.
        /// </summary>
        (SteeringCondition, string) Condition(YamlNode node, string k)
        {
            if (node is not YamlMappingNode m) throw Error(node, k, "expected a mapping with vector, layer, threshold and comparator");
            CheckKeys(m, k, ["vector", "layer", "threshold", "comparator"]);
            string path = ResolvePath(RequiredString(m, "vector", k));
            SteeringVector vector;
            try { vector = VectorFile.Read(path); }
            catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException) { throw Error(m.Children["vector"], $"{k}.vector", e.Message); }
            if (!m.Children.TryGetValue("layer", out YamlNode? layerNode)) throw Error(m, $"{k}.layer", "is required (the block whose output the condition reads, 0-based)");
            int layer = Int(layerNode, $"{k}.layer", 0);
            float[] row;
            try { row = vector.ForBlock(layer); }
            catch (ArgumentException e) { throw Error(layerNode, $"{k}.layer", e.Message); }
            if (!m.Children.TryGetValue("threshold", out YamlNode? thresholdNode)) throw Error(m, $"{k}.threshold", "is required (steer extract --condition finds one)");
            double threshold = Double(thresholdNode, $"{k}.threshold");
            string comparatorName = OptionalString(m, "comparator", k) ?? "greater";
            ConditionComparator comparator;
            try { comparator = SteeringCondition.ParseComparator(comparatorName); }
            catch (ArgumentException e) { throw Error(m.Children["comparator"], $"{k}.comparator", e.Message); }
            return (new SteeringCondition(layer, row, (float)threshold, comparator) { Name = VectorFile.NameOf(path) }, path);
        }

        void CheckAgainstModel(YamlMappingNode node, string k, SteeringAdd term, ExperimentModel model)
        {
            ModelConfig config;
            try { config = ModelConfig.Load(System.IO.Path.Combine(model.Path, "config.json")); }
            catch (ModelFormatException e) { throw Error(node, k, $"model {model.Name}: {e.Message}"); }
            if (term.Head is { } head && head >= config.NumHeads)
                throw Error(node.Children["head"], $"{k}.head", $"{head} is out of range: model {model.Name} has heads 0..{config.NumHeads - 1}");
            int width = term.Width(config.HiddenSize, config.NumHeads, config.HeadDim);
            if (width != config.HiddenSize)
            {
                string key = term.Head is null ? "hook" : "head";
                string what = term.Head is null ? $"heads × head_dim = {config.NumHeads} × {config.HeadDim}" : $"head_dim = {config.HeadDim}";
                throw Error(node.Children[key], $"{k}.{key}", $"{term.Hook.Name()}{(term.Head is { } h ? $" head {h}" : "")} takes vectors of {what} values on model {model.Name}, " +
                                                              $"but the study's vectors are taken at the block output and have its hidden size, {config.HiddenSize}");
            }
            if (term.Condition is not { } condition) return;
            var c = (YamlMappingNode)node.Children["condition"];
            if (condition.Layer >= config.NumLayers)
                throw Error(c.Children["layer"], $"{k}.condition.layer", $"{condition.Layer} is out of range: model {model.Name} has blocks 0..{config.NumLayers - 1}");
            if (condition.Vector.Length != config.HiddenSize)
                throw Error(c.Children["vector"], $"{k}.condition.vector", $"holds vectors of {condition.Vector.Length} values, but model {model.Name}'s hidden size is {config.HiddenSize}");
            try { condition.Validate(config.NumLayers, config.HiddenSize); }
            catch (ArgumentException e) { throw Error(c, $"{k}.condition", e.Message); }
        }
    }
}
