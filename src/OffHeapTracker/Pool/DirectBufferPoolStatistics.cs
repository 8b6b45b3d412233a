namespace OffHeapTracker;

/// <summary>A point-in-time view of a <see cref="DirectBufferPool"/>'s memory and counters.</summary>
/// <remarks>
/// Each figure is read on its own without stopping renters, so under concurrent load the figures may be a
/// few operations apart from one another; each one alone is exact at the moment it was read.
/// </remarks>
public sealed record DirectBufferPoolStatistics
{
    /// <summary>Gets the pool's name.</summary>
    public required string Name { get; init; }

    /// <summary>Gets the most native memory the pool may hold in slabs, in bytes.</summary>
    public long CapacityBytes { get; init; }

    /// <summary>Gets the native memory the pool holds in slabs now, in bytes, whether rented or free.</summary>
    public long ReservedBytes { get; init; }

    /// <summary>Gets the bytes of every buffer rented now (block sizes, pooled and unpooled): the analogue of dble's <c>DIRECT_MEMORY_POOL_USED</c>.</summary>
    public long InUseBytes { get; init; }

    /// <summary>Gets the part of <see cref="InUseBytes"/> rented as <see cref="BufferType.Pool"/>; the rest is <see cref="BufferType.Normal"/>.</summary>
    public long PoolTypeInUseBytes { get; init; }

    /// <summary>Gets the bytes rented since the pool was created (block sizes), a cumulative counter.</summary>
    public long RentedBytes { get; init; }

    /// <summary>Gets the part of <see cref="InUseBytes"/> served by fallback allocations (see <see cref="FallbackCount"/>) rather than slabs.</summary>
    public long FallbackInUseBytes { get; init; }

    /// <summary>Gets the slab bytes reserved but not rented: <see cref="ReservedBytes"/> less the pooled part of <see cref="InUseBytes"/>.</summary>
    public long FreeBytes { get; init; }

    /// <summary>Gets the highest <see cref="InUseBytes"/> seen since the pool was created, to within 64 KiB per renting thread (threads batch their counts to keep renting free of shared writes).</summary>
    public long HighWaterBytes { get; init; }

    /// <summary>Gets the slab bytes given back to the operating system after staying wholly free for <see cref="DirectBufferPoolOptions.TrimAfter"/>.</summary>
    public long TrimmedBytes { get; init; }

    /// <summary>Gets the number of leases rented and not yet disposed.</summary>
    public long OutstandingCount { get; init; }

    /// <summary>Gets the number of rents since the pool was created.</summary>
    public long TotalRents { get; init; }

    /// <summary>Gets the number of rents served by an unpooled native allocation, because the request was larger than the largest pooled size or the capacity was used up.</summary>
    public long FallbackCount { get; init; }

    /// <summary>Gets the number of times a lease was disposed again after its first dispose; each was ignored.</summary>
    public long DoubleDisposeCount { get; init; }

    /// <summary>Gets the number of exceptions thrown by the monitor and absorbed by the pool.</summary>
    public long MonitorErrorCount { get; init; }

    /// <summary>Gets the number of leases garbage-collected without <c>Dispose</c>, each reported once; see <see cref="LeakedBytes"/> for the memory they still hold.</summary>
    public long LeakedCount { get; init; }

    /// <summary>Gets the bytes of leases garbage-collected without <c>Dispose</c> whose blocks are kept out of circulation (a span of them may still be in use); they are part of <see cref="InUseBytes"/> and <see cref="OutstandingCount"/>.</summary>
    public long LeakedBytes { get; init; }

    /// <summary>Gets a value indicating whether the pool has been disposed.</summary>
    public bool IsDisposed { get; init; }
}
