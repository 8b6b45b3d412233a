using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace OffHeapTracker.Slabs;

/// <summary>The blocks of one size: slabs grown on demand and a lock-free free list over all their blocks.</summary>
/// <remarks>
/// <para>
/// A block is named by a class-wide index: <c>slab * BlocksPerSlab + blockInSlab</c>. The free list is a Treiber
/// stack whose head packs a 32-bit tag (high half) with <c>index + 1</c> (low half, 0 meaning empty). Every push
/// and pop increments the tag, so a compare-and-swap that raced with a pop, push, pop of the same index (ABA)
/// fails instead of linking a block that is in use. A 32-bit tag would have to wrap exactly between one thread's
/// read and its CAS, four billion operations later, for ABA to slip through.
/// </para>
/// <para>
/// Slabs are only added while the pool lives and only freed by <see cref="Release"/>, which the pool calls once,
/// after every lease is back; so a pop that reads the link of a block another thread just took still reads
/// memory that exists (the managed <see cref="Slab.Next"/> array) and merely loses its CAS.
/// </para>
/// </remarks>
internal sealed unsafe class SizeClass
{
    private readonly INativeAllocator _allocator;
    private readonly bool _pinnedArrays;
    private readonly int _blockShift;
    private readonly int _blocksPerSlabShift;
    private readonly int _blockInSlabMask;
    private readonly Lock _growLock = new();

    // Copy-on-grow: a reader that popped index i reads _slabs after the CAS that published i, and every array
    // published since slab i was added contains it.
    private Slab[] _slabs = [];
    private int _slabCount;
    private long _head;

    // Indices of trimmed slabs, reused before the array grows (guarded by _growLock).
    private readonly Stack<int> _trimmedSlots = new();

    // Set once by Release (under _growLock); no block is handed out after it.
    private bool _released;

    public SizeClass(int blockSize, INativeAllocator allocator, bool pinnedArrays = false)
    {
        _pinnedArrays = pinnedArrays;
        Debug.Assert(int.IsPow2(blockSize));
        _allocator = allocator;
        BlockSize = blockSize;
        SlabSize = Math.Max(blockSize, SizeClasses.MinSlabSize);
        _blockShift = int.Log2(blockSize);
        _blocksPerSlabShift = int.Log2(SlabSize / blockSize);
        _blockInSlabMask = (1 << _blocksPerSlabShift) - 1;
    }

    public int BlockSize { get; }

    public int SlabSize { get; }

    /// <summary>Gets the number of slab slots, trimmed ones included.</summary>
    public int SlabCount => Volatile.Read(ref _slabCount);

    /// <summary>Takes a free block for a lease rented at <paramref name="rentStamp"/>, or returns -1 when the list is empty.</summary>
    /// <param name="rentStamp">The census stamp to record for the block (see <see cref="Slab.RentedAt"/>); never 0.</param>
    /// <param name="address">The block's address, or null.</param>
    public int TryPop(long rentStamp, out byte* address)
    {
        while (true)
        {
            long head = Volatile.Read(ref _head);
            int index = LowHalf(head) - 1;
            if (index < 0)
            {
                address = null;
                return -1;
            }

            Slab slab = Volatile.Read(ref _slabs)[index >> _blocksPerSlabShift];
            int next = Volatile.Read(ref slab.Next[index & _blockInSlabMask]);
            if (Interlocked.CompareExchange(ref _head, Pack(NextTag(head), next), head) == head)
            {
                // The CAS made the block ours: no one else writes its stamp until we give it back.
                StampUnsynchronized(slab, index & _blockInSlabMask, rentStamp);
                address = slab.BaseAddress + ((nint)(index & _blockInSlabMask) << _blockShift);
                return index;
            }
        }
    }

    /// <summary>Gets the address of a block taken from a thread's cache and records its census stamp; the caller owns the block, so its slab is live.</summary>
    /// <param name="index">The block, owned by the caller.</param>
    /// <param name="rentStamp">The census stamp to record for the block (see <see cref="Slab.RentedAt"/>); never 0.</param>
    public byte* AddressOf(int index, long rentStamp)
    {
        // One slab lookup serves both the address and the stamp: this is the rent fast path.
        Slab slab = Volatile.Read(ref _slabs)[index >> _blocksPerSlabShift];
        StampUnsynchronized(slab, index & _blockInSlabMask, rentStamp);
        return slab.BaseAddress + ((nint)(index & _blockInSlabMask) << _blockShift);
    }

