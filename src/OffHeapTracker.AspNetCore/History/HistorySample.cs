namespace OffHeapTracker.AspNetCore.History;

/// <summary>One moment of the history: every live pool's figures and, while the monitor was on, its top sites and old NORMAL buffers.</summary>
/// <remarks>Immutable once built, so readers copy references out of the ring under its lock and write them after.</remarks>
internal sealed record HistorySample(
    long UnixMilliseconds,
    bool MonitorEnabled,
    int Records,
    long DroppedRecords,
    PoolSample[] Pools,
    SiteSample[] Sites,
    OldNormalSample? OldNormal);

/// <summary>One pool's figures in a sample; <see cref="Name"/> is the pool's own string, shared by every sample, not a copy.</summary>
internal readonly record struct PoolSample(
    int Id,
    string Name,
    long InUseBytes,
    long PoolTypeInUseBytes,
    long OutstandingCount,
    long LeakedCount,
    long FallbackCount,
    long DoubleDisposeCount);

/// <summary>One leak site's size in a sample, by the key of its stack (<see cref="SiteKey"/>): the stack text itself is kept only for the latest sample.</summary>
internal readonly record struct SiteSample(ulong Key, long Bytes, long Count);

/// <summary>The monitor's NORMAL buffers older than <see cref="BufferHistory.OldAge"/> at a sample: what "expected back soon" buffers have not come back.</summary>
internal readonly record struct OldNormalSample(long Count, long Bytes, double OldestSeconds);
