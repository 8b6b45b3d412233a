using System.Buffers;
using System.Runtime.CompilerServices;

namespace OffHeapTracker.Testing.Tests;

/// <summary>The scope finds what a test left behind, names where it came from, and stays quiet when nothing was.</summary>
public sealed class BufferTestScopeTests
{
    [Fact]
    public void CleanCode_PassesEveryCheck_AndDisposeDisposesThePools()
    {
        var scope = new BufferTestScope();
        DirectBufferPool other = scope.CreatePool("other");
        UseAndReturn(scope.Pool);
        UseAndReturn(other);

        scope.AssertNoOutstanding();
        scope.AssertNoLeaks();
        scope.Verify();
        scope.Dispose();

        Assert.Throws<ObjectDisposedException>(() => scope.Pool.Rent(16));
        Assert.Throws<ObjectDisposedException>(() => other.Rent(16));
        Assert.False(scope.Monitor.IsEnabled);
    }

    [Fact]
    public void AnOutstandingBuffer_FailsWithItsStack_UntilItIsReturned()
    {
        using var scope = new BufferTestScope("orders");
        DirectBuffer kept = KeepOne(scope.Pool);

        BufferLeakException ex = Assert.Throws<BufferLeakException>(scope.AssertNoOutstanding);
        Assert.Contains("Pool 'orders' has 1 lease outstanding.", ex.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(KeepOne), ex.Message, StringComparison.Ordinal);
        Assert.Contains("bytes, Normal, rented", ex.Message, StringComparison.Ordinal);

        kept.Dispose();
        scope.AssertNoOutstanding();
    }

    [Fact]
    public void ABufferDroppedWithoutDispose_IsFoundByForcedFinalizers_WithItsStack()
    {
        var scope = new BufferTestScope("dropping");
        DropOne(scope.Pool);

        BufferLeakException ex = Assert.Throws<BufferLeakException>(scope.AssertNoLeaks);
        Assert.Contains("1 lease was garbage-collected without Dispose", ex.Message, StringComparison.Ordinal);
        Assert.Contains("of pool 'dropping'", ex.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(DropOne), ex.Message, StringComparison.Ordinal);
        BufferLeak leak = Assert.Single(scope.Leaks);
        Assert.Equal(200, leak.AllocateSize);

        // Dispose runs the same checks, so a using would have failed the test too; the pool is disposed regardless.
        BufferLeakException onDispose = Assert.Throws<BufferLeakException>(scope.Dispose);
        Assert.Contains(nameof(DropOne), onDispose.Message, StringComparison.Ordinal);
        Assert.Throws<ObjectDisposedException>(() => scope.Pool.Rent(16));
        scope.Dispose();
    }

    [Fact]
    public void ADoubleDispose_FailsWithBothDisposeStacks()
    {
        var scope = new BufferTestScope();
        DisposeTwice(scope.Pool);

        BufferLeakException ex = Assert.Throws<BufferLeakException>(scope.AssertNoLeaks);
        Assert.Contains("1 lease was disposed again after being returned", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Disposed again at:", ex.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(DisposeTwice), ex.Message, StringComparison.Ordinal);
        Assert.Throws<BufferLeakException>(scope.Dispose);
    }

    [Fact]
    public async Task AssertAllReturnedAsync_WaitsForBuffersReturnedElsewhere_AndFailsOnOnesThatNeverCome()
    {
        var scope = new BufferTestScope();
        IMemoryOwner<byte> later = scope.Pool.Rent(64);
        var release = new TaskCompletionSource();
        Task returner = Task.Run(async () =>
        {
            await release.Task;
            later.Dispose();
        });
        Task waiting = scope.AssertAllReturnedAsync(TimeSpan.FromMinutes(1));
        Assert.False(waiting.IsCompleted);
        release.SetResult();
        await waiting;
        await returner;

        DirectBuffer kept = KeepOne(scope.Pool);
        BufferLeakException ex = await Assert.ThrowsAsync<BufferLeakException>(() => scope.AssertAllReturnedAsync(TimeSpan.FromMilliseconds(50)));
        Assert.IsType<TimeoutException>(ex.InnerException);
        Assert.Contains(nameof(KeepOne), ex.Message, StringComparison.Ordinal);
        kept.Dispose();
        scope.Dispose();
    }

    [Fact]
    public void BuffersOfPoolsOutsideTheScope_DoNotCount()
    {
        using var outside = new DirectBufferPool(new DirectBufferPoolOptions { Name = "outside", Monitor = new Monitoring.ResidentBufferMonitor() });
        using IMemoryOwner<byte> held = outside.Rent(32);
        using var scope = new BufferTestScope();
        UseAndReturn(scope.Pool);

        scope.Verify();
        Assert.Equal(1, outside.OutstandingCount);
    }

    [Fact]
    public void Verify_ReportsLeaksAndOutstandingBuffersTogether()
    {
        var scope = new BufferTestScope("both");
        DirectBuffer kept = KeepOne(scope.Pool);
        DropOne(scope.Pool);

        BufferLeakException ex = Assert.Throws<BufferLeakException>(scope.Verify);
        Assert.Contains("garbage-collected without Dispose", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Outstanding:", ex.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(KeepOne), ex.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(DropOne), ex.Message, StringComparison.Ordinal);
        kept.Dispose();
        Assert.Throws<BufferLeakException>(scope.Dispose);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void UseAndReturn(DirectBufferPool pool)
    {
        using DirectBuffer buffer = pool.Rent(128);
        buffer.Memory.Span.Fill(1);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static DirectBuffer KeepOne(DirectBufferPool pool) => pool.Rent(100);

    // Not inlined, so no reference to the lease outlives this frame and the forced collection finds it.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DropOne(DirectBufferPool pool) => _ = pool.Rent(200);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DisposeTwice(DirectBufferPool pool)
    {
        DirectBuffer buffer = pool.Rent(50);
        buffer.Dispose();
        buffer.Dispose();
    }
}
