using System.Diagnostics;

namespace OffHeapTracker.Monitoring;

/// <summary>What a pool captures with each buffer it reports to a monitor: allocation stacks (every buffer or one in N), dispose stacks, and the bounded table that shares identical stacks.</summary>
/// <remarks>
/// <para>
/// A monitor hands one to its pools through <see cref="IBufferMonitor.StackCapture"/>; the pool captures on the
/// renting (or disposing) thread and passes the result in <see cref="BufferAllocation.Stack"/>, so a custom
/// monitor gets the same stacks as the built-in one. Capture is most of a monitor's cost (a few microseconds per
/// stack), which is why it is sampled and bounded here rather than left to each monitor.
/// </para>
/// <para>
/// Where it is validated (Linux x64), capture is accelerated: a frame-pointer walk (about 0.1 µs) identifies the
/// stack, and only a stack not seen before is captured with <see cref="StackTrace"/>, whose names every later
/// capture of it shares; a sample of captures is checked against <see cref="StackTrace"/> as it goes.
/// <see cref="IsFastCaptureActive"/> says whether it is in use, <see cref="FastCaptureOffReason"/> why not.
/// </para>
/// <para>All members are thread-safe.</para>
/// </remarks>
public sealed class StackCapture
{
    /// <summary>The largest <see cref="Depth"/>.</summary>
    public const int MaxDepth = 256;

    private static int s_lastId;

    /// <summary>A budgeted policy compares its spend with its share over windows of this length (25 ms) and resizes the interval at the end of each: a burst at switch-on costs at most about one window per renting thread.</summary>
    private static readonly long s_windowTicks = Stopwatch.Frequency / 40;

    /// <summary>Unused share saved for bursts, at most 100 ms of capture time: the first captures are slow (the runtime loads what stack walking needs), and a demo or a quiet service then keeps a stack for every buffer.</summary>
    private static readonly long s_reserveTicks = Stopwatch.Frequency / 10;

    /// <summary>No capture is charged more than 1 ms: a warm one costs 5–50 µs, so anything longer is the first, cold capture (the runtime loading what stack walking needs) or a preempted one.</summary>
    private static readonly long s_maxChargeTicks = Stopwatch.Frequency / 1000;

    /// <summary>Fast captures one thread adds up before it counts them in <see cref="CaptureCount"/>, <see cref="CaptureTime"/> and the budget.</summary>
    private const int FastBatchSize = 32;

    /// <summary>One fast capture in this many is timed; the batch is charged at the timed ones' average.</summary>
    internal const int FastTimingInterval = 8;

    [ThreadStatic]
    private static PendingFastCaptures? t_pendingFast;

    private readonly StackInterner _stacks;
    private readonly FastStackTable? _fast;
    private readonly string? _fastOffReason;
    private readonly Action? _onRefused;
    private long _refused;
    private long _captureCount;
    private long _fastCaptureCount;
    private long _fastCaptureTicks;
    private long _captureTicks;

    // The budget (budgeted policies only): spend per window, resized at the window's end under _budgetLock, taken
    // once per capture (a few microseconds each anyway).
    private readonly Lock _budgetLock = new();
    private long _windowStart = Stopwatch.GetTimestamp();
    private readonly Func<long> _processCpuTicks;
    private long _windowCpuStart;
    private long _windowSpent;
    private int _interval = 1;
    private long _lastAdjustedTick = Environment.TickCount64;

    // A running average of what one capture costs; a capture measured at more than twice it (its thread was
    // preempted: wall time is what is measured) counts as twice it, so a busy machine does not look like an
    // expensive one. Fast captures (a walk and a lookup) and full ones (a StackTrace) cost a hundred times apart,
    // so each kind has its own average: one average would clip every full capture to twice a fast one.
    private double _typicalTicks;
    private double _typicalFastTicks;
    private long _countedTicks;
    private long _reserveTicks = s_reserveTicks;

