using System.Buffers;
using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.AspNetCore;

/// <summary>The <see cref="IMemoryPoolFactory{T}"/> Kestrel asks for its connection buffers: every pool it creates is a <see cref="DirectBufferPool"/>.</summary>
/// <remarks>
/// <para>
/// In .NET 10, Kestrel's socket transport takes its memory pool from this DI service and calls
/// <see cref="Create"/> with <see cref="MemoryPoolOptions.Owner"/> set to <c>"kestrel"</c>. Each pool is named
/// after its owner, takes its options from <see cref="IOptionsMonitor{TOptions}.Get(string)"/> with the owner as
/// the options name (so <c>Configure&lt;DirectBufferPoolOptions&gt;("kestrel", …)</c>, <c>PostConfigure</c> and
/// validators apply), reports to the configured monitor, and is disposed with the host (this factory is a DI
/// singleton). Thread-safe.
/// </para>
/// <para>
/// Pools created here default to <see cref="BufferBacking.PinnedArray"/>. Kestrel's socket transport sends
/// multi-segment responses through <c>SocketAsyncEventArgs.BufferList</c>, which accepts only array-backed
/// memory. Native buffers work until the first response spans two blocks, and then the send fails with
/// "Buffer backed by array was expected". Tracking, statistics, leak detection and trimming are unchanged.
/// </para>
/// <para>
/// Besides the <c>OffHeapTracker</c> meter, the pools report Kestrel's own instruments
/// (<c>aspnetcore.memory_pool.*</c> on the meter <c>Microsoft.AspNetCore.MemoryPool</c>, tagged with the owner),
/// so dashboards built on Kestrel's pool keep working.
/// </para>
/// </remarks>
public sealed class DirectBufferPoolFactory : IMemoryPoolFactory<byte>, IDisposable
{
    /// <summary>The name of pools created without an owner.</summary>
    internal const string DefaultOwner = "aspnetcore";

    private readonly Func<string, DirectBufferPoolOptions> _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly IMeterFactory? _meterFactory;
    private readonly Func<OffHeapTrackerHostOptions> _hostOptions;
    private readonly Lock _lock = new();
    private readonly List<DirectBufferPool> _pools = [];
    private readonly Lazy<IBufferMonitor> _monitor;
    private readonly KestrelPoolMetrics _kestrelMetrics;
    private bool _disposed;
    private bool _monitorIsShared;

    /// <summary>Initializes a new factory whose pools take their options from a callback, outside the options system.</summary>
    /// <param name="configure">Applied to the options of every pool created, after the name, logger and meter factory are set.</param>
    /// <param name="loggerFactory">The host's logger factory.</param>
    /// <param name="meterFactory">The host's meter factory, or null for static meters.</param>
    /// <exception cref="ArgumentNullException"><paramref name="loggerFactory"/> is null.</exception>
    public DirectBufferPoolFactory(Action<DirectBufferPoolOptions>? configure, ILoggerFactory loggerFactory, IMeterFactory? meterFactory = null)
        : this(
            owner =>
            {
                DirectBufferPoolOptions options = DefaultOptions(owner, loggerFactory, meterFactory);
                configure?.Invoke(options);
                return options;
            },
            static () => new OffHeapTrackerHostOptions(),
            loggerFactory,
            meterFactory)
    {
    }

    /// <summary>Initializes a new factory whose pools take their options from the options system, named by owner: what <c>AddDirectBufferPool</c> registers.</summary>
    /// <param name="options">The pools' options; <see cref="IOptionsMonitor{TOptions}.Get(string)"/> is called with each pool's owner (<see cref="Options.DefaultName"/> when there is none).</param>
    /// <param name="hostOptions">The shared monitor's settings, used when the options set no <see cref="DirectBufferPoolOptions.Monitor"/>.</param>
    /// <param name="loggerFactory">The host's logger factory.</param>
    /// <param name="meterFactory">The host's meter factory, or null for static meters.</param>
    /// <exception cref="ArgumentNullException"><paramref name="options"/>, <paramref name="hostOptions"/> or <paramref name="loggerFactory"/> is null.</exception>
    /// <exception cref="OptionsValidationException">Thrown by <see cref="Create"/> and <see cref="Monitor"/> when an owner's options fail validation.</exception>
    public DirectBufferPoolFactory(IOptionsMonitor<DirectBufferPoolOptions> options, IOptions<OffHeapTrackerHostOptions> hostOptions, ILoggerFactory loggerFactory, IMeterFactory? meterFactory = null)
        : this(
            Named(options),
            Lazily(hostOptions),
            loggerFactory,
            meterFactory)
    {
    }

