using OffHeapTracker.Monitoring;

namespace OffHeapTracker;

/// <summary>One thread's countdowns for 1-in-N stack sampling, one per <see cref="StackCapture"/> policy, so the rent path makes no shared write.</summary>
/// <remarks>
/// Keyed by policy, so two monitors with different rates on one thread keep their own counts. It holds the
/// last <see cref="Entries"/> policies the thread used; a further one takes the oldest entry's place and starts
/// with a capture, as a fresh count does (a quiet service gets a stack for its first buffer).
/// </remarks>
internal sealed class StackSampler
{
    /// <summary>The policies one thread keeps a count for: a process rarely has more than one or two monitors.</summary>
    public const int Entries = 4;

    private readonly int[] _policyIds = new int[Entries];
    private readonly int[] _left = new int[Entries];
    private int _nextReplaced;

    /// <summary>Says whether this rent gets an allocation stack under <paramref name="capture"/>'s sampling; counts it down.</summary>
    public bool ShouldCapture(StackCapture capture)
    {
        int every = capture.Sampling;
        if (every == 1)
        {
            return true;
        }

        int id = capture.Id;
        for (int i = 0; i < Entries; i++)
        {
            if (_policyIds[i] == id)
            {
                if (--_left[i] > 0)
                {
                    return false;
                }

                _left[i] = every;
                return true;
            }
        }

        int slot = _nextReplaced;
        _nextReplaced = (slot + 1) % Entries;
        _policyIds[slot] = id;
        _left[slot] = every;
        return true;
    }
}
