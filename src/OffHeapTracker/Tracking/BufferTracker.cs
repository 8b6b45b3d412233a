using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using OffHeapTracker.Diagnostics;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker;

/// <summary>The one connection between a pool and its monitor: the pool calls it on rent, return, leak and double dispose, and only it knows about stacks, contexts, times and the monitor.</summary>
/// <remarks>
/// <para>
/// One per pool. It reads the monitor's switch, captures what the monitor's <see cref="StackCapture"/> asks
/// for, stamps leases on the monitor's clock, and reports every event through <see cref="IBufferMonitor"/>, so a
/// custom monitor gets what the built-in one gets. The built-in one's record of a rent is written into the
/// lease's core instead, which its table lists (<see cref="RecordInCore"/>, <see cref="ResidentCores"/>): the same
/// fields, without a second place in memory written on every rent and return. It also owns the counters and the
/// rate-limited warnings of those events.
/// </para>
/// <para>
/// Nothing here may make <c>Rent</c> or <c>Dispose</c> throw: every call into the monitor or the logger is
/// caught, counted in <see cref="MonitorErrorCount"/> and logged.
/// </para>
/// </remarks>
internal sealed partial class BufferTracker
{
    private static readonly TimeSpan s_warningInterval = TimeSpan.FromSeconds(10);

    private readonly IBufferMonitor _monitor;

    // The same object as _monitor when it is ours (sealed, its IsEnabled cannot throw): its switch and table are read
    // directly, and its records written into the lease cores, so a monitored Rent + Dispose makes no interface dispatch.
    private readonly ResidentBufferMonitor? _resident;

    // Read once, when the pool is created (IBufferMonitor documents both as fixed): two interface calls fewer per rent.
    private readonly StackCapture? _capture;
    private readonly TimeProvider _monitorClock;

    // True when the monitor keeps system time and the coarse clock runs: a rent then stamps its record with one
    // static load instead of a clock_gettime (measured: a fifth of a monitor-on Rent+Dispose, see CoarseClock).
    private readonly bool _coarseStamps;
    private readonly string _poolName;
    private readonly int _poolId;
    private readonly ILogger _logger;
    private readonly WarningRateLimiter _doubleDisposeWarnings;
    private readonly WarningRateLimiter _leakWarnings;
    private long _doubleDisposeCount;
    private long _monitorErrorCount;
    private long _leakedCount;

    /// <param name="monitor">The monitor to report to.</param>
    /// <param name="poolName">The pool's name, for records and logs.</param>
    /// <param name="poolId">The pool's instance number, for records.</param>
    /// <param name="logger">The pool's logger.</param>
    /// <param name="warningClock">The pool's clock, which spaces out repeated warnings.</param>
    public BufferTracker(IBufferMonitor monitor, string poolName, int poolId, ILogger logger, TimeProvider warningClock)
    {
        _monitor = monitor;
        _resident = monitor as ResidentBufferMonitor;
        _logger = logger;
        _poolName = poolName;
        try
        {
            _capture = monitor.StackCapture;
            _monitorClock = monitor.TimeProvider ?? TimeProvider.System;
        }
        catch (Exception ex)
        {
            // A monitor that cannot say what it wants gets no stacks and the system clock; the pool still works.
            _capture = null;
            _monitorClock = TimeProvider.System;
            OnMonitorFailed(ex, nameof(IBufferMonitor.StackCapture), bufferId: 0);
        }

        // Record ages are then up to one coarse period (0.1 s) too old, never too young: a suspect listed by
        // GetResident(1 s) is at least 0.9 s old. An injected clock (tests, simulations) is read as given.
        _coarseStamps = CoarseClock.CanStandInFor(_monitorClock);

        _poolId = poolId;
        _doubleDisposeWarnings = new WarningRateLimiter(warningClock, s_warningInterval);
        _leakWarnings = new WarningRateLimiter(warningClock, s_warningInterval);
    }

    public IBufferMonitor Monitor => _monitor;

    public long DoubleDisposeCount => Volatile.Read(ref _doubleDisposeCount);

    public long MonitorErrorCount => Volatile.Read(ref _monitorErrorCount);

    public long LeakedCount => Volatile.Read(ref _leakedCount);

    /// <summary>Reads the monitor's switch, once per rent; a monitor that throws counts as off, so <c>Rent</c> never throws for it.</summary>
    /// <remarks>Our own monitor's switch is one field read, inlined into <c>Rent</c>; any other monitor is asked through its interface.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsMonitorEnabled() => _resident is { } resident ? resident.IsEnabled : IsCustomMonitorEnabled();

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool IsCustomMonitorEnabled()
    {
        try
        {
            return _monitor.IsEnabled;
        }
        catch (Exception ex)
        {
            OnMonitorFailed(ex, nameof(IBufferMonitor.IsEnabled), bufferId: 0);
            return false;
        }
    }

