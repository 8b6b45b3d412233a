using OffHeapTracker.Monitoring;

namespace OffHeapTracker;

/// <summary>What the tracker keeps on a lease rented while the monitor was on; only <see cref="BufferTracker"/> reads or writes it.</summary>
/// <remarks>
/// Lives inline in the lease's <see cref="LeaseCore"/> (no allocation), and is set only for fresh leases: a reused
/// lease is rented while the monitor is off and keeps this at its default; a core lent to a fresh lease starts from
/// the default. The lease itself only moves the stacks out when it lets go of its core (for double-dispose reports).
/// </remarks>
internal struct LeaseTracking
{
    /// <summary>When the lease was rented, on the monitor's clock; 0 when it was rented while the monitor was off.</summary>
    public long Timestamp;

    /// <summary>The ambient context at rent.</summary>
    public string? Context;

    /// <summary>The allocation stack, when the buffer was sampled.</summary>
    public CapturedStackTrace? AllocationStack;

    /// <summary>The stack of the first Dispose, when the monitor asks for dispose stacks. Written by the returning thread, read by a later double dispose on any thread: accessed with <see cref="Volatile"/>.</summary>
    public CapturedStackTrace? DisposeStack;

    /// <summary>The monitor's token for the lease's record (see <see cref="IBufferMonitor.OnAllocated(in BufferAllocation, out long)"/>).</summary>
    public long Token;

    /// <summary>True when the monitor recorded the lease and is owed <see cref="IBufferMonitor.OnReturned(long, long)"/>.</summary>
    public bool IsRecorded;
}
