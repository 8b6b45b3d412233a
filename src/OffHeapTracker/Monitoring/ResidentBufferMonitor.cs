using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using OffHeapTracker.Diagnostics;

namespace OffHeapTracker.Monitoring;

/// <summary>The monitor that keeps a table of every outstanding buffer (id, stack, size, type, time, context) while it is enabled.</summary>
/// <remarks>
/// <para>
/// Off by default; <see cref="Enable()"/> starts recording buffers rented from then on (buffers rented before are
/// never recorded, and their return is a no-op here). <see cref="Disable"/> stops recording and drops every
/// record. <see cref="GetResident"/> lists what is still out, hiding buffers younger than a minimum age at
/// query time (1 s by default), as dble does.
/// </para>
/// <para>
/// All members are thread-safe. <see cref="Enable()"/> and <see cref="Disable"/> may race with any number of
/// rents and returns: no record added by a rent that raced with <see cref="Disable"/> survives it.
/// </para>
/// <para>
/// The monitor holds no reference to a lease, removes a record in O(1) when its buffer is returned, and is
/// bounded by <see cref="ResidentBufferMonitorOptions.MaxRecords"/> and
/// <see cref="ResidentBufferMonitorOptions.MaxStacks"/>; buffers beyond those bounds are counted in
/// <see cref="DroppedRecords"/>, never recorded.
/// </para>
/// <para>
/// While it is on, it samples its largest sites on a timer into a bounded history, from which
/// <see cref="GetLeakSites"/> reads each site's growth (see <see cref="SampleSites"/>). The timer holds the monitor
/// weakly: a monitor no one references is collected, enabled or not.
/// </para>
/// </remarks>
public sealed partial class ResidentBufferMonitor : IBufferMonitor
{
    /// <summary>The default minimum age of <see cref="GetResident"/>: buffers younger than 1 s are usually about to come back.</summary>
    public static readonly TimeSpan DefaultMinAge = TimeSpan.FromSeconds(1);

    // What queries read while the monitor is off: a table nothing is ever added to.
    private static readonly ResidentTable s_noRecords = new(maxRecords: 1);

    private readonly Lock _switchLock = new();
    private readonly TimeProvider _time;
    private readonly ResidentQuery _query;
    private readonly StackCapture? _stackCapture;
    private readonly int _maxRecords;
    private readonly int _stackTraceDepth;
    private readonly int _stackTraceSampling;
    private readonly StackPolicy _stackPolicy;
    private readonly string _stacksDescription;

    // Null while the monitor is off: one field is both the switch and the table, so a rent that sees the switch
    // on records into the table it saw, and a table dropped by Disable is never read again.
    private ResidentTable? _table;
    private volatile bool _recordPool;
    private volatile ILogger _logger;
    private string? _enabledReason;
    private DateTimeOffset _enabledAt;
    private long _droppedRecords;
    private int _fullWarned;

