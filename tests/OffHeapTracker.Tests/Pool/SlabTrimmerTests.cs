using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Pool;

/// <summary>The trim pass runs on the pool's clock, so a test drives it by moving a manual clock.</summary>
public sealed class SlabTrimmerTests
{
    [Fact]
    public void IdleSlab_IsGivenBack_AfterTheClockMovesThroughTrimPasses()
    {
        var clock = new ManualTimeProvider();
        using var pool = Pools.Create(new RecordingMonitor { IsEnabled = false }, o =>
        {
            o.TimeProvider = clock;
            o.TrimAfter = TimeSpan.FromSeconds(1);
        });

        // On a thread that then exits, so its cached block is taken back by the first pass without a handshake.
        var worker = new Thread(() => pool.Rent(4096).Dispose());
        worker.Start();
        worker.Join();
        long reserved = pool.GetStatistics().ReservedBytes;
        Assert.True(reserved > 0);

        // The first pass takes the cached block back and sees the slab free; the next gives back a slab that stayed free.
        clock.Advance(TimeSpan.FromSeconds(1));
        clock.Advance(TimeSpan.FromSeconds(1));

        DirectBufferPoolStatistics stats = pool.GetStatistics();
        Assert.Equal(reserved, stats.TrimmedBytes);
        Assert.Equal(0, stats.ReservedBytes);
    }

    [Fact]
    public void InfiniteTrimAfter_StartsNoTimer()
    {
        var clock = new ManualTimeProvider();
        using var pool = Pools.Create(new RecordingMonitor { IsEnabled = false }, o =>
        {
            o.TimeProvider = clock;
            o.TrimAfter = Timeout.InfiniteTimeSpan;
        });
        var worker = new Thread(() => pool.Rent(4096).Dispose());
        worker.Start();
        worker.Join();

        clock.Advance(TimeSpan.FromDays(1));

        Assert.Equal(0, pool.GetStatistics().TrimmedBytes);
    }

    [Fact]
    public void DisposedPool_StopsItsTimer()
    {
        var clock = new ManualTimeProvider();
        DirectBufferPool pool = Pools.Create(new RecordingMonitor { IsEnabled = false }, o =>
        {
            o.TimeProvider = clock;
            o.TrimAfter = TimeSpan.FromSeconds(1);
        });
        pool.Dispose();

        clock.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal(0, pool.GetStatistics().TrimmedBytes);
    }
}
