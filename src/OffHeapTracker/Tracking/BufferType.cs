namespace OffHeapTracker;

/// <summary>Says how long a buffer is expected to stay rented, so leak reports can tell residents from suspects.</summary>
/// <remarks>The names follow dble's <c>buffer_type</c> column, the system this monitor comes from.</remarks>
public enum BufferType
{
    /// <summary>A short-lived buffer (a write buffer, a result buffer) that should come back soon; a long-lived one is a leak suspect.</summary>
    Normal = 0,

    /// <summary>A buffer resident by design for the lifetime of its owner, such as a connection's read buffer.</summary>
    Pool = 1,
}
