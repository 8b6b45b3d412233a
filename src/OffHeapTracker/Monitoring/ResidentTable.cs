using System.Collections;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace OffHeapTracker.Monitoring;

/// <summary>One generation of the resident table: a record per outstanding buffer, in reusable slots found again by a token.</summary>
/// <remarks>
/// <para>
/// Records live in chunks of preallocated slots, grown on demand up to the monitor's
/// <see cref="ResidentBufferMonitorOptions.MaxRecords"/>; a free slot is taken from a lock-free stack (one
/// compare-and-swap) and given back the same way, and <see cref="TryAdd"/> hands the caller a token that names
/// the slot and this generation, so <see cref="TryRemove(long, long)"/> finds the record without a lookup. So a
/// record costs no allocation, no lock and no hash, where a <c>ConcurrentDictionary</c> node cost an allocation
/// per rent, a striped lock and two hash lookups (measured: about a fifth of the monitor's per-rent cost).
/// </para>
/// <para>
/// There is one free stack per stripe, each on a cache line of its own, and a thread pushes and pops on the stripe
/// of the core it runs on: with a single stack, every rent and every return on every core took the same line, and
/// a profile of Kestrel under load showed the cores passing it back and forth (the misses sat on the stack's top
/// and on the popped slot's link, which the other core had just written). A pop that finds its own stripe empty
/// takes from the others before the table grows, so the table never holds more slots than one stack would.
/// </para>
/// <para>
/// A slot's <see cref="Slot.Id"/> is its publication flag: a record is written first and published by storing
/// its (process-unique, positive) lease id last; removal stores 0 before the slot can be reused. Ids never repeat,
/// so a reader that reads the same id before and after copying a record has a consistent copy (see
/// <see cref="GetEnumerator"/>); no reader ever blocks a writer.
/// </para>
/// <para>
/// The monitor swaps in a fresh table on every <c>Enable</c> and drops it on <c>Disable</c> instead of clearing one
/// in place, so clearing is O(1), and a record added by a rent that raced with the switch lands in a table no one
/// reads any more. A token names its generation, so a token from a dropped table never touches a live one.
/// </para>
/// </remarks>
internal sealed class ResidentTable : IEnumerable<KeyValuePair<long, ResidentRecord>>
{
    /// <summary>Slots per chunk: 512 slots of 72 bytes stay below the large object heap's 85,000 bytes.</summary>
    private const int ChunkShift = 9;

    private const int ChunkSize = 1 << ChunkShift;

    /// <summary>The most free stacks: beyond this many cores, cores share stripes.</summary>
    private const int MaxStripes = 64;

    private static int s_lastGeneration;

    private readonly int _generation;
    private readonly int _maxRecords;
    private readonly Lock _growLock = new();

    // Grown (copied, never shrunk) under _growLock; a chunk, once set, never changes.
    private Slot[]?[] _chunks;

    // The free-slot stacks, one per stripe (a power of two, at most one per core); see FreeStack.
    private readonly FreeStack[] _free;
    private readonly int _stripeMask;

    // Tests only: names the "core" a call runs on, so a test can push on one stripe and pop on another.
    private readonly Func<int>? _coreForTests;

    // Slots ever handed out, from 0 up to _maxRecords; a slot below it is either recorded or on one of the free stacks.
    private int _used;

    // The tokens of records added by a caller that keeps none (TryAddWithoutToken), by id; null until one does.
    private ConcurrentDictionary<long, long>? _tokensById;

    /// <param name="maxRecords">The most records held at once.</param>
    public ResidentTable(int maxRecords)
        : this(maxRecords, Environment.ProcessorCount, coreForTests: null)
    {
    }

