using System.Diagnostics;
using Microsoft.Extensions.ObjectPool;

namespace OffHeapTracker;

/// <summary>Lends <see cref="LeaseCore"/>s to the fresh leases rented while the monitor is on, so a monitored rent allocates only the thin lease object and no finalizable one.</summary>
/// <remarks>
/// Each thread keeps a small stack of idle cores in its <see cref="ThreadRoot"/>, so the fast path takes no lock
/// and does no interlocked operation; past <see cref="Capacity"/> they overflow into a shared
/// <see cref="DefaultObjectPool{T}"/>, which also carries cores from threads that return to threads that rent
/// (socket code). Cores need no quarantine: no caller ever sees one, and a returned lease lets go of its core
/// before the core comes here (see <see cref="DirectBuffer.ReleaseCore"/>).
/// </remarks>
internal static class LeaseCores
{
    public const int Capacity = 64;

    private const int SharedCapacity = 4096;

    private static DefaultObjectPool<LeaseCore> s_shared = NewShared();

    /// <summary>Tests only: forgets every core in the shared overflow (a FIFO that earlier tests may have filled), so a test sees its own cores move.</summary>
    /// <remarks>Dropping idle cores loses nothing: no lease refers to them, and a rent with none at hand makes one.</remarks>
    internal static void ForgetSharedCores() => Volatile.Write(ref s_shared, NewShared());

    /// <summary>Takes an idle core whose guard's finalizer has not run.</summary>
    public static LeaseCore Rent(ThreadRoot thread)
    {
        LeaseCore?[]? local = thread.Cores;
        while (thread.CoreCount > 0)
        {
            int top = --thread.CoreCount;
            LeaseCore core = local![top]!;
            local[top] = null;
            if (core.IsRecyclable)
            {
                return core;
            }
        }

        while (true)
        {
            // A core whose guard was finalized after it was recycled (possible only before the finalizer thread is
            // known, see Return) has no safety net left: let it go rather than lend it.
            LeaseCore shared = s_shared.Get();
            if (shared.IsRecyclable)
            {
                return shared;
            }
        }
    }

    /// <summary>Keeps the core of a returned lease for the next fresh lease, or lets it go.</summary>
    /// <remarks>
    /// Never on the finalizer thread: a lease disposed there (by its owner's finalizer) may have a guard whose
    /// own finalizer is queued in the same pass. The first lease finalizer marks that thread (see
    /// <see cref="LeaseRecycler.RefuseOnCurrentThread"/>); before that, <see cref="Rent"/> drops cores with a spent
    /// guard, and <see cref="LeaseGuard.RearmIfSpent"/> covers a finalizer that runs between the check and the rent.
    /// </remarks>
    public static void Return(LeaseCore core, ThreadRoot thread)
    {
        Debug.Assert(core.Pool is null, "an idle core belongs to no pool");
        core.Guard.Detach();
        if (!core.IsRecyclable || thread.Leases is { Refuses: true })
        {
            return;
        }

        LeaseCore?[] local = thread.Cores ??= new LeaseCore?[Capacity];
        if (thread.CoreCount == Capacity)
        {
            s_shared.Return(core);
            return;
        }

        Debug.Assert(local[thread.CoreCount] is null, "a free stack slot holds nothing");
        local[thread.CoreCount++] = core;
    }

    private static DefaultObjectPool<LeaseCore> NewShared() => new(new Policy(), SharedCapacity);

    private sealed class Policy : PooledObjectPolicy<LeaseCore>
    {
        public override LeaseCore Create() => new();

        public override bool Return(LeaseCore obj) => true;
    }
}
