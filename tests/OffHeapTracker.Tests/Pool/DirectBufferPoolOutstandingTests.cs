using System.Runtime.CompilerServices;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Pool;

/// <summary>The helpers users put in their own suites: <see cref="DirectBufferPool.AssertNoOutstanding"/> and <see cref="DirectBufferPool.WhenAllReturnedAsync"/>.</summary>
public sealed class DirectBufferPoolOutstandingTests
{
    [Fact]
    public void AssertNoOutstanding_PassesWhenEverythingCameBack()
    {
        using var pool = Pools.Create(Pools.EnabledMonitor());
        pool.Rent(10).Dispose();
        pool.AssertNoOutstanding();
        Assert.Equal(0, pool.OutstandingCount);
    }

    [Fact]
    public void AssertNoOutstanding_ListsEachLeaseWithItsStackAndContext()
    {
        var time = new ManualTimeProvider();
        ResidentBufferMonitor monitor = Pools.EnabledMonitor(time);
        using var pool = Pools.Create(monitor);
        using var other = Pools.Create(monitor);
        using DirectBuffer elsewhere = other.Rent(10);
        DirectBuffer kept;
        using (BufferMonitor.BeginContext("conn 3"))
        {
            kept = ForgetOne(pool);
        }

        time.Advance(TimeSpan.FromSeconds(2));
        var ex = Assert.Throws<InvalidOperationException>(pool.AssertNoOutstanding);
        string expectedStart =
            "Pool 'test' has 1 lease outstanding.\n" +
            $"- buffer {kept.Id}: 512 bytes, Normal, rented 2.000 s ago, context 'conn 3'\n" +
            "    at OffHeapTracker.Tests.Pool.DirectBufferPoolOutstandingTests.ForgetOne(DirectBufferPool)\n";
        Assert.StartsWith(expectedStart, ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(elsewhere.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), ex.Message, StringComparison.Ordinal);
        kept.Dispose();
        pool.AssertNoOutstanding();
    }

    [Fact]
    public void AssertNoOutstanding_WithTheMonitorOff_SaysHowToSeeMore()
    {
        using var pool = Pools.Create(new ResidentBufferMonitor());
        using DirectBuffer a = pool.Rent(10);
        using DirectBuffer b = pool.Rent(10);
        var ex = Assert.Throws<InvalidOperationException>(pool.AssertNoOutstanding);
        Assert.Equal(
            "Pool 'test' has 2 leases outstanding.\n2 leases were not listed by the monitor (it was off when they were rented, or it does not list records); enable it (BufferMonitor.Enable(), or a ResidentBufferMonitor in the options) to list them with their stacks.",
            ex.Message);
    }

    [Fact]
    public async Task WhenAllReturnedAsync_CompletesWhenTheLastLeaseComesBack()
    {
        using var pool = Pools.Create(Pools.EnabledMonitor());
        Assert.True(pool.WhenAllReturnedAsync(TimeSpan.Zero).IsCompletedSuccessfully);

        DirectBuffer a = pool.Rent(10);
        DirectBuffer b = pool.Rent(10);
        // The wait ends when the last lease is back, microseconds after b's Dispose; 30 s only bounds a missed wake-up.
        Task drained = pool.WhenAllReturnedAsync(TimeSpan.FromSeconds(30));
        Assert.False(drained.IsCompleted);

        // A wait wrongly woken by the first return completes on the thread pool: give it a moment to show.
        a.Dispose();
        await Task.Delay(20);
        Assert.False(drained.IsCompleted);

        await Task.Run(b.Dispose);
        await drained;
        Assert.Equal(0, pool.OutstandingCount);
    }

    [Fact]
    public async Task WhenAllReturnedAsync_TimesOutListingWhatIsStillOut()
    {
        using var pool = Pools.Create(Pools.EnabledMonitor());
        using DirectBuffer kept = ForgetOne(pool);
        var ex = await Assert.ThrowsAsync<TimeoutException>(() => pool.WhenAllReturnedAsync(TimeSpan.FromMilliseconds(50)));
        Assert.Contains("Timed out after 00:00:00.0500000 waiting for leases to come back. Pool 'test' has 1 lease outstanding.", ex.Message, StringComparison.Ordinal);
        Assert.Contains("ForgetOne", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WhenAllReturnedAsync_HonoursCancellationAndRejectsNegativeTimeouts()
    {
        using var pool = Pools.Create(new ResidentBufferMonitor());
        using DirectBuffer kept = pool.Rent(10);
        using var cancel = new CancellationTokenSource();
        Task waiting = pool.WhenAllReturnedAsync(Timeout.InfiniteTimeSpan, cancel.Token);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        Assert.Equal("timeout", Assert.Throws<ArgumentOutOfRangeException>(() => { _ = pool.WhenAllReturnedAsync(TimeSpan.FromSeconds(-2)); }).ParamName);
    }

    [Fact]
    public async Task WhenAllReturnedAsync_NeverMissesAReturnThatRacesWithTheWait()
    {
        using var pool = Pools.Create(new ResidentBufferMonitor());
        for (int i = 0; i < 500; i++)
        {
            DirectBuffer lease = pool.Rent(10);
            Task returning = Task.Run(lease.Dispose);

            // A missed return never wakes the wait, which then times out; one that wakes too early finds the lease
            // still out. A return takes microseconds, so 10 s is no budget: it only turns a hang into a failure.
            await pool.WhenAllReturnedAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(0, pool.OutstandingCount);
            Assert.True(lease.IsDisposed);
            await returning;
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static DirectBuffer ForgetOne(DirectBufferPool pool) => pool.Rent(100);
}
