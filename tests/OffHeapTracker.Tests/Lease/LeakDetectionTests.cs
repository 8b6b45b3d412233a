using System.Buffers;
using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.CompilerServices;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Lease;

/// <summary>Leases dropped without Dispose: caught by the finalizer, counted, logged, reported, and their blocks kept out of circulation.</summary>
/// <remarks>GC-driven, so these run apart from other tests (their dropped leases would count here).</remarks>
[Collection(ProcessWideState.Name)]
public sealed class LeakDetectionTests
{
    [Fact]
    public void DroppedLease_WithTheMonitorOn_IsReportedWithItsStackAgeAndContext_AndStaysInUse()
    {
        var time = new ManualTimeProvider();
        var logs = new CapturingLoggerFactory();
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(time);
        var leaks = new ConcurrentQueue<BufferLeak>();
        monitor.LeakDetected += (sender, leak) =>
        {
            Assert.Same(monitor, sender);
            leaks.Enqueue(leak);
        };
        using var pool = Pools.Create(monitor, o =>
        {
            o.LoggerFactory = logs;
            o.TimeProvider = time;
        });

        long id = DropALease(pool, "GET /reports/7");
        time.Advance(TimeSpan.FromSeconds(3));
        Gc.CollectAndFinalize();

        DirectBufferPoolStatistics stats = pool.GetStatistics();
        Assert.Equal(1, stats.LeakedCount);
        Assert.Equal(8192, stats.LeakedBytes);
        Assert.Equal(1, stats.OutstandingCount);
        Assert.Equal(8192, stats.InUseBytes);
        Assert.Equal(0, monitor.Count);

        BufferLeak reported = Assert.Single(leaks);
        Assert.Equal(id, reported.Id);
        Assert.Equal("test", reported.PoolName);
        Assert.Equal(5000, reported.AllocateSize);
        Assert.Equal(8192, reported.ActualSize);
        Assert.Equal(BufferType.Normal, reported.BufferType);
        Assert.Equal(TimeSpan.FromSeconds(3), reported.Age);
        Assert.Equal("GET /reports/7", reported.Context);
        Assert.StartsWith("OffHeapTracker.Tests.Lease.LeakDetectionTests.DropALease(DirectBufferPool, String)", reported.StackTrace, StringComparison.Ordinal);

        LogEntry warning = Assert.Single(logs.WithEvent("BufferLeaked"));
        Assert.Equal(8, warning.EventId.Id);
        Assert.Contains($"Buffer {id} of pool test (8192 bytes, Normal) was garbage-collected without Dispose after 3.000 s, context GET /reports/7", warning.Message, StringComparison.Ordinal);
        Assert.Contains("LeakDetectionTests.DropALease", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DroppedLease_WithTheMonitorOff_IsReported_AndItsBlockNeverReissued()
    {
        var logs = new CapturingLoggerFactory();
        var monitor = new ResidentBufferMonitor();
        int reported = 0;
        monitor.LeakDetected += (_, leak) =>
        {
            Assert.Null(leak.StackTrace);
            Assert.Null(leak.Age);
            Interlocked.Increment(ref reported);
        };
        using var pool = Pools.Create(monitor, o => o.LoggerFactory = logs);

        nint address = DropALeaseAt(pool);
        Gc.CollectAndFinalize();

        Assert.Equal(1, pool.GetStatistics().LeakedCount);
        Assert.Equal(1, pool.OutstandingCount);
        Assert.Equal(1, reported);
        string message = Assert.Single(logs.WithEvent("BufferLeaked")).Message;
        Assert.Contains("not captured: enable the monitor", message, StringComparison.Ordinal);
        Assert.Contains("kept out of circulation", message, StringComparison.Ordinal);

        // A span of the dropped lease may still be in use: no later rent may get its block.
        var next = Enumerable.Range(0, 300).Select(_ => pool.Rent(4096)).ToList();
        Assert.DoesNotContain(address, next.Select(Addresses.Of));
        next.ForEach(l => l.Dispose());
    }

    [Fact]
    public void DroppedLease_WithReclaimOptedIn_GoesBackToThePool()
    {
        var logs = new CapturingLoggerFactory();
        using var pool = Pools.Create(new ResidentBufferMonitor(), o =>
        {
            o.LoggerFactory = logs;
            o.ReclaimLeakedBuffers = true;
        });

        nint address = DropALeaseAt(pool);
        Gc.CollectAndFinalize();

        DirectBufferPoolStatistics stats = pool.GetStatistics();
        Assert.Equal(1, stats.LeakedCount);
        Assert.Equal(0, stats.LeakedBytes);
        Assert.Equal(0, stats.OutstandingCount);
        Assert.Contains("went back to the pool", Assert.Single(logs.WithEvent("BufferLeaked")).Message, StringComparison.Ordinal);
        using DirectBuffer next = pool.Rent(4096);
        Assert.Equal(address, Addresses.Of(next));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public unsafe void DroppedLeases_WhoseSpansAreStillInUse_NeverShareTheirBytes(bool monitorOn)
    {
        ResidentBufferMonitor monitor = monitorOn ? Pools.EnabledMonitor() : new ResidentBufferMonitor();
        using var pool = Pools.Create(monitor);

        // The common bug: keep a span (here its address), drop the lease. The lease dies; the span lives on.
        nint[] views = FillAndDropLeases(pool, count: 20, pattern: 0xA5);
        Gc.CollectAndFinalize();

        var others = Enumerable.Range(0, 40).Select(_ => pool.Rent(4096)).ToList();
        others.ForEach(l => l.GetSpan().Fill(0x5A));
        foreach (nint view in views)
        {
            Assert.Equal(-1, new ReadOnlySpan<byte>((void*)view, 4096).IndexOfAnyExcept((byte)0xA5));
        }

        Assert.Equal(20, pool.GetStatistics().LeakedCount);
        others.ForEach(l => l.Dispose());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task LeasesDisposedByAnotherObjectsFinalizer_AreReturned_AndLaterDroppedLeasesAreStillCaught(bool handedToTheThreadPool)
    {
        var monitor = new ResidentBufferMonitor();
        using var pool = Pools.Create(monitor);

        // Wrappers whose finalizers dispose their leases (on the finalizer thread, or handed to the thread pool):
        // collected together with the leases, finalized in any order.
        DropWrappedLeases(pool, 200, handedToTheThreadPool);
        Gc.CollectAndFinalize();

        // Handed-off disposals run on the thread pool, which a loaded machine may delay by a second or so; the wait
        // ends as soon as the last one lands, and 30 s only turns a lost return into a failure instead of a hang.
        await pool.WhenAllReturnedAsync(TimeSpan.FromSeconds(30));
        Gc.CollectAndFinalize();
        DirectBufferPoolStatistics afterWrappers = pool.GetStatistics();
        Assert.Equal(0, afterWrappers.DoubleDisposeCount);
        Assert.Equal(0, afterWrappers.OutstandingCount);

        // Whatever lease objects those disposals produced must still carry their safety net.
        var thread = new Thread(() => DropLeases(pool, 200));
        thread.Start();
        thread.Join();
        Gc.CollectAndFinalize();

        DirectBufferPoolStatistics stats = pool.GetStatistics();
        Assert.Equal(0, afterWrappers.LeakedCount);
        Assert.Equal(200, stats.LeakedCount);
        Assert.Equal(200, stats.OutstandingCount);
        Assert.Equal(200 * 4096, stats.LeakedBytes);
        Assert.Equal(0, stats.DoubleDisposeCount);
    }

    [Theory]
    [InlineData(false, 1)]
    [InlineData(true, 0)]
    public void DroppedLease_FromADisposedPool_KeepsOnlyTheSlabItLivesIn_UnlessReclaimed(bool reclaim, int slabsLeft)
    {
        var allocator = new TestAllocator();
        var pool = Pools.Create(new ResidentBufferMonitor(), o =>
        {
            o.Allocator = allocator;
            o.ReclaimLeakedBuffers = reclaim;
        });
        using (pool.Rent(100_000))
        {
        }

        DropALeaseAt(pool);
        pool.Dispose();
        Assert.Equal(2, allocator.LiveCount);

        // The 128 KiB class's slab is freed; the 4 KiB one holds a block a span may still be using, unless the
        // pool reclaims leaked blocks.
        Gc.CollectAndFinalize();
        Assert.Equal(slabsLeft, allocator.LiveCount);
        Assert.Equal(1, pool.GetStatistics().LeakedCount);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public unsafe void Pin_KeepsItsLeaseAlive_SoItsBlockIsNeverReissued(bool monitorOn)
    {
        ResidentBufferMonitor monitor = monitorOn ? Pools.EnabledMonitor() : new ResidentBufferMonitor();
        using var pool = Pools.Create(monitor);
        MemoryHandle[] handles = PinAndDropLeases(pool, 32);
        Gc.CollectAndFinalize();

        Assert.Equal(0, pool.GetStatistics().LeakedCount);
        Assert.Equal(32, pool.OutstandingCount);
        var others = Enumerable.Range(0, 64).Select(_ => pool.Rent(4096)).ToList();
        var pinned = handles.Select(h => (nint)h.Pointer).ToHashSet();
        Assert.DoesNotContain(others, l => pinned.Contains(Addresses.Of(l)));
        others.ForEach(l => l.Dispose());

        // Unpinning lets go of the lease: only now can the finalizer find it.
        Unpin(handles);
        Gc.CollectAndFinalize();
        Assert.Equal(32, pool.GetStatistics().LeakedCount);
    }

    [Fact]
    public void LeakHandler_ThatThrows_CannotStopTheLeakBeingCounted()
    {
        var logs = new CapturingLoggerFactory();
        ResidentBufferMonitor monitor = Pools.EnabledMonitor();
        monitor.LeakDetected += (_, _) => throw new InvalidOperationException("handler bug");
        using var pool = Pools.Create(monitor, o => o.LoggerFactory = logs);

        DropALease(pool, "ctx");
        Gc.CollectAndFinalize();

        Assert.Equal(8192, pool.GetStatistics().LeakedBytes);
        Assert.Equal(1, pool.GetStatistics().LeakedCount);
        Assert.Equal(1, pool.GetStatistics().MonitorErrorCount);
        Assert.IsType<InvalidOperationException>(Assert.Single(logs.WithEvent("LeakHandlerFailed")).Exception);
    }

    [Fact]
    public void SharedMonitor_RaisesBufferMonitorLeakDetected()
    {
        using var pool = new DirectBufferPool(new DirectBufferPoolOptions { Name = "shared-leak" });
        var seen = new ConcurrentQueue<BufferLeak>();
        void Handler(object? sender, BufferLeak leak) => seen.Enqueue(leak);
        BufferMonitor.LeakDetected += Handler;
        try
        {
            DropALeaseAt(pool);
            Gc.CollectAndFinalize();
        }
        finally
        {
            BufferMonitor.LeakDetected -= Handler;
        }

        // Only this pool's leak counts: a lease another test dropped from a pool on the shared monitor (the README
        // snippet drops one on purpose) may be finalized in the same collection and reported here too.
        Assert.Single(seen, leak => leak.PoolName == "shared-leak");
    }

    [Fact]
    public void UninitializedLease_FinalizesQuietly()
    {
        // The guard's finalizer body, called directly: an exception from it fails the test here, where on the
        // finalizer thread it would kill the test host. On a fresh thread, because the finalizer marks its thread
        // as one whose lease cache keeps nothing.
        var lease = new DirectBuffer(reusable: true);
        LeaseGuard guard = lease.SafetyNet!;
#pragma warning disable CA1816 // Run by hand below, once: a failing finalizer must not run again on the finalizer thread.
        GC.SuppressFinalize(guard);
#pragma warning restore CA1816
        MethodInfo finalize = typeof(LeaseGuard).GetMethod("Finalize", BindingFlags.Instance | BindingFlags.NonPublic)!;
        FreshThread.Run(() => finalize.Invoke(guard, null));
        Assert.True(lease.IsDisposed);
        Assert.False(lease.IsRecyclable, "a lease object whose guard was finalized must never be lent again");

        // And by the finalizer itself: it completes instead of deferring forever, so the objects go away.
        (WeakReference droppedLease, WeakReference droppedGuard) = CreateAndDropAnUninitializedLease();
        Gc.CollectAndFinalize();
        Assert.False(droppedGuard.IsAlive, "an uninitialized lease's guard was never finalized and collected");
        Assert.False(droppedLease.IsAlive, "an uninitialized lease was never collected");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static long DropALease(DirectBufferPool pool, string context)
    {
        using (BufferMonitor.BeginContext(context))
        {
            return pool.Rent(5000).Id;
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static nint DropALeaseAt(DirectBufferPool pool) => Addresses.Of(pool.Rent(4096));

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static unsafe nint[] FillAndDropLeases(DirectBufferPool pool, int count, byte pattern)
    {
        var views = new nint[count];
        for (int i = 0; i < count; i++)
        {
            Span<byte> span = pool.Rent(4096).GetSpan();
            span.Fill(pattern);
            views[i] = (nint)System.Runtime.CompilerServices.Unsafe.AsPointer(ref span[0]);
        }

        return views;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static MemoryHandle[] PinAndDropLeases(DirectBufferPool pool, int count) =>
        Enumerable.Range(0, count).Select(_ => pool.Rent(4096).Memory.Pin()).ToArray();

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Unpin(MemoryHandle[] handles)
    {
        // In place: disposing a copy would leave the array's handles rooting their leases.
        for (int i = 0; i < handles.Length; i++)
        {
            handles[i].Dispose();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DropWrappedLeases(DirectBufferPool pool, int count, bool handOff)
    {
        for (int i = 0; i < count; i++)
        {
            _ = new DisposingWrapper(pool.Rent(4096), handOff);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DropLeases(DirectBufferPool pool, int count)
    {
        for (int i = 0; i < count; i++)
        {
            _ = pool.Rent(4096);
        }
    }

    // Tracks resurrection: the reference stays alive until the finalizer has run and the object is collected.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static (WeakReference Lease, WeakReference Guard) CreateAndDropAnUninitializedLease()
    {
        var lease = new DirectBuffer(reusable: false, new LeaseCore());
        return (new WeakReference(lease, trackResurrection: true), new WeakReference(lease.SafetyNet, trackResurrection: true));
    }

    /// <summary>An owner whose finalizer disposes the lease it holds.</summary>
    /// <remarks>
    /// Common in user code, and hard on the pool: the owner and the lease become unreachable together, so their
    /// finalizers run in the same pass in either order, and the lease's may see it still rented.
    /// </remarks>
    private sealed class DisposingWrapper(DirectBuffer lease, bool handOff)
    {
        ~DisposingWrapper()
        {
            if (handOff)
            {
                ThreadPool.UnsafeQueueUserWorkItem(static l => l.Dispose(), lease, preferLocal: false);
            }
            else
            {
                lease.Dispose();
            }
        }
    }
}
