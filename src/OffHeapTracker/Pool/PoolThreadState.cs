using OffHeapTracker.Slabs;

namespace OffHeapTracker;

/// <summary>What one thread keeps for one pool: a few free blocks per size class, and counters only it writes.</summary>
/// <remarks>
/// <para>
/// The owning thread writes the counters and, while it has <see cref="Active"/> set and no
/// <see cref="Stealing"/> request is up, touches <see cref="Blocks"/>, <see cref="BlockCounts"/> and
/// <see cref="CachedBytes"/>. Other threads only read the counters, with <see cref="Volatile"/> reads, to sum them.
/// So the rent and return fast paths need no interlocked operation.
/// </para>
/// <para>
/// The pool takes cached blocks back from outside (trimming, a rent about to fall back for capacity) through an
/// asymmetric handshake: it raises <see cref="Stealing"/>, runs <see cref="Interlocked.MemoryBarrierProcessWide"/>,
/// and drains the cache only if <see cref="Active"/> is still 0. The owner stores <see cref="Active"/> = 1 before
/// it reads <see cref="Stealing"/>, so either it sees the request and leaves its cache alone, or the pool sees it
/// active and leaves the cache alone. A dead thread's cache has no owner left and is drained directly.
/// </para>
/// <para>
/// Cached blocks are free but parked, so they are bounded: only blocks of at most <see cref="MaxCachedBlockSize"/>
/// are cached, at most <see cref="CachedBytesPerClass"/> per size class and <see cref="MaxCachedBytes"/> in all.
/// </para>
/// </remarks>
internal sealed class PoolThreadState
{
    /// <summary>The most bytes of free blocks one thread parks per size class: 16 blocks of 4 KiB.</summary>
    public const int CachedBytesPerClass = 64 * 1024;

    /// <summary>Larger blocks are never cached: one of them would be a large share of the bound below.</summary>
    public const int MaxCachedBlockSize = 64 * 1024;

    /// <summary>The most bytes of free blocks one thread parks per pool, over all size classes.</summary>
    public const int MaxCachedBytes = 256 * 1024;

    public PoolThreadState(int poolId, SizeClass[] classes)
    {
        PoolId = poolId;
        Thread = Thread.CurrentThread;
        Blocks = new int[classes.Length][];
        BlockCounts = new int[classes.Length];
        for (int i = 0; i < classes.Length; i++)
        {
            int blockSize = classes[i].BlockSize;
            Blocks[i] = new int[blockSize <= MaxCachedBlockSize ? CachedBytesPerClass / blockSize : 0];
        }
    }

    /// <summary>Gets the id of the pool this state belongs to: an id, not a reference, so a thread's states never keep a pool alive.</summary>
    public int PoolId { get; }

    /// <summary>Gets the owning thread; once it has exited, nothing writes this state any more.</summary>
    public Thread Thread { get; }

    public int[][] Blocks { get; }

    public int[] BlockCounts { get; }

    /// <summary>The owning thread's counters; it alone writes them (see <see cref="PoolCounters"/>).</summary>
    public PoolCounters Counters;

    /// <summary>Bytes rented minus returned on this thread since its last flush to the pool's shared in-use total (owner only).</summary>
    public long PendingBytes;

    /// <summary>The bytes of the blocks in this cache (see the remarks for who may write it).</summary>
    public long CachedBytes;

    /// <summary>1 while this thread is inside <c>Rent</c> or a return; disposal and cache reclaiming wait for or skip it.</summary>
    public int Active;

    /// <summary>1 while the pool takes this thread's cached blocks back; the owner then leaves its cache alone.</summary>
    public int Stealing;

    /// <summary>Rents + returns at the previous trim pass; unchanged means the thread is idle (trimmer only).</summary>
    public long OperationsAtLastTrim = -1;

    /// <summary>Gets the number of rents and returns so far, to tell an idle thread from a busy one.</summary>
    public long Operations => Volatile.Read(ref Counters[(int)PoolCounter.Rents]) + Volatile.Read(ref Counters[(int)PoolCounter.Returns]);

    public bool TryTakeBlock(int sizeClass, out int block)
    {
        int count = BlockCounts[sizeClass];
        if (count == 0)
        {
            block = -1;
            return false;
        }

        BlockCounts[sizeClass] = --count;
        CachedBytes -= SizeClasses.BlockSizeOf(sizeClass);
        block = Blocks[sizeClass][count];
        return true;
    }

    public bool TryKeepBlock(int sizeClass, int block)
    {
        int[] blocks = Blocks[sizeClass];
        int count = BlockCounts[sizeClass];
        int blockSize = SizeClasses.BlockSizeOf(sizeClass);
        if (count == blocks.Length || CachedBytes + blockSize > MaxCachedBytes)
        {
            return false;
        }

        blocks[count] = block;
        BlockCounts[sizeClass] = count + 1;
        CachedBytes += blockSize;
        return true;
    }

    /// <summary>Moves every cached block to its size class's shared list. The caller has excluded the owner (handshake or dead thread).</summary>
    public void DrainTo(SizeClass[] classes)
    {
        for (int sizeClass = 0; sizeClass < BlockCounts.Length; sizeClass++)
        {
            while (TryTakeBlock(sizeClass, out int block))
            {
                classes[sizeClass].Push(block);
            }
        }
    }
}