    /// <summary>Initializes a new, disabled monitor.</summary>
    /// <param name="options">The settings; null for the defaults.</param>
    /// <exception cref="ArgumentOutOfRangeException">
    /// <see cref="ResidentBufferMonitorOptions.SiteHistoryLength"/> spans fewer than 2 or more than
    /// <see cref="ResidentBufferMonitorOptions.MaxSiteHistorySamples"/> - 1 <see cref="ResidentBufferMonitorOptions.SiteHistoryInterval"/>s.
    /// </exception>
    public ResidentBufferMonitor(ResidentBufferMonitorOptions? options = null)
    {
        options ??= new ResidentBufferMonitorOptions();
        (_siteHistoryInterval, _siteHistoryLength, _siteHistoryTopSites, _siteHistoryCapacity) = CheckSiteHistory(options);
        _time = options.TimeProvider;
        _query = new ResidentQuery(_time, _time.GetTimestamp(), _time.GetUtcNow());
        _maxRecords = options.MaxRecords;
        _stackTraceDepth = options.StackTraceDepth;
        _stackTraceSampling = options.StackTraceSampling;
        _stackPolicy = _stackTraceDepth == 0 ? StackPolicy.None : options.Stacks;
        int maxStacks = options.MaxStacks;
        Action onRefused = () => OnDropped(maxStacks, "distinct stacks");
        _stackCapture = _stackPolicy switch
        {
            StackPolicy.None => null,

            // A fixed sampling rate overrides the policy: the manual setting from before budgets existed.
            _ when _stackTraceSampling > 1 || _stackPolicy == StackPolicy.Every =>
                new StackCapture(_stackTraceDepth, _stackTraceSampling, options.StackTraceFileInfo, options.CaptureDisposeStacks, maxStacks, onRefused, 0, FastStacksOffReason(options), OnFastStackMismatch),
            _ => new StackCapture(_stackTraceDepth, 1, options.StackTraceFileInfo, options.CaptureDisposeStacks, maxStacks, onRefused, options.StackBudget, FastStacksOffReason(options), OnFastStackMismatch),
        };
        _stacksDescription = DescribeStacks(_stackCapture);
        _recordPool = options.RecordPool;
        _logger = options.LoggerFactory.CreateLogger<ResidentBufferMonitor>();
        OffHeapTrackerMetrics.Register(OffHeapTrackerMetrics.GetMeter(options.MeterFactory), this);
    }

    /// <summary>Raised on the finalizer thread for every lease of a pool reporting to this monitor that was garbage-collected without <c>Dispose</c>.</summary>
    /// <remarks>Handlers must be quick and must not block. An exception from a handler is logged by the pool and goes no further.</remarks>
    public event EventHandler<BufferLeak>? LeakDetected;

    /// <summary>Gets the clock records are stamped with and ages are measured on (<see cref="ResidentBufferMonitorOptions.TimeProvider"/>).</summary>
    public TimeProvider TimeProvider => _time;

    /// <summary>Gets what pools capture for this monitor's records, built from the stack options; null when <see cref="ResidentBufferMonitorOptions.StackTraceDepth"/> is 0.</summary>
    public StackCapture? StackCapture => _stackCapture;

    /// <summary>Gets a value indicating whether new buffers are being recorded.</summary>
    public bool IsEnabled => Volatile.Read(ref _table) is not null;

    /// <summary>Gets or sets a value indicating whether new <see cref="BufferType.Pool"/> buffers are recorded (dble's <c>enableMemoryBufferMonitorRecordPool</c>). Takes effect for the next rent.</summary>
    public bool RecordPool
    {
        get => _recordPool;
        set => _recordPool = value;
    }

    /// <summary>Gets how many frames of each stack are kept.</summary>
    public int StackTraceDepth => _stackTraceDepth;

    /// <summary>Gets the fixed sampling rate, when one overrides <see cref="Stacks"/> (1 otherwise).</summary>
    public int StackTraceSampling => _stackTraceSampling;

    /// <summary>Gets which buffers get an allocation stack (<see cref="StackPolicy.None"/> when <see cref="StackTraceDepth"/> is 0).</summary>
    public StackPolicy Stacks => _stackPolicy;

    /// <summary>Gets the most records kept at once.</summary>
    public int MaxRecords => _maxRecords;

    /// <summary>Gets the number of records held now, young ones included.</summary>
    /// <remarks>Counted by a walk of the table (O(records)): for reports and tests, not for hot paths.</remarks>
    public int Count => Volatile.Read(ref _table)?.Count ?? 0;

    /// <summary>Gets the number of buffers not recorded because a bound was reached, since the monitor was created.</summary>
    public long DroppedRecords => Volatile.Read(ref _droppedRecords);

    /// <summary>Gets the number of distinct allocation stacks interned.</summary>
    public int InternedStackCount => _stackCapture?.Count ?? 0;