    /// <summary>Initializes a capture policy.</summary>
    /// <param name="depth">How many frames of each stack are kept, counted from the caller of <c>Rent</c> or <c>Dispose</c>: 1 to 256.</param>
    /// <param name="sampling">One buffer in this many gets an allocation stack, counted per thread: 1 (every buffer) to 1,000,000.</param>
    /// <param name="fileInfo">True to keep file names and line numbers (about three times the cost, and only where PDBs are deployed).</param>
    /// <param name="disposeStacks">True to capture the stack of each sampled buffer's first <c>Dispose</c>, so a double dispose is reported with both stacks.</param>
    /// <param name="maxStacks">The most distinct stacks kept: 1 to <see cref="int.MaxValue"/>. A buffer whose stack would be new beyond that is not recorded.</param>
    /// <exception cref="ArgumentOutOfRangeException">An argument is out of its range.</exception>
    public StackCapture(int depth = 16, int sampling = 1, bool fileInfo = false, bool disposeStacks = false, int maxStacks = 65_536)
        : this(depth, sampling, fileInfo, disposeStacks, maxStacks, onRefused: null, cpuBudget: 0, FastStackSupport.UnavailableReason)
    {
    }

    /// <summary>Initializes a policy with every setting, as a monitor builds it.</summary>
    /// <param name="depth">Frames kept.</param>
    /// <param name="sampling">One buffer in this many, for a fixed policy.</param>
    /// <param name="fileInfo">Whether frames carry file and line.</param>
    /// <param name="disposeStacks">Whether first disposes are captured.</param>
    /// <param name="maxStacks">The most distinct stacks kept.</param>
    /// <param name="onRefused">Told when a record's stack is refused.</param>
    /// <param name="cpuBudget">The share of one core, for a budgeted policy; 0 for a fixed one.</param>
    /// <param name="fastStacksOffReason">Why fast capture is off for this policy, or null to use it (<see cref="FastStackSupport.UnavailableReason"/> is the process's answer).</param>
    /// <param name="onFastStackMismatch">Told when a fast-capture key turns out to stand for two stacks (see <see cref="FastStackTable"/>).</param>
    /// <param name="processCpuTicks">Tests only: the process's CPU time so far, in <see cref="Stopwatch"/> ticks; null for the real one.</param>
    internal StackCapture(int depth, int sampling, bool fileInfo, bool disposeStacks, int maxStacks, Action? onRefused, double cpuBudget, string? fastStacksOffReason, Action<string>? onFastStackMismatch = null, Func<long>? processCpuTicks = null)
    {
        Guard.InRange(depth, 1, MaxDepth, nameof(depth));
        Guard.InRange(sampling, 1, 1_000_000, nameof(sampling));
        Guard.InRange(maxStacks, 1, int.MaxValue, nameof(maxStacks));
        Depth = depth;
        Sampling = sampling;
        CpuBudget = cpuBudget;
        FileInfo = fileInfo;
        DisposeStacks = disposeStacks;
        _stacks = new StackInterner(maxStacks);
        _fastOffReason = fastStacksOffReason;
        if (fastStacksOffReason is null)
        {
            // Keys are bounded alongside the stacks: as many keys as distinct stacks at most (see FastStackTable).
            _fast = new FastStackTable(maxStacks, depth, onFastStackMismatch);
        }

        _onRefused = onRefused;
        Id = Interlocked.Increment(ref s_lastId);
        _processCpuTicks = processCpuTicks ?? ReadProcessCpuTicks;
        _windowCpuStart = cpuBudget > 0 ? _processCpuTicks() : 0;
    }

    /// <summary>The default <see cref="CpuBudget"/> of a budgeted policy: 1 % of one core.</summary>
    public const double DefaultCpuBudget = 0.01;

    /// <summary>The smallest <see cref="CpuBudget"/> of a budgeted policy: 0.01 % of one core.</summary>
    internal const double MinCpuBudget = 0.0001;

