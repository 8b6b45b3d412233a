using System.Runtime.CompilerServices;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Pool;

/// <summary>A pool's life: disposal racing first rents, and a pool nobody disposed but nobody references.</summary>
[Collection(ProcessWideState.Name)]
public sealed class PoolLifetimeTests
{
    [Fact]
    public void FirstRentOfAThread_RacingDispose_EitherSucceedsOrThrowsObjectDisposed_AndCountsOnce()
    {
        var monitor = new ResidentBufferMonitor();
        var unexpected = new List<Exception>();
        for (int round = 0; round < 1000; round++)
        {
            var allocator = new TestAllocator();
            var pool = Pools.Create(monitor, o =>
            {
                o.Allocator = allocator;
                o.TrimAfter = Timeout.InfiniteTimeSpan;
            });

            // Sixteen exited threads, so the racing thread's registration prunes dead threads' caches.
            for (int i = 0; i < 16; i++)
            {
                var warm = new Thread(() => pool.Rent(4096).Dispose());
                warm.Start();
                warm.Join();
            }

            using var go = new ManualResetEventSlim();
            int rented = 0;
            var racer = new Thread(() =>
            {
                go.Wait();
                try
                {
                    pool.Rent(4096).Dispose();
                    rented = 1;
                }
                catch (ObjectDisposedException)
                {
                }
                catch (Exception ex)
                {
                    lock (unexpected)
                    {
                        unexpected.Add(ex);
                    }
                }
            });
            racer.Start();
            go.Set();
            pool.Dispose();
            racer.Join();

            DirectBufferPoolStatistics stats = pool.GetStatistics();
            Assert.Equal(16 + rented, stats.TotalRents);
            Assert.Equal(0, stats.OutstandingCount);
            Assert.Equal(0, allocator.LiveCount);
        }

        Assert.True(unexpected.Count == 0, string.Join("\n\n", unexpected));
    }

    [Fact]
    public void UnreachablePools_AreCollected_AndFreeTheirSlabs()
    {
        var allocator = new TestAllocator();
        WeakReference[] pools = CreateAndUsePools(allocator, count: 300);
        Gc.CollectAndFinalize();
        Gc.CollectAndFinalize();

        int alive = pools.Count(p => p.IsAlive);
        Assert.True(alive == 0, $"{alive} of {pools.Length} unreachable pools are still alive");
        Assert.Equal(0, allocator.LiveCount);
    }

    [Fact]
    public void DisposedLeasesKeptInAField_DoNotKeepTheirPoolAlive()
    {
        var kept = new List<DirectBuffer>();
        WeakReference pool = RentDisposeAndKeepLeases(kept);
        Gc.CollectAndFinalize();
        Assert.False(pool.IsAlive, "a disposed lease kept its pool alive");
        Assert.All(kept, lease => Assert.True(lease.IsDisposed));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference RentDisposeAndKeepLeases(List<DirectBuffer> kept)
    {
        // The monitor on: fresh lease objects, which are never cached, so only the caller's list holds them.
        var pool = Pools.Create(Pools.EnabledMonitor());
        for (int i = 0; i < 4; i++)
        {
            DirectBuffer lease = pool.Rent(4096);
            lease.Dispose();
            kept.Add(lease);
        }

        return new WeakReference(pool);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference[] CreateAndUsePools(TestAllocator allocator, int count)
    {
        var monitor = new ResidentBufferMonitor();
        var pools = new WeakReference[count];
        for (int i = 0; i < count; i++)
        {
            // Default options, so each pool also has a trim timer; rent and return so this thread caches a block
            // and a lease object that came from the pool.
            var pool = Pools.Create(monitor, o => o.Allocator = allocator);
            pool.Rent(4096).Dispose();
            pool.Rent(100_000).Dispose();
            pools[i] = new WeakReference(pool);
        }

        return pools;
    }

    [Fact]
    public void PoolWhoseConstructorThrows_IsFinalizedWithoutCrashingTheProcess()
    {
        ConstructWithFailingLogger();

        // The half-built pool's finalizer runs Dispose(false); were it to throw, the test host would die here.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void ConstructWithFailingLogger() =>
        Assert.Throws<ObjectDisposedException>(() => new DirectBufferPool(new DirectBufferPoolOptions { LoggerFactory = new DisposedLoggerFactory() }));

    private sealed class DisposedLoggerFactory : Microsoft.Extensions.Logging.ILoggerFactory
    {
        public void AddProvider(Microsoft.Extensions.Logging.ILoggerProvider provider) => throw new ObjectDisposedException(nameof(DisposedLoggerFactory));

        public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName) => throw new ObjectDisposedException(nameof(DisposedLoggerFactory));

        public void Dispose()
        {
        }
    }
}
