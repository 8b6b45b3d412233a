using System.Globalization;
using System.Runtime.CompilerServices;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Monitoring;

/// <summary>A pool's records live in its lease cores, which the resident table lists by weak reference.</summary>
public sealed class ResidentCoresTests
{
    [Fact]
    public void APoolsRecord_IsWrittenIntoTheLeasesCore_AndTheCoreIsListedOncePerTable()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor();
        using var pool = Pools.Create(monitor);
        using (BufferMonitor.BeginContext("first"))
        {
            DirectBuffer first = pool.Rent(100);
            LeaseCore core = first.HeldCore!;
            Assert.Equal(first.Id, core.Tracking.RecordId);
            ResidentBuffer record = Assert.Single(monitor.GetResident(TimeSpan.Zero));
            Assert.Equal((first.Id, 100, first.Length, "first", pool.Name, pool.Id), (record.Id, record.AllocateSize, record.ActualSize, record.Context, record.PoolName, record.PoolId));
            Assert.Equal(Environment.CurrentManagedThreadId, record.ThreadId);
            long registration = core.Registration;
            first.Dispose();
            Assert.Equal(0, core.Tracking.RecordId);
            Assert.Empty(monitor.GetResident(TimeSpan.Zero));

            // The thread's next rent takes the same core back (a per-thread stack): listed already, not again.
            DirectBuffer second = pool.Rent(200);
            Assert.Same(core, second.HeldCore);
            Assert.Equal(registration, core.Registration);
            Assert.Equal(second.Id, Assert.Single(monitor.GetResident(TimeSpan.Zero)).Id);
            second.Dispose();
        }
    }

    [Fact]
    public void ACoreListedByTwoMonitors_InTurn_IsReportedOnlyByTheOneItsRecordIsFor()
    {
        // Cores are shared by every pool: the thread's next rent from a pool with another monitor takes the same
        // core, which that monitor's table then lists. The first table still holds a reference to it, and must not
        // report the second monitor's record as its own.
        ResidentBufferMonitor first = Pools.EnabledMonitor();
        ResidentBufferMonitor second = Pools.EnabledMonitor();
        using var firstPool = Pools.Create(first);
        using var secondPool = Pools.Create(second);

        DirectBuffer a = firstPool.Rent(64);
        LeaseCore core = a.HeldCore!;
        a.Dispose();
        using DirectBuffer b = secondPool.Rent(64);
        Assert.Same(core, b.HeldCore);

        Assert.Empty(first.GetResident(TimeSpan.Zero));
        Assert.Equal(0, first.Count);
        Assert.Equal(b.Id, Assert.Single(second.GetResident(TimeSpan.Zero)).Id);
    }

    [Fact]
    public void ARecordFromBeforeEnable_IsNotListedByTheNewTable()
    {
        ResidentBufferMonitor monitor = Pools.EnabledMonitor();
        using var pool = Pools.Create(monitor);
        using DirectBuffer before = pool.Rent(64);
        monitor.Disable();
        monitor.Enable();

        // Its record is still in its core, under the dropped table's registration.
        Assert.Equal(before.Id, before.HeldCore!.Tracking.RecordId);
        Assert.Empty(monitor.GetResident(TimeSpan.Zero));
        using DirectBuffer after = pool.Rent(64);
        Assert.Equal(after.Id, Assert.Single(monitor.GetResident(TimeSpan.Zero)).Id);
    }

    [Fact]
    public void TheTable_DoesNotKeepADroppedLeaseReachable_AndItsLeakReportRemovesTheRecord()
    {
        // If the table held cores strongly, it would hold the dropped lease's guard too: never finalized, the leak
        // never reported, the record listed for ever.
        ResidentBufferMonitor monitor = Pools.EnabledMonitor();
        var leaks = new System.Collections.Concurrent.ConcurrentQueue<BufferLeak>();
        monitor.LeakDetected += (_, leak) => leaks.Enqueue(leak);
        using var pool = Pools.Create(monitor);
        bool? listedWhenReported = null;
        monitor.LeakDetected += (_, leak) => listedWhenReported = monitor.GetResident(TimeSpan.Zero).Any(r => r.Id == leak.Id);
        long id = RentAndDrop(pool);
        Assert.Equal(id, Assert.Single(monitor.GetResident(TimeSpan.Zero)).Id);

        // One collection: the guard's finalizer runs and defers its verdict by a collection (an owner's finalizer may
        // still dispose the lease). Meanwhile the lease and its core live on for it, and the record stays listed:
        // the table's reference tracks resurrection.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        if (pool.GetStatistics().LeakedCount == 0)
        {
            Assert.Equal(id, Assert.Single(monitor.GetResident(TimeSpan.Zero)).Id);
        }

        for (int i = 0; i < 10 && pool.GetStatistics().LeakedCount == 0; i++)
        {
            Gc.CollectAndFinalize();
        }

        Assert.Equal(1, pool.GetStatistics().LeakedCount);
        Assert.Equal(id, Assert.Single(leaks).Id);

        // The report removed the record from the core, which was still alive then: listeners never see it twice.
        Assert.False(listedWhenReported, "the leaked lease was still listed when its leak was reported");
        Assert.Empty(monitor.GetResident(TimeSpan.Zero));
    }

    [Fact]
    public void AtItsLimit_TheTableSweepsTheSlotsOfCollectedCores_AndOfCoresAnotherTableListsNow()
    {
        var cores = new ResidentCores(generation: 1_000_001, maxCores: 2);
        var other = new ResidentCores(generation: 1_000_002, maxCores: 2);
        var kept = new LeaseCore();
        var moved = new LeaseCore();
        Assert.True(cores.TryRegister(kept));
        Assert.True(cores.TryRegister(moved));
        Assert.True(cores.Lists(kept) && cores.Lists(moved));
        Assert.False(cores.TryRegister(new LeaseCore()), "two slots in all");

        // The moved core is listed by another table now; a collected one is gone.
        Assert.True(other.TryRegister(moved));
        Assert.False(cores.Lists(moved));
        Thread.Sleep(TimeSpan.FromMilliseconds(ResidentCores.SweepIntervalMilliseconds * 5));
        var late = new LeaseCore();
        Assert.True(cores.TryRegister(late), "the moved core's slot was not swept");
        Assert.False(cores.TryRegister(new LeaseCore()), "the kept core's slot was swept while it is still listed here");
        Assert.True(cores.Lists(kept));

        var full = new ResidentCores(generation: 1_000_003, maxCores: 1);
        RegisterAndDrop(full);
        Gc.CollectAndFinalize();
        Gc.CollectAndFinalize();
        Assert.True(full.TryRegister(new LeaseCore()), "the collected core's slot was not swept");
        GC.KeepAlive(kept);
        GC.KeepAlive(late);
    }

    [Fact]
    public async Task RentsAndReturnsOnManyThreads_WhileAWalkRuns_NeverShowItATornRecord()
    {
        // Each rent's size, context and length agree (the context names the size), and a thread's next rent takes
        // the core its last one gave back, with another size: a record copied while its core moved on to the next
        // rent would show fields of two rents.
        ResidentBufferMonitor monitor = Pools.EnabledMonitor();
        using var pool = Pools.Create(monitor);
        using var stop = new CancellationTokenSource();
        long walked = 0;
        var reader = Task.Factory.StartNew(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                foreach (ResidentBuffer record in monitor.GetResident(TimeSpan.Zero))
                {
                    Assert.Equal(record.AllocateSize.ToString(CultureInfo.InvariantCulture), record.Context);
                    Assert.True(record.ActualSize >= record.AllocateSize, $"length {record.ActualSize} of a rent of {record.AllocateSize}");
                    Assert.NotEqual(0, record.Address);
                    Interlocked.Increment(ref walked);
                }
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        var writers = Enumerable.Range(0, 3).Select(writer => Task.Factory.StartNew(() =>
        {
            for (int i = 0; i < 100_000; i++)
            {
                int size = 1 + ((i * 7919) + writer) % 20_000;
                using (BufferMonitor.BeginContext(size.ToString(CultureInfo.InvariantCulture)))
                {
                    pool.Rent(size).Dispose();
                }

                if (i % 1000 == 0)
                {
                    // Records must stay out now and then, or the walk would see none.
                    using (BufferMonitor.BeginContext("500"))
                    using (pool.Rent(500))
                    {
                        SpinWait.SpinUntil(() => Interlocked.Read(ref walked) > i / 1000, TimeSpan.FromMilliseconds(50));
                    }
                }
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();

        await Task.WhenAll(writers);
        stop.Cancel();
        await reader;
        Assert.True(walked > 0, "the walk never saw a record: the test proved nothing");
        Assert.Empty(monitor.GetResident(TimeSpan.Zero));
    }

    [Fact]
    public void AWalk_ThatCopiesARecordWhileItsCoreMovesToTheNextRent_DropsTheCopy()
    {
        // Between the walk's first read of the record's id and its copy, the lease is returned and this thread's next
        // rent takes the same core with another size and context. The copy would then mix the two rents (the old
        // rent's id, the new rent's fields); the second read of the id must catch it.
        ResidentBufferMonitor monitor = Pools.EnabledMonitor();
        using var pool = Pools.Create(monitor);
        DirectBuffer first;
        using (BufferMonitor.BeginContext("first"))
        {
            first = pool.Rent(100);
        }

        DirectBuffer? second = null;
        ResidentCores.SetBetweenReadsForTests(core =>
        {
            ResidentCores.SetBetweenReadsForTests(null);
            first.Dispose();
            using (BufferMonitor.BeginContext("second"))
            {
                second = pool.Rent(3000);
            }

            Assert.Same(core, second.HeldCore);
        });
        try
        {
            IReadOnlyList<ResidentBuffer> walked = monitor.GetResident(TimeSpan.Zero);
            Assert.NotNull(second);
            Assert.DoesNotContain(walked, r => r.Id == first.Id);
            Assert.All(walked, r => Assert.Equal((second.Id, "second", 3000), (r.Id, r.Context, r.AllocateSize)));
            Assert.Equal(second.Id, Assert.Single(monitor.GetResident(TimeSpan.Zero)).Id);
        }
        finally
        {
            ResidentCores.SetBetweenReadsForTests(null);
            second?.Dispose();
        }
    }

    [Fact]
    public void AWalk_WhoseCoreMovesToAnotherMonitorsPoolAfterItsRegistrationCheck_DoesNotListThatPoolsBuffer()
    {
        // Cores are shared by every pool. Between a walk's check that the core is listed in this slot and its first
        // read of the id, the lease is returned and this thread rents from a pool on another monitor, on the same
        // core: the core moves to the other table and carries that rent's whole record, which both reads of the id
        // agree on. The record says which table and slot it was written for, and this slot is not it.
        ResidentBufferMonitor first = Pools.EnabledMonitor();
        ResidentBufferMonitor second = Pools.EnabledMonitor();
        using var firstPool = Pools.Create(first, o => o.Name = "first");
        using var secondPool = Pools.Create(second, o => o.Name = "second");
        DirectBuffer mine = firstPool.Rent(100);
        DirectBuffer? theirs = null;
        ResidentCores.SetAfterRegistrationCheckForTests(core =>
        {
            ResidentCores.SetAfterRegistrationCheckForTests(null);
            mine.Dispose();
            theirs = secondPool.Rent(100);
            Assert.Same(core, theirs.HeldCore);
        });
        try
        {
            IReadOnlyList<ResidentBuffer> walked = first.GetResident(TimeSpan.Zero);
            Assert.NotNull(theirs);
            Assert.Empty(walked);
            Assert.Equal(theirs.Id, Assert.Single(second.GetResident(TimeSpan.Zero)).Id);
        }
        finally
        {
            ResidentCores.SetAfterRegistrationCheckForTests(null);
            theirs?.Dispose();
        }
    }

    [Fact]
    public void AtItsLimit_WithEveryCoreAlive_TheTableSweepsOnce_AndSpacesTheNextByTenTimesWhatItTook()
    {
        // A leak that keeps its buffers referenced fills the table with live cores: no sweep can free anything, and a
        // sweep of many slots takes longer than the sweep interval. Were the next sweep due an interval after this
        // one began, every rent needing a core would sweep again, under the lock.
        const int max = 200_000;
        var cores = new ResidentCores(generation: 11, maxCores: max);
        var kept = new LeaseCore[max];
        for (int i = 0; i < max; i++)
        {
            kept[i] = new LeaseCore();
            Assert.True(cores.TryRegister(kept[i]));
        }

        long before = Environment.TickCount64;
        Assert.False(cores.TryRegister(new LeaseCore()));
        Assert.Equal(1, cores.SweepCount);
        Assert.True(
            cores.NextSweepDue - before >= Math.Max(ResidentCores.SweepIntervalMilliseconds, 10 * cores.LastSweepMilliseconds),
            $"the next sweep is due {cores.NextSweepDue - before} ms after the first began, which took {cores.LastSweepMilliseconds} ms");

        // Refused at once, without another walk, until it is due.
        for (int i = 0; i < 100; i++)
        {
            Assert.False(cores.TryRegister(new LeaseCore()));
        }

        Assert.Equal(1, cores.SweepCount);
        GC.KeepAlive(kept);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static long RentAndDrop(DirectBufferPool pool) => pool.Rent(128).Id;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RegisterAndDrop(ResidentCores cores) => Assert.True(cores.TryRegister(new LeaseCore()));
}
