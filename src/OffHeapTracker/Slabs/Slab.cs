namespace OffHeapTracker.Slabs;

/// <summary>One native allocation carved into equal blocks, with the free-list links kept on the managed heap.</summary>
/// <remarks>
/// The links live in <see cref="Next"/>, not in the free blocks themselves: a caller that keeps writing to a
/// buffer after returning it (a contract breach we cannot always detect) then scribbles over data, not over
/// the free list, and can never make the pool hand one block to two renters.
/// </remarks>
internal sealed unsafe class Slab
{
    public Slab(byte* baseAddress, int blockCount, byte[]? array = null)
    {
        BaseAddress = baseAddress;
        Array = array;
        Next = new int[blockCount];
        RentedAt = new long[blockCount];
    }

    /// <summary>Gets the pinned array behind the slab (<see cref="BufferBacking.PinnedArray"/>), or null for native memory.</summary>
    /// <remarks>Holding it here is what keeps <see cref="BaseAddress"/> valid: a pinned array never moves while it lives.</remarks>
    public byte[]? Array { get; private set; }

    /// <summary>Gets the start of the native allocation; owned by the <see cref="SizeClass"/> that created it. Null once trimmed.</summary>
    public byte* BaseAddress { get; private set; }

    /// <summary>Gets or sets a value indicating whether every block was free at the last trim pass (so one more makes it idle).</summary>
    public bool WhollyFreeAtLastTrim { get; set; }

    /// <summary>Forgets the native memory after the size class freed it; the object stays for stale readers of the free list.</summary>
    public void MarkFreed()
    {
        BaseAddress = null;
        Array = null;
    }

    /// <summary>The number of this slab's blocks whose leases were dropped undisposed: kept out of circulation, so the slab is never freed while it is above zero.</summary>
    public int LeakedBlocks;

    /// <summary>Gets, for each block, the encoded index of the next free block (see <see cref="SizeClass"/>).</summary>
    public int[] Next { get; }

    /// <summary>Gets, for each block, its census stamp: 0 while the block is free or cached, else when and as what it was rented (see <see cref="RentStamp"/>).</summary>
    /// <remarks>
    /// Written by the block's owner only: the renter when it takes the block, the returning thread before the
    /// block goes back to a cache or the free list. A leaked block keeps its stamp: it is still outstanding.
    /// Managed, like <see cref="Next"/>, so a caller scribbling on a returned buffer cannot forge the census,
    /// and a census may read a slab whose memory was trimmed or released. 8 bytes per block: 16 KiB per 1 MiB
    /// slab of 512-byte blocks, 2 KiB per slab of 4 KiB blocks.
    /// </remarks>
    public long[] RentedAt { get; }
}
