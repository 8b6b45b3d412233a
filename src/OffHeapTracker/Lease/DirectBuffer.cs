using System.Buffers;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker;

/// <summary>A lease on one native buffer rented from a <see cref="DirectBufferPool"/>.</summary>
/// <remarks>
/// <para>
/// The buffer's contents are undefined when rented (not zeroed). <see cref="Dispose()"/> gives the buffer back:
/// from that moment the caller gives up all ownership and must not touch the buffer, its <see cref="Memory"/>,
/// or any <see cref="Span{T}"/> or pointer taken from it.
/// </para>
/// <para>
/// While the monitor is on, every lease is a fresh object: getting <see cref="Memory"/>, a span or a pin from
/// a disposed lease (including through a <see cref="Memory{T}"/> taken earlier) throws
/// <see cref="ObjectDisposedException"/>, and a second <see cref="Dispose()"/> is ignored and counted. While the
/// monitor is off, lease objects are reused to keep renting allocation-free, so those checks hold only until the
/// object is rented again; as with <see cref="ArrayPool{T}"/>, touching or disposing a returned lease is then
/// a bug the pool cannot see. A span taken before <see cref="Dispose()"/> is a raw view and is never checked.
/// </para>
/// <para>A lease may be handed between threads; <see cref="Dispose()"/> may race with itself safely.</para>
/// <para>
/// A lease that becomes unreachable without <see cref="Dispose()"/> is caught by a finalizer and reported
/// (<see cref="DirectBufferPoolStatistics.LeakedCount"/>, <see cref="ResidentBufferMonitor.LeakDetected"/>, a
/// warning in the log). Its block is then kept out of circulation, counted in
/// <see cref="DirectBufferPoolStatistics.LeakedBytes"/> and still in use: a span or pointer taken from the lease
/// does not keep the lease alive and may still be in use, so the block is never handed to another renter
/// (unless the pool opted into <see cref="DirectBufferPoolOptions.ReclaimLeakedBuffers"/>). A
/// <see cref="Memory{T}"/> of the lease and a <see cref="MemoryHandle"/> from <see cref="Pin(int)"/> do keep it
/// alive.
/// </para>
/// </remarks>
public sealed unsafe class DirectBuffer : MemoryManager<byte>, IMemoryOwner<byte>, IDisposable
{
    // The lease's life: Rented -> Returned by Dispose, or Rented -> Leaked/LeakReclaimed by the finalizer. One
    // atomic transition out of Rented decides who owns the block; every other path only observes.
    private const int StateReturned = 0;
    private const int StateRented = 1;

    /// <summary>Found by the finalizer; the block is kept out of circulation until a late <see cref="Dispose()"/>.</summary>
    private const int StateLeaked = 2;

    /// <summary>Found by the finalizer of a pool that reclaims leaks; the block already went back.</summary>
    private const int StateLeakReclaimed = 3;

    /// <summary>The finalizer is recording the leak; a concurrent Dispose waits for it to finish (a few instructions).</summary>
    private const int StateLeaking = 4;

    // The block, its tracking and the safety net (see LeaseCore). A reused lease owns its core for life; a fresh
    // lease borrows one while it is rented and lets go of it when returned (null after), so the object a monitored
    // rent allocates is only this handle: the fields below, 64 bytes with the object header.
    private LeaseCore? _core;
    private long _id;
    private int _length;
    private BufferType _bufferType;
    private int _state;

    // While the object waits in the lease cache, or once a fresh lease is returned, the pool is held weakly, so a
    // returned lease never roots a pool nobody else references; kept only to count a stale second Dispose.
    private WeakReference<DirectBufferPool>? _returnedTo;

    // A returned fresh lease's stacks, for a later double-dispose report (its core went on to other leases): its
    // allocation stack (a CapturedStackTrace), both stacks (a DisposeTrail) when dispose stacks are on, or null.
    private object? _trail;

    /// <summary>Creates a lease object: a reused one (the monitor off) with its own core, or a fresh one for a single rent.</summary>
    /// <param name="reusable">True for a lease object the lease recycler lends again and again.</param>
    /// <param name="core">A fresh lease's borrowed core, idle until now; null for a reused one, which gets its own.</param>
    internal DirectBuffer(bool reusable, LeaseCore? core = null)
    {
        Debug.Assert(reusable == (core is null), "a reused lease owns its core; a fresh one borrows one");
        IsReusable = reusable;
        _core = core ?? new LeaseCore();
        _core.LendTo(this);
    }

