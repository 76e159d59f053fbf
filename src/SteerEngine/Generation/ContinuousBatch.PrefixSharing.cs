namespace SteerEngine.Generation;

/// <summary>
/// Shared prompt prefixes: a sequence admitted while another active sequence has (or is computing)
/// the same <see cref="PrefixKey"/> waits for it, copies those cache rows, and computes only its
/// last prompt token. A sweep's samples of one (prompt, steering), and with positions = response
/// every multiplier of a prompt, compute the prompt once. Each sequence owns its copy, so a prefix
/// is freed with the last sequence holding it and memory stays bounded by the batch.
/// </summary>
public sealed partial class ContinuousBatch
{
    sealed partial class Sequence
    {
        /// <summary>The request's shareable prefix; null when it has none.</summary>
        public PrefixKey? Prefix;
        /// <summary>An active sequence that has or computes this one's prefix; while set, this one waits to copy it.</summary>
        public Sequence? PrefixDonor;
    }

    /// <summary>On admission: find an active sequence to copy the prefix from.</summary>
    void JoinPrefix(Sequence s, bool share)
    {
        if (!share || !s.Cache.HoldsRows || (s.Prefix = PrefixKey.For(s.Request, s.Steering?.Adds ?? [])) is null) return;
        foreach (Sequence other in _active)
            if (other.PrefixDonor is null && s.Prefix.Equals(other.Prefix)) { s.PrefixDonor = other; return; }
    }

    /// <summary>Before a step: waiting sequences whose donor has the prefix copy it; a donor that left without it releases them.</summary>
    void AdoptPrefixes()
    {
        foreach (Sequence s in _active)
        {
            if (s.PrefixDonor is not Sequence donor) continue;
            int length = s.Prefix!.Length;
            if (donor.Cache.Length >= length)
            {
                s.Cache.CopyPrefixFrom(donor.Cache, length);
                s.Prefilled = length;
            }
            else if (_active.Contains(donor)) continue;
            s.PrefixDonor = null;
        }
    }
}