    /// <summary>Replaces the monitor's logger, for a monitor created before logging was configured (such as <see cref="BufferMonitor.Shared"/>).</summary>
    /// <param name="loggerFactory">The factory to create the logger from.</param>
    /// <exception cref="ArgumentNullException"><paramref name="loggerFactory"/> is null.</exception>
    public void SetLoggerFactory(ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(loggerFactory);
        _logger = loggerFactory.CreateLogger<ResidentBufferMonitor>();
    }

    /// <summary>Gets why the monitor was last switched on (<c>"manual"</c>, or the rule of a <see cref="MonitorAutoSwitch"/>), or null while it is off.</summary>
    public string? EnabledReason => Volatile.Read(ref _enabledReason);

    /// <summary>Gets when the monitor was last switched on, on its <see cref="TimeProvider"/>, or null while it is off.</summary>
    public DateTimeOffset? EnabledAt => Volatile.Read(ref _table) is null ? null : _enabledAt;

    /// <summary>Starts recording buffers rented from now on. Does nothing if already enabled.</summary>
    public void Enable() => Enable("manual");

    /// <summary>Starts recording buffers rented from now on, saying why (see <see cref="EnabledReason"/>). Does nothing if already enabled.</summary>
    /// <param name="reason">Why, for operators: shown in reports and on the dashboard.</param>
    /// <returns>True if this call switched the monitor on; false if it was already on.</returns>
    /// <exception cref="ArgumentException"><paramref name="reason"/> is null or empty.</exception>
    public bool Enable(string reason)
    {
        ArgumentException.ThrowIfNullOrEmpty(reason);
        lock (_switchLock)
        {
            if (_table is not null)
            {
                return false;
            }

            _fullWarned = 0;
            _enabledAt = _time.GetUtcNow();
            Volatile.Write(ref _enabledReason, reason);
            var table = new ResidentTable(_maxRecords);
            StartSiteHistoryUnsynchronized(table);
            Volatile.Write(ref _table, table);
        }

        Log.MonitorEnabled(_logger, _stacksDescription, _stackTraceDepth, _recordPool, _maxRecords);
        if (_stackCapture?.FastCaptureOffReason is { } fastOff)
        {
            Log.FastStacksOff(_logger, fastOff);
        }

        return true;
    }

    /// <summary>Stops recording and drops every record and the site history. Does nothing if already disabled.</summary>
    /// <remarks>
    /// Unlike dble, which clears its map and then flips its flag (so a rent in between leaves a record behind),
    /// the switch and the table are one field here: Disable drops the table, and a rent that raced with it
    /// records into the dropped table, which no one reads again (see <see cref="Record"/>).
    /// </remarks>
    public void Disable()
    {
        ResidentTable dropped;
        lock (_switchLock)
        {
            if (_table is null)
            {
                return;
            }

            dropped = Interlocked.Exchange(ref _table, null)!;
            Volatile.Write(ref _enabledReason, null);
            StopSiteHistoryUnsynchronized();
        }

        Log.MonitorDisabled(_logger, dropped.Count);
    }

    /// <summary>Lists the buffers still rented that are at least <paramref name="minAge"/> old, oldest first.</summary>
    /// <param name="minAge">The youngest age listed; null for <see cref="DefaultMinAge"/> (1 s), <see cref="TimeSpan.Zero"/> for everything.</param>
    /// <param name="type">Only buffers of this type; null for both.</param>
    /// <returns>A snapshot; later rents and returns do not change it.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="minAge"/> is negative, or <paramref name="type"/> is not a defined value.</exception>
    /// <remarks>When nothing matches, the list is an <see cref="EmptyReport{T}"/> that says why (see <see cref="ExplainEmptyReport"/>).</remarks>
    public IReadOnlyList<ResidentBuffer> GetResident(TimeSpan? minAge = null, BufferType? type = null)
    {
        TimeSpan threshold = CheckMinAge(minAge);
        BufferType? only = CheckType(type);
        return ExplainIfEmpty(_query.All(CurrentTable, threshold, only, poolId: null), threshold, only);
    }

