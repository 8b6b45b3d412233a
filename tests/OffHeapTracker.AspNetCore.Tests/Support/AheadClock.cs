namespace OffHeapTracker.AspNetCore.Tests.Support;

/// <summary>The system's clock, moved ahead when told: a pool that stamps rents with it sees them age at once in its census.</summary>
/// <remarks>Only timestamps move; timers and <see cref="TimeProvider.GetUtcNow"/> are the system's.</remarks>
internal sealed class AheadClock : TimeProvider
{
    private long _ahead;

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ahead, (long)(by.TotalSeconds * TimestampFrequency));

    public override long GetTimestamp() => base.GetTimestamp() + Volatile.Read(ref _ahead);
}