    /// <summary>Records that a block is no longer rented, before it goes back to a cache or the free list. The caller owns the block.</summary>
    /// <remarks>
    /// Must come before the block is pushed or cached: once it is, another renter may stamp it, and a clear after
    /// that would hide a rented block from the census. A leaked block (kept out of circulation) keeps its stamp.
    /// </remarks>
    public void ClearStamp(int index)
    {
#if CENSUS_COMPILED_OUT
        _ = index;
#else
        Slab slab = Volatile.Read(ref _slabs)[index >> _blocksPerSlabShift];
        ref long stamp = ref slab.RentedAt[index & _blockInSlabMask];
        Debug.Assert(stamp != 0, "a block is returned once per rent, and every rent stamps it");
        stamp = 0;
#endif
    }

    /// <summary>Calls <paramref name="visitor"/> for every block rented now (stamped), with its stamp and the block size.</summary>
    /// <remarks>
    /// O(blocks of the class), no lock: rents and returns go on, so the result is a snapshot in which each block is
    /// either seen or not. Safe at any time: the slab array only grows or has slots replaced, a replaced or trimmed
    /// slab object stays readable (its stamps are all 0: a trimmed slab had no rented block), and stamps are
    /// managed memory, never the native slab.
    /// </remarks>
    public void VisitRented<TVisitor>(ref TVisitor visitor)
        where TVisitor : struct, IRentStampVisitor
    {
        Slab[] slabs = Volatile.Read(ref _slabs);
        int count = Math.Min(Volatile.Read(ref _slabCount), slabs.Length);
        for (int i = 0; i < count; i++)
        {
            Slab? slab = slabs[i];
            if (slab is null)
            {
                continue;
            }

            long[] stamps = slab.RentedAt;
            for (int block = 0; block < stamps.Length; block++)
            {
                // Atomic even on 32-bit platforms, where the renting thread's plain store may tear: a torn read
                // can only misdate one buffer in a diagnostic snapshot, never touch memory.
                long stamp = Volatile.Read(ref stamps[block]);
                if (stamp != 0)
                {
                    visitor.Visit(stamp, BlockSize);
                }
            }
        }
    }

    /// <summary>Gets the pinned array a block lives in and its offset there, or null for native slabs; the caller owns the block.</summary>
    public byte[]? ArrayOf(int index, out int offset)
    {
        offset = (index & _blockInSlabMask) << _blockShift;
        return Volatile.Read(ref _slabs)[index >> _blocksPerSlabShift].Array;
    }

    /// <summary>Gives a block back. The caller guarantees it owns <paramref name="index"/> (the lease's state CAS does).</summary>
    public void Push(int index)
    {
        Slab slab = Volatile.Read(ref _slabs)[index >> _blocksPerSlabShift];
        ref int link = ref slab.Next[index & _blockInSlabMask];
        while (true)
        {
            long head = Volatile.Read(ref _head);
            link = LowHalf(head);

            // The CAS is a full fence, so the link above is visible before the block is.
            if (Interlocked.CompareExchange(ref _head, Pack(NextTag(head), index + 1), head) == head)
            {
                return;
            }
        }
    }