    /// <summary>Stamps, captures and records a fresh lease rented while the monitor is on. Runs on the renting thread, inside <c>Rent</c>, before anyone else can see the lease.</summary>
    /// <param name="lease">The lease, initialized and not yet handed out.</param>
    /// <param name="sampler">The renting thread's sampling countdowns, created on first use.</param>
    public void OnRented(DirectBuffer lease, ref StackSampler? sampler)
    {
        ref LeaseTracking tracking = ref lease.Tracking;
        try
        {
            // Stamped even when the monitor will not record the lease: a leak report then still says its age and context.
            tracking.Timestamp = _coarseStamps ? CoarseClock.Now : _monitorClock.GetTimestamp();
            tracking.Context = BufferContext.Current;
            if (_resident is { } ours)
            {
                RecordInCore(ours, lease, ref tracking, ref sampler);
                return;
            }

            CapturedStackTrace? stack = null;
            int weight = 0;
            StackCapture? capture = _capture;

            // Asked only when there is a capture to save: without one, OnAllocated refuses what it does not record.
            if (capture is not null)
            {
                if (!_monitor.IsRecording(lease.BufferType))
                {
                    return;
                }

                if ((sampler ??= new StackSampler()).ShouldCapture(capture, out weight))
                {
                    stack = capture.Capture();
                    if (stack is null)
                    {
                        // The table of distinct stacks is full: the policy counted the refusal, and the buffer goes
                        // unrecorded rather than recorded without the one thing that would explain it.
                        return;
                    }
                }
            }

            var allocation = new BufferAllocation(
                lease.Id, lease.Address, lease.AllocateSize, lease.Length, lease.BufferType, _poolName, lease.IsPooled)
            {
                PoolId = _poolId,
                Timestamp = tracking.Timestamp,
                Context = tracking.Context,
                Stack = stack,
                StackWeight = stack is null ? 0 : weight,
            };
            tracking.AllocationStack = stack;
            tracking.IsRecorded = _monitor.OnAllocated(in allocation, out tracking.Token);
        }
        catch (Exception ex)
        {
            OnMonitorFailed(ex, nameof(IBufferMonitor.OnAllocated), lease.Id);
        }
    }

    /// <summary>Records a rent for the built-in monitor: in the lease's core, which the monitor's table lists (see <see cref="ResidentCores"/>), so the rent and the return write no memory besides the lease's own.</summary>
    private void RecordInCore(ResidentBufferMonitor monitor, DirectBuffer lease, ref LeaseTracking tracking, ref StackSampler? sampler)
    {
        if (monitor.TableFor(lease.BufferType) is not { } table)
        {
            return;
        }

        // A fresh lease, inside Rent: it holds its core, and no other thread can see either yet. The core is listed
        // once per table, so this is one field read on all but its first monitored rent.
        LeaseCore core = lease.HeldCore!;
        if (!table.Cores.Lists(core) && !table.Cores.TryRegister(core))
        {
            // Checked before the capture: a table at its limit spares the capture and the room it would take.
            monitor.OnCoreRefused();
            return;
        }

        CapturedStackTrace? stack = null;
        int weight = 0;
        if (_capture is { } capture && (sampler ??= new StackSampler()).ShouldCapture(capture, out weight))
        {
            stack = capture.Capture();
            if (stack is null)
            {
                // The table of distinct stacks is full: the policy counted the refusal, and the buffer goes
                // unrecorded rather than recorded without the one thing that would explain it.
                return;
            }
        }

        tracking.AllocationStack = stack;
        tracking.StackWeight = stack is null ? 0 : Math.Clamp(weight, 1, StackCapture.MaxInterval);
        tracking.Length = lease.Length;
        tracking.BufferType = lease.BufferType;
        tracking.ThreadId = Environment.CurrentManagedThreadId;
        tracking.RecordRegistration = core.Registration;
        tracking.IsRecorded = true;

        // Release: a walk that reads the id reads every field above (and the core's, set by Initialize) whole.
        Volatile.Write(ref tracking.RecordId, lease.Id);
    }

    /// <summary>Tells the monitor a recorded lease came back; called once, by the thread that won the lease's dispose.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void OnReturned(DirectBuffer lease)
    {
        // Inlined into every return: one field read when the lease was rented while the monitor was off.
        if (lease.Tracking.IsRecorded)
        {
            OnRecordedReturned(lease);
        }
    }

    private void OnRecordedReturned(DirectBuffer lease)
    {
        ref LeaseTracking tracking = ref lease.Tracking;
        try
        {
            // Kept on the lease (never in the monitor) so a later double dispose can say where the first was.
            // Only for leases whose allocation stack was sampled: sampling must bound the dispose cost too.
            if (tracking.AllocationStack is not null && _capture is { DisposeStacks: true } capture)
            {
                Volatile.Write(ref tracking.DisposeStack, capture.CaptureForDispose());
            }

            if (_resident is not null)
            {
                // A full fence, not a release store: the clear must be visible before the core's fields change
                // (its release, then its next rent), or a walk could take a mix of two rents for this one's record.
                Interlocked.Exchange(ref tracking.RecordId, 0);
            }
            else
            {
                _monitor.OnReturned(lease.Id, tracking.Token);
            }
        }
        catch (Exception ex)
        {
            OnMonitorFailed(ex, nameof(IBufferMonitor.OnReturned), lease.Id);
        }
    }

