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
/// sampled records, each weighted N, estimate its count without bias; a countdown found older than a second (its
/// age is checked every <see cref="StaleCheckRents"/> rents) is drawn again, so a thread follows the interval back
/// down when the load falls.
/// </para>
/// </remarks>
internal sealed class StackSampler
{
    /// <summary>The policies one thread keeps a count for: a process rarely has more than one or two monitors.</summary>
    public const int Entries = 4;

    /// <summary>A budgeted countdown older than this (milliseconds) is drawn again from the interval in force.</summary>
    private const long RedrawAfterMilliseconds = 1000;

    /// <summary>A budgeted countdown's age is checked every this many rents of its thread (and at every capture): a thread renting once a second follows a falling interval after at most this many rents.</summary>
    internal const int StaleCheckRents = 8;

    private readonly int[] _policyIds = new int[Entries];
    private readonly int[] _left = new int[Entries];
    private readonly int[] _weights = new int[Entries];
    private readonly long[] _drawnAt = new long[Entries];
    private readonly int[] _untilStaleCheck = new int[Entries];
    private readonly int[] _logInterval = new int[Entries];
    private readonly double[] _inverseLogKeep = new double[Entries];
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

        // The clock is read on the first rent of each entry, at every capture and every StaleCheckRents rents in
        // between, not on every rent: it is a system call's worth of work (10-20 ns) against a countdown's one.
        long tick;
        if (fresh || --_untilStaleCheck[i] <= 0)
        {
            _untilStaleCheck[i] = StaleCheckRents;
            tick = Environment.TickCount64;
            if (fresh || tick - _drawnAt[i] >= RedrawAfterMilliseconds)
            {
                Draw(i, capture.IntervalAt(tick), tick);
            }
        }

        if (--_left[i] > 0)
        {
            weight = 0;
            return false;
        }

        weight = _weights[i];
        tick = Environment.TickCount64;
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

        // 1 / ln(1 - 1/N) changes only with the interval: one logarithm per draw instead of two.
        if (_logInterval[i] != interval)
        {
            _logInterval[i] = interval;
            _inverseLogKeep[i] = 1.0 / Math.Log(1.0 - (1.0 / interval));
        }

        double uniform = (NextRandom() + 1.0) / (uint.MaxValue + 1.0);
        double draw = Math.Log(uniform) * _inverseLogKeep[i];
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