    /// <param name="maxRecords">The most records held at once.</param>
    /// <param name="cores">How many cores to spread the free stacks over (rounded up to a power of two, at most <see cref="MaxStripes"/>).</param>
    /// <param name="coreForTests">Tests only: the core a call is taken to run on; null for the real one.</param>
    internal ResidentTable(int maxRecords, int cores, Func<int>? coreForTests)
    {
        Debug.Assert(maxRecords > 0, "the options validate MaxRecords");
        _maxRecords = maxRecords;
        _generation = Interlocked.Increment(ref s_lastGeneration);
        _chunks = new Slot[]?[Math.Min(16, ChunkCount(maxRecords))];
        int stripes = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Clamp(cores, 1, MaxStripes));
        _free = new FreeStack[stripes];
        _stripeMask = stripes - 1;
        _coreForTests = coreForTests;
    }

    /// <summary>Gets the number of free stacks (tests).</summary>
    internal int StripeCount => _free.Length;

    /// <summary>Gets the number of records held now, counted by a walk of the slots (O(slots used)); for reports, not hot paths.</summary>
    public int Count
    {
        get
        {
            int count = 0;
            foreach (KeyValuePair<long, ResidentRecord> unused in this)
            {
                count++;
            }

            return count;
        }
    }

    /// <summary>Gets a value indicating whether every slot is taken: a new record would be refused.</summary>
    /// <remarks>Asked before every monitored rent, so it reads <c>_used</c> first: that field stops changing once the table has grown to fit the load, so the read hits the cache, and the free stacks, which every rent and return writes, are read only when the table is at its limit.</remarks>
    public bool IsFull => Volatile.Read(ref _used) >= _maxRecords && AllStacksEmpty();

    /// <summary>Gets the records, for a walk that tolerates concurrent adds and removes (each record is seen whole or not at all).</summary>
    public ResidentTable Records => this;

    /// <summary>Records a buffer under its lease id.</summary>
    /// <param name="id">The lease id; positive and unique in the process.</param>
    /// <param name="record">The record.</param>
    /// <param name="token">The record's token for <see cref="TryRemove(long, long)"/>; 0 when refused.</param>
    /// <returns>False when every slot is taken.</returns>
    public bool TryAdd(long id, in ResidentRecord record, out long token)
    {
        Debug.Assert(id > 0, "0 and negative ids mark free slots");
        int index = PopFree();
        if (index < 0)
        {
            index = TakeNewSlot();
            if (index < 0)
            {
                token = 0;
                return false;
            }
        }

        // Safe without a lock: the slot was taken off the free stack (or handed out new) by this thread alone,
        // and readers ignore it until the id below is published.
        ref Slot slot = ref SlotAt(index);
        Debug.Assert(Volatile.Read(ref slot.Id) <= 0, "a free slot holds no record");
        slot.Record = record;

        // Release: a reader that sees the id sees the record written above.
        Volatile.Write(ref slot.Id, id);
        token = MakeToken(index);
        return true;
    }

    /// <summary>Removes the record a token names, if the token is from this table and the record is still <paramref name="id"/>'s.</summary>
    /// <returns>True if this call removed the record.</returns>
    public bool TryRemove(long id, long token)
    {
        int index = unchecked((int)token) - 1;
        if (unchecked((int)(token >> 32)) != _generation || index < 0 || index >= Volatile.Read(ref _used) || id <= 0)
        {
            // A token from a dropped table (the monitor was switched off and on meanwhile), or not one of ours; or an
            // id no record has: a free slot's id field holds its free-stack link (0 or negative), and "removing" that
            // would push the slot onto a free stack twice.
            return false;
        }

        ref Slot slot = ref SlotAt(index);

        // The id check makes a stale or repeated token harmless: it cannot free a slot now holding another record,
        // nor push one slot twice (which would hand it to two writers).
        if (Interlocked.CompareExchange(ref slot.Id, 0, id) != id)
        {
            return false;
        }

        // The record itself is left in place: clearing it would write the slot's other cache line, which the renting
        // core wrote last, on every return (the return is often on the other core). Its context string and stack
        // stay reachable until the slot's next record overwrites them; readers skip it from now on.
        PushFree(index);
        return true;
    }

    /// <summary>Records a buffer for a caller that will not keep the token (see <see cref="IBufferMonitor.OnAllocated(in BufferAllocation)"/>): the token is kept here, by id.</summary>
    /// <returns>False when every slot is taken.</returns>
    public bool TryAddWithoutToken(long id, in ResidentRecord record)
    {
        if (!TryAdd(id, record, out long token))
        {
            return false;
        }

        // Created on first use: the pool always keeps its tokens, so only a caller of the older members pays.
        ConcurrentDictionary<long, long> tokens = Volatile.Read(ref _tokensById)
            ?? Interlocked.CompareExchange(ref _tokensById, new ConcurrentDictionary<long, long>(), null)
            ?? _tokensById!;
        tokens[id] = token;
        return true;
    }

    /// <summary>Removes a record added by <see cref="TryAddWithoutToken"/>.</summary>
    /// <returns>True if this call removed the record.</returns>
    public bool TryRemoveWithoutToken(long id) =>
        Volatile.Read(ref _tokensById) is { } tokens && tokens.TryRemove(id, out long token) && TryRemove(id, token);

    /// <summary>Walks the records without locking; see the remarks on the type for what a walk sees.</summary>
    public Enumerator GetEnumerator() => new(this);

    IEnumerator<KeyValuePair<long, ResidentRecord>> IEnumerable<KeyValuePair<long, ResidentRecord>>.GetEnumerator() => GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>What a free slot's <see cref="Slot.Id"/> holds: the next free slot's index + 1 (0 at the bottom), as a negative number, so readers see no record.</summary>
    private static long FreeLink(int next) => ~(long)next;

    /// <summary>The link <see cref="FreeLink"/> stored; garbage for anything else, which the caller's tag check discards.</summary>
    private static int LinkOf(long id) => unchecked((int)~id);

    /// <summary>The high half of a new free-stack top: the old tag plus one, wrapping.</summary>
    private static long NextTag(long top) => unchecked(((top >> 32) + 1) << 32);

    private static int ChunkCount(int maxRecords) => (int)(((long)maxRecords + ChunkSize - 1) >> ChunkShift);

    private long MakeToken(int index) => ((long)_generation << 32) | (uint)(index + 1);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref Slot SlotAt(int index)
    {
        // Safe: every index below _used has its chunk set before it was handed out (TakeNewSlot), and chunks are
        // never removed; the array bounds checks stay on.
        Slot[] chunk = Volatile.Read(ref _chunks)[index >> ChunkShift]!;
        return ref chunk[index & (ChunkSize - 1)];
    }

    /// <summary>The chunk of a slot a reader may see before its chunk is set (a writer between taking the index and setting the chunk).</summary>
    private Slot[]? TrySlotAt(int index)
    {
        Slot[]?[] chunks = Volatile.Read(ref _chunks);
        int chunk = index >> ChunkShift;
        return chunk < chunks.Length ? Volatile.Read(ref chunks[chunk]) : null;
    }

    /// <summary>Takes a free slot: from this core's stripe, else from another stripe; -1 when every stack is empty.</summary>
    private int PopFree()
    {
        int home = HomeStripe();
        int index = PopFrom(ref _free[home].Top);
        for (int k = 1; index < 0 && k <= _stripeMask; k++)
        {
            index = PopFrom(ref _free[(home + k) & _stripeMask].Top);
        }

        return index;
    }

    private int PopFrom(ref long freeTop)
    {
        long top = Volatile.Read(ref freeTop);
        while (unchecked((int)top) != 0)
        {
            int index = unchecked((int)top) - 1;

            // May read a link another thread is rewriting, or a lease id (the slot was popped meanwhile, and maybe
            // recorded or pushed again, onto this stack or another): this stack's tag then differs and the exchange
            // fails, so a torn link is never installed. A slot is on at most one stack at a time: only its popper
            // may push it.
            int next = LinkOf(Volatile.Read(ref SlotAt(index).Id));
            long replacement = NextTag(top) | (uint)next;
            long seen = Interlocked.CompareExchange(ref freeTop, replacement, top);
            if (seen == top)
            {
                return index;
            }

            top = seen;
        }

        return -1;
    }

    /// <summary>Gives a slot back onto this core's stripe. The caller has just emptied it and owns it alone.</summary>
    private void PushFree(int index)
    {
        ref Slot slot = ref SlotAt(index);
        ref long freeTop = ref _free[HomeStripe()].Top;
        long top = Volatile.Read(ref freeTop);
        while (true)
        {
            // A plain store: the exchange below publishes it (a full fence).
            slot.Id = FreeLink(unchecked((int)top));
            long replacement = NextTag(top) | (uint)(index + 1);
            long seen = Interlocked.CompareExchange(ref freeTop, replacement, top);
            if (seen == top)
            {
                return;
            }

            top = seen;
        }
    }

    // The stripe of the core this thread runs on now (a hint: the thread may move, which costs a shared line, never
    // correctness). Thread.GetCurrentProcessorId is cached per thread, so this is a few instructions.
    private int HomeStripe() => (_coreForTests is null ? Thread.GetCurrentProcessorId() : _coreForTests()) & _stripeMask;

    private bool AllStacksEmpty()
    {
        foreach (ref FreeStack stack in _free.AsSpan())
        {
            if (unchecked((int)Volatile.Read(ref stack.Top)) != 0)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Hands out a never-used slot, growing the chunks as needed; -1 when <c>maxRecords</c> are in use.</summary>
    private int TakeNewSlot()
    {
        if (Volatile.Read(ref _used) >= _maxRecords)
        {
            return -1;
        }

        lock (_growLock)
        {
            // Under the lock, so _used never passes _maxRecords and a slot's chunk exists before _used covers it
            // (readers and TryRemove trust every index below _used). Rare: once per slot ever used.
            int index = _used;
            if (index >= _maxRecords)
            {
                return -1;
            }

            int chunk = index >> ChunkShift;
            Slot[]?[] chunks = _chunks;
            if (chunk == chunks.Length)
            {
                Array.Resize(ref chunks, Math.Min(chunks.Length * 2, ChunkCount(_maxRecords)));
                Volatile.Write(ref _chunks, chunks);
            }

            if (chunks[chunk] is null)
            {
                Volatile.Write(ref chunks[chunk], new Slot[ChunkSize]);
            }

            Volatile.Write(ref _used, index + 1);
            return index;
        }
    }

    /// <summary>A walk over the records; each one it yields was, at some moment of the walk, a whole, current record.</summary>
    public struct Enumerator : IEnumerator<KeyValuePair<long, ResidentRecord>>
    {
        private readonly ResidentTable _table;
        private readonly int _used;
        private int _index;

        internal Enumerator(ResidentTable table)
        {
            _table = table;
            _used = Volatile.Read(ref table._used);
            _index = -1;
            Current = default;
        }

        public KeyValuePair<long, ResidentRecord> Current { get; private set; }

        readonly object IEnumerator.Current => Current;

        public bool MoveNext()
        {
            while (++_index < _used)
            {
                if (_table.TrySlotAt(_index) is not { } chunk)
                {
                    continue;
                }

                ref Slot slot = ref chunk[_index & (ChunkSize - 1)];
                long id = Volatile.Read(ref slot.Id);
                if (id <= 0)
                {
                    continue;
                }

                ResidentRecord record = slot.Record;

                // The copy above must be complete before the id is read again; if the id is unchanged the slot was
                // not removed (removal stores 0 first) nor reused (ids never repeat) during the copy.
                Interlocked.MemoryBarrier();
                if (Volatile.Read(ref slot.Id) == id)
                {
                    Current = new KeyValuePair<long, ResidentRecord>(id, record);
                    return true;
                }
            }

            return false;
        }

        public void Reset() => throw new NotSupportedException();

        public readonly void Dispose()
        {
        }
    }

    /// <summary>One free-slot stack, alone on its cache line (the line before <see cref="Top"/> is padding, and so is the rest of its own).</summary>
    /// <remarks>
    /// <see cref="Top"/>'s low 32 bits are the top slot's index + 1 (0 when empty), the high 32 bits a tag bumped by
    /// every push and pop, so a compare-and-swap never succeeds on a top that was popped and pushed back in between
    /// (the ABA problem).
    /// </remarks>
    [StructLayout(LayoutKind.Explicit, Size = 128)]
    private struct FreeStack
    {
        [FieldOffset(64)]
        public long Top;
    }

    /// <summary>One record's place: the lease id, or while the slot is free the free-stack link; and the record.</summary>
    /// <remarks>
    /// <see cref="Id"/> is positive while the slot holds a record (the lease id), 0 while one thread owns it
    /// (handed out new, being written, or being freed), and negative while it sits on a free stack: then it is
    /// <see cref="FreeLink"/> of the index + 1 of the next free slot below it (0 at the bottom). The link shares the
    /// id's field, rather than one of its own after the record, so a return writes only the id's cache line (see
    /// <see cref="TryRemove(long, long)"/>): 72 bytes where the slot took 80.
    /// </remarks>
    private struct Slot
    {
        public long Id;
        public ResidentRecord Record;
    }
}
