namespace OffHeapTracker.Monitoring;

/// <summary>What the monitor keeps per tracked buffer: values only, never a reference to the lease.</summary>
/// <remarks>
/// Holding no reference to the <see cref="DirectBuffer"/> is what keeps the monitor from becoming the leak it
/// hunts (a cleanup registry that holds strong references keeps alive everything it registers): a dropped lease
/// stays collectable, so its finalizer can report it.
/// </remarks>
internal readonly record struct ResidentRecord(
    nint Address,
    long Timestamp,
    int AllocateSize,
    int ActualSize,
    BufferType BufferType,
    int ThreadId,
    string PoolName,
    int PoolId,
    string? Context,
    CapturedStackTrace? Stack,
    int StackWeight);
