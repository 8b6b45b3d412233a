using System.Buffers;
using System.Runtime.CompilerServices;

namespace OffHeapTracker.Testing.Tests;

/// <summary>The wrapper for any MemoryPool&lt;byte&gt; finds buffers left out, dropped or disposed twice, with their stacks.</summary>
public sealed class CheckedMemoryPoolTests
{
    [Fact]
    public void CleanUse_Verifies_AndEveryBufferWentBackToTheWrappedPoolOnce()
    {
        var inner = new CountingPool();
        var pool = new CheckedMemoryPool(inner, ownsInner: true);

        for (int i = 0; i < 10; i++)
        {
            using IMemoryOwner<byte> owner = pool.Rent(100);
            owner.Memory.Span.Fill(1);
        }

        pool.Verify();
        Assert.Equal(0, pool.OutstandingCount);
        Assert.Equal(10, inner.Rents);
        Assert.Equal(10, inner.Returns);
        pool.Dispose();
        Assert.True(inner.Disposed);
    }

    [Fact]
    public void ABufferStillOut_FailsWithTheRentingMethod_UntilItIsDisposed()
    {
        using var pool = new CheckedMemoryPool(MemoryPool<byte>.Shared);
        IMemoryOwner<byte> owner = RentForTheOrder(pool);

        BufferLeakException error = Assert.Throws<BufferLeakException>(pool.Verify);
        Assert.Contains("is still out, rented at:", error.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(RentForTheOrder), error.Message, StringComparison.Ordinal);

        owner.Dispose();
        pool.Verify();
    }

    [Fact]
    public void AnOwnerDroppedWithoutDispose_IsFoundByTheCollection_AndNamed()
    {
        var inner = new CountingPool();
        var pool = new CheckedMemoryPool(inner);
        DropOne(pool);

        BufferLeakException error = Assert.Throws<BufferLeakException>(pool.Verify);

        Assert.Contains("was garbage-collected without Dispose; rented at:", error.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(DropOne), error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("still out", error.Message, StringComparison.Ordinal);

        // Its buffer is kept from the wrapped pool: a span of it may still be in use.
        Assert.Equal(0, inner.Returns);
    }

    [Fact]
    public void ASecondDispose_IsReported_AndTheBufferGoesBackOnlyOnce()
    {
        var inner = new CountingPool();
        var pool = new CheckedMemoryPool(inner);
        IMemoryOwner<byte> owner = pool.Rent(16);

        owner.Dispose();
        owner.Dispose();

        Assert.Equal(1, inner.Returns);
        BufferLeakException error = Assert.Throws<BufferLeakException>(pool.Verify);
        Assert.Contains("was disposed twice", error.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(ASecondDispose_IsReported_AndTheBufferGoesBackOnlyOnce), error.Message, StringComparison.Ordinal);
        Assert.Throws<ObjectDisposedException>(() => owner.Memory);

        // What was found stays found: disposing the pool fails the same way.
        Assert.Throws<BufferLeakException>(pool.Dispose);
    }

    [Fact]
    public void DisposingThePool_RunsTheChecks_AndRentsAreRefusedAfterwards()
    {
        var inner = new CountingPool();
        var pool = new CheckedMemoryPool(inner, ownsInner: true);
        IMemoryOwner<byte> owner = pool.Rent(16);

        Assert.Throws<BufferLeakException>(pool.Dispose);
        Assert.True(inner.Disposed);
        Assert.Throws<ObjectDisposedException>(() => pool.Rent(16));
        owner.Dispose();
        Assert.Throws<ArgumentNullException>(() => new CheckedMemoryPool(null!));
    }

    [Fact]
    public async Task APipeOnTheWrappedPool_ReturnsEverySegment_OnceBothEndsComplete()
    {
        // The README's example: a pipe rents its segments from the pool it is given.
        using var pool = new CheckedMemoryPool(MemoryPool<byte>.Shared);
        var pipe = new System.IO.Pipelines.Pipe(new System.IO.Pipelines.PipeOptions(pool, minimumSegmentSize: 4096));

        await pipe.Writer.WriteAsync(new byte[10_000]);
        Assert.True(pool.OutstandingCount >= 3, $"{pool.OutstandingCount} segments out");
        Assert.Throws<BufferLeakException>(pool.Verify);

        System.IO.Pipelines.ReadResult read = await pipe.Reader.ReadAsync();
        Assert.Equal(10_000, read.Buffer.Length);
        pipe.Reader.AdvanceTo(read.Buffer.End);
        await pipe.Writer.CompleteAsync();
        await pipe.Reader.CompleteAsync();

        pool.Verify();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static IMemoryOwner<byte> RentForTheOrder(MemoryPool<byte> pool) => pool.Rent(64);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DropOne(MemoryPool<byte> pool) => _ = pool.Rent(64);

    /// <summary>A pool that counts rents, returns and its own disposal.</summary>
    private sealed class CountingPool : MemoryPool<byte>
    {
        private int _rents;
        private int _returns;

        public int Rents => Volatile.Read(ref _rents);

        public int Returns => Volatile.Read(ref _returns);

        public bool Disposed { get; private set; }

        public override int MaxBufferSize => 1 << 20;

        public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
        {
            Interlocked.Increment(ref _rents);
            return new Owner(this, new byte[Math.Max(minBufferSize, 1)]);
        }

        protected override void Dispose(bool disposing) => Disposed = true;

        private sealed class Owner(CountingPool pool, byte[] array) : IMemoryOwner<byte>
        {
            public Memory<byte> Memory => array;

            public void Dispose() => Interlocked.Increment(ref pool._returns);
        }
    }
}