    /// <summary>Gets the lease's id, unique in the process; it is the key of the monitor's resident record.</summary>
    public long Id => _id;

    /// <summary>Gets the buffer's length in bytes: at least what was requested, rounded up to the pool's block size.</summary>
    public int Length => _length;

    /// <summary>Gets the type declared when the buffer was rented.</summary>
    public BufferType BufferType => _bufferType;

    /// <summary>Gets a value indicating whether <see cref="Dispose()"/> has been called.</summary>
    public bool IsDisposed => Volatile.Read(ref _state) != StateRented;

    /// <summary>Gets the buffer as <see cref="Memory{T}"/>.</summary>
    /// <exception cref="ObjectDisposedException">The lease has been disposed.</exception>
    public override Memory<byte> Memory
    {
        get
        {
            ThrowIfReturned();
            return CreateMemory(_length);
        }
    }

    // The members below describe the block: the pool and the tracker read them only while the lease holds its
    // core, from Initialize until the return that releases a fresh lease's core. The leak path copies what it
    // reports before a late Dispose may release the core (see DirectBufferPool.OnLeaseFinalized).
    internal DirectBufferPool? Pool => _core?.Pool;

    internal byte* Pointer => Core.Pointer;

    /// <summary>Gets the address of the buffer's first byte, for records (never dereferenced through this).</summary>
    internal nint Address => (nint)Core.Pointer;

    internal bool IsArrayBacked => Core.Array is not null;

    internal int AllocateSize => Core.AllocateSize;

    internal int SizeClass => Core.SizeClass;

    internal int Block => Core.Block;

    internal bool IsReusable { get; }

    /// <summary>Gets a value indicating whether this object may go back to the lease cache: it is reusable and its guard's finalizer has not run.</summary>
    /// <remarks>A plain read: a finalizer that runs after it is answered is tolerated (see <see cref="LeaseRecycler.Return"/>).</remarks>
    internal bool IsRecyclable => IsReusable && _core!.IsRecyclable;

    /// <summary>Gets the lease's safety net (see <see cref="LeaseGuard"/>); null once a fresh lease gave its core back.</summary>
    internal LeaseGuard? SafetyNet => _core?.Guard;

    /// <summary>Gets the core the lease holds: for the tracker, which records into it, the leak path, and tests; null once a fresh lease gave it back.</summary>
    internal LeaseCore? HeldCore => _core;

    internal bool IsPooled => Core.Block >= 0;

    /// <summary>Gets what the tracker keeps on this lease; only <see cref="BufferTracker"/> uses it.</summary>
    internal ref LeaseTracking Tracking => ref Core.Tracking;

    private LeaseCore Core
    {
        get
        {
            Debug.Assert(_core is not null, "the block is described only while the lease holds its core");
            return _core!;
        }
    }

    /// <summary>Gets the buffer as a span.</summary>
    /// <exception cref="ObjectDisposedException">The lease has been disposed.</exception>
    public override Span<byte> GetSpan()
    {
        LeaseCore core = RentedCore();
        byte[]? array = core.Array;
        int arrayOffset = core.ArrayOffset;
        byte* pointer = core.Pointer;
        EnsureStillRented();
        if (array is not null)
        {
            // Over the array, not the pointer: the span then keeps the pinned array alive even if the lease is
            // dropped and collected while the span is still in use.
            return new Span<byte>(array, arrayOffset, _length);
        }

        // Safe: while the lease is rented, [pointer, pointer + _length) is a block the pool handed to this lease
        // alone, inside a slab (or an unpooled allocation) that is not freed before the lease is returned, and not
        // reissued if the lease is dropped (it is then kept out of circulation). EnsureStillRented made sure the
        // pointer was read while this lease was rented, not after a racing Dispose lent the core to another.
        return new Span<byte>(pointer, _length);
    }

