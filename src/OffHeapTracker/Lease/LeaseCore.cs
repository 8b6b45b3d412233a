using System.Diagnostics;

namespace OffHeapTracker;

/// <summary>What a lease knows of its block while it is rented, and the lease's safety net: the part of a lease that is recycled even when the lease object itself is not.</summary>
/// <remarks>
/// <para>
/// A <see cref="DirectBuffer"/> is a thin handle: its id, length, type and state, plus a reference to a core. With
/// the monitor off, a lease object is reused, and it owns one core for life. With the monitor on, every rent makes
/// a fresh lease object, so that stale use of an old one is always caught, and that object borrows a core from
/// <see cref="LeaseCores"/> while it is rented and gives it back on return. So a monitored rent allocates only the
/// handle (64 bytes) where it used to allocate the whole lease (144 bytes), and a monitored <c>/echo</c> server
/// (about 14 rents per request) allocated twice what an unmonitored one did, mostly in lease objects.
/// </para>
/// <para>
/// The core owns its <see cref="LeaseGuard"/> for life, and only the lease renting the core refers to the core,
/// so the guard becomes unreachable exactly when that lease does. A returned fresh lease drops its reference to
/// the core (<see cref="DirectBuffer.ReleaseCore"/>): a disposed lease kept somewhere must not keep the core, and
/// with it the guard of the core's next renter, reachable, or that renter's drop would go unreported.
/// </para>
/// <para>
/// The fields are written by the renting thread before the lease is published, and by the thread that won the
/// lease's dispose (or the finalizer that found it dropped) after; one lease rents a core at a time.
/// </para>
/// </remarks>
internal sealed unsafe class LeaseCore
{
    /// <summary>The pool the block came from; null while the core is idle.</summary>
    public DirectBufferPool? Pool;

    /// <summary>The block's first byte; null while the core is idle.</summary>
    public byte* Pointer;

    /// <summary>The pinned array behind the block, for a <see cref="BufferBacking.PinnedArray"/> pool; null otherwise.</summary>
    public byte[]? Array;

    /// <summary>Where the block starts in <see cref="Array"/>.</summary>
    public int ArrayOffset;

    /// <summary>The size the renter asked for.</summary>
    public int AllocateSize;

    /// <summary>The block's size class; -1 for an unpooled allocation.</summary>
    public int SizeClass;

    /// <summary>The block's index in its size class; -1 for an unpooled allocation.</summary>
    public int Block;

    /// <summary>What the tracker knows of the rent, when the monitor was on; default while the core is idle (see <see cref="DirectBuffer.ReleaseCore"/>).</summary>
    /// <remarks>With the built-in monitor this is also the rent's record: the resident table finds it through the core (see <see cref="Monitoring.ResidentCores"/>).</remarks>
    public LeaseTracking Tracking;

    /// <summary>Which resident table lists this core, and where: the table's generation in the high 32 bits, the slot in the low; 0 for none. Written by the renting thread under that table's lock, read by its walks and sweeps; one 64-bit field, so never seen torn.</summary>
    /// <remarks>Kept across rents (unlike <see cref="Tracking"/>): a core is listed once per table, not once per rent.</remarks>
    public long Registration;

    /// <summary>The weak reference by which resident tables list this core, made on its first monitored rent and shared by every table that lists it.</summary>
    /// <remarks>Weak, so a table never keeps a core, and with it the guard of the lease renting it, reachable: a dropped lease must stay collectable for its guard to report it. It tracks resurrection, so a dropped lease's record stays listed until its guard's finalizer has reported the leak.</remarks>
    public WeakReference<LeaseCore>? WeakSelf;

    // Set by the guard's finalizer (LeaseGuard.MarkGuardSpent), before its interlocked store of its own flag; never cleared.
    private int _guardSpent;

    public LeaseCore()
    {
        Guard = new LeaseGuard(this);
    }

    /// <summary>Gets the safety net of whichever lease rents this core: finalized when that lease is dropped undisposed.</summary>
    public LeaseGuard Guard { get; }

    /// <summary>Gets a value indicating whether the core may be lent again: its guard's finalizer has not run.</summary>
    /// <remarks>
    /// A plain read of the core's own mark, not of the guard: the core's fields are written by the rent that asks, so
    /// this costs no cache line of its own. A finalizer that runs after it is answered is tolerated (see
    /// <see cref="LeaseGuard.RearmIfSpent"/>); the mark is stored before the guard's own flag, so a renter never finds
    /// the guard spent and the core not.
    /// </remarks>
    public bool IsRecyclable => Volatile.Read(ref _guardSpent) == 0;

    /// <summary>Marks the core's guard as finalized: the core, and a reused lease that owns it, must never be lent again. Called by the guard's finalizer only.</summary>
    public void MarkGuardSpent()
    {
        Volatile.Write(ref _guardSpent, 1);
        Debug.Assert(!IsRecyclable, "a core whose guard was finalized is never recyclable again");
    }

    /// <summary>Readies an idle core for a lease: guards it.</summary>
    /// <param name="lease">The lease, which no one else can see yet.</param>
    public void LendTo(DirectBuffer lease)
    {
        // An idle core was cleared when its last lease let go of it (DirectBuffer.ReleaseCore), tracking included,
        // so a monitored rent does not zero it again here.
        Debug.Assert(Pool is null, "an idle core belongs to no pool");
        Debug.Assert(Tracking.AllocationStack is null && Tracking.Context is null && !Tracking.IsRecorded, "an idle core carries no tracking");
        Guard.Attach(lease);
    }

    /// <summary>Forgets the block of a returned lease, so an idle core holds no pool or unpooled array alive.</summary>
    /// <remarks>The pool is cleared with a release store: a double dispose that reads it as null then finds what the lease kept of the pool instead (see <see cref="DirectBuffer.ReleaseCore"/>).</remarks>
    public void Clear()
    {
        Volatile.Write(ref Pool, null);
        Pointer = null;
        Array = null;
    }
}
