namespace OffHeapTracker;

/// <summary>A lease that was garbage-collected without being disposed; its block is kept out of circulation unless the pool reclaims leaks.</summary>
/// <remarks>
/// What is known depends on the monitor at rent time. A lease rented while the monitor was on carries its
/// age, context and (when it was recorded) its allocation stack. One rented while it was off carries only
/// its id, sizes and type.
/// </remarks>
public sealed record BufferLeak
{
    /// <summary>Gets the lease's id.</summary>
    public required long Id { get; init; }

    /// <summary>Gets the name of the pool the lease came from.</summary>
    public required string PoolName { get; init; }

    /// <summary>Gets the size the caller asked for, in bytes.</summary>
    public required int AllocateSize { get; init; }

    /// <summary>Gets the size of the buffer, in bytes.</summary>
    public required int ActualSize { get; init; }

    /// <summary>Gets the type declared at rent.</summary>
    public required BufferType BufferType { get; init; }

    /// <summary>Gets how long the lease had been out when its finalizer ran, or null if it was rented while the monitor was off.</summary>
    public required TimeSpan? Age { get; init; }

    /// <summary>Gets the ambient context at rent, or null when there was none or the monitor was off.</summary>
    public required string? Context { get; init; }

    /// <summary>Gets the allocation stack, or null when the lease was not recorded with one.</summary>
    public required string? StackTrace { get; init; }
}