    /// <summary>The largest <see cref="CpuBudget"/> of a budgeted policy: a whole core.</summary>
    internal const double MaxCpuBudget = 1;

    /// <summary>The largest sampling interval a budgeted policy goes to: one buffer in about a million.</summary>
    public const int MaxInterval = 1 << 20;

    /// <summary>Creates a policy that captures a stack for every buffer while that fits <paramref name="cpuBudget"/>, and beyond it one buffer in N, N adapting to the budget.</summary>
    /// <param name="cpuBudget">The share of one core stack capture may use, from 0.0001 (0.01 %) to 1 (a whole core).</param>
    /// <param name="depth">How many frames of each stack are kept: 1 to 256.</param>
    /// <param name="fileInfo">True to keep file names and line numbers.</param>
    /// <param name="disposeStacks">True to capture the stack of each sampled buffer's first <c>Dispose</c> too (counted in the budget).</param>
    /// <param name="maxStacks">The most distinct stacks kept: 1 to <see cref="int.MaxValue"/>.</param>
    /// <returns>The policy.</returns>
    /// <exception cref="ArgumentOutOfRangeException">An argument is out of its range.</exception>
    /// <remarks>
    /// Each sampled buffer carries the interval N in force when it was drawn (<see cref="BufferAllocation.StackWeight"/>):
    /// the number of buffers it stands for, from which <see cref="LeakSite.EstimatedCount"/> is summed. The
    /// policy compares its capture time with <paramref name="cpuBudget"/> of each 25 ms window (or of the CPU time
    /// the whole process used in the window, if that is less: a process getting 0.4 of a core gets 0.4 of the share)
    /// and resizes the
    /// interval in proportion; overspend is first paid from a reserve of up to 100 ms of capture time, refilled by
    /// unused share, so switching on, a demo and a quiet service keep a stack for every buffer. Every second in
    /// which no window closes halves the interval, so a process whose load stopped goes back to every buffer.
    /// </remarks>
    public static StackCapture Budgeted(double cpuBudget = DefaultCpuBudget, int depth = 16, bool fileInfo = false, bool disposeStacks = false, int maxStacks = 65_536)
    {
        Guard.InRange(cpuBudget, MinCpuBudget, MaxCpuBudget, nameof(cpuBudget));
        return new StackCapture(depth, sampling: 1, fileInfo, disposeStacks, maxStacks, onRefused: null, cpuBudget, FastStackSupport.UnavailableReason);
    }

    /// <summary>Gets how many frames of each stack are kept.</summary>
    public int Depth { get; }

    /// <summary>Gets how often an allocation stack is captured: one buffer in this many, per thread.</summary>
    public int Sampling { get; }

    /// <summary>Gets the share of one core stack capture may use (of the process's CPU time instead, when the process uses less than a core); 0 for a fixed policy (every buffer, or a fixed one in <see cref="Sampling"/>).</summary>
    public double CpuBudget { get; }

    /// <summary>Gets a value indicating whether the sampling interval adapts to <see cref="CpuBudget"/>.</summary>
    public bool IsBudgeted => CpuBudget > 0;

    /// <summary>Gets the sampling interval in force now: one buffer in this many gets a stack (<see cref="Sampling"/> for a fixed policy).</summary>
    public int CurrentInterval => IsBudgeted ? IntervalAt(Environment.TickCount64) : Sampling;

    /// <summary>Gets the number of stacks captured (allocation and dispose).</summary>
    /// <remarks>Fast captures are counted in batches of 32 per thread, so this lags by at most 31 per capturing thread.</remarks>
    public long CaptureCount => Volatile.Read(ref _captureCount);

    /// <summary>Gets the time spent capturing stacks, summed over threads: wall time, so it includes any time a capturing thread was preempted.</summary>
    /// <remarks>Fast captures are timed one in 8 (a clock read costs about as much as the capture), each batch counted at its timed captures' average; every other capture is timed.</remarks>
    public TimeSpan CaptureTime => Stopwatch.GetElapsedTime(0, Volatile.Read(ref _captureTicks));