    /// <summary>Returns a handle to the buffer's memory that keeps this lease alive until the handle is disposed. Native memory never moves, so nothing is pinned.</summary>
    /// <param name="elementIndex">The offset of the first byte the handle points to, between 0 and <see cref="Length"/>.</param>
    /// <exception cref="ObjectDisposedException">The lease has been disposed.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="elementIndex"/> is outside the buffer.</exception>
    public override MemoryHandle Pin(int elementIndex = 0)
    {
        byte* pointer = RentedCore().Pointer;
        EnsureStillRented();
        if (unchecked((uint)elementIndex > (uint)_length))
        {
            Guard.ThrowOutOfRange(elementIndex, 0, _length, nameof(elementIndex));
        }

        // The handle roots this lease (its pinnable), and through it the core and its guard, as every
        // MemoryManager in the BCL does: while a handle is held, the guard's finalizer cannot run, so the block
        // cannot be reported or reclaimed under the pointer.
        return new MemoryHandle(pointer + elementIndex, default, this);
    }

    /// <summary>Exposes the array behind the buffer when the pool is <see cref="BufferBacking.PinnedArray"/>-backed (what <see cref="MemoryMarshal.TryGetArray{T}(ReadOnlyMemory{T}, out ArraySegment{T})"/> calls).</summary>
    /// <param name="segment">The buffer's part of the pinned array.</param>
    /// <returns>True for a pinned-array pool; false for native memory.</returns>
    /// <exception cref="ObjectDisposedException">The lease has been disposed.</exception>
    protected override bool TryGetArray(out ArraySegment<byte> segment)
    {
        LeaseCore core = RentedCore();
        byte[]? array = core.Array;
        int arrayOffset = core.ArrayOffset;
        EnsureStillRented();
        if (array is null)
        {
            segment = default;
            return false;
        }

        segment = new ArraySegment<byte>(array, arrayOffset, _length);
        return true;
    }

    /// <summary>Does nothing: native memory is never unpinned because it is never pinned.</summary>
    public override void Unpin()
    {
    }

    /// <summary>Returns the buffer to its pool. A second call is ignored and counted in <see cref="DirectBufferPoolStatistics.DoubleDisposeCount"/>.</summary>
    /// <remarks>Never throws, even when the pool has been disposed or its monitor fails.</remarks>
    public void Dispose()
    {
        // The one transition that hands the block back: whoever wins it returns the block, anyone later is a
        // double dispose. This is what stops a repeated Dispose from freeing a block now owned by another lease.
        if (Interlocked.CompareExchange(ref _state, StateReturned, StateRented) != StateRented)
        {
            DisposeNotRented();
            return;
        }

        // The pool also lets go of what the lease no longer needs: a fresh lease's core (ReleaseCore), or a
        // reused lease's strong hold on the pool before the object is cached (DetachForReuse).
        Core.Pool!.Return(this);
    }