    private DirectBufferPoolFactory(Func<string, DirectBufferPoolOptions> options, Func<OffHeapTrackerHostOptions> hostOptions, ILoggerFactory loggerFactory, IMeterFactory? meterFactory)
    {
        ArgumentNullException.ThrowIfNull(loggerFactory);
        _options = options;
        _hostOptions = hostOptions;
        _loggerFactory = loggerFactory;
        _meterFactory = meterFactory;
        _kestrelMetrics = new KestrelPoolMetrics(meterFactory, this);

        // Resolved once: a configure callback that creates a monitor must not hand the endpoints a new one per call.
        _monitor = new Lazy<IBufferMonitor>(ResolveMonitor);
    }

    /// <summary>Gets the pools created so far and not disposed, Kestrel's among them.</summary>
    public IReadOnlyList<DirectBufferPool> Pools
    {
        get
        {
            DirectBufferPool[] pools;
            lock (_lock)
            {
                pools = [.. _pools];
            }

            return [.. pools.Where(static pool => !pool.GetStatistics().IsDisposed)];
        }
    }

    /// <summary>Gets the monitor the pools report to: the one set through the options, or <see cref="BufferMonitor.Shared"/>.</summary>
    /// <remarks>
    /// Resolved once, from the options of pools without an owner (set it with <c>AddDirectBufferPool(o =&gt; o.Monitor = …)</c>);
    /// every pool this factory creates reports to it. When it is the shared monitor, the first read creates it from
    /// <see cref="OffHeapTrackerHostOptions.Monitor"/> if nothing has used it yet, and sends its logs and instruments to
    /// the host's logger and meter factories.
    /// </remarks>
    public IBufferMonitor Monitor => _monitor.Value;

    /// <summary>Gets a value indicating whether <see cref="Monitor"/> is <see cref="BufferMonitor.Shared"/>; resolves it.</summary>
    internal bool MonitorIsShared => _monitor.Value is not null && _monitorIsShared;

    /// <summary>Gets a value indicating whether <see cref="Monitor"/> has been resolved.</summary>
    internal bool IsMonitorResolved => _monitor.IsValueCreated;

    /// <summary>Gets the keys under <c>OffHeapTracker:Monitor</c> that could not be applied because the shared monitor existed before the host started; empty when all were.</summary>
    internal IReadOnlyList<string> MonitorKeysNotApplied { get; private set; } = [];

    /// <summary>Creates a pool named after <see cref="MemoryPoolOptions.Owner"/> (<c>"aspnetcore"</c> when there is none).</summary>
    /// <param name="options">The caller's options; Kestrel's transport passes <c>Owner = "kestrel"</c>. Null for defaults.</param>
    /// <returns>A new <see cref="DirectBufferPool"/>, disposed with this factory.</returns>
    /// <exception cref="ObjectDisposedException">The factory has been disposed.</exception>
    /// <exception cref="OptionsValidationException">The owner's options fail validation (a configuration key out of range, a failing <see cref="IValidateOptions{TOptions}"/>).</exception>
    public MemoryPool<byte> Create(MemoryPoolOptions? options = null)
    {
        string owner = string.IsNullOrWhiteSpace(options?.Owner) ? DefaultOwner : options.Owner;
        DirectBufferPoolOptions poolOptions = _options(owner);

        // The options system caches one instance per owner; every pool of this factory reports to one monitor,
        // so writing it into the shared instance is the same write each time.
        poolOptions.Monitor = Monitor;
        var pool = new DirectBufferPool(poolOptions);
        lock (_lock)
        {
            if (_disposed)
            {
                pool.Dispose();
                throw new ObjectDisposedException(nameof(DirectBufferPoolFactory));
            }

            // A pool its owner disposed is dropped here, so an owner that creates and disposes pools in turn
            // does not grow the list; the factory's Dispose would only dispose it again, which does nothing.
            _pools.RemoveAll(static created => created.GetStatistics().IsDisposed);
            _pools.Add(pool);
        }

        return pool;
    }

