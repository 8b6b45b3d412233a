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
/// So a record costs no allocation, no lock and no hash, where a <c>ConcurrentDictionary</c> node cost an
/// allocation per rent, a striped lock and two hash lookups (measured: about a fifth of the monitor's per-rent cost).
/// </para>
/// <para>
/// Free slots are kept per thread: each thread that records or removes has a small cache of free slot numbers
/// (<see cref="SlotCache"/>), takes from it and gives back to it with no interlocked operation, and trades half of
/// it with a shared depot under a lock only when it runs empty or full, once per dozens of rents. A removal is then
/// a single compare-and-swap on the slot's id. Before, free slots sat on lock-free stacks, one per core, and every
/// rent and every return paid a compare-and-swap on a stack's top besides: with the record path measured at about
/// 4 % of a Kestrel <c>/echo</c> request, the profile put most of it on those exchanges. A thread reuses the slot it
/// freed last, whose cache line it wrote last.
/// </para>
/// <para>
/// Caching has a price at the limit, which this table pays instead of refusing records that have room: once the
/// table has grown to <c>maxRecords</c> slots, removals give their slots straight to the depot, where every thread
/// finds them, and a thread that finds its cache and the depot empty takes back the caches of threads that have
/// exited. What stays out of reach there is at most one cache per live thread (<see cref="CacheSize"/> slots, 64
/// at most, and none for tables under 4,096 records), filled before the table was full and used again by that
/// thread first.
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

    /// <summary>The largest per-thread cache of free slots.</summary>
    private const int MaxCacheSize = 64;

    /// <summary>How often, at most, a thread that finds no free slot looks for the caches of exited threads: a walk of every cache under the depot's lock, a microsecond or so, which a table at its limit would otherwise pay on every refused rent.</summary>
    internal const long ReclaimIntervalMilliseconds = 10;

    private static int s_lastGeneration;

    private readonly int _generation;
    private readonly int _maxRecords;
    private readonly Lock _growLock = new();

    // Grown (copied, never shrunk) under _growLock; a chunk, once set, never changes.
    private Slot[]?[] _chunks;

    // Each thread's cache of free slots; null when the table is too small to cache (CacheSize 0).
    private readonly ThreadLocal<SlotCache>? _caches;

    // The shared free slots, a stack of _depotCount slot numbers, and every cache ever made (for the exited threads'
    // slots); all three under _depotLock. _depotCount is also read without it, as a hint.
    private readonly Lock _depotLock = new();
    private readonly List<SlotCache> _allCaches = [];
    private int[] _depot = [];
    private int _depotCount;

    // When a thread that found no free slot may next look for exited threads' caches (Environment.TickCount64).
    private long _nextReclaim;

    // Slots ever handed out, from 0 up to _maxRecords; a slot below it holds a record, is in a cache or the depot, or
    // is owned for a moment by the one thread adding or removing its record.
    private int _used;

    // The tokens of records added by a caller that keeps none (TryAddWithoutToken), by id; null until one does.
    private ConcurrentDictionary<long, long>? _tokensById;

    /// <param name="maxRecords">The most records held at once.</param>
    public ResidentTable(int maxRecords)
        : this(maxRecords, DefaultCacheSize(maxRecords))
    {
    }

    /// <param name="maxRecords">The most records held at once.</param>
    /// <param name="cacheSize">The most free slots a thread keeps for itself; 0 for none (every slot through the depot).</param>
    internal ResidentTable(int maxRecords, int cacheSize)
    {
        Debug.Assert(maxRecords > 0, "the options validate MaxRecords");
        Debug.Assert(cacheSize is 0 or >= 2, "a cache trades half of itself with the depot");
        _maxRecords = maxRecords;
        _generation = Interlocked.Increment(ref s_lastGeneration);
        _chunks = new Slot[]?[Math.Min(16, ChunkCount(maxRecords))];
        CacheSize = cacheSize;
        _caches = cacheSize == 0 ? null : new ThreadLocal<SlotCache>(NewCache);
        Cores = new ResidentCores(_generation, maxRecords);
    }

    /// <summary>Gets the lease cores that carry the pools' records in this generation (at most <c>maxRecords</c> of them, besides the slots).</summary>
    public ResidentCores Cores { get; }

    /// <summary>Gets the most free slots one thread keeps for itself.</summary>
    internal int CacheSize { get; }

    /// <summary>Gets the number of slots ever handed out (tests): the table's size, which reuse keeps down.</summary>
    internal int SlotsInUse => Volatile.Read(ref _used);

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

    /// <summary>Gets a value indicating whether a new record would be refused: every slot is taken, or out of this thread's reach (see the remarks on the type).</summary>
    /// <remarks>Asked before every monitored rent that may capture a stack, so it reads <c>_used</c> first: that field stops changing once the table has grown to fit the load, so the read hits the cache, and the free slots are looked at only when the table is at its limit.</remarks>
    public bool IsFull => Volatile.Read(ref _used) >= _maxRecords && !HasFreeSlotInReach();

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
            if (index < 0 && (!TryReclaimExitedCaches() || (index = PopFree()) < 0))
            {
                token = 0;
                return false;
            }
        }

        // Safe without a lock: the slot was taken from a cache or the depot (or handed out new) by this thread
        // alone, and readers ignore it until the id below is published.
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

        // The record itself is left in place: clearing it would write the slot's other cache line, which the renting
        // core wrote last, on every return (the return is often on the other core). Its context string and stack
        // stay reachable until the slot's next record overwrites them; readers skip it from now on. The slot is
        // this thread's alone from the exchange above until it is handed on here.
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

    /// <summary>The cache size a table of <paramref name="maxRecords"/> gets: one 1,024th of the table, at most 64; none under 4 slots (4,096 records).</summary>
    private static int DefaultCacheSize(int maxRecords)
    {
        int size = Math.Min(MaxCacheSize, maxRecords / 1024) & ~1;
        return size < 4 ? 0 : size;
    }

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

    /// <summary>Takes a free slot: from this thread's cache, else from the depot; -1 when both are empty.</summary>
    private int PopFree()
    {
        if (_caches is null)
        {
            return PopFromDepot();
        }

        // Only this thread touches its cache (except an exited thread's, see TryReclaimExitedCaches).
        SlotCache cache = _caches.Value!;
        if (cache.Count > 0)
        {
            return cache.Slots[--cache.Count];
        }

        return RefillAndPop(cache);
    }

    /// <summary>Gives back a slot this thread has just emptied and owns alone.</summary>
    private void PushFree(int index)
    {
        // At the limit, every free slot goes where every thread can find it (see the remarks on the type).
        if (_caches is null || Volatile.Read(ref _used) >= _maxRecords)
        {
            PushToDepot(index);
            return;
        }

        SlotCache cache = _caches.Value!;
        if (cache.Count == cache.Slots.Length)
        {
            SpillHalf(cache);
        }

        cache.Slots[cache.Count++] = index;
    }

    private int PopFromDepot()
    {
        lock (_depotLock)
        {
            return _depotCount > 0 ? _depot[--_depotCount] : -1;
        }
    }

    private void PushToDepot(int index)
    {
        lock (_depotLock)
        {
            EnsureDepotRoom(1);
            _depot[_depotCount] = index;
            Volatile.Write(ref _depotCount, _depotCount + 1);
        }
    }

    /// <summary>Moves up to half a cache's worth of slots from the depot into an empty cache and takes one; -1 when the depot is empty.</summary>
    private int RefillAndPop(SlotCache cache)
    {
        Debug.Assert(cache.Count == 0, "refilled only when empty");
        lock (_depotLock)
        {
            int take = Math.Min(_depotCount, cache.Slots.Length / 2);
            if (take == 0)
            {
                return -1;
            }

            int from = _depotCount - take;
            _depot.AsSpan(from, take).CopyTo(cache.Slots);
            Volatile.Write(ref _depotCount, from);
            cache.Count = take - 1;
            return cache.Slots[take - 1];
        }
    }

    /// <summary>Moves the older half of a full cache into the depot, keeping the slots freed last (their lines are the warmest).</summary>
    private void SpillHalf(SlotCache cache)
    {
        int half = cache.Slots.Length / 2;
        lock (_depotLock)
        {
            EnsureDepotRoom(half);
            cache.Slots.AsSpan(0, half).CopyTo(_depot.AsSpan(_depotCount));
            Volatile.Write(ref _depotCount, _depotCount + half);
        }

        cache.Slots.AsSpan(half, cache.Count - half).CopyTo(cache.Slots);
        cache.Count -= half;
    }

    /// <summary>Grows the depot to hold <paramref name="more"/> more slots; under <c>_depotLock</c>. Never past <c>maxRecords</c>: no slot is in the depot twice.</summary>
    private void EnsureDepotRoom(int more)
    {
        int needed = _depotCount + more;
        if (needed > _depot.Length)
        {
            Debug.Assert(needed <= _maxRecords, "the depot holds each slot at most once");
            Array.Resize(ref _depot, (int)Math.Min(_maxRecords, Math.Max(needed, Math.Max(64L, _depot.Length * 2L))));
        }
    }

    /// <summary>Whether this thread can still find a free slot: in its cache, in the depot, or in the cache of an exited thread.</summary>
    private bool HasFreeSlotInReach() =>
        (_caches is { } caches && caches.Value!.Count > 0) || Volatile.Read(ref _depotCount) > 0 || TryReclaimExitedCaches();

    /// <summary>Moves the slots of exited threads' caches into the depot; at most once per <see cref="ReclaimIntervalMilliseconds"/>, since it walks every cache. True if the depot now has a slot.</summary>
    private bool TryReclaimExitedCaches()
    {
        long now = Environment.TickCount64;
        if (_caches is null || now < Volatile.Read(ref _nextReclaim))
        {
            return Volatile.Read(ref _depotCount) > 0;
        }

        lock (_depotLock)
        {
            _nextReclaim = now + ReclaimIntervalMilliseconds;
            for (int i = _allCaches.Count - 1; i >= 0; i--)
            {
                SlotCache cache = _allCaches[i];
                if (cache.Owner.IsAlive)
                {
                    continue;
                }

                // Safe: the owner has exited, so no one else will ever touch this cache again (its ThreadLocal value
                // went with the thread). The fence orders the reads below after the exit seen above.
                Interlocked.MemoryBarrier();
                EnsureDepotRoom(cache.Count);
                cache.Slots.AsSpan(0, cache.Count).CopyTo(_depot.AsSpan(_depotCount));
                Volatile.Write(ref _depotCount, _depotCount + cache.Count);
                cache.Count = 0;
                _allCaches.RemoveAt(i);
            }

            return _depotCount > 0;
        }
    }

    private SlotCache NewCache()
    {
        var cache = new SlotCache(CacheSize, Thread.CurrentThread);
        lock (_depotLock)
        {
            _allCaches.Add(cache);
        }

        return cache;
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

    /// <summary>One thread's free slots: a stack of <see cref="Count"/> slot numbers, touched only by <see cref="Owner"/> (and, once it has exited, by the depot's reclaim).</summary>
    private sealed class SlotCache(int size, Thread owner)
    {
        public readonly int[] Slots = new int[size];
        public readonly Thread Owner = owner;
        public int Count;
    }

    /// <summary>One record's place: the lease id (positive while the slot holds a record, 0 while it is free) and the record.</summary>
    private struct Slot
    {
        public long Id;
        public ResidentRecord Record;
    }
}
