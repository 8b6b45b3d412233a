using OffHeapTracker.Monitoring;

namespace OffHeapTracker;

/// <summary>What a <see cref="DirectBufferPool"/> reports to when a buffer is rented, returned, or found leaked.</summary>
/// <remarks>
/// <para>
/// The pool reads <see cref="IsEnabled"/> once per rent; when it is false the pool does no other monitor work
/// for that buffer. When it is true the pool captures what <see cref="StackCapture"/> asks for, stamps the
/// buffer on <see cref="TimeProvider"/>, reads the ambient context, and calls
/// <see cref="OnAllocated(in BufferAllocation, out long)"/> on the renting thread, inside <c>Rent</c>. If that
/// returned true, it calls <see cref="OnReturned(long, long)"/> with the token it gave, exactly once:
/// when the buffer is returned (on the returning thread) or found leaked (on the finalizer thread, just before
/// <see cref="OnLeaked"/>).
/// </para>
/// <para>
/// Everything the pool knows about a buffer travels in <see cref="BufferAllocation"/> and <see cref="BufferLeak"/>,
/// so a custom monitor gets the same stacks, contexts and times as <see cref="ResidentBufferMonitor"/>. The pool
/// never calls a monitor for anything else, and a monitor must not call back into the pool.
/// </para>
/// <para>
/// The one exception is the built-in <see cref="ResidentBufferMonitor"/>, which the pool recognizes: instead of
/// <see cref="OnAllocated(in BufferAllocation, out long)"/> and <see cref="OnReturned(long, long)"/>, the pool
/// writes the same record into the lease it already keeps for the buffer and the monitor's table lists that lease
/// (measured: a record of its own cost a Kestrel server about 4 % of its CPU per request). Its reports, events and
/// <see cref="OnLeaked"/> are the same; calling its <see cref="OnAllocated(in BufferAllocation, out long)"/>
/// directly still records a buffer, in the monitor's own slots.
/// </para>
/// <para>
/// Implementations must be thread-safe. An exception they throw is caught by the pool, logged and counted
/// (<see cref="DirectBufferPoolStatistics.MonitorErrorCount"/>); it never escapes <c>Rent</c> or <c>Dispose</c>.
/// </para>
/// </remarks>
public interface IBufferMonitor
{
    /// <summary>Gets a value indicating whether the monitor wants to hear of new buffers.</summary>
    bool IsEnabled { get; }

    /// <summary>Gets what the pool captures with each buffer it reports here.</summary>
    /// <value>The default is null: no stacks. A pool reads it once, when it is created; it holds the table of distinct stacks.</value>
    StackCapture? StackCapture => null;

    /// <summary>Gets the clock <see cref="BufferAllocation.Timestamp"/> is read from and leak ages are measured with.</summary>
    /// <value>The default is <see cref="TimeProvider.System"/>. A pool reads it once, when it is created.</value>
    TimeProvider TimeProvider => TimeProvider.System;

    /// <summary>Says whether buffers of a type are recorded now, so the pool captures nothing for a buffer the monitor would refuse.</summary>
    /// <param name="bufferType">The type declared at rent.</param>
    /// <returns>True if <see cref="OnAllocated(in BufferAllocation, out long)"/> may record such a buffer. The default is true.</returns>
    bool IsRecording(BufferType bufferType) => true;

    /// <summary>Called when a buffer is rented while <see cref="IsEnabled"/> is true.</summary>
    /// <param name="allocation">What was rented, with its stack, context and time.</param>
    /// <returns>True if the monitor recorded the buffer and wants <see cref="OnReturned(long, long)"/> when it comes back.</returns>
    bool OnAllocated(in BufferAllocation allocation);

    /// <summary>Called once for a buffer for which <see cref="OnAllocated(in BufferAllocation, out long)"/> returned true, when it is returned to its pool or found leaked.</summary>
    /// <param name="id">The buffer's <see cref="DirectBuffer.Id"/>.</param>
    void OnReturned(long id);

    /// <summary>Called instead of <see cref="OnAllocated(in BufferAllocation)"/>, so the monitor can hand the pool a token that finds its record again without a lookup.</summary>
    /// <param name="allocation">What was rented, with its stack, context and time.</param>
    /// <param name="token">Any value the monitor wants back in <see cref="OnReturned(long, long)"/>: the pool keeps it with the buffer. 0 when there is none.</param>
    /// <returns>True if the monitor recorded the buffer and wants <see cref="OnReturned(long, long)"/> when it comes back.</returns>
    /// <remarks>
    /// The pool calls this pair only. The default implementations forward to <see cref="OnAllocated(in BufferAllocation)"/>
    /// and <see cref="OnReturned(long)"/> with a token of 0, so a monitor written against those two keeps working.
    /// </remarks>
    bool OnAllocated(in BufferAllocation allocation, out long token)
    {
        token = 0;
        return OnAllocated(in allocation);
    }

    /// <summary>Called once for a buffer for which <see cref="OnAllocated(in BufferAllocation, out long)"/> returned true, when it is returned to its pool or found leaked.</summary>
    /// <param name="id">The buffer's <see cref="DirectBuffer.Id"/>.</param>
    /// <param name="token">The token <see cref="OnAllocated(in BufferAllocation, out long)"/> gave for this buffer.</param>
    void OnReturned(long id, long token) => OnReturned(id);

    /// <summary>Called on the finalizer thread when a lease was garbage-collected without <c>Dispose</c>.</summary>
    /// <param name="leak">What is known of the lease. If the monitor recorded it, <see cref="OnReturned(long, long)"/> has already been called for it.</param>
    /// <remarks>The default implementation does nothing. Implementations must be quick and must not block: they run on the finalizer thread.</remarks>
    void OnLeaked(BufferLeak leak)
    {
    }

    /// <summary>Lists the buffers of one pool this monitor holds a record of, of any age, oldest first.</summary>
    /// <param name="poolId">The pool's <see cref="DirectBufferPool.Id"/>.</param>
    /// <returns>The records; the default is none.</returns>
    /// <remarks><see cref="DirectBufferPool.AssertNoOutstanding"/> and the timeout of <see cref="DirectBufferPool.WhenAllReturnedAsync"/> list these with their stacks.</remarks>
    IReadOnlyList<ResidentBuffer> GetOutstanding(int poolId) => [];
}
