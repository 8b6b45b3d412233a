using OffHeapTracker.Slabs;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Pool;

public sealed class ThreadRegistryTests
{
    private static readonly SizeClass[] s_classes = [new SizeClass(4096, NativeAllocator.Instance)];

    [Fact]
    public void GetState_IsOnePerThread_AndSumAddsThemAll()
    {
        var registry = new ThreadRegistry(poolId: -1, s_classes, new HighWaterMark(), static () => { });
        PoolThreadState mine = registry.GetState(ThreadRoot.Current);
        mine.Counters.Add(PoolCounter.Rents, 2);

        PoolThreadState? theirs = null;
        RunOnNewThread(() =>
        {
            theirs = registry.GetState(ThreadRoot.Current);
            theirs.Counters.Add(PoolCounter.Rents, 3);
        });

        Assert.Same(mine, registry.GetState(ThreadRoot.Current));
        Assert.NotSame(mine, theirs);
        Assert.Equal(5, registry.Sum().Get(PoolCounter.Rents));
    }

    [Fact]
    public void ExitedThreads_AreUnlistedAsTheListGrows_TheirCountsKept()
    {
        var registry = new ThreadRegistry(poolId: -2, s_classes, new HighWaterMark(), static () => { });
        for (int i = 0; i < 40; i++)
        {
            RunOnNewThread(() => registry.GetState(ThreadRoot.Current).Counters.Add(PoolCounter.Rents, 1));
        }

        // Each time 16 states are listed, a new thread first unlists the exited ones: never more than 16 remain.
        Assert.True(registry.States.Length <= 16, $"{registry.States.Length} states listed for 40 exited threads");
        Assert.Equal(40, registry.Sum().Get(PoolCounter.Rents));
    }

    [Fact]
    public void ExitedThreadThatStillCachesBlocks_StaysListedUntilTheBlocksAreTakenBack()
    {
        var registry = new ThreadRegistry(poolId: -3, s_classes, new HighWaterMark(), static () => { });
        PoolThreadState? caching = null;
        RunOnNewThread(() =>
        {
            caching = registry.GetState(ThreadRoot.Current);
            Assert.True(caching.TryKeepBlock(sizeClass: 0, block: 7));
        });

        for (int i = 0; i < 40; i++)
        {
            RunOnNewThread(() => registry.GetState(ThreadRoot.Current));
        }

        Assert.Contains(caching, registry.States);
    }

    [Fact]
    public void AnotherRegistry_NeverSeesThisRegistrysStateOnTheSameThread()
    {
        var first = new ThreadRegistry(poolId: -4, s_classes, new HighWaterMark(), static () => { });
        PoolThreadState state = first.GetState(ThreadRoot.Current);
        first.ReleaseSlot();

        // Likely takes the released slot: the state found there belongs to another pool id and is not reused.
        var second = new ThreadRegistry(poolId: -5, s_classes, new HighWaterMark(), static () => { });

        Assert.NotSame(state, second.GetState(ThreadRoot.Current));
        Assert.Equal(-5, second.GetState(ThreadRoot.Current).PoolId);
        second.ReleaseSlot();
    }

    private static void RunOnNewThread(Action action) => FreshThread.Run(action);

    [Fact]
    public void PoolWithoutTrimming_StillUnlistsExitedThreadsThatCachedBlocks()
    {
        using var pool = new DirectBufferPool(new DirectBufferPoolOptions { Monitor = new RecordingMonitor { IsEnabled = false }, TrimAfter = Timeout.InfiniteTimeSpan });
        for (int i = 0; i < 40; i++)
        {
            // Each thread returns its block into its own cache, then exits.
            RunOnNewThread(() => pool.Rent(4096).Dispose());
        }

        // Their blocks went back to the shared lists before each prune, so their states could be unlisted.
        Assert.True(pool.ListedThreadStates <= 17, $"{pool.ListedThreadStates} states listed for 40 exited threads");
        Assert.Equal(0, pool.OutstandingCount);
    }
}
