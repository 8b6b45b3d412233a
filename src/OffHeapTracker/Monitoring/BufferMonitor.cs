using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using OffHeapTracker.Diagnostics;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker;

/// <summary>The process-wide buffer monitor: switch it on in a running process and list every buffer that has not come back.</summary>
/// <remarks>
/// <para>
/// Every <see cref="DirectBufferPool"/> created without an explicit <see cref="DirectBufferPoolOptions.Monitor"/>
/// reports to <see cref="Shared"/>, which these members operate on. Tests and multi-tenant hosts can create
/// their own <see cref="ResidentBufferMonitor"/> and pass it in the options instead.
/// </para>
/// <para>
/// At startup the shared monitor reads <c>OFFHEAPTRACKER_MONITOR=1</c>,
/// <c>OFFHEAPTRACKER_MONITOR_RECORD_POOL=0</c>, <c>OFFHEAPTRACKER_MONITOR_STACKS</c> and
/// <c>OFFHEAPTRACKER_MONITOR_STACK_SAMPLING</c> from the environment, or the matching AppContext switches;
/// the environment wins.
/// </para>
/// </remarks>
public static class BufferMonitor
{
    /// <summary>The environment variable that enables the shared monitor at startup when set to <c>1</c>.</summary>
    public const string EnabledEnvironmentVariable = "OFFHEAPTRACKER_MONITOR";

    /// <summary>The environment variable that stops the shared monitor recording <see cref="BufferType.Pool"/> buffers when set to <c>0</c>.</summary>
    public const string RecordPoolEnvironmentVariable = "OFFHEAPTRACKER_MONITOR_RECORD_POOL";

    /// <summary>The environment variable that makes the shared monitor capture a stack for one buffer in N (1 to 1,000,000).</summary>
    public const string StackTraceSamplingEnvironmentVariable = "OFFHEAPTRACKER_MONITOR_STACK_SAMPLING";

    /// <summary>The AppContext data key (a <c>RuntimeHostConfigurationOption</c>) that sets the shared monitor's stack sampling.</summary>
    public const string StackTraceSamplingSwitch = "OffHeapTracker.Monitor.StackTraceSampling";

    /// <summary>The environment variable that sets the shared monitor's stack policy: <c>budgeted</c> (the default), <c>every</c> or <c>none</c> (see <see cref="StackPolicy"/>).</summary>
    public const string StacksEnvironmentVariable = "OFFHEAPTRACKER_MONITOR_STACKS";

    /// <summary>The AppContext data key (a <c>RuntimeHostConfigurationOption</c>) that sets the shared monitor's stack policy: <c>budgeted</c>, <c>every</c> or <c>none</c>.</summary>
    public const string StacksSwitch = "OffHeapTracker.Monitor.Stacks";

    /// <summary>The environment variable that sets the shared monitor's <see cref="ResidentBufferMonitorOptions.StackBudget"/> under the <c>budgeted</c> policy: a share of one core from 0.0001 to 1 (<c>0.005</c>), or a percentage with its sign (<c>0.5%</c>).</summary>
    public const string StackBudgetEnvironmentVariable = "OFFHEAPTRACKER_MONITOR_STACK_BUDGET";

    /// <summary>The AppContext data key (a <c>RuntimeHostConfigurationOption</c>) that sets the shared monitor's stack budget, as <see cref="StackBudgetEnvironmentVariable"/> does.</summary>
    public const string StackBudgetSwitch = "OffHeapTracker.Monitor.StackBudget";

    /// <summary>The environment variable that, set to <c>0</c>, turns fast stack capture off for every monitor in the process (see <see cref="ResidentBufferMonitorOptions.FastStacks"/>).</summary>
    public const string FastStacksEnvironmentVariable = "OFFHEAPTRACKER_MONITOR_FAST_STACKS";

    /// <summary>The AppContext switch that, set to false, turns fast stack capture off for every monitor in the process.</summary>
    public const string FastStacksSwitch = "OffHeapTracker.Monitor.FastStacks";

