using System.Collections;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace OffHeapTracker.Monitoring;

/// <summary>One generation of the resident table: a record per outstanding buffer. A pool's records live in its lease cores, which <see cref="Cores"/> lists; the records of other callers (<see cref="IBufferMonitor.OnAllocated(in BufferAllocation, out long)"/> called directly) live here, in reusable slots found again by a token.</summary>
/// <remarks>
/// <para>
/// A walk (<see cref="GetEnumerator"/>) yields both kinds; the rest of these remarks are about the slots.
/// </para>
/// <para>
/// Records live in chunks of preallocated slots, grown on demand up to the monitor's
/// <see cref="ResidentBufferMonitorOptions.MaxRecords"/>, and <see cref="TryAdd"/> hands the caller a token that
/// names the slot and this generation, so <see cref="TryRemove(long, long)"/> finds the record without a lookup.
/// Free slots wait on one stack under a lock. The pools' records took this path on every rent and return until
/// they moved into the lease cores; per-core lock-free stacks and then per-thread caches of free slots were
/// measured there and made no difference end to end (the cost was the slot's memory, not how it was found), so
/// the slots, now used only by callers outside the pools, keep the simplest correct form.
/// </para>
/// <para>
/// A slot's <see cref="Slot.Id"/> is its publication flag: a record is written first and published by storing
/// its (process-unique, positive) lease id last; removal stores 0 before the slot can be reused, and leaves the
/// record's fields in place until the next record overwrites them. Ids never repeat, so a reader that reads the same
/// id before and after copying a record has a consistent copy (see <see cref="GetEnumerator"/>); no reader ever
/// blocks a writer.
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

    private static int s_lastGeneration;

    private readonly int _generation;
    private readonly int _maxRecords;
    private readonly Lock _growLock = new();

    // Grown (copied, never shrunk) under _growLock; a chunk, once set, never changes.
    private Slot[]?[] _chunks;

    // The free slots, a stack of _freeCount slot numbers; under _freeLock.
    private readonly Lock _freeLock = new();
    private int[] _free = [];
    private int _freeCount;

    // Slots ever handed out, from 0 up to _maxRecords; a slot below it holds a record, is on the free stack, or is
    // owned for a moment by the one thread adding or removing its record.
    private int _used;

    // The tokens of records added by a caller that keeps none (TryAddWithoutToken), by id; null until one does.
    private ConcurrentDictionary<long, long>? _tokensById;

    /// <param name="maxRecords">The most records held at once, in slots, and the most lease cores listed.</param>
    public ResidentTable(int maxRecords)
    {
        Debug.Assert(maxRecords > 0, "the options validate MaxRecords");
        _maxRecords = maxRecords;
        _generation = Interlocked.Increment(ref s_lastGeneration);
        _chunks = new Slot[]?[Math.Min(16, ChunkCount(maxRecords))];
        Cores = new ResidentCores(_generation, maxRecords);
    }

    /// <summary>Gets the lease cores that carry the pools' records in this generation (at most <c>maxRecords</c> of them, besides the slots).</summary>
    public ResidentCores Cores { get; }

    /// <summary>Gets the number of slots ever handed out (tests): the table's size, which reuse keeps down.</summary>
    internal int SlotsInUse => Volatile.Read(ref _used);

    /// <summary>Gets the number of records held now, counted by a walk of the slots and the listed cores (O(both)); for reports, not hot paths.</summary>
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

    /// <summary>Gets a value indicating whether a new record would be refused: every slot is taken.</summary>
    public bool IsFull => Volatile.Read(ref _used) >= _maxRecords && Volatile.Read(ref _freeCount) == 0;

    /// <summary>Gets the records, for a walk that tolerates concurrent adds and removes (each record is seen whole or not at all).</summary>
    public ResidentTable Records => this;

    /// <summary>Records a buffer under its lease id.</summary>
    /// <param name="id">The lease id; positive and unique in the process.</param>
    /// <param name="record">The record.</param>
    /// <param name="token">The record's token for <see cref="TryRemove(long, long)"/>; 0 when refused.</param>
    /// <returns>False when every slot is taken.</returns>
    public bool TryAdd(long id, in ResidentRecord record, out long token)
    {
        Debug.Assert(id > 0, "0 marks a free slot, and ids are positive");
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

        // Safe without a lock: the slot was taken off the free stack (or handed out new) by this thread alone, and
        // readers ignore it until the id below is published.
        ref Slot slot = ref SlotAt(index);
        Debug.Assert(Volatile.Read(ref slot.Id) == 0, "a free slot holds no record");
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
            // id no record has: a free slot's id is 0, and "removing" that would free the slot twice and hand it to
            // two writers.
            return false;
        }

        ref Slot slot = ref SlotAt(index);

        // The id check makes a stale or repeated token harmless: it cannot free a slot now holding another record,
        // nor push one slot twice (which would hand it to two writers).
        if (Interlocked.CompareExchange(ref slot.Id, 0, id) != id)
        {
            return false;
        }

        // The record itself is left in place: its context string and stack stay reachable until the slot's next
        // record overwrites them; readers skip it from now on. The slot is this thread's alone from the exchange
        // above until it is pushed here.
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

    /// <summary>Takes a free slot; -1 when none is free.</summary>
    private int PopFree()
    {
        lock (_freeLock)
        {
            if (_freeCount == 0)
            {
                return -1;
            }

            Volatile.Write(ref _freeCount, _freeCount - 1);
            return _free[_freeCount];
        }
    }

    /// <summary>Gives back a slot this thread has just emptied and owns alone.</summary>
    private void PushFree(int index)
    {
        lock (_freeLock)
        {
            if (_freeCount == _free.Length)
            {
                // Never past maxRecords: a slot is on the stack at most once.
                Debug.Assert(_freeCount < _maxRecords, "the free stack holds each slot at most once");
                Array.Resize(ref _free, (int)Math.Min(_maxRecords, Math.Max(16L, _free.Length * 2L)));
            }

            _free[_freeCount] = index;
            Volatile.Write(ref _freeCount, _freeCount + 1);
        }
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
        private readonly int _coresUsed;
        private int _index;
        private int _coreIndex;

        internal Enumerator(ResidentTable table)
        {
            _table = table;
            _used = Volatile.Read(ref table._used);
            _coresUsed = table.Cores.SlotsInUse;
            _index = -1;
            _coreIndex = -1;
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

            // Then the records in the pools' lease cores.
            while (++_coreIndex < _coresUsed)
            {
                if (_table.Cores.TryRead(_coreIndex, out long id, out ResidentRecord record))
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

    /// <summary>One record's place: the lease id (positive while the slot holds a record, 0 while it is free) and the record.</summary>
    private struct Slot
    {
        public long Id;
        public ResidentRecord Record;
    }
}