    /// <summary>Gets the capture time a budgeted policy charged against its budget: each capture counted at most twice the typical one, so preemption does not count as spending.</summary>
    internal TimeSpan ChargedTime => Stopwatch.GetElapsedTime(0, Volatile.Read(ref _countedTicks));

    /// <summary>Gets a value indicating whether stacks carry file names and line numbers.</summary>
    public bool FileInfo { get; }

    /// <summary>Gets a value indicating whether the first <c>Dispose</c> of a buffer with an allocation stack is captured too.</summary>
    public bool DisposeStacks { get; }

    /// <summary>Gets the most distinct stacks kept.</summary>
    public int MaxStacks => _stacks.MaxStacks;

    /// <summary>Gets the number of distinct stacks kept now.</summary>
    public int Count => _stacks.Count;

    /// <summary>Gets the number of captures refused because <see cref="MaxStacks"/> distinct stacks were already kept.</summary>
    public long RefusedCount => Volatile.Read(ref _refused);

    /// <summary>Gets a value indicating whether stacks are captured the fast way: a frame-pointer walk identifies each stack, and only a stack not seen before is captured with <see cref="StackTrace"/>.</summary>
    /// <value>False where fast capture is not validated (see <see cref="FastCaptureOffReason"/>), and from the moment its checks find a walk that identified two different stacks too often.</value>
    public bool IsFastCaptureActive => _fast is { IsActive: true };

    /// <summary>Gets why fast capture is off: switched off, an unsupported platform, a refused executable mapping, a failed validation against <see cref="StackTrace"/>, or mismatches found while running.</summary>
    /// <value>Null while fast capture is active.</value>
    public string? FastCaptureOffReason => _fastOffReason
        ?? (_fast is { IsActive: false } ? $"turned off after {_fast.Mismatches} frame-pointer keys were found to stand for two different stacks" : null);

    /// <summary>Gets the number of captures answered from a frame-pointer key alone, counted as <see cref="CaptureCount"/> is (in per-thread batches).</summary>
    internal long FastCaptureCount => Volatile.Read(ref _fastCaptureCount);

    /// <summary>Gets the part of <see cref="CaptureTime"/> counted for fast captures: their timed sample's average times their number.</summary>
    internal TimeSpan FastCaptureTime => Stopwatch.GetElapsedTime(0, Volatile.Read(ref _fastCaptureTicks));

    /// <summary>Gets the table behind fast capture, null when it is off from the start.</summary>
    internal FastStackTable? FastTable => _fast;

    /// <summary>Gets the policy's instance number, which keys each thread's sampling countdown.</summary>
    internal int Id { get; }

    /// <summary>Captures the calling thread's stack, skipping OffHeapTracker's own frames, and returns its shared instance.</summary>
    /// <returns>The interned stack, or null if it is new and <see cref="MaxStacks"/> stacks are already kept (counted in <see cref="RefusedCount"/>).</returns>
    /// <remarks>Ignores <see cref="Sampling"/>: the pool decides which buffers are sampled.</remarks>
    public CapturedStackTrace? Capture() => CaptureCore(forRecord: true);

    /// <summary>Captures a stack that goes with no record (a dispose): a refusal is counted in <see cref="RefusedCount"/> but does not drop a record.</summary>
    internal CapturedStackTrace? CaptureForDispose() => CaptureCore(forRecord: false);

    private CapturedStackTrace? CaptureCore(bool forRecord)
    {
        CapturedStackTrace? stack;
        if (_fast is { IsActive: true } table)
        {
            stack = CaptureFast(table);
        }
        else
        {
            long start = Stopwatch.GetTimestamp();
            stack = _stacks.Capture(Depth, FileInfo);
            long now = Stopwatch.GetTimestamp();
            Account(1, now - start, fast: false, now);
        }

        if (stack is null)
        {
            Interlocked.Increment(ref _refused);
            if (forRecord)
            {
                _onRefused?.Invoke();
            }
        }

        return stack;
    }