    /// <summary>Adds a slab if the budget allows (serialised per class; the fast path never waits for it) and takes one block.</summary>
    /// <param name="budget">The pool's capacity budget.</param>
    /// <param name="rentStamp">The census stamp to record for the block taken (see <see cref="Slab.RentedAt"/>); never 0.</param>
    /// <param name="address">The block's address, or null.</param>
    /// <returns>A block index, or -1 when the list is still empty and the budget has no room for another slab.</returns>
    /// <exception cref="OutOfMemoryException">The native allocation failed; nothing changed.</exception>
    public int GrowAndPop(CapacityBudget budget, long rentStamp, out byte* address)
    {
        lock (_growLock)
        {
            Debug.Assert(!_released, "the pool stops renting before it releases its slabs");
            // Another thread may have grown the class, or returned a block, while we waited for the lock.
            int index = TryPop(rentStamp, out address);
            if (index >= 0 || !budget.TryReserve(SlabSize))
            {
                return index;
            }

            byte* memory;
            byte[]? array = null;
            try
            {
                if (_pinnedArrays)
                {
                    // Safe: an array on the pinned object heap never moves, and the slab keeps it alive for as
                    // long as any block of it can be handed out.
                    array = GC.AllocateUninitializedArray<byte>(SlabSize, pinned: true);
                    memory = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
                }
                else
                {
                    memory = (byte*)_allocator.AllocateAligned((nuint)SlabSize, SizeClasses.SlabAlignment);
                }
            }
            catch
            {
                budget.Release(SlabSize);
                throw;
            }

            int blockCount = 1 << _blocksPerSlabShift;
            var slab = new Slab(memory, blockCount, array);

            int slabIndex;
            if (_trimmedSlots.Count > 0)
            {
                // A trimmed slot: none of its indices is on the free list (the trim pass removed them), so
                // replacing the object is invisible to everyone but a stale pop, whose tagged CAS fails anyway.
                slabIndex = _trimmedSlots.Pop();
                Volatile.Write(ref _slabs[slabIndex], slab);
            }
            else if ((slabIndex = _slabCount) == _slabs.Length)
            {
                var grown = new Slab[Math.Max(4, _slabs.Length * 2)];
                Array.Copy(_slabs, grown, _slabs.Length);
                grown[slabIndex] = slab;
                Volatile.Write(ref _slabs, grown);
            }
            else
            {
                // Not yet visible to anyone: no index in this slab has been published.
                _slabs[slabIndex] = slab;
            }

            if (slabIndex == _slabCount)
            {
                Volatile.Write(ref _slabCount, slabIndex + 1);
            }

            int first = slabIndex << _blocksPerSlabShift;

            // Block `first` goes to the caller; link the rest into a chain and splice it onto the list at once.
            if (blockCount > 1)
            {
                for (int i = 1; i < blockCount - 1; i++)
                {
                    slab.Next[i] = first + i + 1 + 1;
                }

                ref int lastLink = ref slab.Next[blockCount - 1];
                while (true)
                {
                    long head = Volatile.Read(ref _head);
                    lastLink = LowHalf(head);
                    if (Interlocked.CompareExchange(ref _head, Pack(NextTag(head), first + 1 + 1), head) == head)
                    {
                        break;
                    }
                }
            }

            // Block 0 of the new slab is the caller's; no one else can see it yet.
            StampUnsynchronized(slab, 0, rentStamp);
            address = memory;
            return first;
        }
    }

    /// <summary>Frees the slabs that were wholly free at this pass and the one before, and keeps the rest.</summary>
    /// <returns>The bytes given back.</returns>
    /// <remarks>
    /// Takes the whole free list off the head in one CAS, so no one else can pop these blocks while we read
    /// their links; pushes by other threads meanwhile start a new list, and our survivors are spliced onto it.
    /// Renters that find the list empty meanwhile wait on the grow lock we hold, then pop the survivors.
    /// </remarks>
    public long Trim(CapacityBudget budget)
    {
        lock (_growLock)
        {
            long head = Volatile.Read(ref _head);
            while (true)
            {
                long seen = Interlocked.CompareExchange(ref _head, NextTag(head), head);
                if (seen == head)
                {
                    break;
                }

                head = seen;
            }

            int blocksPerSlab = 1 << _blocksPerSlabShift;
            var freeCounts = new int[_slabCount];
            var chain = new List<int>();
            for (int index = LowHalf(head) - 1; index >= 0; index = _slabs[index >> _blocksPerSlabShift].Next[index & _blockInSlabMask] - 1)
            {
                chain.Add(index);
                freeCounts[index >> _blocksPerSlabShift]++;
            }

            long trimmed = 0;
            for (int i = 0; i < _slabCount; i++)
            {
                Slab slab = _slabs[i];
                bool whollyFree = slab.BaseAddress is not null && freeCounts[i] == blocksPerSlab;
                if (whollyFree && slab.WhollyFreeAtLastTrim)
                {
                    // Safe: every block of this slab is in our detached chain, so none is rented or cached. A pinned
                    // array is simply let go: the GC reclaims it once nothing refers to it.
                    FreeSlabMemory(slab);
                    budget.Release(SlabSize);
                    _trimmedSlots.Push(i);
                    trimmed += SlabSize;
                    continue;
                }

                slab.WhollyFreeAtLastTrim = whollyFree;
            }

            // Splice the blocks of the slabs we kept back onto the list.
            int first = -1;
            int last = -1;
            foreach (int index in chain)
            {
                if (_slabs[index >> _blocksPerSlabShift].BaseAddress is null)
                {
                    continue;
                }

                if (last >= 0)
                {
                    _slabs[last >> _blocksPerSlabShift].Next[last & _blockInSlabMask] = index + 1;
                }
                else
                {
                    first = index;
                }

                last = index;
            }

            if (first >= 0)
            {
                ref int lastLink = ref _slabs[last >> _blocksPerSlabShift].Next[last & _blockInSlabMask];
                while (true)
                {
                    long current = Volatile.Read(ref _head);
                    lastLink = LowHalf(current);
                    if (Interlocked.CompareExchange(ref _head, Pack(NextTag(current), first + 1), current) == current)
                    {
                        break;
                    }
                }
            }

            return trimmed;
        }
    }