    /// <summary>The AppContext switch that enables the shared monitor at startup.</summary>
    public const string EnabledSwitch = "OffHeapTracker.Monitor.Enabled";

    /// <summary>The AppContext switch that says whether the shared monitor records <see cref="BufferType.Pool"/> buffers.</summary>
    public const string RecordPoolSwitch = "OffHeapTracker.Monitor.RecordPool";

    private static readonly Lazy<ResidentBufferMonitor> s_shared = new(CreateShared);
    private static readonly Lock s_hostLock = new();
    private static ResidentBufferMonitorOptions? s_initialOptions;
    private static ResidentBufferMonitorOptions? s_createdFrom;
    private static Meter? s_sharedMeter;
    private static MonitorAutoSwitch? s_autoSwitch;

    /// <summary>Gets the process-wide monitor.</summary>
    public static ResidentBufferMonitor Shared => s_shared.Value;

    /// <summary>Gets the shared monitor's automatic switch: the one <see cref="StartAutoSwitch"/> started, or the one the <c>OFFHEAPTRACKER_MONITOR_AUTO_*</c> environment variables set (see <see cref="MonitorAutoSwitch"/>); null when there is none.</summary>
    /// <remarks>The variables are read when <see cref="Shared"/> is first used. Disposing the switch makes this null again.</remarks>
    public static MonitorAutoSwitch? AutoSwitch
    {
        get
        {
            _ = s_shared.Value;
            return Volatile.Read(ref s_autoSwitch);
        }
    }

    /// <summary>Gets a value indicating whether the shared monitor is recording.</summary>
    public static bool IsEnabled => Shared.IsEnabled;

    /// <summary>Gets or sets a value indicating whether the shared monitor records new <see cref="BufferType.Pool"/> buffers.</summary>
    public static bool RecordPool
    {
        get => Shared.RecordPool;
        set => Shared.RecordPool = value;
    }

    /// <summary>Gets the context set by the innermost <see cref="BeginContext"/> scope on this async flow, or null.</summary>
    public static string? CurrentContext => BufferContext.Current;

    /// <summary>Raised on the finalizer thread for every lease, of a pool reporting to the shared monitor, that was garbage-collected without <c>Dispose</c>.</summary>
    /// <remarks>See <see cref="ResidentBufferMonitor.LeakDetected"/>. Fires whether or not the monitor is enabled.</remarks>
    public static event EventHandler<BufferLeak>? LeakDetected
    {
        add => Shared.LeakDetected += value;
        remove => Shared.LeakDetected -= value;
    }

    /// <summary>Starts recording buffers rented from now on; see <see cref="ResidentBufferMonitor.Enable()"/>.</summary>
    public static void Enable() => Shared.Enable();

    /// <summary>Stops recording and drops every record; see <see cref="ResidentBufferMonitor.Disable"/>.</summary>
    public static void Disable() => Shared.Disable();

    /// <summary>Lists the buffers still rented that are at least <paramref name="minAge"/> old, oldest first; see <see cref="ResidentBufferMonitor.GetResident"/>.</summary>
    /// <param name="minAge">The youngest age listed; null for 1 s, <see cref="TimeSpan.Zero"/> for everything.</param>
    /// <param name="type">Only buffers of this type; null for both.</param>
    /// <returns>A snapshot of the shared monitor's records.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="minAge"/> is negative, or <paramref name="type"/> is not a defined value.</exception>
    public static IReadOnlyList<ResidentBuffer> GetResident(TimeSpan? minAge = null, BufferType? type = null) =>
        Shared.GetResident(minAge, type);

