namespace OffHeapTracker.Native;

/// <summary>What one thread keeps for one pool: a few free blocks per size class, and counters only it writes.</summary>
/// <remarks>
/// <para>
/// Only the owning thread touches <see cref="Blocks"/> and <see cref="BlockCounts"/>, and only it writes the
/// counters. Other threads only read the counters, with <see cref="Volatile"/> reads, to sum them. So the rent
/// and return fast paths need no interlocked operation. The one exception is a pool pruning a dead thread's
/// state, which then has no writer left.
/// </para>
/// <para>
/// Cached blocks are free but parked: at most <see cref="CachedBytesPerClass"/> per class per thread (at least
/// one block), the same trade ArrayPool makes with its per-thread slot.
/// </para>
/// </remarks>
internal sealed class PoolThreadState
{
    /// <summary>The most bytes of free blocks one thread parks per size class: 16 blocks of 4 KiB.</summary>
    public const int CachedBytesPerClass = 64 * 1024;

    public PoolThreadState(object owner, SizeClass[] classes)
    {
        Owner = owner;
        Thread = Thread.CurrentThread;
        Blocks = new int[classes.Length][];
        BlockCounts = new int[classes.Length];
        for (int i = 0; i < classes.Length; i++)
        {
            Blocks[i] = new int[Math.Max(1, CachedBytesPerClass / classes[i].BlockSize)];
        }
    }

    /// <summary>Gets the pool this state belongs to; a thread-static slot reused by a newer pool is recognised by it.</summary>
    public object Owner { get; }

    public Thread Thread { get; }

    public int[][] Blocks { get; }

    public int[] BlockCounts { get; }

    // Single-writer counters (the owning thread); summed by readers. Fields, so callers can use Volatile on them.
    public long Rents;
    public long Returns;
    public long RentedBytes;
    public long ReturnedBytes;
    public long UnpooledRentedBytes;
    public long UnpooledReturnedBytes;
    public long PoolTypeRentedBytes;
    public long PoolTypeReturnedBytes;

    /// <summary>Bytes rented minus returned on this thread since its last flush to the pool's shared in-use total (owner only).</summary>
    public long PendingBytes;

    /// <summary>1 while this thread is inside <c>Rent</c>; <c>Dispose</c> waits for it to drop (see DirectBufferPool.ThreadState.cs).</summary>
    public int Active;

    public bool TryTakeBlock(int sizeClass, out int block)
    {
        int count = BlockCounts[sizeClass];
        if (count == 0)
        {
            block = -1;
            return false;
        }

        BlockCounts[sizeClass] = --count;
        block = Blocks[sizeClass][count];
        return true;
    }

    public bool TryKeepBlock(int sizeClass, int block)
    {
        int[] blocks = Blocks[sizeClass];
        int count = BlockCounts[sizeClass];
        if (count == blocks.Length)
        {
            return false;
        }

        blocks[count] = block;
        BlockCounts[sizeClass] = count + 1;
        return true;
    }
}
