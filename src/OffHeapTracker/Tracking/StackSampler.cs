using OffHeapTracker.Monitoring;

namespace OffHeapTracker;

/// <summary>One thread's sampling countdowns, one per <see cref="StackCapture"/> policy, so deciding which rent gets a stack makes no shared write.</summary>
/// <remarks>
/// <para>
/// Keyed by policy, so two monitors with different rates on one thread keep their own counts. It holds the last
/// <see cref="Entries"/> policies the thread used; a further one takes the oldest entry's place and starts with a
/// capture, as a fresh count does (a quiet service gets a stack for its first buffer).
/// </para>
/// <para>
/// A fixed policy (one in N) counts down N exactly. A budgeted one draws each countdown from a geometric
/// distribution with mean N (the interval in force), so that every rent has the same 1-in-N chance and a site's
/// sampled records, each weighted N, estimate its count without bias; a countdown older than a second is drawn
/// again, so a thread follows the interval back down when the load falls.
/// </para>
/// </remarks>
internal sealed class StackSampler
{
    /// <summary>The policies one thread keeps a count for: a process rarely has more than one or two monitors.</summary>
    public const int Entries = 4;

    /// <summary>A budgeted countdown older than this (milliseconds) is drawn again from the interval in force.</summary>
    private const long RedrawAfterMilliseconds = 1000;

    private readonly int[] _policyIds = new int[Entries];
    private readonly int[] _left = new int[Entries];
    private readonly int[] _weights = new int[Entries];
    private readonly long[] _drawnAt = new long[Entries];
    private int _nextReplaced;
    private uint _random = unchecked((uint)Environment.CurrentManagedThreadId * 2654435761u) | 1;

    /// <summary>Says whether this rent gets an allocation stack under <paramref name="capture"/>; counts it down.</summary>
    /// <param name="capture">The policy.</param>
    /// <param name="weight">When true: how many rents the stack stands for (1 when every rent is captured).</param>
    public bool ShouldCapture(StackCapture capture, out int weight)
    {
        int i = EntryFor(capture, out bool fresh);
        if (!capture.IsBudgeted)
        {
            // The first rent is captured (a quiet thread shows its stack at once) and stands for itself; each later
            // capture stands for the N rents since the previous one.
            int every = capture.Sampling;
            weight = fresh ? 1 : every;
            if (!fresh && --_left[i] > 0 && _left[i] < every)
            {
                return false;
            }

            _left[i] = every;
            return true;
        }

        long tick = Environment.TickCount64;
        if (fresh || tick - _drawnAt[i] >= RedrawAfterMilliseconds)
        {
            Draw(i, capture.IntervalAt(tick), tick);
        }

        if (--_left[i] > 0)
        {
            weight = 0;
            return false;
        }

        weight = _weights[i];
        Draw(i, capture.IntervalAt(tick), tick);
        return true;
    }

    private int EntryFor(StackCapture capture, out bool fresh)
    {
        int id = capture.Id;
        for (int i = 0; i < Entries; i++)
        {
            if (_policyIds[i] == id)
            {
                fresh = false;
                return i;
            }
        }

        int slot = _nextReplaced;
        _nextReplaced = (slot + 1) % Entries;
        _policyIds[slot] = id;
        fresh = true;
        return slot;
    }

    private void Draw(int i, int interval, long tick)
    {
        _weights[i] = interval;
        _drawnAt[i] = tick;

        // Geometric with mean N: every rent has the same 1-in-N chance whenever the countdown is drawn, so a thread
        // that redraws often (it rents rarely) is sampled as fairly as a busy one. Interval 1 gives 1.
        if (interval == 1)
        {
            _left[i] = 1;
            return;
        }

        double uniform = (NextRandom() + 1.0) / (uint.MaxValue + 1.0);
        double draw = Math.Log(uniform) / Math.Log(1.0 - (1.0 / interval));
        _left[i] = 1 + (int)Math.Min(draw, 16.0 * interval);
    }

    /// <summary>xorshift32: a few instructions, thread-local, good enough to spread sampling points.</summary>
    private uint NextRandom()
    {
        uint x = _random;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        _random = x;
        return x;
    }
}
