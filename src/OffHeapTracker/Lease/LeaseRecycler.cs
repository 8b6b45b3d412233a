using System.Diagnostics;
using Microsoft.Extensions.ObjectPool;

namespace OffHeapTracker;

/// <summary>Reuses lease objects while the monitor is off, so renting allocates nothing, without reusing one too soon.</summary>
/// <remarks>
/// <para>
/// Each thread keeps a first-in-first-out ring (in its <see cref="ThreadRoot"/>) of the lease objects it returned, and hands one out again only
/// once <see cref="Quarantine"/> newer ones sit behind it. So after a thread disposes a lease, that object is
/// not rented again until the same thread has returned 16 more. A second <c>Dispose</c> on the disposing thread
/// before then finds the object still returned, and it is caught and ignored. It can never free a block that
/// belongs to a new owner. This is the common double dispose: a <c>using</c> plus an explicit <c>Dispose</c>,
/// or a retry in a <c>finally</c>.
/// </para>
/// <para>
/// The ring is thread-local, so the fast path takes no lock and does no interlocked operation. Lease objects are
/// not tied to a pool (<see cref="DirectBuffer.Initialize"/> sets every field), so one ring serves all pools.
/// Past <see cref="Capacity"/>, the oldest entry overflows into a shared <see cref="DefaultObjectPool{T}"/>.
/// A thread whose ring cannot lend draws from that pool, which moves objects between threads that rent on one
/// thread and return on another, as socket code does.
/// </para>
/// </remarks>
internal static class LeaseRecycler
{
    public const int Quarantine = 16;

    public const int Capacity = 64;

    private const int SharedCapacity = 4096;

    private static readonly DefaultObjectPool<DirectBuffer> s_shared = new(new Policy(), SharedCapacity);

    public static DirectBuffer Rent(ThreadRoot thread)
    {
        Ring? ring = thread.Leases;
        while (ring is not null && ring.Count > Quarantine)
        {
            DirectBuffer cached = ring.TakeOldest();
            if (cached.IsRecyclable)
            {
                return cached;
            }
        }

        while (true)
        {
            // A lease object whose finalizer ran after it was cached (possible when an owner's finalizer handed
            // its dispose to another thread) has no safety net left: let it go rather than lend it.
            DirectBuffer shared = s_shared.Get();
            if (shared.IsRecyclable)
            {
                return shared;
            }
        }
    }

    /// <summary>Keeps a returned lease object for reuse, or lets it go.</summary>
    /// <returns>True if the object was kept; false if it must be left to the garbage collector.</returns>
    /// <remarks>
    /// Never on the finalizer thread (see <see cref="RefuseOnCurrentThread"/>). Should one slip through before that thread
    /// is known, its finalizer still runs before or after it is lent: before, <see cref="Rent"/> drops it; after,
    /// the finalizer finds it rented and defers, so it stays armed.
    /// </remarks>
    public static bool Return(DirectBuffer lease, ThreadRoot thread)
    {
        Debug.Assert(lease.IsRecyclable, "a finalized or fresh lease object must never be recycled");
        // The finalizer thread's ring is the refusing one (see RefuseOnCurrentThread).
        Ring ring = thread.Leases ??= new Ring();
        if (ring.Refuses)
        {
            return false;
        }

        if (ring.Count == Capacity)
        {
            s_shared.Return(ring.TakeOldest());
        }

        ring.Add(lease);
        return true;
    }

    /// <summary>Called by every lease finalizer: the finalizer thread keeps no lease objects from then on.</summary>
    /// <remarks>
    /// An object whose finalizer disposes a lease (a wrapper that owns one) runs in the same finalization pass as
    /// the lease itself, in no set order. A lease disposed there may still be waiting for its own finalizer; were
    /// it cached and lent again, that finalizer would run on a live lease, which would then carry no safety net.
    /// .NET has no API that names the finalizer thread, so the first lease finalizer to run marks it here. Before
    /// that, <see cref="Rent"/> covers the gap: it never lends a lease object whose finalizer has run.
    /// </remarks>
    public static void RefuseOnCurrentThread()
    {
        ThreadRoot thread = ThreadRoot.Current;
        if (thread.Leases is not { Refuses: true })
        {
            // The objects its ring may already hold were recycled before the thread was known; Rent drops any
            // whose finalizer has run, so letting them go with the ring loses nothing but the objects.
            thread.Leases = new Ring(refuses: true);
        }
    }

    /// <summary>A fixed ring buffer, kept in <see cref="ThreadRoot.Leases"/>; only its own thread touches it.</summary>
    internal sealed class Ring(bool refuses = false)
    {
        private readonly DirectBuffer?[] _items = new DirectBuffer?[refuses ? 0 : Capacity];
        private int _oldest;

        public bool Refuses { get; } = refuses;

        public int Count { get; private set; }

        public DirectBuffer TakeOldest()
        {
            DirectBuffer lease = _items[_oldest]!;
            _items[_oldest] = null;
            _oldest = (_oldest + 1) % Capacity;
            Count--;
            return lease;
        }

        public void Add(DirectBuffer lease)
        {
            _items[(_oldest + Count) % Capacity] = lease;
            Count++;
        }
    }

    private sealed class Policy : PooledObjectPolicy<DirectBuffer>
    {
        public override DirectBuffer Create() => new(reusable: true);

        public override bool Return(DirectBuffer obj) => true;
    }
}
