namespace OffHeapTracker;

/// <summary>Where a pool's memory comes from.</summary>
public enum BufferBacking
{
    /// <summary>Native memory from <see cref="System.Runtime.InteropServices.NativeMemory"/>: invisible to the GC, visible to the monitor. The default.</summary>
    Native = 0,

    /// <summary>
    /// Pinned arrays on the pinned object heap, as Kestrel's own pool uses. Pick it for a consumer that needs
    /// array-backed memory: Kestrel's socket transport sends multi-segment responses through
    /// <c>SocketAsyncEventArgs.BufferList</c>, which takes only arrays. Tracking, statistics, leak detection
    /// and trimming are the same as for <see cref="Native"/>.
    /// </summary>
    PinnedArray = 1,
}
