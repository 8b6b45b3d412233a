using System.Reflection;
using System.Runtime.CompilerServices;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Lease;

[Collection(ProcessWideState.Name)] // One test resets the cores' shared overflow, which every test's leases use.
public sealed class LeaseCoresTests
{
    [Fact]
    public void FreshLeases_WithTheMonitorOn_AreNewObjects_ButTheirCoresAreRecycled() => FreshThread.Run(() =>
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor();
        using var pool = Pools.Create(monitor);

        DirectBuffer first = pool.Rent(4096);
        Memory<byte> stale = first.Memory;
        LeaseCore core = first.HeldCore!;
        LeaseGuard guard = first.SafetyNet!;
        first.Dispose();
        Assert.Null(first.HeldCore);
        Assert.Null(first.SafetyNet);

        DirectBuffer second = pool.Rent(4096);
        Assert.NotSame(first, second);
        Assert.Same(core, second.HeldCore);
        Assert.Same(guard, second.SafetyNet);

        // The stale lease still refuses use, through every door, and still says what it was: its object was not
        // recycled, only its core.
        Assert.Throws<ObjectDisposedException>(() => first.Memory);
        Assert.Throws<ObjectDisposedException>(() => { _ = stale.Span; });
        Assert.Throws<ObjectDisposedException>(() => stale.Pin());
        Assert.Throws<ObjectDisposedException>(() => { _ = first.GetSpan(); });
        Assert.Equal(4096, first.Length);
        Assert.Contains("disposed", first.ToString(), StringComparison.Ordinal);
        Assert.False(second.IsDisposed);
        second.Dispose();
    });

    [Fact]
    public void ACoreWhoseGuardWasFinalized_IsNeverLentAgain() => FreshThread.Run(() =>
    {
        ThreadRoot thread = ThreadRoot.Current;
        var spent = new LeaseCore();

        // Elsewhere: the finalizer marks its thread as one that keeps nothing, which is not what is tested here.
        FreshThread.Run(() => RunFinalizer(spent.Guard));
        Assert.True(spent.Guard.IsSpent);

        LeaseCores.Return(spent, thread);

        Assert.NotSame(spent, LeaseCores.Rent(thread));
        Assert.Equal(0, thread.CoreCount);
    });

    [Fact]
    public void ThreadThatFinalizedALease_KeepsNoCores() => FreshThread.Run(() =>
    {
        ThreadRoot thread = ThreadRoot.Current;
        LeaseRecycler.RefuseOnCurrentThread();

        LeaseCores.Return(new LeaseCore(), thread);

        Assert.Equal(0, thread.CoreCount);
    });

    [Fact]
    public void ADroppedFreshLease_WhoseCoreWasRecycledManyTimes_IsStillCaught()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor();
        List<long> leaks = CollectLeakIds(monitor);
        using var pool = Pools.Create(monitor);

        long id = FreshThread.Run(() =>
        {
            for (int i = 0; i < 1000; i++)
            {
                pool.Rent(4096).Dispose();
            }

            return DropALease(pool);
        });
        Gc.CollectAndFinalize();

        Assert.Equal([id], leaks);
        Assert.Equal(1, pool.GetStatistics().LeakedCount);
        Assert.Equal(4096, pool.GetStatistics().InUseBytes);
    }

    [Fact]
    public void ADisposedLeaseKeptAlive_DoesNotHideTheDropOfTheNextLeaseOnItsCore()
    {
        // A returned fresh lease lets go of its core. Were it to keep it, a disposed lease held anywhere (a field,
        // a cache) would keep the core's guard reachable, and the drop of whichever lease rents the core next
        // would go unreported and its block unaccounted.
        ResidentBufferMonitor monitor = Pools.EnabledMonitor();
        List<long> leaks = CollectLeakIds(monitor);
        using var pool = Pools.Create(monitor);

        (DirectBuffer kept, long droppedId) = FreshThread.Run(() => DisposeOneThenDropTheNextOnItsCore(pool));
        Gc.CollectAndFinalize();

        Assert.Equal([droppedId], leaks);
        Assert.Equal(1, pool.GetStatistics().LeakedCount);
        GC.KeepAlive(kept);
    }

    [Fact]
    public void CoresMoveBetweenThreads_ThatRentOnOneAndReturnOnAnother()
    {
        // The shared overflow is a FIFO shared by every test: cores other tests left there would be lent first.
        LeaseCores.ForgetSharedCores();
        ResidentBufferMonitor monitor = Pools.EnabledMonitor();
        using var pool = Pools.Create(monitor);
        DirectBuffer[] leases = FreshThread.Run(() => Enumerable.Range(0, 200).Select(_ => pool.Rent(4096)).ToArray());
        var cores = new HashSet<LeaseCore>(leases.Select(l => l.HeldCore!), ReferenceEqualityComparer.Instance);
        Assert.Equal(200, cores.Count);

        // Returned here, past this thread's stack of 64: the rest overflow to the shared pool, where another
        // thread's rents find them.
        FreshThread.Run(() =>
        {
            foreach (DirectBuffer lease in leases)
            {
                lease.Dispose();
            }
        });
        int reused = FreshThread.Run(() => Enumerable.Range(0, 100).Select(_ => pool.Rent(4096)).Count(l => cores.Contains(l.HeldCore!)));

        Assert.True(reused > 0, "no core returned on one thread was ever lent on another");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AGuardFinalizedWhileIdle_ThatSlippedPastTheSpentCheck_StillCatchesItsDroppedLease_OnceRearmed(bool rearm)
    {
        // The window RearmIfSpent closes: a guard is handed out (not yet spent), then its finalizer runs while it
        // guards nothing (possible only before the finalizer thread is known), so the runtime no longer tracks it
        // and the lease it then guards would be dropped without a report. Put a rented lease's guard in exactly
        // that state: spent, and no longer registered for finalization.
        ResidentBufferMonitor monitor = Pools.EnabledMonitor();
        List<long> leaks = CollectLeakIds(monitor);
        using var pool = Pools.Create(monitor);

        long id = FreshThread.Run(() => RentWithASpentGuard(pool, rearm));
        Gc.CollectAndFinalize();

        // Without the re-arm the lease is lost silently: that is what a Rent that forgot RearmIfSpent would do.
        Assert.Equal(rearm ? [id] : [], leaks);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static long RentWithASpentGuard(DirectBufferPool pool, bool rearm)
    {
        DirectBuffer lease = pool.Rent(4096);
        LeaseGuard guard = lease.SafetyNet!;
#pragma warning disable CA1816 // Its finalizer "ran" while idle: the runtime forgot it.
        GC.SuppressFinalize(guard);
#pragma warning restore CA1816
        typeof(LeaseGuard).GetField("_finalized", BindingFlags.Instance | BindingFlags.NonPublic)!.SetValue(guard, 1);
        Assert.True(guard.IsSpent);
        if (rearm)
        {
            guard.RearmIfSpent();
        }

        return lease.Id;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static long DropALease(DirectBufferPool pool) => pool.Rent(4096).Id;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static (DirectBuffer Kept, long DroppedId) DisposeOneThenDropTheNextOnItsCore(DirectBufferPool pool)
    {
        DirectBuffer kept = pool.Rent(4096);
        LeaseCore core = kept.HeldCore!;
        kept.Dispose();
        DirectBuffer next = pool.Rent(4096);
        Assert.Same(core, next.HeldCore);
        return (kept, next.Id);
    }

    private static void RunFinalizer(LeaseGuard guard)
    {
#pragma warning disable CA1816 // Run by hand, once: it must not run again on the finalizer thread.
        GC.SuppressFinalize(guard);
#pragma warning restore CA1816
        typeof(LeaseGuard).GetMethod("Finalize", BindingFlags.Instance | BindingFlags.NonPublic)!.Invoke(guard, null);
    }

    /// <summary>Collects the ids of the leases the monitor reports leaked (on the finalizer thread, hence the lock).</summary>
    private static List<long> CollectLeakIds(ResidentBufferMonitor monitor)
    {
        var leaks = new List<long>();
        monitor.LeakDetected += (_, leak) =>
        {
            lock (leaks)
            {
                leaks.Add(leak.Id);
            }
        };
        return leaks;
    }
}
