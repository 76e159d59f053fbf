using SteerEngine.Steering;

namespace SteerEngine.Tests.Steering;

/// <summary>Hook names: short names and TransformerLens names parse to the same hook, a named block stands for the layer.</summary>
[TestFixture]
public class SteeringHookTests
{
    [TestCase("resid_post", SteeringHook.ResidPost, null)]
    [TestCase("hook_resid_mid", SteeringHook.ResidMid, null)]
    [TestCase("blocks.12.hook_resid_post", SteeringHook.ResidPost, 12)]
    [TestCase("blocks.3.hook_resid_mid", SteeringHook.ResidMid, 3)]
    [TestCase("blocks.0.attn.hook_z", SteeringHook.AttnZ, 0)]
    [TestCase("attn.hook_z", SteeringHook.AttnZ, null)]
    [TestCase("hook_z", SteeringHook.AttnZ, null)]
    [TestCase("ATTN_Z", SteeringHook.AttnZ, null)]
    public void Names_parse_to_their_hook_and_block(string name, SteeringHook hook, int? layer)
    {
        Assert.That(SteeringHooks.Parse(name, out int? named), Is.EqualTo(hook));
        Assert.That(named, Is.EqualTo(layer));
        if (layer is { } l) Assert.That(hook.LensName(l), Is.EqualTo(name));
    }

    [TestCase("blocks.x.hook_resid_mid", "expected blocks.L.<hook>")]
    [TestCase("blocks.1.resid_mid", "is not one of")]
    [TestCase("hook_mlp_out", "is not one of")]
    public void Other_names_are_refused(string name, string message) =>
        Assert.That(() => SteeringHooks.Parse(name, out _), Throws.ArgumentException.With.Message.Contains(message));

    [Test]
    public void A_named_block_must_agree_with_the_layer()
    {
        Assert.That(SteeringHooks.ParseWithLayer("blocks.2.hook_resid_mid", null), Is.EqualTo((SteeringHook.ResidMid, (int?)2)));
        Assert.That(SteeringHooks.ParseWithLayer("resid_mid", 4), Is.EqualTo((SteeringHook.ResidMid, (int?)4)));
        Assert.That(() => SteeringHooks.ParseWithLayer("blocks.2.hook_resid_mid", 3), Throws.ArgumentException.With.Message.Contains("names block 2"));
    }

    [Test]
    public void Widths_and_heads_are_checked_against_the_model()
    {
        var head = new SteeringAdd(0, new float[16], 1f) { Hook = SteeringHook.AttnZ, Head = 3 };
        new SequenceSteering([head], 1).Validate(2, 64, heads: 4, headDim: 16);
        new SequenceSteering([head with { Head = null, Vector = new float[64] }], 1).Validate(2, 64, heads: 4, headDim: 16);
        Assert.That(() => new SequenceSteering([head with { Head = 4 }], 1).Validate(2, 64, 4, 16), Throws.ArgumentException.With.Message.Contains("heads 0..3"));
        Assert.That(() => new SequenceSteering([head with { Head = null }], 1).Validate(2, 64, 4, 16), Throws.ArgumentException.With.Message.Contains("needs 64"));
        Assert.That(() => new SequenceSteering([head with { Hook = SteeringHook.ResidMid }], 1).Validate(2, 64, 4, 16), Throws.ArgumentException.With.Message.Contains("attn_z only"));
        Assert.That(() => new SequenceSteering([head with { Head = null }], 1).Validate(2, 64), Throws.ArgumentException.With.Message.Contains("head count"));
    }
}
