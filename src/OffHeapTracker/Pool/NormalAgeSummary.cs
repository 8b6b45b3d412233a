using OffHeapTracker.Slabs;

namespace OffHeapTracker;

/// <summary>The oldest outstanding <see cref="BufferType.Normal"/> buffer and how many are older than a few fixed ages: what the meter reports, gathered in one walk without allocating.</summary>
internal struct NormalAgeSummary(CensusTime time) : IRentStampVisitor
{
    /// <summary>The ages the meter counts over, in seconds: one minute, ten minutes, one hour.</summary>
    public static ReadOnlySpan<int> ThresholdSeconds => [60, 600, 3600];

    private readonly CensusTime _time = time;
    private long _olderThan1Minute;
    private long _olderThan10Minutes;
    private long _olderThan1Hour;

    /// <summary>Gets the age of the oldest outstanding Normal buffer, in <see cref="TimeSpan"/> ticks; 0 when there is none.</summary>
    public long OldestAgeTicks { get; private set; }

    /// <summary>Gets the number of outstanding Normal buffers at least <see cref="ThresholdSeconds"/>[<paramref name="threshold"/>] old.</summary>
    public readonly long CountOlderThan(int threshold) => threshold switch
    {
        0 => _olderThan1Minute,
        1 => _olderThan10Minutes,
        _ => _olderThan1Hour,
    };

    public void Visit(long stamp, int bytes)
    {
        if (RentStamp.TypeOf(stamp) != BufferType.Normal)
        {
            return;
        }

        long age = _time.AgeTicksOf(stamp);
        OldestAgeTicks = Math.Max(OldestAgeTicks, age);
        _olderThan1Minute += age >= TimeSpan.TicksPerMinute ? 1 : 0;
        _olderThan10Minutes += age >= 10 * TimeSpan.TicksPerMinute ? 1 : 0;
        _olderThan1Hour += age >= TimeSpan.TicksPerHour ? 1 : 0;
    }
}
