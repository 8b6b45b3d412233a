using System.Text.Json.Serialization;

namespace OffHeapTracker.Monitoring;

/// <summary>One buffer still rented when the monitor was queried: a row of dble's <c>dble_memory_resident</c> table.</summary>
public sealed record ResidentBuffer
{
    /// <summary>Gets the lease's id (<see cref="DirectBuffer.Id"/>).</summary>
    public required long Id { get; init; }

    /// <summary>Gets how long the buffer had been rented when the query ran, in seconds.</summary>
    [JsonPropertyName("alive_second")]
    public required double AliveSeconds { get; init; }

    /// <summary>Gets the allocation site (<see cref="CapturedStackTrace.Text"/>), innermost frame first, one per line; the first line is the code that asked for memory, directly or through a pipe or stream. Empty when stacks are not captured.</summary>
    [JsonPropertyName("stacktrace")]
    public required string StackTrace { get; init; }

    /// <summary>Gets the type declared at rent.</summary>
    public required BufferType BufferType { get; init; }

    /// <summary>Gets the size the caller asked for, in bytes.</summary>
    public required int AllocateSize { get; init; }

    /// <summary>Gets the size of the buffer handed out, in bytes.</summary>
    public required int ActualSize { get; init; }

    /// <summary>Gets when the buffer was rented.</summary>
    public required DateTimeOffset AllocateTime { get; init; }

    /// <summary>Gets the ambient context at rent (see <see cref="BufferMonitor.BeginContext"/>), or null when there was none.</summary>
    public required string? Context { get; init; }

    /// <summary>Gets the name of the pool that served the buffer.</summary>
    public required string PoolName { get; init; }

    /// <summary>Gets the instance number of the pool that served the buffer (<see cref="DirectBufferPool.Id"/>), which tells apart pools that share a <see cref="PoolName"/>.</summary>
    /// <remarks>The same number as the pool's <c>offheaptracker.pool.id</c> tag in metrics and the <c>id</c> beside its statistics in the ASP.NET Core <c>/stats</c> endpoint; 0 in rows read from a report that predates the field.</remarks>
    public int PoolId { get; init; }

    /// <summary>Gets the managed id of the thread that rented the buffer.</summary>
    public required int ThreadId { get; init; }

    /// <summary>Gets the native address of the buffer's first byte, or 0 when the report it was read from left addresses out.</summary>
    /// <remarks>A live pointer into the process: the ASP.NET Core endpoints leave it out of their reports unless told to include it.</remarks>
    public nint Address { get; init; }
}
