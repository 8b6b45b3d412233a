using System.Numerics;

namespace OffHeapTracker.Slabs;

/// <summary>Maps a requested size to a power-of-two block size between <see cref="MinBlockSize"/> and the pool's largest pooled size.</summary>
internal static class SizeClasses
{
    /// <summary>The smallest block; smaller requests get this much. 512 B keeps tiny protocol frames from costing a 4 KiB block.</summary>
    public const int MinBlockShift = 9;

    public const int MinBlockSize = 1 << MinBlockShift;

    /// <summary>The largest block a pool may be configured to keep (16 MiB); larger requests are served unpooled.</summary>
    public const int MaxBlockSize = 1 << 24;

    /// <summary>Slabs are at least this large (1 MiB) so a slab holds many small blocks and costs one native allocation.</summary>
    public const int MinSlabSize = 1 << 20;

    /// <summary>Slabs are page aligned: blocks of 4 KiB and more start on a page, which suits I/O.</summary>
    public const int SlabAlignment = 4096;

    /// <summary>Returns the index of the smallest class whose block holds <paramref name="size"/> bytes.</summary>
    public static int IndexOf(int size)
    {
        if (size <= MinBlockSize)
        {
            return 0;
        }

        // Ceiling log2 of size, offset so that MinBlockSize is class 0.
        return BitOperations.Log2((uint)size - 1) + 1 - MinBlockShift;
    }

    public static int BlockSizeOf(int classIndex) => MinBlockSize << classIndex;

    public static int CountFor(int maxPooledBufferSize) => IndexOf(maxPooledBufferSize) + 1;
}