    /// <summary>Captures through the frame-pointer table: a slow capture is counted at once with the time the table measured; fast ones are added up on this thread, one in <see cref="FastTimingInterval"/> of them timed.</summary>
    private CapturedStackTrace? CaptureFast(FastStackTable table)
    {
        PendingFastCaptures pending = t_pendingFast ??= new PendingFastCaptures();
        if (pending.CaptureId != Id)
        {
            // This thread last captured for another policy: what it had not counted there is dropped (at most
            // FastBatchSize - 1 captures of about 0.1 µs).
            pending.Reset(Id);
        }

        // Two clock reads cost about as much as the walk and the lookup they would time (40-70 ns each on a virtual
        // machine): time one fast capture in FastTimingInterval, and charge the others at the timed ones' average.
        bool timed = --pending.UntilTimed <= 0;
        long start = timed ? Stopwatch.GetTimestamp() : 0;
        CapturedStackTrace? stack = table.Capture(_stacks, Depth, FileInfo, out bool fast, out long slowTicks);
        if (!fast)
        {
            long now = Stopwatch.GetTimestamp();
            Account(1, timed ? now - start : slowTicks, fast: false, now);
            return stack;
        }

        if (timed)
        {
            pending.TimedTicks += Stopwatch.GetTimestamp() - start;
            pending.Timed++;
            pending.UntilTimed = FastTimingInterval;
        }

        if (++pending.Count < FastBatchSize)
        {
            return stack;
        }

        // The first fast capture of every batch is timed (UntilTimed starts at 0 and only a timed capture resets it).
        Debug.Assert(pending.Timed > 0, "every batch holds at least one timed capture");
        Account(pending.Count, pending.TimedTicks * pending.Count / pending.Timed, fast: true, Stopwatch.GetTimestamp());
        pending.Reset(Id);
        return stack;
    }

    /// <summary>The interval a budgeted policy applies at <paramref name="tick"/> (<see cref="Environment.TickCount64"/>): halved for every whole second in which no window closed, so a process whose load stopped goes back to a stack for every buffer.</summary>
    internal int IntervalAt(long tick)
    {
        int interval = Volatile.Read(ref _interval);
        if (interval == 1)
        {
            return 1;
        }

        long quiet = tick - Volatile.Read(ref _lastAdjustedTick);
        if (quiet < 1000)
        {
            return interval;
        }

        // Store the decay, so the next second halves from here; a concurrent resize wins (it is newer).
        int decayed = Math.Max(1, interval >> (int)Math.Min(30, quiet / 1000));
        if (Interlocked.CompareExchange(ref _interval, decayed, interval) == interval)
        {
            Volatile.Write(ref _lastAdjustedTick, tick);
        }

        return decayed;
    }