    /// <summary>Disposes every pool created (see <see cref="DirectBufferPool"/> for leases still out then).</summary>
    public void Dispose()
    {
        DirectBufferPool[] pools;
        lock (_lock)
        {
            _disposed = true;
            pools = [.. _pools];
            _pools.Clear();
        }

        foreach (DirectBufferPool pool in pools)
        {
            pool.Dispose();
        }

        _kestrelMetrics.Dispose();
    }

    /// <summary>The options every pool starts from, before configuration and configure callbacks.</summary>
    internal static DirectBufferPoolOptions DefaultOptions(string owner, ILoggerFactory loggerFactory, IMeterFactory? meterFactory) => new()
    {
        Name = owner,
        LoggerFactory = loggerFactory,
        MeterFactory = meterFactory,
        Backing = BufferBacking.PinnedArray,
    };

    private IBufferMonitor ResolveMonitor()
    {
        if (_options(DefaultOwner).Monitor is { } chosen)
        {
            return chosen;
        }

        OffHeapTrackerHostOptions hostOptions = _hostOptions();
        ResidentBufferMonitorOptions monitorOptions = hostOptions.Monitor;
        monitorOptions.LoggerFactory = _loggerFactory;
        monitorOptions.MeterFactory = _meterFactory;
        if (!BufferMonitor.InitializeShared(monitorOptions, hostOptions.MonitorEnabled ?? false))
        {
            // Something used the shared monitor before the host started: what it fixes at creation stays as it is;
            // what can change at runtime follows the configuration, unless the operator's environment says otherwise.
            BufferMonitor.ReportTo(_loggerFactory, _meterFactory);
            ResidentBufferMonitor shared = BufferMonitor.Shared;
            if (monitorOptions.RecordPool != shared.RecordPool && hostOptions.MonitorKeysSet.Contains("RecordPool") && !IsSet(BufferMonitor.RecordPoolEnvironmentVariable))
            {
                shared.RecordPool = monitorOptions.RecordPool;
            }

            if (hostOptions.MonitorEnabled is { } enabled && !IsSet(BufferMonitor.EnabledEnvironmentVariable))
            {
                if (enabled)
                {
                    shared.Enable();
                }
                else
                {
                    shared.Disable();
                }
            }

            MonitorKeysNotApplied = [.. hostOptions.MonitorKeysSet.Where(key => key != "RecordPool" && Differs(key, monitorOptions, shared))];
        }

        _monitorIsShared = true;
        return BufferMonitor.Shared;
    }

    private static Func<string, DirectBufferPoolOptions> Named(IOptionsMonitor<DirectBufferPoolOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return owner => options.Get(owner == DefaultOwner ? Options.DefaultName : owner);
    }

    // Read when the monitor is first needed, not when DI builds the factory: a bad value then fails the host's
    // start, with the other validation failures, instead of the container's build.
    private static Func<OffHeapTrackerHostOptions> Lazily(IOptions<OffHeapTrackerHostOptions> hostOptions)
    {
        ArgumentNullException.ThrowIfNull(hostOptions);
        return () => hostOptions.Value;
    }

    private static bool IsSet(string variable) => !string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(variable));

    private static bool Differs(string key, ResidentBufferMonitorOptions wanted, ResidentBufferMonitor actual) => key switch
    {
        "Stacks" => wanted.Stacks != actual.Stacks,
        "StackTraceSampling" => wanted.StackTraceSampling != actual.StackTraceSampling,
        "StackTraceDepth" => wanted.StackTraceDepth != actual.StackTraceDepth,
        "MaxRecords" => wanted.MaxRecords != actual.MaxRecords,

        // The monitor does not expose these; say they were not applied.
        _ => true,
    };
}
