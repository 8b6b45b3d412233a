using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace OffHeapTracker.Monitoring;

/// <summary>The pools' half of a resident table: a weak reference to every lease core that carries, or has carried, a record in this table generation. The record itself lives in the core.</summary>
/// <remarks>
/// <para>
/// A pool's monitored rent writes its record into the lease's <see cref="LeaseCore"/> (the time stamp, context
/// and stack it keeps for the lease anyway, plus the length, type, thread and weight) and publishes it by storing
/// the lease id last in <see cref="LeaseTracking.RecordId"/>; the return clears that id first. The table only has to
/// know the core, which it learns once per core and generation (<see cref="TryRegister"/>), not once per rent. So a
/// monitored rent and return write no memory besides the lease's own: measured side by side, a record in a
/// table slot of its own cost about 4 % of a Kestrel server's CPU per <c>/echo</c> request, and the same record
/// written into the core instead cost nothing measurable (the slot's cache lines moved between the core that rented
/// and the one that returned, on top of the lease's own).
/// </para>
/// <para>
/// The references are weak, so a table never keeps a core reachable, nor through it the guard of the lease renting
/// it: a dropped lease stays collectable, and its guard's finalizer reports it. They track resurrection, so a
/// dropped lease's record stays listed until that report, which removes it.
/// </para>
/// <para>
/// A reader copies a record's fields between two reads of its id (the same seqlock as <see cref="ResidentTable"/>'s
/// slots): ids never repeat, so the same id before and after means a whole record of that rent. Slots are only taken
/// under the lock, and given back by a sweep (under it too) when the table is at its limit: the slots of cores the
/// collector took, and of cores since listed by another table.
/// </para>
/// </remarks>
internal sealed unsafe class ResidentCores
{
    // 1,024 references per chunk: 8 KiB, far below the large object heap.
    private const int ChunkShift = 10;

    private const int ChunkSize = 1 << ChunkShift;

    /// <summary>How often, at most, a table at its limit sweeps: a walk of every slot under the lock, which would otherwise run on every refused rent.</summary>
    internal const long SweepIntervalMilliseconds = 10;

    // Tests only, and only on the thread that set it: runs in TryRead between the first read of a record's id and
    // the copy, so a test can return the lease and rent the core again exactly there.
    [ThreadStatic]
    private static Action<LeaseCore>? t_betweenReadsForTests;

    // Tests only, and only on the thread that set it: runs in TryRead between the registration check and the first
    // read of the record's id.
    [ThreadStatic]
    private static Action<LeaseCore>? t_afterRegistrationCheckForTests;

    private readonly int _generation;
    private readonly int _maxCores;
    private readonly Lock _lock = new();

    // Grown (copied, never shrunk) under _lock; a chunk, once set, never changes. A slot is written under _lock only.
    private WeakReference<LeaseCore>?[]?[] _chunks;

    // Slots given back by a sweep, a stack of _freeCount; under _lock.
    private int[] _free = [];
    private int _freeCount;

    // Slots ever handed out, up to _maxCores.
    private int _used;

    // When the table may next sweep (Environment.TickCount64); under _lock.
    private long _nextSweep;

    /// <param name="generation">The generation of the table this belongs to.</param>
    /// <param name="maxCores">The most cores listed at once.</param>
    public ResidentCores(int generation, int maxCores)
    {
        Debug.Assert(generation != 0, "0 means no table in a core's registration");
        _generation = generation;
        _maxCores = maxCores;
        _chunks = new WeakReference<LeaseCore>?[]?[Math.Min(16, ChunkCount(maxCores))];
    }

    /// <summary>Sets what runs, on this thread only, between a walk's first read of a record's id and its copy (tests).</summary>
    internal static void SetBetweenReadsForTests(Action<LeaseCore>? action) => t_betweenReadsForTests = action;

    /// <summary>Sets what runs, on this thread only, between a walk's check of a core's registration and its first read of the record's id (tests).</summary>
    internal static void SetAfterRegistrationCheckForTests(Action<LeaseCore>? action) => t_afterRegistrationCheckForTests = action;

