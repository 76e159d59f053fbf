using SteerEngine.Cli.Demo;

namespace SteerEngine.Tests.Demo;

/// <summary>
/// Behaviour of steering on the demo model: a mean-difference vector from the demo data moves the
/// measured trait monotonically with the multiplier while the output stays grammatical near 0
/// (<see cref="SteeringSweep"/>). A BiPO vector is held to the same in <see cref="BipoSteeringTests"/>.
/// </summary>
public class MeanDifferenceSteeringTests
{
    // Mood only: the demo model carries an answer's mood from word to word but has not learned to
    // carry its formality (see models/demo/RECIPE.md), so there is no formality latent to steer.
    [Test]
    public void Mood_rate_rises_monotonically_with_the_multiplier() =>
        SteeringSweep.AssertMonotone("mood", TraitVector.MeanDifference, multipliers: [-4, -2, -1, 0, 1, 2, 4], samples: 3);
}