    /// <summary>Groups the shared monitor's buffers by allocation stack, biggest holders first; see <see cref="ResidentBufferMonitor.GetLeakSites"/>.</summary>
    /// <param name="minAge">The youngest age counted; null for 1 s.</param>
    /// <param name="type">Only buffers of this type; null for both.</param>
    /// <param name="top">The most sites returned, from 1 to 10,000.</param>
    /// <returns>Sites sorted by total bytes, largest first.</returns>
    /// <exception cref="ArgumentOutOfRangeException">An argument is out of range.</exception>
    public static IReadOnlyList<LeakSite> GetLeakSites(TimeSpan? minAge = null, BufferType? type = null, int top = 20) =>
        Shared.GetLeakSites(minAge, type, top);

    /// <summary>Copies the shared monitor's records for a before/after comparison; see <see cref="ResidentBufferMonitor.TakeSnapshot"/>.</summary>
    /// <returns>The snapshot.</returns>
    public static BufferSnapshot TakeSnapshot() => Shared.TakeSnapshot();

    /// <summary>Sets the context recorded with every buffer rented on this async flow until the scope is disposed (dble's <c>sql</c> column).</summary>
    /// <param name="context">What the code is doing: a request path, a connection id, a statement. Cut to 1024 characters.</param>
    /// <returns>A scope that restores the previous context when disposed.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="context"/> is null.</exception>
    /// <remarks>The context is ambient (an <see cref="AsyncLocal{T}"/>) and shared by every monitor instance.</remarks>
    public static IDisposable BeginContext(string context) => BufferContext.Begin(context);

    /// <summary>Creates the shared monitor from <paramref name="options"/>, for a host that reads its settings from configuration; does nothing if it exists already.</summary>
    /// <param name="options">The settings, with the host's logger and meter factories.</param>
    /// <param name="enable">Whether to enable the monitor once created.</param>
    /// <returns>True if the shared monitor was created now, from these options; false if something had already used it (it then keeps its settings).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <remarks>
    /// The startup environment variables (<see cref="EnabledEnvironmentVariable"/> and the others), where set, still
    /// win over <paramref name="options"/> and <paramref name="enable"/>: they are the operator's override. The
    /// AppContext switches are not read. Call it before anything touches <see cref="Shared"/>: settings such as
    /// <see cref="ResidentBufferMonitorOptions.Stacks"/> are fixed when a monitor is created.
    /// </remarks>
    public static bool InitializeShared(ResidentBufferMonitorOptions options, bool enable = false)
    {
        ArgumentNullException.ThrowIfNull(options);
        lock (s_hostLock)
        {
            if (s_shared.IsValueCreated)
            {
                return false;
            }

            MonitorStartupSettings.ApplyEnvironment(Environment.GetEnvironmentVariable, options, ref enable);
            Volatile.Write(ref s_initialOptions, options);
            ResidentBufferMonitor monitor = s_shared.Value;
            if (!ReferenceEquals(s_createdFrom, options))
            {
                // Another thread read Shared first and created it from the startup switches.
                return false;
            }

            if (enable)
            {
                monitor.Enable();
            }

            return true;
        }
    }

    /// <summary>Starts an automatic switch for the shared monitor with <paramref name="options"/>' rules, in place of the one it had (which is stopped): what a host does with its configuration.</summary>
    /// <param name="options">The rules; at least one must be set. Not changed.</param>
    /// <param name="loggerFactory">Where switch-ons and switch-offs are logged (events 13 and 14); null for none.</param>
    /// <returns>The switch, now <see cref="AutoSwitch"/>. Dispose it to stop it.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentException">No rule is set, or the growth window spans more than <see cref="MonitorAutoSwitch.MaxSamples"/> checks.</exception>
    /// <remarks>
    /// As with <see cref="InitializeShared"/>, the <c>OFFHEAPTRACKER_MONITOR_AUTO_*</c> environment variables, where
    /// set, win over <paramref name="options"/>, setting by setting: they are the operator's override.
    /// </remarks>
    public static MonitorAutoSwitch StartAutoSwitch(MonitorAutoSwitchOptions options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        MonitorAutoSwitchOptions effective = AutoSwitchStartupSettings.Copy(options);
        AutoSwitchStartupSettings.ApplyEnvironment(Environment.GetEnvironmentVariable, effective);
        ResidentBufferMonitor monitor = Shared;
        MonitorAutoSwitch started;
        MonitorAutoSwitch? previous;
        lock (s_hostLock)
        {
            started = new MonitorAutoSwitch(monitor, effective, loggerFactory);
            previous = Interlocked.Exchange(ref s_autoSwitch, started);
        }

        previous?.Dispose();
        return started;
    }