    /// <summary>Gets how many sweeps this table has made (tests).</summary>
    internal int SweepCount { get; private set; }

    /// <summary>Gets how long the last sweep took, in whole milliseconds: it spaces the next one (see <see cref="TrySweep"/>). Under <c>_lock</c>; tests read it.</summary>
    internal long LastSweepMilliseconds { get; private set; }

    /// <summary>Gets when the next sweep is due, on <see cref="Environment.TickCount64"/> (tests).</summary>
    internal long NextSweepDue => Volatile.Read(ref _nextSweep);

    /// <summary>Gets the number of slots ever handed out (tests and walks).</summary>
    internal int SlotsInUse => Volatile.Read(ref _used);

    /// <summary>Whether <paramref name="core"/> is listed here already: the check every monitored rent makes, one field read.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Lists(LeaseCore core) => (int)(Volatile.Read(ref core.Registration) >> 32) == _generation;

    /// <summary>Lists a core that is not listed here yet; called by the thread renting it, before it writes a record.</summary>
    /// <returns>False when the table is at its limit even after a sweep: the rent goes unrecorded.</returns>
    public bool TryRegister(LeaseCore core)
    {
        // At the limit, with no slot free and the next sweep not yet due, refuse without the lock: a table full of live
        // cores (a leak that keeps its buffers referenced) must not make every rent that needs a core queue on it.
        // Plain reads of fields written under the lock: a stale one only sends this rent on to the locked path below,
        // or refuses one that a sweep has just made room for, as a refusal a moment earlier would have.
        if (Volatile.Read(ref _freeCount) == 0 && Volatile.Read(ref _used) >= _maxCores && Environment.TickCount64 < Volatile.Read(ref _nextSweep))
        {
            return false;
        }

        lock (_lock)
        {
            int index = TakeSlot();
            if (index < 0 && TrySweep())
            {
                index = TakeSlot();
            }

            if (index < 0)
            {
                return false;
            }

            // Only the renting thread writes WeakSelf, and only one thread rents a core at a time.
            WeakReference<LeaseCore> weak = core.WeakSelf ??= new WeakReference<LeaseCore>(core, trackResurrection: true);
            Volatile.Write(ref ChunkOf(index)[index & (ChunkSize - 1)], weak);

            // Release: a walk that reads this registration reads the slot above set. The core may have been listed by
            // another table before; that table's slot now fails its registration check and is skipped, then swept.
            Volatile.Write(ref core.Registration, Registration(index));
            return true;
        }
    }

