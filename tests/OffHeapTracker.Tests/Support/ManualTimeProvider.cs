namespace OffHeapTracker.Tests.Support;

/// <summary>A clock that moves only when told, so age filters and rate limits are tested without sleeping.</summary>
internal sealed class ManualTimeProvider : TimeProvider
{
    private long _timestamp = 1_000_000;
    private DateTimeOffset _utcNow = new(2026, 11, 21, 12, 0, 0, TimeSpan.Zero);

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => Volatile.Read(ref _timestamp);

    public override DateTimeOffset GetUtcNow() => _utcNow;

    public void Advance(TimeSpan by)
    {
        Interlocked.Add(ref _timestamp, by.Ticks);
        _utcNow += by;
    }
}
