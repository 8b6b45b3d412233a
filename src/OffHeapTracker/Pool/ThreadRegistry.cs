using System.Diagnostics;
using System.Runtime.CompilerServices;
using OffHeapTracker.Slabs;

namespace OffHeapTracker;

/// <summary>One pool's view of the threads that rent from it: each thread's <see cref="PoolThreadState"/>, found through the thread's <see cref="ThreadRoot"/> and listed here for sums, trimming and disposal.</summary>
/// <remarks>
/// <para>
/// A pool takes a slot number for its life; each thread's root keeps the thread's state for the pool at that
/// index, so the rent path finds it with one array read and no lock. States name their pool by id, so a reused
/// slot is told apart and a thread's root never keeps a pool alive.
/// </para>
/// <para>
/// The list of states is copy-on-write, guarded by <see cref="_statesLock"/> together with the retired totals of
/// exited threads: a sum taken under the lock sees every count once. A thread that has exited is folded into
/// the retired totals when the list grows, so the list stays bounded by the threads alive at once, except that a
/// dead thread's state that still caches blocks stays listed until the pool takes them back (under its slab
/// lock, which this type never takes).
/// </para>
/// </remarks>
internal sealed class ThreadRegistry
{
    private static readonly Lock s_slotLock = new();
    private static readonly Stack<int> s_freeSlots = new();
    private static int s_nextSlot;

    private readonly int _poolId;
    private readonly int _slot;
    private readonly SizeClass[] _classes;
    private readonly HighWaterMark _highWater;
    private readonly Action _drainExitedThreads;

    /// <summary>Guards <see cref="_states"/> (written under it, copy-on-write) and <see cref="_retired"/>.</summary>
    private readonly Lock _statesLock = new();
    private PoolThreadState[] _states = [];
    private PoolCounters _retired;
    private int _pruneAt = 16;
    private bool _slotReleased;

    /// <param name="poolId">The pool's id, which its states carry.</param>
    /// <param name="classes">The pool's size classes, to size each thread's cache.</param>
    /// <param name="highWater">The pool's high-water mark, which a pruned thread's pending bytes go to.</param>
    /// <param name="drainExitedThreads">Gives back exited threads' cached blocks (under the pool's slab lock) before a prune, so they can be unlisted.</param>
    public ThreadRegistry(int poolId, SizeClass[] classes, HighWaterMark highWater, Action drainExitedThreads)
    {
        _poolId = poolId;
        _classes = classes;
        _highWater = highWater;
        _drainExitedThreads = drainExitedThreads;
        lock (s_slotLock)
        {
            _slot = s_freeSlots.Count > 0 ? s_freeSlots.Pop() : s_nextSlot++;
        }
    }

    /// <summary>Gets the states listed now. Safe to enumerate without the lock (the array is never changed in place), but a state added later is missing.</summary>
    public PoolThreadState[] States => Volatile.Read(ref _states);

    /// <summary>Returns the calling thread's state for this pool, creating it on the thread's first rent or return.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public PoolThreadState GetState(ThreadRoot thread)
    {
        PoolThreadState?[] states = thread.PoolStates;
        if ((uint)_slot < (uint)states.Length && states[_slot] is { } state && state.PoolId == _poolId)
        {
            return state;
        }

        return CreateState(thread);
    }

    /// <summary>Sums every thread's counters and the retired totals.</summary>
    public PoolCounters Sum()
    {
        PoolCounters totals;
        lock (_statesLock)
        {
            totals = _retired;
            foreach (PoolThreadState state in _states)
            {
                totals.AddVolatile(ref state.Counters);
            }
        }

        return totals;
    }

    /// <summary>Returns the states listed now, read under the lock: a thread that registers later does so after the caller's preceding process-wide barrier.</summary>
    public PoolThreadState[] SnapshotStates()
    {
        lock (_statesLock)
        {
            return _states;
        }
    }

    /// <summary>Says, from racy reads, whether any thread seems to park a block of <paramref name="sizeClass"/>; a stale answer costs one missed or one useless take-back.</summary>
    public bool AnyParked(int sizeClass)
    {
        foreach (PoolThreadState state in States)
        {
            if (state.BlockCounts[sizeClass] > 0)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Gives the slot back for another pool; called once, when the pool has released its slabs.</summary>
    public void ReleaseSlot()
    {
        lock (s_slotLock)
        {
            Debug.Assert(!_slotReleased, "a pool releases its slot once");
            _slotReleased = true;
            s_freeSlots.Push(_slot);
        }
    }

    private PoolThreadState CreateState(ThreadRoot thread)
    {
        var state = new PoolThreadState(_poolId, _classes);
        PoolThreadState?[] states = thread.PoolStates;
        if (states.Length <= _slot)
        {
            Array.Resize(ref states, Math.Max(_slot + 1, Math.Max(4, states.Length * 2)));
            thread.PoolStates = states;
        }

        states[_slot] = state;
        if (Volatile.Read(ref _states).Length >= _pruneAt)
        {
            // Outside the states lock: the pool takes its slab lock first (the lock order).
            _drainExitedThreads();
        }

        lock (_statesLock)
        {
            if (_states.Length >= _pruneAt)
            {
                PruneExitedThreadsUnsynchronized();
                _pruneAt = Math.Max(16, _states.Length * 2);
            }

            // Copy-on-write, so a snapshot taken under the lock stays valid after it is released.
            PoolThreadState[] grown = new PoolThreadState[_states.Length + 1];
            _states.CopyTo(grown, 0);
            grown[^1] = state;
            Volatile.Write(ref _states, grown);
        }

        return state;
    }

    /// <summary>Folds the counters of exited threads whose caches are empty into the retired totals and unlists them. Called under <see cref="_statesLock"/>.</summary>
    private void PruneExitedThreadsUnsynchronized()
    {
        Debug.Assert(_statesLock.IsHeldByCurrentThread, "the caller holds the states lock");
        var kept = new List<PoolThreadState>(_states.Length);
        foreach (PoolThreadState state in _states)
        {
            // A dead thread's cached blocks are taken back under the pool's slab lock (TakeBackCachedBlocks);
            // until then its state stays listed, or the blocks would be stranded.
            if (state.Thread.IsAlive || Volatile.Read(ref state.CachedBytes) != 0)
            {
                kept.Add(state);
                continue;
            }

            // The thread is gone, so nothing writes these any more.
            _retired.AddVolatile(ref state.Counters);
            _highWater.Flush(state);
        }

        Volatile.Write(ref _states, kept.ToArray());
    }
}
