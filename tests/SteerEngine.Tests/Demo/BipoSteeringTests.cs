using SteerEngine.Cli.Demo;

namespace SteerEngine.Tests.Demo;

/// <summary>
/// Behaviour of a BiPO vector on the demo model: trained on the mood pairs (chosen = the happy answer,
/// rejected = the sad one) at the block the mean-difference test uses, it moves the measured mood
/// monotonically with the multiplier while the output stays grammatical near 0 (<see cref="SteeringSweep"/>).
/// <para>
/// Training is <see cref="TraitVector.DemoBipoOptions"/>: 2 epochs × 16 steps of batch 4, lr 0.1 (4 warm-up
/// steps, cosine), β 0.1, seed 11; about 6 s on two cores, 8 s for the whole test. BiPO's multiplier scale is
/// its training scale, ±1, so the sweep runs over −2..2; 16 samples per prompt keep each rate's sampling
/// noise (each answer is happy or sad throughout) well below the steps between multipliers.
/// </para>
/// <para>
/// What fails it: the zero vector BiPO starts from (checked first; it would also give every multiplier the
/// same outputs: no ρ, span 0); a random vector of the same norm, which moves the rate by about 0.2 over
/// the sweep, under the 0.5 span; a vector of the wrong sign (ρ ≈ −1).
/// </para>
/// </summary>
public class BipoSteeringTests
{
    [Test]
    public void Mood_rate_rises_monotonically_with_the_multiplier() =>
        SteeringSweep.AssertMonotone("mood", (lm, pairs, layer) => TraitVector.Bipo(lm, pairs, layer, TraitVector.DemoBipoOptions),
            multipliers: [-2, -1, -0.5f, 0, 0.5f, 1, 2], samples: 16);
}
