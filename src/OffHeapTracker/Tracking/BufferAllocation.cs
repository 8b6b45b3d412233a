using OffHeapTracker.Monitoring;

namespace OffHeapTracker;

/// <summary>Describes one rented buffer to an <see cref="IBufferMonitor"/>.</summary>
/// <param name="Id">The lease's id, unique in the process.</param>
/// <param name="Address">The native address of the buffer's first byte.</param>
/// <param name="AllocateSize">The size the caller asked for, in bytes.</param>
/// <param name="ActualSize">The size of the buffer handed out, in bytes.</param>
/// <param name="BufferType">The type the caller declared.</param>
/// <param name="PoolName">The name of the pool that served it.</param>
/// <param name="IsPooled">False when the buffer is an unpooled fallback allocation.</param>
public readonly record struct BufferAllocation(
    long Id,
    nint Address,
    int AllocateSize,
    int ActualSize,
    BufferType BufferType,
    string PoolName,
    bool IsPooled)
{
    /// <summary>Gets the serving pool's <see cref="DirectBufferPool.Id"/>, which tells apart pools that share a name.</summary>
    public int PoolId { get; init; }

    /// <summary>Gets when the buffer was rented, as a timestamp of the monitor's <see cref="IBufferMonitor.TimeProvider"/>.</summary>
    public long Timestamp { get; init; }

    /// <summary>Gets the ambient context at rent (see <see cref="BufferMonitor.BeginContext"/>), or null.</summary>
    public string? Context { get; init; }

    /// <summary>Gets the allocation stack, or null when <see cref="IBufferMonitor.StackCapture"/> is null or this buffer was not sampled.</summary>
    public CapturedStackTrace? Stack { get; init; }

    /// <summary>Gets how many rents this buffer's <see cref="Stack"/> stands for: 1 when every buffer gets one, N when one in N was sampled; 0 without a stack.</summary>
    /// <remarks>Summing the weights of a site's resident records estimates how many buffers that site holds (<see cref="LeakSite.EstimatedCount"/>).</remarks>
    public int StackWeight { get; init; }
}
