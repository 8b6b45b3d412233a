using System.Runtime.CompilerServices;

namespace OffHeapTracker;

/// <summary>Everything OffHeapTracker keeps per thread, behind one <see cref="ThreadStaticAttribute"/> field: one lookup per rent, one lifecycle.</summary>
/// <remarks>
/// <para>
/// Only its own thread touches a root, except the parts a pool's <see cref="ThreadRegistry"/> reads through
/// the <see cref="PoolThreadState"/> objects it also holds. The root goes with its thread; nothing in it refers
/// to a pool (states name their pool by id), so a thread that once rented from a pool never keeps it alive.
/// </para>
/// </remarks>
internal sealed class ThreadRoot
{
    [ThreadStatic]
    private static ThreadRoot? t_current;

    /// <summary>This thread's state for each pool, indexed by the pool's registry slot (see <see cref="ThreadRegistry"/>).</summary>
    public PoolThreadState?[] PoolStates = [];

    /// <summary>The lease objects this thread returned, waiting out their quarantine (see <see cref="LeaseRecycler"/>).</summary>
    public LeaseRecycler.Ring? Leases;

    /// <summary>Idle lease cores for the fresh leases rented while the monitor is on, a stack of <see cref="CoreCount"/> (see <see cref="LeaseCores"/>).</summary>
    public LeaseCore?[]? Cores;

    /// <inheritdoc cref="Cores"/>
    public int CoreCount;

    /// <summary>The next lease id this thread hands out, and the end of its reserved block (see <see cref="LeaseIds"/>).</summary>
    public long NextLeaseId;

    /// <inheritdoc cref="NextLeaseId"/>
    public long LeaseIdEnd;

    /// <summary>This thread's stack-sampling countdowns, created on its first monitored rent.</summary>
    public StackSampler? Sampler;

    public static ThreadRoot Current
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => t_current ?? CreateForCurrentThread();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ThreadRoot CreateForCurrentThread() => t_current = new ThreadRoot();
}