    /// <summary>Lists the <paramref name="limit"/> oldest buffers still rented that are at least <paramref name="minAge"/> old, oldest first.</summary>
    /// <param name="limit">The most rows returned, from 1 to <see cref="int.MaxValue"/>.</param>
    /// <param name="minAge">The youngest age listed; null for <see cref="DefaultMinAge"/> (1 s), <see cref="TimeSpan.Zero"/> for everything.</param>
    /// <param name="type">Only buffers of this type; null for both.</param>
    /// <returns>A snapshot of at most <paramref name="limit"/> rows, oldest first; among buffers of the same age, lowest id first.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limit"/> is less than 1, <paramref name="minAge"/> is negative, or <paramref name="type"/> is not a defined value.</exception>
    /// <remarks>
    /// Use this to serve a report from a large table: it walks the records once and keeps only the
    /// <paramref name="limit"/> oldest in a heap, so it never copies or sorts the table and builds a
    /// <see cref="ResidentBuffer"/> only for the rows it returns: its memory grows with <paramref name="limit"/>, not
    /// with the table. <see cref="GetResident(TimeSpan?, BufferType?)"/> copies, sorts and builds every row. When
    /// nothing matches, the list is an <see cref="EmptyReport{T}"/> that says why.
    /// </remarks>
    public IReadOnlyList<ResidentBuffer> GetOldestResident(int limit, TimeSpan? minAge = null, BufferType? type = null)
    {
        Guard.InRange(limit, 1, int.MaxValue, nameof(limit));
        TimeSpan threshold = CheckMinAge(minAge);
        BufferType? only = CheckType(type);
        return ExplainIfEmpty(_query.Oldest(CurrentTable, threshold, only, poolId: null, limit), threshold, only);
    }

    /// <summary>Groups the buffers still out by allocation stack, sites that only grow first, then biggest holders: which code holds the most.</summary>
    /// <param name="minAge">The youngest age counted; null for <see cref="DefaultMinAge"/> (1 s).</param>
    /// <param name="type">Only buffers of this type; null for both.</param>
    /// <param name="top">The most sites returned, from 1 to 10,000.</param>
    /// <returns>
    /// Sites that are leak suspects (<see cref="LeakSite.IsSuspect"/>: they only grew over the recent history) first,
    /// then the rest; within each, sorted by <see cref="LeakSite.EstimatedBytes"/>, largest first. Each site carries
    /// its <see cref="LeakSite.Growth"/> when the history holds samples of it.
    /// </returns>
    /// <exception cref="ArgumentOutOfRangeException">An argument is out of range.</exception>
    /// <remarks>
    /// Walks the records once and keeps one tally per distinct stack (at most
    /// <see cref="ResidentBufferMonitorOptions.MaxStacks"/>), never a row per record, so its memory does not grow
    /// with the number of buffers out. Ties in bytes go to the site with more buffers, then the older one. When
    /// nothing matches, the list is an <see cref="EmptyReport{T}"/> that says why.
    /// </remarks>
    public IReadOnlyList<LeakSite> GetLeakSites(TimeSpan? minAge = null, BufferType? type = null, int top = 20)
    {
        TimeSpan threshold = CheckMinAge(minAge);
        BufferType? only = CheckType(type);
        Guard.InRange(top, 1, 10_000, nameof(top));
        ResidentTable table = CurrentTable;
        return ExplainIfEmpty(_query.Sites(table, threshold, only, top, SiteGrowths(table)), threshold, only);
    }

    /// <summary>Says why <see cref="GetResident"/> or <see cref="GetLeakSites"/>, asked with the same arguments, would come out empty.</summary>
    /// <param name="minAge">The report's minimum age; null for <see cref="DefaultMinAge"/> (1 s).</param>
    /// <param name="type">The report's buffer type; null for both.</param>
    /// <returns>The reason (the monitor is off; every buffer is younger than <paramref name="minAge"/>, with how many and their ages; ...); null when the report would list something.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="minAge"/> is negative, or <paramref name="type"/> is not a defined value.</exception>
    /// <remarks>Walks the records once, stopping at the first one the report would list.</remarks>
    public EmptyReportReason? ExplainEmptyReport(TimeSpan? minAge = null, BufferType? type = null) =>
        ExplainEmpty(CheckMinAge(minAge), CheckType(type));