    /// <summary>Copies the record of the core in <paramref name="index"/>, if it is listed there and carries one now.</summary>
    /// <returns>False for an empty or stale slot, a collected core, a core without a record, or a record that changed during the copy.</returns>
    public bool TryRead(int index, out long id, out ResidentRecord record)
    {
        id = 0;
        record = default;
        WeakReference<LeaseCore>?[]?[] chunks = Volatile.Read(ref _chunks);
        int chunk = index >> ChunkShift;
        if (chunk >= chunks.Length
            || Volatile.Read(ref chunks[chunk]) is not { } slots
            || Volatile.Read(ref slots[index & (ChunkSize - 1)]) is not { } weak
            || !weak.TryGetTarget(out LeaseCore? core)
            || Volatile.Read(ref core.Registration) != Registration(index))
        {
            return false;
        }

        t_afterRegistrationCheckForTests?.Invoke(core);
        ref LeaseTracking tracking = ref core.Tracking;
        long seen = Volatile.Read(ref tracking.RecordId);
        if (seen == 0)
        {
            return false;
        }

        t_betweenReadsForTests?.Invoke(core);

        // Copied between two reads of the id: the writer stores the fields before the id and clears the id before
        // it changes them (the return, then the core's release, then the next rent), so the same id after the copy
        // means every field below is that rent's. The pool reference is only dereferenced after the check.
        DirectBufferPool? pool = Volatile.Read(ref core.Pool);
        nint address = (nint)core.Pointer;
        int allocateSize = core.AllocateSize;
        long timestamp = tracking.Timestamp;
        int length = tracking.Length;
        BufferType type = tracking.BufferType;
        int threadId = tracking.ThreadId;
        string? context = tracking.Context;
        CapturedStackTrace? stack = tracking.AllocationStack;
        int weight = tracking.StackWeight;
        long writtenFor = tracking.RecordRegistration;
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref tracking.RecordId) != seen || pool is null)
        {
            return false;
        }

        // The registration check above only said the core was listed here when the walk began: between it and the
        // first read of the id, the core may have moved to another table (a rent from another monitor's pool) or
        // away and back into another slot of this one, and the record read may be that rent's. The record says which
        // slot it was written for; any other slot skips it.
        if (writtenFor != Registration(index))
        {
            return false;
        }

        id = seen;
        record = new ResidentRecord(address, timestamp, allocateSize, length, type, threadId, pool.Name, pool.Id, context, stack, weight);
        return true;
    }

    private static int ChunkCount(int maxCores) => (int)(((long)maxCores + ChunkSize - 1) >> ChunkShift);

    private long Registration(int index) => ((long)_generation << 32) | (uint)index;

    private WeakReference<LeaseCore>?[] ChunkOf(int index) => Volatile.Read(ref _chunks)[index >> ChunkShift]!;

    /// <summary>A free slot, or a new one; -1 at the limit. Under <c>_lock</c>.</summary>
    private int TakeSlot()
    {
        if (_freeCount > 0)
        {
            return _free[--_freeCount];
        }

        int index = _used;
        if (index >= _maxCores)
        {
            return -1;
        }

        int chunk = index >> ChunkShift;
        WeakReference<LeaseCore>?[]?[] chunks = _chunks;
        if (chunk == chunks.Length)
        {
            Array.Resize(ref chunks, Math.Min(chunks.Length * 2, ChunkCount(_maxCores)));
            Volatile.Write(ref _chunks, chunks);
        }

        if (chunks[chunk] is null)
        {
            Volatile.Write(ref chunks[chunk], new WeakReference<LeaseCore>?[ChunkSize]);
        }

        // Walks read _used first and every slot below it has its chunk.
        Volatile.Write(ref _used, index + 1);
        return index;
    }

    /// <summary>Gives back the slots of collected cores and of cores another table lists now, when a sweep is due: <see cref="SweepIntervalMilliseconds"/>, or ten times the last sweep's length, after the last one ended, since it walks every slot. Under <c>_lock</c>.</summary>
    /// <returns>True if a slot was freed.</returns>
    private bool TrySweep()
    {
        long now = Environment.TickCount64;
        if (now < _nextSweep)
        {
            return false;
        }

        long started = Stopwatch.GetTimestamp();
        SweepCount++;
        int freed = 0;
        for (int index = 0; index < _used; index++)
        {
            ref WeakReference<LeaseCore>? slot = ref ChunkOf(index)[index & (ChunkSize - 1)];
            if (slot is null)
            {
                continue;
            }

            // A core's registration names this slot only while this table lists it there: it changes under this lock
            // (re-listed here) or when another table lists it (then it is leaving this one anyway).
            if (slot.TryGetTarget(out LeaseCore? core) && Volatile.Read(ref core.Registration) == Registration(index))
            {
                continue;
            }

            Volatile.Write(ref slot, null);
            if (_freeCount == _free.Length)
            {
                Array.Resize(ref _free, Math.Max(16, _free.Length * 2));
            }

            _free[_freeCount++] = index;
            freed++;
        }

        // The next sweep is due an interval after this one ended, or ten times as long as this one took if that is
        // more: a walk of a million slots takes 30-110 ms, so sweeping every 10 ms would keep the lock, and every
        // renting thread that needs a core, busy with it most of the time. This way sweeps take at most a tenth.
        LastSweepMilliseconds = (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        Volatile.Write(ref _nextSweep, Environment.TickCount64 + Math.Max(SweepIntervalMilliseconds, 10 * LastSweepMilliseconds));
        return freed > 0;
    }
}