    /// <summary>Frees every slab that holds no leaked block. Called once, when every other block of this class is back and the pool never rents again.</summary>
    /// <remarks>
    /// A slab holding a leaked block (its lease was dropped undisposed, see <see cref="MarkLeaked"/>) stays
    /// allocated: a span of that block may still be in use. <see cref="UnmarkLeaked"/> frees it if its last leaked
    /// block is disposed late.
    /// </remarks>
    public void Release(CapacityBudget budget)
    {
        lock (_growLock)
        {
            Debug.Assert(!_released, "a size class is released once");
            _released = true;
            for (int i = 0; i < _slabCount; i++)
            {
                // Safe: the pool calls this only after every lease but the leaked ones came back, and never rents
                // again. A slab already trimmed was freed then, and released its budget then.
                Slab slab = _slabs[i];
                if (slab.BaseAddress is not null && Volatile.Read(ref slab.LeakedBlocks) == 0)
                {
                    FreeSlabMemory(slab);
                    budget.Release(SlabSize);
                }
            }

            // The slab array stays, so a late return of a leaked block still finds its slab (see UnmarkLeaked).
            _trimmedSlots.Clear();
            Volatile.Write(ref _head, 0);
        }
    }

    /// <summary>Records that a block's lease was dropped undisposed: the block stays out of circulation and its slab is never freed while it is.</summary>
    /// <remarks>Called before the pool counts the leak, so a release that sees the count also sees this mark.</remarks>
    public void MarkLeaked(int index) => Interlocked.Increment(ref Volatile.Read(ref _slabs)[index >> _blocksPerSlabShift].LeakedBlocks);

    /// <summary>Undoes <see cref="MarkLeaked"/> for a leaked lease disposed late.</summary>
    /// <returns>True if the block may go back on the free list; false if the class was released meanwhile (the slab is then freed here once its last leaked block is back).</returns>
    public bool UnmarkLeaked(int index, CapacityBudget budget)
    {
        lock (_growLock)
        {
            Slab slab = _slabs[index >> _blocksPerSlabShift];
            int left = Interlocked.Decrement(ref slab.LeakedBlocks);
            Debug.Assert(left >= 0, "a leaked block is unmarked once");
            if (!_released)
            {
                return true;
            }

            if (left == 0 && slab.BaseAddress is not null)
            {
                // Safe: the class was released, so every other block of the slab is back, and this was its last
                // leaked block, now disposed by its owner.
                FreeSlabMemory(slab);
                budget.Release(SlabSize);
            }

            return false;
        }
    }

    // The caller owns the block (a won pop CAS, a thread's own cache, or a fresh slab), so no other thread writes
    // this element now; the census only reads it. A plain store: on 64-bit platforms an aligned 8-byte store is
    // atomic, and this is the rent fast path.
    private static void StampUnsynchronized(Slab slab, int blockInSlab, long rentStamp)
    {
#if !CENSUS_COMPILED_OUT
        Debug.Assert(rentStamp != 0, "0 means not rented");
        Debug.Assert(slab.RentedAt[blockInSlab] == 0, "a block is rented by one lease at a time");
        slab.RentedAt[blockInSlab] = rentStamp;
#endif
    }

    private void FreeSlabMemory(Slab slab)
    {
        if (slab.Array is null)
        {
            _allocator.FreeAligned(slab.BaseAddress);
        }

        slab.MarkFreed();
    }

    private static long NextTag(long head) => unchecked((long)(((ulong)head & 0xFFFF_FFFF_0000_0000UL) + (1UL << 32)));

    private static long Pack(long tag, int encodedIndex) => tag | (uint)encodedIndex;

    // The head's low half is the encoded index; the truncation is the point, so it must not be checked.
    private static int LowHalf(long head) => unchecked((int)(uint)head);
}
