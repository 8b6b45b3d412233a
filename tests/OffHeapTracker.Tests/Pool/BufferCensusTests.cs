using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Pool;

/// <summary>The always-on age census with the monitor off: what <see cref="DirectBufferPool.TakeCensus"/> finds, on every rent and return path.</summary>
public sealed class BufferCensusTests
{
    private readonly ResidentBufferMonitor _off = new();
    private readonly ManualTimeProvider _time = new();

    public static TheoryData<BufferBacking> Backings => [BufferBacking.Native, BufferBacking.PinnedArray];

    [Theory]
    [MemberData(nameof(Backings))]
    public void MonitorOff_FindsPlantedOldNormalBuffers_AndIgnoresYoungAndPoolOnes(BufferBacking backing) => FreshThread.Run(() =>
    {
        using DirectBufferPool pool = CreatePool(o => o.Backing = backing);
        var old = Enumerable.Range(0, 3).Select(_ => pool.Rent(4096)).ToList();
        DirectBuffer resident = pool.Rent(1000, BufferType.Pool);
        _time.Advance(TimeSpan.FromMinutes(2));
        var young = Enumerable.Range(0, 2).Select(_ => pool.Rent(4096)).ToList();

        BufferCensus census = pool.TakeCensus();

        Assert.False(_off.IsEnabled);
        Assert.Equal(3, census.CountOlderThan(TimeSpan.FromMinutes(1), BufferType.Normal));
        Assert.Equal(3 * 4096, census.BytesOlderThan(TimeSpan.FromMinutes(1), BufferType.Normal));
        Assert.Equal(1, census.CountOlderThan(TimeSpan.FromMinutes(1), BufferType.Pool));
        Assert.Equal(1024, census.BytesOlderThan(TimeSpan.FromMinutes(1), BufferType.Pool));
        Assert.Equal(4, census.CountOlderThan(TimeSpan.FromMinutes(1)));
        Assert.Equal(5, census.CountOlderThan(TimeSpan.Zero, BufferType.Normal));
        Assert.Equal(0, census.CountOlderThan(TimeSpan.FromMinutes(3)));
        Assert.Equal(TimeSpan.FromMinutes(2), census.GetOldestAge(BufferType.Normal));
        Assert.Equal(TimeSpan.FromMinutes(2), census.GetOldestAge(BufferType.Pool));
        Assert.Equal("test", census.PoolName);
        Assert.Equal(_time.GetUtcNow(), census.TakenAt);

        IReadOnlyList<BufferAgeBucket> normal = census.GetHistogram(BufferType.Normal);
        Assert.Equal(new long[] { 2, 0, 0, 3, 0, 0 }, normal.Select(b => b.Count));
        Assert.Equal(new[] { TimeSpan.Zero, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10), TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(10), TimeSpan.FromHours(1) }, normal.Select(b => b.MinAge));
        Assert.Equal(TimeSpan.MaxValue, normal[^1].MaxAge);
        Assert.Equal(3 * 4096, normal[3].Bytes);
        Assert.Equal(new long[] { 0, 0, 0, 1, 0, 0 }, census.GetHistogram(BufferType.Pool).Select(b => b.Count));
        Assert.Equal(new long[] { 2, 0, 0, 4, 0, 0 }, census.GetHistogram().Select(b => b.Count));

        old.ForEach(l => l.Dispose());
        young.ForEach(l => l.Dispose());
        resident.Dispose();
    });

    [Fact]
    public void ReturnedBuffers_LeaveTheCensus_AndACachedBlockRentedAgainIsYoung() => FreshThread.Run(() =>
    {
        using DirectBufferPool pool = CreatePool();
        DirectBuffer first = pool.Rent(4096);
        DirectBuffer second = pool.Rent(4096);
        nint firstAddress = first.Address;
        _time.Advance(TimeSpan.FromMinutes(5));

        // A return parks the block in this thread's cache; the next rent of the size takes it from there.
        first.Dispose();
        Assert.Equal(4096, pool.CachedBytesOfCurrentThread());
        BufferCensus afterReturn = pool.TakeCensus();
        Assert.Equal(1, afterReturn.CountOlderThan(TimeSpan.Zero));
        Assert.Equal(1, afterReturn.CountOlderThan(TimeSpan.FromMinutes(5)));

        DirectBuffer again = pool.Rent(4096);
        Assert.Equal(firstAddress, again.Address);
        Assert.Equal(0, pool.CachedBytesOfCurrentThread());
        BufferCensus afterRentAgain = pool.TakeCensus();
        Assert.Equal(2, afterRentAgain.CountOlderThan(TimeSpan.Zero));
        Assert.Equal(1, afterRentAgain.CountOlderThan(TimeSpan.FromSeconds(1)));

        second.Dispose();
        again.Dispose();
        BufferCensus empty = pool.TakeCensus();
        Assert.Equal(0, empty.CountOlderThan(TimeSpan.Zero));
        Assert.Equal(0, empty.BytesOlderThan(TimeSpan.Zero));
        Assert.Null(empty.GetOldestAge());
        Assert.All(empty.GetHistogram(), b => Assert.Equal(0, b.Count));
    });

    [Fact]
    public void BlocksReturnedPastAFullThreadCache_LeaveTheCensus() => FreshThread.Run(() =>
    {
        // 40 blocks of 4 KiB: 16 fit in this thread's cache, the rest go to the shared list and come back from it.
        using DirectBufferPool pool = CreatePool();
        var leases = Enumerable.Range(0, 40).Select(_ => pool.Rent(4096)).ToList();
        _time.Advance(TimeSpan.FromMinutes(1));
        leases.ForEach(l => l.Dispose());
        Assert.Equal(0, pool.TakeCensus().CountOlderThan(TimeSpan.Zero));

        leases = Enumerable.Range(0, 40).Select(_ => pool.Rent(4096)).ToList();
        BufferCensus census = pool.TakeCensus();
        Assert.Equal(40, census.CountOlderThan(TimeSpan.Zero));
        Assert.Equal(0, census.CountOlderThan(TimeSpan.FromSeconds(1)));
        leases.ForEach(l => l.Dispose());
    });

    [Fact]
    public void ABlockAnotherThreadReturned_IsStampedWhenRentedHere()
    {
        // One 1 MiB slab of sixteen 64 KiB blocks fills the capacity; another thread returns the sixteenth (into its
        // cache, or the shared list once it exits), and the next rent here gets it back rather than falling back.
        using DirectBufferPool pool = CreatePool(o => o.CapacityBytes = 1 << 20);
        var held = Enumerable.Range(0, 15).Select(_ => pool.Rent(64 * 1024)).ToList();
        FreshThread.Run(() => pool.Rent(64 * 1024).Dispose());
        Assert.Equal(15, pool.TakeCensus().CountOlderThan(TimeSpan.Zero));
        DirectBuffer last = pool.Rent(64 * 1024);
        Assert.Equal(0, pool.GetStatistics().FallbackCount);

        _time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(16, pool.TakeCensus().CountOlderThan(TimeSpan.FromSeconds(30)));
        held.ForEach(l => l.Dispose());
        last.Dispose();
        Assert.Equal(0, pool.TakeCensus().CountOlderThan(TimeSpan.Zero));
    }

    [Fact]
    public void UnpooledBuffers_AreCountedWithTheirLength_UntilReturned()
    {
        using DirectBufferPool pool = CreatePool(o => o.MaxPooledBufferSize = 4096);
        DirectBuffer big = pool.Rent(10_000);
        DirectBuffer bigResident = pool.Rent(20_000, BufferType.Pool);
        _time.Advance(TimeSpan.FromSeconds(20));

        BufferCensus census = pool.TakeCensus();
        Assert.Equal(2, pool.GetStatistics().FallbackCount);
        Assert.Equal(1, census.CountOlderThan(TimeSpan.FromSeconds(10), BufferType.Normal));
        Assert.Equal(10_000, census.BytesOlderThan(TimeSpan.FromSeconds(10), BufferType.Normal));
        Assert.Equal(20_000, census.BytesOlderThan(TimeSpan.FromSeconds(10), BufferType.Pool));
        Assert.Equal(TimeSpan.FromSeconds(20), census.GetOldestAge());

        big.Dispose();
        bigResident.Dispose();
        Assert.Equal(0, pool.TakeCensus().CountOlderThan(TimeSpan.Zero));
    }

    [Fact]
    public void BuffersOutstandingWhenThePoolIsDisposed_StayCounted()
    {
        DirectBufferPool pool = CreatePool();
        DirectBuffer lease = pool.Rent(4096);
        pool.Dispose();
        _time.Advance(TimeSpan.FromMinutes(1));

        Assert.Equal(1, pool.TakeCensus().CountOlderThan(TimeSpan.FromMinutes(1)));
        lease.Dispose();
        Assert.Equal(0, pool.TakeCensus().CountOlderThan(TimeSpan.Zero));
    }

    [Fact]
    public void WithTheSystemClock_AFreshBufferIsYoungAndCounted()
    {
        using DirectBufferPool pool = Pools.Create(_off, o => o.TrimAfter = Timeout.InfiniteTimeSpan);
        using DirectBuffer lease = pool.Rent(4096);

        BufferCensus census = pool.TakeCensus();

        // The coarse clock lags by one 100 ms period plus scheduling; 30 s is a margin no loaded 2-core box reaches.
        Assert.Equal(1, census.CountOlderThan(TimeSpan.Zero));
        Assert.InRange(census.GetOldestAge()!.Value, TimeSpan.Zero, TimeSpan.FromSeconds(30));
    }

    [Fact]
    public void CoarseClock_Advances()
    {
        Assert.True(CoarseClock.TryStart());
        long first = CoarseClock.Now;
        Assert.NotEqual(0, first);

        // Published every 100 ms; the wait is bounded generously for a loaded machine.
        Assert.True(SpinWait.SpinUntil(() => CoarseClock.Now != first, TimeSpan.FromSeconds(30)));
        Assert.True(CoarseClock.Now > first);
    }

    [Theory]
    [InlineData(-1L)]
    [InlineData(long.MinValue)]
    public void NegativeAges_AreRejected(long ticks)
    {
        using DirectBufferPool pool = CreatePool();
        BufferCensus census = pool.TakeCensus();

        var count = Assert.Throws<ArgumentOutOfRangeException>(() => census.CountOlderThan(TimeSpan.FromTicks(ticks)));
        var bytes = Assert.Throws<ArgumentOutOfRangeException>(() => census.BytesOlderThan(TimeSpan.FromTicks(ticks), BufferType.Normal));
        Assert.All(new[] { count, bytes }, e =>
        {
            Assert.Equal("age", e.ParamName);
            Assert.Contains("TimeSpan.Zero or more", e.Message, StringComparison.Ordinal);
        });
    }

    [Theory]
    [InlineData(2)]
    [InlineData(-1)]
    public void UndefinedBufferTypes_AreRejected(int type)
    {
        using DirectBufferPool pool = CreatePool();
        BufferCensus census = pool.TakeCensus();
        var undefined = (BufferType)type;

        ArgumentOutOfRangeException[] errors =
        [
            Assert.Throws<ArgumentOutOfRangeException>(() => census.CountOlderThan(TimeSpan.Zero, undefined)),
            Assert.Throws<ArgumentOutOfRangeException>(() => census.BytesOlderThan(TimeSpan.Zero, undefined)),
            Assert.Throws<ArgumentOutOfRangeException>(() => census.GetOldestAge(undefined)),
            Assert.Throws<ArgumentOutOfRangeException>(() => census.GetHistogram(undefined)),
        ];
        Assert.All(errors, e =>
        {
            Assert.Equal("type", e.ParamName);
            Assert.Contains("BufferType.Normal, BufferType.Pool, or null", e.Message, StringComparison.Ordinal);
        });
    }

    [Fact]
    [Trait("Category", "Load")]
    public async Task CensusesTakenDuringConcurrentRentsAndReturns_NeverThrow_AndEndAtZero()
    {
        // The system clock, so the coarse clock's path is the one under load. Sizes cover cached, shared-list,
        // large and unpooled blocks, and both buffer types.
        using DirectBufferPool pool = Pools.Create(_off, o =>
        {
            o.MaxPooledBufferSize = 64 * 1024;
            o.TrimAfter = Timeout.InfiniteTimeSpan;
        });
        int[] sizes = [512, 4096, 16 * 1024, 64 * 1024, 100_000];
        const int Workers = 4;
        const int HeldPerWorker = 8;
        using var stop = new CancellationTokenSource();
        Task[] workers = Enumerable.Range(0, Workers).Select(w => Task.Factory.StartNew(
            () =>
            {
                var random = new Random(w);
                var held = new Queue<DirectBuffer>();
                while (!stop.IsCancellationRequested)
                {
                    held.Enqueue(pool.Rent(sizes[random.Next(sizes.Length)], random.Next(4) == 0 ? BufferType.Pool : BufferType.Normal));
                    if (held.Count == HeldPerWorker)
                    {
                        held.Dequeue().Dispose();
                    }
                }

                while (held.TryDequeue(out DirectBuffer? lease))
                {
                    lease.Dispose();
                }
            },
            TaskCreationOptions.LongRunning)).ToArray();

        int censuses = 0;
        var deadline = DateTime.UtcNow.AddMilliseconds(500);
        while (DateTime.UtcNow < deadline || censuses < 20)
        {
            // Not an atomic snapshot: a block returned and another rented during the walk may both be seen, so the
            // count may exceed what was out at any one instant; it is never negative and always self-consistent.
            BufferCensus census = pool.TakeCensus();
            long count = census.CountOlderThan(TimeSpan.Zero);
            Assert.True(count >= 0);
            Assert.True(census.BytesOlderThan(TimeSpan.Zero) >= count * 512);
            Assert.Equal(count, census.GetHistogram().Sum(b => b.Count));
            Assert.Equal(count, census.CountOlderThan(TimeSpan.Zero, BufferType.Normal) + census.CountOlderThan(TimeSpan.Zero, BufferType.Pool));
            censuses++;
        }

        stop.Cancel();
        await Task.WhenAll(workers);
        BufferCensus end = pool.TakeCensus();
        Assert.Equal(0, end.CountOlderThan(TimeSpan.Zero));
        Assert.Equal(0, pool.OutstandingCount);
    }

    private DirectBufferPool CreatePool(Action<DirectBufferPoolOptions>? configure = null) => Pools.Create(_off, o =>
    {
        o.TimeProvider = _time;
        o.TrimAfter = Timeout.InfiniteTimeSpan;
        configure?.Invoke(o);
    });
}