    /// <summary>Copies every record, of any age, for a before/after comparison (<see cref="BufferSnapshot.CompareTo"/>).</summary>
    /// <returns>The snapshot.</returns>
    public BufferSnapshot TakeSnapshot() => new(_time.GetUtcNow(), _query.All(CurrentTable, TimeSpan.Zero, type: null, poolId: null));

    void IBufferMonitor.OnLeaked(BufferLeak leak) => LeakDetected?.Invoke(this, leak);

    bool IBufferMonitor.IsRecording(BufferType bufferType) => IsRecording(bufferType);

    bool IBufferMonitor.OnAllocated(in BufferAllocation allocation, out long token) => Record(in allocation, keepToken: true, out token);

    void IBufferMonitor.OnReturned(long id, long token) => Volatile.Read(ref _table)?.TryRemove(id, token);

    /// <summary>What <see cref="IBufferMonitor.IsRecording"/> answers (the pools' trackers ask <see cref="TableFor"/> instead).</summary>
    private bool IsRecording(BufferType bufferType)
    {
        if (TableFor(bufferType) is not { } table)
        {
            return false;
        }

        // Asked before the pool captures a stack: a full table would refuse the record anyway, so count the drop
        // here and spare the capture (and the room it would take in the stack table).
        if (table.IsFull)
        {
            OnDropped(_maxRecords, "records");
            return false;
        }

        return true;
    }

    /// <summary>The table a pool's rent of <paramref name="bufferType"/> is recorded in, or null when the monitor is off or does not record that type; the pool's tracker then writes the record into the lease's core (see <see cref="ResidentCores"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ResidentTable? TableFor(BufferType bufferType) =>
        Volatile.Read(ref _table) is { } table && (bufferType != BufferType.Pool || _recordPool) ? table : null;

    /// <summary>Counts a pool's rent refused because the table lists as many lease cores as it may.</summary>
    internal void OnCoreRefused() => OnDropped(_maxRecords, "records");

    bool IBufferMonitor.OnAllocated(in BufferAllocation allocation) => Record(in allocation, keepToken: false, out _);

    void IBufferMonitor.OnReturned(long id) => Volatile.Read(ref _table)?.TryRemoveWithoutToken(id);

    IReadOnlyList<ResidentBuffer> IBufferMonitor.GetOutstanding(int poolId) => _query.All(CurrentTable, TimeSpan.Zero, type: null, poolId);

    private IReadOnlyList<T> ExplainIfEmpty<T>(IReadOnlyList<T> report, TimeSpan minAge, BufferType? type) =>
        report.Count == 0 && ExplainEmpty(minAge, type) is { } reason ? new EmptyReport<T>(reason) : report;

    // The table is read before the flag (arguments run left to right): a Disable in between leaves the old table and
    // a lowered flag, explained from the old records, never a fresh empty table with a raised flag read as "on,
    // nothing out". outstandingBeforeEnable is the hook for the pools' age census (issue 13, item 1): null until it exists.
    private EmptyReportReason? ExplainEmpty(TimeSpan minAge, BufferType? type) =>
        EmptyReportExplainer.Explain(CurrentTable, _time, minAge, type, enabled: IsEnabled, recordPool: _recordPool, outstandingBeforeEnable: OutstandingBeforeEnable());

