namespace OffHeapTracker;

/// <summary>Describes one rented buffer to an <see cref="IBufferMonitor"/>.</summary>
/// <param name="Id">The lease's id, unique in the process.</param>
/// <param name="Address">The native address of the buffer's first byte.</param>
/// <param name="RequestedSize">The size the caller asked for, in bytes.</param>
/// <param name="ActualSize">The size of the buffer handed out, in bytes (the block size).</param>
/// <param name="BufferType">The type the caller declared.</param>
/// <param name="PoolName">The name of the pool that served it.</param>
/// <param name="IsPooled">False when the buffer is an unpooled fallback allocation.</param>
public readonly record struct BufferAllocation(
    long Id,
    nint Address,
    int RequestedSize,
    int ActualSize,
    BufferType BufferType,
    string PoolName,
    bool IsPooled)
{
    /// <summary>Gets the serving pool's instance number, so a pool can find its own records when names repeat.</summary>
    internal int PoolId { get; init; }
}
