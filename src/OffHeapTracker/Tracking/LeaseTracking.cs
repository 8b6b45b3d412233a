using OffHeapTracker.Monitoring;

namespace OffHeapTracker;

/// <summary>What the tracker keeps on a lease rented while the monitor was on, including the built-in monitor's record of it; only <see cref="BufferTracker"/> writes it, and report walks read the record (see <see cref="Monitoring.ResidentCores"/>).</summary>
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

    /// <summary>True when the monitor recorded the lease: the built-in monitor's record is in these fields (<see cref="RecordId"/>), another monitor is owed <see cref="IBufferMonitor.OnReturned(long, long)"/>.</summary>
    public bool IsRecorded;

    /// <summary>The lease id while the built-in monitor's record of this rent is here, 0 otherwise: the record's publication flag (see <see cref="Monitoring.ResidentCores"/>). Written last on rent and first on return, with <see cref="Volatile"/>; read by report walks on any thread.</summary>
    public long RecordId;

    /// <summary>The core's <see cref="LeaseCore.Registration"/> when the record was written: which table, and which of its slots, the record is for. A walk reads it with the record and skips a slot it does not name, so a record written for another table, or for another slot of the same table after the core moved away and back, is never listed from the wrong slot.</summary>
    public long RecordRegistration;

    /// <summary>The lease's length, for the record.</summary>
    public int Length;

    /// <summary>The id of the thread that rented the lease, for the record.</summary>
    public int ThreadId;

    /// <summary>How many rents the allocation stack stands for (see <see cref="BufferAllocation.StackWeight"/>); 0 without a stack.</summary>
    public int StackWeight;

    /// <summary>The type the renter declared, for the record.</summary>
    public BufferType BufferType;
}