    /// <summary>From the pools' age census: buffers of this monitor's pools rented before it was switched on (all of them while it is off), which no report can list.</summary>
    private long OutstandingBeforeEnable()
    {
        TimeSpan onFor = EnabledAt is { } at ? _time.GetUtcNow() - at : TimeSpan.Zero;
        long count = 0;
        foreach (DirectBufferPool pool in DirectBufferPool.GetLivePools())
        {
            if (ReferenceEquals(pool.Monitor, this))
            {
                count += pool.TakeCensus().CountOlderThan(onFor < TimeSpan.Zero ? TimeSpan.Zero : onFor);
            }
        }

        return count;
    }

    private static string DescribeStacks(StackCapture? capture) => capture switch
    {
        null => "none",
        { IsBudgeted: true } budgeted => FormattableString.Invariant($"budgeted, {budgeted.CpuBudget:P2} of one core or of the process's CPU if less") + DescribeFastCapture(budgeted),
        { Sampling: > 1 } sampled => FormattableString.Invariant($"one buffer in {sampled.Sampling}") + DescribeFastCapture(sampled),
        _ => "every buffer" + DescribeFastCapture(capture),
    };

    private static string DescribeFastCapture(StackCapture capture) => capture.IsFastCaptureActive ? ", fast capture on" : ", fast capture off";

    private static string? FastStacksOffReason(ResidentBufferMonitorOptions options) =>
        options.FastStacks ? FastStackSupport.UnavailableReason : "switched off by ResidentBufferMonitorOptions.FastStacks";

    private void OnFastStackMismatch(string description) => Log.FastStackMismatch(_logger, description);

    private static TimeSpan CheckMinAge(TimeSpan? minAge)
    {
        TimeSpan threshold = minAge ?? DefaultMinAge;
        Guard.InRange(threshold, TimeSpan.Zero, TimeSpan.MaxValue, nameof(minAge));
        return threshold;
    }

    private static BufferType? CheckType(BufferType? type)
    {
        if (type is { } t && unchecked((uint)t > (uint)BufferType.Pool))
        {
            throw new ArgumentOutOfRangeException(nameof(type), t, "type must be BufferType.Normal, BufferType.Pool or null.");
        }

        return type;
    }

    /// <summary>Records a buffer, with the stack, context and time the pool captured; runs on the renting thread, inside <c>Rent</c>.</summary>
    /// <remarks>
    /// No fence and no second look at the switch: a rent that read the table before a <see cref="Disable"/> adds
    /// to the table Disable dropped, which no one reads again, and its token names that table's generation, so
    /// its return touches nothing live. So no record added by a rent that raced with Disable survives it.
    /// </remarks>
    private bool Record(in BufferAllocation allocation, bool keepToken, out long token)
    {
        token = 0;

        // A free slot's id is 0 and a pool's ids start at 1, so only a misbehaving caller is refused here.
        if (TableFor(allocation.BufferType) is not { } table || allocation.Id <= 0)
        {
            return false;
        }

        var record = new ResidentRecord(
            allocation.Address,
            // A caller other than a pool may leave the time out; the record is then stamped now.
            allocation.Timestamp != 0 ? allocation.Timestamp : _time.GetTimestamp(),
            allocation.AllocateSize,
            allocation.ActualSize,
            allocation.BufferType,
            Environment.CurrentManagedThreadId,
            allocation.PoolName,
            allocation.PoolId,
            allocation.Context,
            allocation.Stack,
            // A caller that passes a stack without a weight stands for that one buffer.
            allocation.Stack is null ? 0 : Math.Clamp(allocation.StackWeight, 1, StackCapture.MaxInterval));
        bool added = keepToken ? table.TryAdd(allocation.Id, record, out token) : table.TryAddWithoutToken(allocation.Id, record);
        if (!added)
        {
            OnDropped(_maxRecords, "records");
        }

        return added;
    }

    private ResidentTable CurrentTable => Volatile.Read(ref _table) ?? s_noRecords;

    private void OnDropped(int limit, string what)
    {
        Interlocked.Increment(ref _droppedRecords);
        if (Interlocked.Exchange(ref _fullWarned, 1) == 0)
        {
            Log.RecordsDropped(_logger, limit, what);
        }
    }
}