    /// <summary>Counts <paramref name="count"/> captures of one kind; for a budgeted policy, resizes the interval when a window closes, in proportion to how far the window's spend was from its share.</summary>
    private void Account(int count, long ticks, bool fast, long now)
    {
        Interlocked.Add(ref _captureCount, count);
        Interlocked.Add(ref _captureTicks, ticks);
        if (fast)
        {
            Interlocked.Add(ref _fastCaptureCount, count);
            Interlocked.Add(ref _fastCaptureTicks, ticks);
        }

        if (!IsBudgeted)
        {
            return;
        }

        lock (_budgetLock)
        {
            // Clipped per capture (a batch by its average): at most 1 ms, and at most twice the typical capture of its kind.
            ref double typical = ref fast ? ref _typicalFastTicks : ref _typicalTicks;
            long each = Math.Min(ticks / count, s_maxChargeTicks);
            each = typical == 0 ? each : (long)Math.Min(each, 2 * typical);
            typical = typical == 0 ? each : (0.95 * typical) + (0.05 * each);
            long counted = each * count;
            _windowSpent += counted;
            _countedTicks += counted;
            long elapsed = now - _windowStart;
            if (elapsed < s_windowTicks)
            {
                return;
            }

            // The share is of one core, or of the CPU the whole process used in the window if that is less: on a
            // server that gets 0.4 of a core (measured: each of two Kestrel servers on a 2-core box under wrk), 1 % of
            // a core would be 2.5 % of everything the server does. Never more than the share of one core.
            long cpu = _processCpuTicks();
            double share = WindowShare(CpuBudget, elapsed, cpu - _windowCpuStart);
            _windowCpuStart = cpu;

            // Overspend is paid from the reserve while it lasts; underspend refills it.
            double over = _windowSpent - share;
            long paid = over > 0 ? (long)Math.Min(_reserveTicks, over) : 0;
            _reserveTicks = over > 0 ? _reserveTicks - paid : Math.Min(s_reserveTicks, _reserveTicks + (long)-over);

            // Proportional: spending 8 times the share makes the interval 8 times longer. Bounded per window (a
            // quarter to eight times) so one window stretched by preemption (wall time is what is measured) cannot
            // swing it far; a steady load settles within a few windows, without the overshoot of doubling on debt.
            // Within a quarter either way of the share the interval stays: a window paid for by the reserve comes out
            // at exactly the share, and must not nudge the interval up.
            double ratio = (_windowSpent - paid) / share;
            int interval = Volatile.Read(ref _interval);
            double resized = ratio > 1.25 ? Math.Ceiling(interval * Math.Min(ratio, 8))
                : ratio < 0.75 ? Math.Floor(interval * Math.Max(ratio, 0.25))
                : interval;
            Volatile.Write(ref _interval, (int)Math.Clamp(resized, 1, MaxInterval));
            Volatile.Write(ref _lastAdjustedTick, Environment.TickCount64);
            _windowStart = now;
            _windowSpent = 0;
        }
    }

    /// <summary>A window's share of capture time: <paramref name="budget"/> of the window's length (one core), or of the CPU time the process used in it if that is less; a process CPU reading that did not advance (unavailable) leaves the share of one core.</summary>
    /// <param name="budget">The policy's <see cref="CpuBudget"/>.</param>
    /// <param name="elapsedTicks">The window's length, in <see cref="Stopwatch"/> ticks.</param>
    /// <param name="processCpuTicks">The CPU time the whole process used in the window (all threads), in <see cref="Stopwatch"/> ticks.</param>
    internal static double WindowShare(double budget, long elapsedTicks, long processCpuTicks) =>
        budget * (processCpuTicks > 0 ? Math.Min(elapsedTicks, processCpuTicks) : elapsedTicks);

    /// <summary>The process's CPU time so far (user and system, all threads), in <see cref="Stopwatch"/> ticks; 0 where the runtime cannot say.</summary>
    /// <remarks>One getrusage per 25 ms window, taken under the budget lock.</remarks>
    private static long ReadProcessCpuTicks()
    {
        try
        {
            return (long)(Environment.CpuUsage.TotalTime.Ticks * ((double)Stopwatch.Frequency / TimeSpan.TicksPerSecond));
        }
        catch (PlatformNotSupportedException)
        {
            return 0;
        }
    }

    /// <summary>One thread's fast captures for one policy that are not counted yet; touched by that thread only.</summary>
    private sealed class PendingFastCaptures
    {
        public int CaptureId;

        /// <summary>Fast captures since the last batch was counted.</summary>
        public int Count;

        /// <summary>How many of them were timed, and their time.</summary>
        public int Timed;

        public long TimedTicks;

        /// <summary>Fast captures until the next timed one (the first capture of a batch is timed).</summary>
        public int UntilTimed;

        public void Reset(int captureId)
        {
            CaptureId = captureId;
            Count = 0;
            Timed = 0;
            TimedTicks = 0;
            UntilTimed = 0;
        }
    }
}
