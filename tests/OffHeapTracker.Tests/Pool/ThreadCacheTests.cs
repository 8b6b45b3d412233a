using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Pool;

/// <summary>Per-thread block caches: bounded, trimmed from outside, and given back before a rent falls back.</summary>
public sealed class ThreadCacheTests
{
    private const int Block64K = 64 * 1024;

    private readonly ResidentBufferMonitor _off = new();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void CachedBlocksOfExitedOrIdleThreads_AreTakenBackBeforeARentFallsBack(bool threadsStayAlive)
    {
        // 4 MiB = 64 blocks of 64 KiB. Each of 60 threads rents and returns one, so each thread's cache parks one.
        using var pool = Pools.Create(_off, o =>
        {
            o.CapacityBytes = 4 << 20;
            o.TrimAfter = Timeout.InfiniteTimeSpan;
        });
        using var release = new ManualResetEventSlim();
        var threads = new List<Thread>();
        for (int i = 0; i < 60; i++)
        {
            using var ready = new ManualResetEventSlim();
            var thread = new Thread(() =>
            {
                pool.Rent(Block64K).Dispose();
                ready.Set();
                if (threadsStayAlive)
                {
                    release.Wait();
                }
            });
            thread.Start();
            ready.Wait();
            threads.Add(thread);
            if (!threadsStayAlive)
            {
                thread.Join();
            }
        }

        try
        {
            Assert.Equal(0, pool.OutstandingCount);
            var leases = Enumerable.Range(0, 48).Select(_ => pool.Rent(Block64K)).ToList();
            Assert.Equal(0, pool.GetStatistics().FallbackCount);
            leases.ForEach(l => l.Dispose());
        }
        finally
        {
            release.Set();
            threads.ForEach(t => t.Join());
        }
    }

    [Fact]
    public void Trimming_ReachesTheCacheOfAnIdleLiveThread()
    {
        using var pool = Pools.Create(_off, o => o.TrimAfter = Timeout.InfiniteTimeSpan);
        using var release = new ManualResetEventSlim();
        using var parked = new ManualResetEventSlim();
        var thread = new Thread(() =>
        {
            // Fills this thread's cache for the 4 KiB class and returns; then the thread idles.
            var leases = Enumerable.Range(0, 8).Select(_ => pool.Rent(4096)).ToList();
            leases.ForEach(l => l.Dispose());
            parked.Set();
            release.Wait();
        });
        thread.Start();
        parked.Wait();
        try
        {
            Assert.Equal(1 << 20, pool.GetStatistics().ReservedBytes);

            // Pass one sees the thread busy-or-idle and marks; by pass three the idle cache is back and the slab is freed.
            for (int pass = 0; pass < 3; pass++)
            {
                pool.TrimIdleSlabs();
            }

            Assert.Equal(0, pool.GetStatistics().ReservedBytes);
            Assert.Equal(1 << 20, pool.GetStatistics().TrimmedBytes);
        }
        finally
        {
            release.Set();
            thread.Join();
        }
    }

    [Fact]
    public void OneThreadsCache_IsBoundedInBytes_AndKeepsNoLargeBlocks()
    {
        using var pool = Pools.Create(_off, o => o.TrimAfter = Timeout.InfiniteTimeSpan);
        var leases = new List<DirectBuffer>();
        for (int size = 512; size <= DirectBufferPoolOptions.DefaultMaxPooledBufferSize; size *= 2)
        {
            for (int i = 0; i < 200; i++)
            {
                leases.Add(pool.Rent(size));
            }
        }

        leases.ForEach(l => l.Dispose());
        Assert.InRange(pool.CachedBytesOfCurrentThread(), 1, OffHeapTracker.PoolThreadState.MaxCachedBytes);
    }
}
