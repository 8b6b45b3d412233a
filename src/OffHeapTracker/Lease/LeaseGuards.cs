using System.Diagnostics;
using Microsoft.Extensions.ObjectPool;

namespace OffHeapTracker;

/// <summary>Lends <see cref="LeaseGuard"/>s to the fresh leases rented while the monitor is on, so a rent allocates no finalizable object.</summary>
/// <remarks>
/// Each thread keeps a small stack of idle guards in its <see cref="ThreadRoot"/>, so the fast path takes no lock
/// and does no interlocked operation; past <see cref="Capacity"/> they overflow into a shared
/// <see cref="DefaultObjectPool{T}"/>, which also carries guards from threads that return to threads that rent
/// (socket code). Guards need no quarantine: no caller ever sees one.
/// </remarks>
internal static class LeaseGuards
{
    public const int Capacity = 64;

    private const int SharedCapacity = 4096;

    private static DefaultObjectPool<LeaseGuard> s_shared = NewShared();

    /// <summary>Tests only: forgets every guard in the shared overflow (a FIFO that earlier tests may have filled), so a test sees its own guards move.</summary>
    /// <remarks>Dropping idle guards loses nothing: no lease refers to them, and a rent with none at hand makes one.</remarks>
    internal static void ForgetSharedGuards() => Volatile.Write(ref s_shared, NewShared());

    /// <summary>Takes an idle guard whose finalizer has not run.</summary>
    public static LeaseGuard Rent(ThreadRoot thread)
    {
        LeaseGuard?[]? local = thread.Guards;
        while (thread.GuardCount > 0)
        {
            int top = --thread.GuardCount;
            LeaseGuard guard = local![top]!;
            local[top] = null;
            if (!guard.IsSpent)
            {
                return guard;
            }
        }

        while (true)
        {
            // A guard whose finalizer ran after it was recycled (possible only before the finalizer thread is
            // known, see Return) has no safety net left: let it go rather than lend it.
            LeaseGuard shared = s_shared.Get();
            if (!shared.IsSpent)
            {
                return shared;
            }
        }
    }

    /// <summary>Keeps the guard of a returned lease for the next fresh lease, or lets it go.</summary>
    /// <remarks>
    /// Never on the finalizer thread: a lease disposed there (by its owner's finalizer) may have a guard whose
    /// own finalizer is queued in the same pass. The first lease finalizer marks that thread (see
    /// <see cref="LeaseRecycler.RefuseOnCurrentThread"/>); before that, <see cref="Rent"/> drops spent guards, and
    /// <see cref="LeaseGuard.RearmIfSpent"/> covers a finalizer that runs between the check and the rent.
    /// </remarks>
    public static void Return(LeaseGuard guard, ThreadRoot thread)
    {
        guard.Detach();
        if (guard.IsSpent || thread.Leases is { Refuses: true })
        {
            return;
        }

        LeaseGuard?[] local = thread.Guards ??= new LeaseGuard?[Capacity];
        if (thread.GuardCount == Capacity)
        {
            s_shared.Return(guard);
            return;
        }

        Debug.Assert(local[thread.GuardCount] is null, "a free stack slot holds nothing");
        local[thread.GuardCount++] = guard;
    }

    private static DefaultObjectPool<LeaseGuard> NewShared() => new(new Policy(), SharedCapacity);

    private sealed class Policy : PooledObjectPolicy<LeaseGuard>
    {
        public override LeaseGuard Create() => new();

        public override bool Return(LeaseGuard obj) => true;
    }
}
