namespace OffHeapTracker;

/// <summary>The hook a <see cref="DirectBufferPool"/> calls when a buffer is rented and when it is returned.</summary>
/// <remarks>
/// <para>
/// The pool reads <see cref="IsEnabled"/> once per rent; when it is false the pool does no other monitor work
/// for that buffer. When it is true the pool calls <see cref="OnAllocated"/> on the renting thread, inside
/// <c>Rent</c> (so a stack captured there shows the caller), and, if that returned true,
/// <see cref="OnFreed"/> exactly once when the buffer is returned, on the returning thread.
/// </para>
/// <para>
/// Implementations must be thread-safe. An exception they throw is caught by the pool, logged and counted
/// (<see cref="DirectBufferPoolStatistics.MonitorErrorCount"/>); it never escapes <c>Rent</c> or <c>Dispose</c>.
/// An implementation must not call back into the pool.
/// </para>
/// </remarks>
public interface IBufferMonitor
{
    /// <summary>Gets a value indicating whether the monitor wants to hear of new buffers.</summary>
    bool IsEnabled { get; }

    /// <summary>Called when a buffer is rented while <see cref="IsEnabled"/> is true.</summary>
    /// <param name="allocation">What was rented.</param>
    /// <returns>True if the monitor recorded the buffer and wants <see cref="OnFreed"/> when it comes back.</returns>
    bool OnAllocated(in BufferAllocation allocation);

    /// <summary>Called when a buffer for which <see cref="OnAllocated"/> returned true is returned to its pool, or collected without being returned.</summary>
    /// <param name="id">The buffer's <see cref="DirectBuffer.Id"/>.</param>
    void OnFreed(long id);

    /// <summary>Called on the finalizer thread when a lease was garbage-collected without <c>Dispose</c>.</summary>
    /// <param name="leak">What is known of the lease. If the monitor recorded it, <see cref="OnFreed"/> has already been called for it.</param>
    /// <remarks>The default implementation does nothing. Implementations must be quick and must not block: they run on the finalizer thread.</remarks>
    void OnLeaked(BufferLeak leak)
    {
    }
}
