using System.Diagnostics;

namespace OffHeapTracker;

/// <summary>The safety net of one lease: a finalizable object only that lease refers to, so it is finalized when the lease is dropped without <c>Dispose</c>.</summary>
/// <remarks>
/// <para>
/// The finalizer lives here rather than on <see cref="DirectBuffer"/> so that a lease object need not be
/// finalizable. Allocating a finalizable object takes the runtime's slow allocation path and registers it with
/// the finalizer (several hundred instructions, measured), which a fresh lease per rent, as the monitor wants
/// for stale-use detection, would pay on every rent. A guard is allocated once, with the <see cref="LeaseCore"/>
/// that owns it for life, and used again: a reused lease keeps its own core for life; a fresh lease borrows one
/// from <see cref="LeaseCores"/> and gives it back when it is returned.
/// </para>
/// <para>
/// Only the guarded lease refers to the guard's core while it is rented (the recycler holds cores only while
/// they guard nothing, and a returned fresh lease lets go of its core), so the guard becomes unreachable exactly
/// when the lease does, and its finalizer then sees the lease, kept alive for it, through <see cref="_lease"/>.
/// </para>
/// </remarks>
internal sealed class LeaseGuard
{
    // The core that owns this guard for life, told first thing by the finalizer that the guard is spent: renters
    // check the core, whose cache line they write anyway, instead of loading this object on every rent (measured:
    // the load of _finalized was a third of a monitor-off Rent under Kestrel, a cache miss on an object nothing
    // else touches between rents).
    private readonly LeaseCore _core;

    // The guarded lease; null while the guard waits in the recycler. Written by the renting and returning
    // threads, read by the finalizer, which only runs once no thread can reach this guard, or on a guard that
    // slipped into the recycler before the finalizer thread was known (see LeaseCores.Rent).
    private DirectBuffer? _lease;

    // Set first thing by the finalizer: this guard's finalization is spent, so it must never guard another lease
    // (that lease would have no safety net).
    private int _finalized;

    // Touched by the finalizer only: the first run found the lease rented and deferred the verdict by one collection.
    private bool _finalizationDeferred;

    /// <summary>Creates the guard of <paramref name="core"/>, which owns it for life.</summary>
    /// <param name="core">The core whose leases this guard watches; its finalizer marks the core spent.</param>
    public LeaseGuard(LeaseCore core)
    {
        _core = core;
    }

    /// <summary>Reports a dropped lease (see <see cref="DirectBuffer.OnDropped"/>), deferring once so an owner's finalizer gets to dispose it first.</summary>
    /// <remarks>Runs on the finalizer thread and never throws: the pool catches everything inside.</remarks>
    ~LeaseGuard()
    {
        // The core's mark first, then the interlocked store, whose full fence makes both visible before the lease is
        // read: otherwise a recycler on another thread and this finalizer could each miss the other (x86 lets a load
        // overtake an earlier store).
        _core.MarkGuardSpent();
        Interlocked.Exchange(ref _finalized, 1);
        LeaseRecycler.RefuseOnCurrentThread();
        if (Volatile.Read(ref _lease) is not { IsDisposed: false } lease)
        {
            return;
        }

        if (!_finalizationDeferred)
        {
            // Objects collected together are finalized in no set order, so an owner whose finalizer disposes the
            // lease may not have run yet. Look again one collection later, so that its dispose is not reported as
            // a leak. Safe: nothing but that owner can reach the lease, and it stays rented meanwhile.
            _finalizationDeferred = true;
            GC.ReRegisterForFinalize(this);
            return;
        }

        lease.OnDropped();
    }

    /// <summary>Gets a value indicating whether this guard's finalizer has run: it may then never guard another lease.</summary>
    /// <remarks>A plain read: a finalizer that runs after it is answered is tolerated (see <see cref="LeaseCores.Rent"/>).</remarks>
    public bool IsSpent => Volatile.Read(ref _finalized) != 0;

    /// <summary>Starts guarding a lease no one else can see yet.</summary>
    public void Attach(DirectBuffer lease)
    {
        Debug.Assert(_lease is null, "a guard guards one lease at a time");
        _finalizationDeferred = false;
        Volatile.Write(ref _lease, lease);
    }

    /// <summary>Stops guarding a returned lease, before the guard goes back to the recycler.</summary>
    public void Detach()
    {
        Debug.Assert(_lease is null || _lease.IsDisposed, "only a returned lease lets go of its guard");
        Volatile.Write(ref _lease, null);
    }

    /// <summary>Re-arms a guard whose finalizer ran while it waited in the recycler and may have missed the lease it now guards.</summary>
    /// <remarks>
    /// Only possible for a guard recycled on the finalizer thread before that thread was known (see
    /// <see cref="LeaseRecycler.RefuseOnCurrentThread"/>). Registering twice is harmless: a second run finds the
    /// lease's fate already decided.
    /// </remarks>
    public void RearmIfSpent()
    {
        // A full fence between the renter publishing the lease (Initialize's store of Rented) and this read of
        // _finalized, as the finalizer has one between its store of _finalized and its read of the lease: otherwise
        // each may read the other's old value (x64 lets a load pass an earlier store), the finalizer find the lease
        // not yet rented and return without re-registering, and this read find the guard not yet spent.
        Interlocked.MemoryBarrier();
        if (IsSpent)
        {
            GC.ReRegisterForFinalize(this);
        }
    }
}