    /// <summary>Sends the shared monitor's log events to <paramref name="loggerFactory"/>, and moves its instruments to the <c>OffHeapTracker</c> meter of <paramref name="meterFactory"/>.</summary>
    /// <param name="loggerFactory">The host's logger factory; <c>NullLoggerFactory.Instance</c> to stop logging.</param>
    /// <param name="meterFactory">The host's meter factory, or null for the static <c>OffHeapTracker</c> meter.</param>
    /// <exception cref="ArgumentNullException"><paramref name="loggerFactory"/> is null.</exception>
    /// <remarks>
    /// The instruments are on one meter at a time, so a listener that enables every meter named
    /// <c>OffHeapTracker</c> never sees the shared monitor twice. A host calls this when it starts, and again with
    /// the null logger factory and no meter factory when it stops, before it disposes its factories.
    /// </remarks>
    public static void ReportTo(ILoggerFactory loggerFactory, IMeterFactory? meterFactory)
    {
        ArgumentNullException.ThrowIfNull(loggerFactory);
        ResidentBufferMonitor monitor = Shared;
        lock (s_hostLock)
        {
            monitor.SetLoggerFactory(loggerFactory);
            Meter meter = OffHeapTrackerMetrics.GetMeter(meterFactory);
            if (s_sharedMeter is { } previous && !ReferenceEquals(previous, meter))
            {
                OffHeapTrackerMetrics.Unregister(previous, monitor);
            }

            OffHeapTrackerMetrics.Register(meter, monitor);
            s_sharedMeter = meter;
        }
    }

    /// <summary>Called by a disposed switch: <see cref="AutoSwitch"/> no longer names it.</summary>
    internal static void ForgetAutoSwitch(MonitorAutoSwitch stopped) => Interlocked.CompareExchange(ref s_autoSwitch, null, stopped);

    internal static bool IsShared(ResidentBufferMonitor monitor) => s_shared.IsValueCreated && ReferenceEquals(s_shared.Value, monitor);

    private static ResidentBufferMonitor CreateShared()
    {
        if (Interlocked.Exchange(ref s_initialOptions, null) is { } hostOptions)
        {
            var fromHost = new ResidentBufferMonitor(hostOptions);
            s_createdFrom = hostOptions;
            s_sharedMeter = OffHeapTrackerMetrics.GetMeter(hostOptions.MeterFactory);
            StartAutoSwitchFromEnvironment(fromHost, hostOptions.LoggerFactory);
            return fromHost;
        }

        MonitorStartupSettings settings = MonitorStartupSettings.FromProcess();
        var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions
        {
            RecordPool = settings.RecordPool,
            StackTraceSampling = settings.StackTraceSampling,
            Stacks = settings.Stacks,
            StackBudget = settings.StackBudget,
        });
        s_sharedMeter = OffHeapTrackerMetrics.GetMeter(null);
        if (settings.Enabled)
        {
            monitor.Enable();
        }

        StartAutoSwitchFromEnvironment(monitor, loggerFactory: null);
        return monitor;
    }

    private static void StartAutoSwitchFromEnvironment(ResidentBufferMonitor monitor, ILoggerFactory? loggerFactory)
    {
        if (AutoSwitchStartupSettings.Read(Environment.GetEnvironmentVariable) is { } autoSwitch)
        {
            s_autoSwitch = new MonitorAutoSwitch(monitor, autoSwitch, loggerFactory);
        }
    }
}