    /// <summary>The rare cases of <see cref="Dispose()"/>: a lease the finalizer found, or one already returned.</summary>
    private void DisposeNotRented()
    {
        switch (ExchangeStateForReturned())
        {
            case StateRented:
                // Cannot happen: only Initialize makes a lease rented, on a lease no one else can see.
                Debug.Fail("a lease became rented again while being disposed");
                return;
            case StateLeaked:
                // The finalizer found this lease first (an owner's finalizer disposing it, in the same GC): the
                // owner's dispose is the real one, so the block it kept out comes back now.
                // The core is still held: nothing releases a lease's core while its block is kept out.
                Core.Pool!.ReturnAfterLeak(this);
                return;
            case StateLeakReclaimed:
                // Same, but the pool already took the block back when the finalizer ran.
                return;
            default:
                PoolForReport()?.OnDoubleDispose(this);
                return;
        }
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"DirectBuffer {_id} ({_length} bytes, {_bufferType}{(IsDisposed ? ", disposed" : string.Empty)})";

    /// <summary>Makes the lease the sole owner of a block. Only the pool calls this, on a lease no one else can see.</summary>
    internal void Initialize(
        DirectBufferPool pool,
        byte* pointer,
        int length,
        int allocateSize,
        int sizeClass,
        int block,
        long id,
        BufferType bufferType,
        byte[]? array,
        int arrayOffset)
    {
        LeaseCore core = Core;
        core.Pool = pool;
        core.Pointer = pointer;
        core.Array = array;
        core.ArrayOffset = arrayOffset;
        core.AllocateSize = allocateSize;
        core.SizeClass = sizeClass;
        core.Block = block;
        _length = length;
        _id = id;
        _bufferType = bufferType;
        Debug.Assert(!core.Tracking.IsRecorded, "a core carries tracking only while one rent lasts");

        // Publish last: a reader that sees Rented sees the fields above.
        Volatile.Write(ref _state, StateRented);
    }

    /// <summary>Handles this lease being dropped undisposed: called by its guard's finalizer, once the verdict is final.</summary>
    /// <remarks>
    /// Runs on the finalizer thread, when nothing else can reach this object but other objects being finalized
    /// with it. It tolerates a lease that was never initialized (state not rented, pool null) and never throws:
    /// the pool catches everything inside.
    /// </remarks>
    internal void OnDropped()
    {
        // Leaking holds off a concurrent Dispose (an owner that handed the dispose to another thread) until the
        // pool has marked and counted the leak, so a late return never runs before the leak it undoes.
        if (_core?.Pool is { } pool && Interlocked.CompareExchange(ref _state, StateLeaking, StateRented) == StateRented)
        {
            pool.OnLeaseFinalized(this, pool.ReclaimsLeakedBuffers);
        }
    }

    /// <summary>Gives a fresh lease's core back to <see cref="LeaseCores"/> once the lease is returned; a reused lease keeps its own.</summary>
    /// <param name="pool">What the returned lease keeps of its pool (see <see cref="_returnedTo"/>).</param>
    /// <param name="thread">The returning thread.</param>
    /// <remarks>
    /// Called once, by the one thread that returns the lease: the one that won its dispose, the finalizer on a pool
    /// that reclaims leaks, or a late dispose after a leak (which the leak path reports from copies). A double
    /// dispose on another thread may read the core meanwhile: the stacks it reports are moved here first and the
    /// core let go of before its tracking is reset (see <see cref="GetReportStacks"/>).
    /// </remarks>
    internal void ReleaseCore(WeakReference<DirectBufferPool> pool, ThreadRoot thread)
    {
        Debug.Assert(!IsReusable, "a reused lease owns its core for life");
        Debug.Assert(Volatile.Read(ref _state) != StateRented, "a rented lease must keep its safety net");
        LeaseCore core = Core;
        ref LeaseTracking tracking = ref core.Tracking;

        // Every path clears the record's id before the core's fields change, so a walk never copies a mix of this rent
        // and the next (see ResidentCores.TryRead). A return did so already; a late dispose after a leak may get here
        // before the finalizer's leak report has cleared it, so it is cleared here too, with a full fence, and the
        // report's compare-and-swap then finds nothing to clear. The id never becomes non-zero again while this lease
        // holds the core, so a zero read needs no fence.
        if (Volatile.Read(ref tracking.RecordId) != 0)
        {
            Interlocked.Exchange(ref tracking.RecordId, 0);
        }

        CapturedStackTrace? disposeStack = Volatile.Read(ref tracking.DisposeStack);
        _trail = disposeStack is null ? tracking.AllocationStack : new DisposeTrail(tracking.AllocationStack, disposeStack);
        Volatile.Write(ref _returnedTo, pool);
        core.Clear();

        // Release: a reader that sees the core gone sees the trail and the pool above. Let go before the core can be
        // lent again, so this lease never refers to a core another lease rents: a disposed lease kept somewhere
        // would keep that lease's guard reachable, and its drop unreported.
        Volatile.Write(ref _core, null);

        // Then forget the rent's context and stacks, so an idle core keeps none of them alive. A double dispose
        // racing this may still read the core and see them gone: its report then says "not captured".
        tracking = default;
        LeaseCores.Return(core, thread);
    }

    /// <summary>Says where this lease was rented and first disposed, for a double-dispose report; any thread, even while the first dispose runs.</summary>
    internal void GetReportStacks(out CapturedStackTrace? allocation, out CapturedStackTrace? firstDispose)
    {
        if (Volatile.Read(ref _core) is { } core)
        {
            allocation = core.Tracking.AllocationStack;
            firstDispose = Volatile.Read(ref core.Tracking.DisposeStack);

            // Still held after the reads (the barrier keeps them before the check): the core was not released, so
            // not lent to another lease, before they ran, and they are this rent's. Otherwise, the trail is.
            Interlocked.MemoryBarrier();
            if (ReferenceEquals(Volatile.Read(ref _core), core))
            {
                return;
            }
        }

        switch (Volatile.Read(ref _trail))
        {
            case DisposeTrail trail:
                allocation = trail.Allocation;
                firstDispose = trail.FirstDispose;
                break;
            case CapturedStackTrace stack:
                allocation = stack;
                firstDispose = null;
                break;
            default:
                allocation = null;
                firstDispose = null;
                break;
        }
    }

    /// <summary>Lets go of the array behind a returned lease, so a reused lease object does not keep an unpooled array alive.</summary>
    internal void ReleaseArray() => Core.Array = null;

    /// <summary>Readies a returned lease for the lease cache: the pool is then held only weakly (see <see cref="_returnedTo"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void DetachForReuse(WeakReference<DirectBufferPool> pool)
    {
        Debug.Assert(Volatile.Read(ref _state) == StateReturned, "only a returned lease is cached");
        // Compared first: the same pool in steady state, so the reference store (and its GC write barrier) is skipped.
        if (!ReferenceEquals(_returnedTo, pool))
        {
            _returnedTo = pool;
        }

        Volatile.Write(ref _core!.Pool, null);
        _core.Pointer = null;
    }

    /// <summary>Ends the Leaking state once the pool has recorded the leak: a waiting Dispose may then proceed.</summary>
    internal void PublishLeaked(bool reclaimed)
    {
        Debug.Assert(Volatile.Read(ref _state) == StateLeaking, "only the finalizer's leak path publishes");
        Volatile.Write(ref _state, reclaimed ? StateLeakReclaimed : StateLeaked);
    }

    /// <summary>Moves the state to Returned and says what it was; waits out a finalizer that is recording a leak.</summary>
    private int ExchangeStateForReturned()
    {
        SpinWait spinner = default;
        while (true)
        {
            int state = Volatile.Read(ref _state);
            if (state == StateLeaking)
            {
                // Rare: the finalizer is recording this lease as leaked while an owner's hand-off disposes it.
                // Wait for it to publish Leaked (or LeakReclaimed), then take that.
                spinner.SpinOnce();
                continue;
            }

            if (Interlocked.CompareExchange(ref _state, StateReturned, state) == state)
            {
                return state;
            }
        }
    }

    /// <summary>The pool a double dispose is counted in: the one whose block the lease holds, or the one it went back to.</summary>
    private DirectBufferPool? PoolForReport()
    {
        if (Volatile.Read(ref _core) is { } core && Volatile.Read(ref core.Pool) is { } pool)
        {
            // As in GetReportStacks: a pool read from a core the lease still holds afterwards is this lease's. A
            // pool read as null was cleared after _returnedTo was set (both with release stores), so it is found there.
            Interlocked.MemoryBarrier();
            if (ReferenceEquals(Volatile.Read(ref _core), core))
            {
                return pool;
            }
        }

        return Volatile.Read(ref _returnedTo) is { } weak && weak.TryGetTarget(out DirectBufferPool? returnedTo) ? returnedTo : null;
    }

    /// <summary>Called by <see cref="MemoryManager{T}"/>'s own dispose path; routes to <see cref="Dispose()"/>.</summary>
    protected override void Dispose(bool disposing) => Dispose();

    /// <summary>The core of a rented lease; throws if the lease is returned.</summary>
    private LeaseCore RentedCore()
    {
        // The core first, then the state: a fresh lease lets go of its core only after its state left Rented (and
        // never comes back), so a core read before a Rented state is this rent's. Null only for a returned lease.
        LeaseCore? core = Volatile.Read(ref _core);
        if (Volatile.Read(ref _state) != StateRented || core is null)
        {
            ThrowDisposed();
        }

        return core;
    }

    /// <summary>Re-checks the state after a core's fields were read, so they are this rent's: a fresh lease's core goes to another lease only after this lease's state left Rented, for good.</summary>
    /// <remarks>Only a caller racing its own <see cref="Dispose()"/> can fail here; it then gets <see cref="ObjectDisposedException"/>, never another renter's block with this lease's length.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void EnsureStillRented()
    {
        // Keeps the field reads above before the state read below (free on x64, a load fence on Arm64).
        Volatile.ReadBarrier();
        if (Volatile.Read(ref _state) != StateRented)
        {
            ThrowDisposed();
        }
    }

    private void ThrowIfReturned()
    {
        if (Volatile.Read(ref _state) != StateRented)
        {
            ThrowDisposed();
        }
    }

    [DoesNotReturn]
    private void ThrowDisposed() =>
        throw new ObjectDisposedException(nameof(DirectBuffer), $"Buffer {_id} has been returned to its pool and must not be used.");

    /// <summary>Both stacks of a returned fresh lease, kept only when dispose stacks are on.</summary>
    private sealed record DisposeTrail(CapturedStackTrace? Allocation, CapturedStackTrace FirstDispose);
}