    /// <summary>Counts and reports a second dispose of a returned lease; the call itself was ignored.</summary>
    public void OnDoubleDispose(DirectBuffer lease)
    {
        Interlocked.Increment(ref _doubleDisposeCount);
        try
        {
            if (!_logger.IsEnabled(LogLevel.Warning) || !_doubleDisposeWarnings.ShouldLog(out long sinceLast))
            {
                return;
            }

            const string NotRecorded = "(not captured: the lease was rented while the monitor was off, or its stack was not sampled)";
            const string DisposeStacksOff = "(not captured: dispose stacks are off; see ResidentBufferMonitorOptions.CaptureDisposeStacks)";
            lease.GetReportStacks(out CapturedStackTrace? allocationStack, out CapturedStackTrace? firstDisposeStack);

            // Rare and rate-limited, so the second dispose is captured whenever the policy has a capture at all.
            CapturedStackTrace? secondDispose = _capture?.CaptureForDispose();
            string firstDispose = firstDisposeStack?.Text
                ?? (_capture is { DisposeStacks: true } && allocationStack is not null ? NotRecorded : DisposeStacksOff);
            Log.DoubleDispose(
                _logger,
                lease.Id,
                _poolName,
                sinceLast,
                allocationStack?.Text ?? NotRecorded,
                firstDispose,
                secondDispose?.Text ?? NotRecorded);
        }
        catch (Exception ex)
        {
            OnMonitorFailed(ex, "double-dispose report", lease.Id);
        }
    }

    /// <summary>Counts, logs and reports a lease its finalizer found undisposed. Runs on the finalizer thread and never throws.</summary>
    /// <param name="lease">The lease.</param>
    /// <param name="core">The lease's core, taken before a late <c>Dispose</c> could release it: the built-in monitor's record is removed from it by id, which no later rent of the core shares.</param>
    /// <param name="tracking">What the lease's core carried for the tracker, copied before a late <c>Dispose</c> could release the core.</param>
    /// <param name="allocateSize">The size the renter asked for, copied with <paramref name="tracking"/>.</param>
    /// <param name="reclaimed">True if the pool took the block back; false if it keeps it out of circulation.</param>
    public void OnLeaked(DirectBuffer lease, LeaseCore core, in LeaseTracking tracking, int allocateSize, bool reclaimed)
    {
        Interlocked.Increment(ref _leakedCount);
        try
        {
            TimeSpan? age = tracking.Timestamp != 0 ? _monitorClock.GetElapsedTime(tracking.Timestamp) : null;
            var leak = new BufferLeak
            {
                Id = lease.Id,
                PoolName = _poolName,
                AllocateSize = allocateSize,
                ActualSize = lease.Length,
                BufferType = lease.BufferType,
                Age = age,
                Context = tracking.Context,
                StackTrace = tracking.AllocationStack?.Text,
            };

            if (tracking.IsRecorded)
            {
                if (_resident is not null)
                {
                    Interlocked.CompareExchange(ref core.Tracking.RecordId, 0, lease.Id);
                }
                else
                {
                    _monitor.OnReturned(lease.Id, tracking.Token);
                }
            }

            if (_logger.IsEnabled(LogLevel.Warning) && _leakWarnings.ShouldLog(out long sinceLast))
            {
                Log.BufferLeaked(
                    _logger,
                    leak.Id,
                    _poolName,
                    leak.ActualSize,
                    leak.BufferType,
                    age is { } a ? $"{a.TotalSeconds:0.000} s" : "an unknown time (rented while the monitor was off)",
                    leak.Context ?? "none",
                    reclaimed
                        ? "its memory went back to the pool (ReclaimLeakedBuffers is on)"
                        : "its block is kept out of circulation, because a span or pointer taken from it may still be in use",
                    sinceLast,
                    leak.StackTrace ?? "(not captured: enable the monitor to record allocation stacks)");
            }

            _monitor.OnLeaked(leak);
        }
        catch (Exception ex)
        {
            Interlocked.Increment(ref _monitorErrorCount);
            try
            {
                Log.LeakHandlerFailed(_logger, ex, lease.Id);
            }
            catch
            {
                // The finalizer thread must survive a failing logger too.
            }
        }
    }

    private void OnMonitorFailed(Exception exception, string operation, long bufferId)
    {
        Interlocked.Increment(ref _monitorErrorCount);
        try
        {
            Log.MonitorFailed(_logger, exception, operation, bufferId, _poolName);
        }
        catch (Exception)
        {
            // Counted above; a failing logger must not make Rent or Dispose throw either.
        }
    }
}
