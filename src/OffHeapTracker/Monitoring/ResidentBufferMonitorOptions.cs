using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace OffHeapTracker.Monitoring;

/// <summary>Settings for a <see cref="ResidentBufferMonitor"/>; read once, when it is created.</summary>
public sealed class ResidentBufferMonitorOptions
{
    /// <summary>The largest <see cref="StackTraceDepth"/>.</summary>
    public const int MaxStackTraceDepth = 256;

    /// <summary>The most samples a site history may hold: <see cref="SiteHistoryLength"/> may span at most this many <see cref="SiteHistoryInterval"/>s.</summary>
    /// <remarks>With <see cref="MaxSiteHistoryTopSites"/> sites a sample, the history then holds about a million entries (some 24 MiB): the worst a setting can cost.</remarks>
    public const int MaxSiteHistorySamples = 4096;

    /// <summary>The largest <see cref="SiteHistoryTopSites"/>.</summary>
    public const int MaxSiteHistoryTopSites = 256;

    private int _stackTraceDepth = 16;
    private int _stackTraceSampling = 1;
    private StackPolicy _stacks = StackPolicy.Budgeted;
    private double _stackBudget = StackCapture.DefaultCpuBudget;
    private int _maxRecords = 1_000_000;
    private int _maxStacks = 65_536;
    private ILoggerFactory _loggerFactory = NullLoggerFactory.Instance;
    private TimeProvider _timeProvider = TimeProvider.System;
    private TimeSpan _siteHistoryInterval = TimeSpan.FromSeconds(10);
    private TimeSpan _siteHistoryLength = TimeSpan.FromMinutes(10);
    private int _siteHistoryTopSites = 64;

    /// <summary>Gets or sets how many frames of each allocation stack are kept, counted from the caller of <c>Rent</c>. Zero captures no stacks.</summary>
    /// <value>The default is 16.</value>
    /// <exception cref="ArgumentOutOfRangeException">The value is not between 0 and 256.</exception>
    public int StackTraceDepth
    {
        get => _stackTraceDepth;
        set
        {
            Guard.InRange(value, 0, MaxStackTraceDepth, nameof(StackTraceDepth));
            _stackTraceDepth = value;
        }
    }

    /// <summary>Gets or sets which buffers get an allocation stack (every buffer is recorded either way).</summary>
    /// <value>The default is <see cref="StackPolicy.Budgeted"/>: every buffer while capture fits <see cref="StackBudget"/>, sampled and weighted beyond it.</value>
    /// <exception cref="ArgumentOutOfRangeException">The value is not defined.</exception>
    public StackPolicy Stacks
    {
        get => _stacks;
        set
        {
            if (value is not (StackPolicy.Budgeted or StackPolicy.Every or StackPolicy.None))
            {
                throw new ArgumentOutOfRangeException(nameof(Stacks), value, "Stacks must be StackPolicy.Budgeted, StackPolicy.Every or StackPolicy.None.");
            }

            _stacks = value;
        }
    }

    /// <summary>Gets or sets the share of one core that stack capture may use under <see cref="StackPolicy.Budgeted"/>: of one core, or of the CPU the process uses if that is less than a core.</summary>
    /// <value>The default is 0.01 (1 % of one core; 1 % of the process's CPU in a process that uses less than a core).</value>
    /// <exception cref="ArgumentOutOfRangeException">The value is not between 0.0001 and 1.</exception>
    public double StackBudget
    {
        get => _stackBudget;
        set
        {
            Guard.InRange(value, StackCapture.MinCpuBudget, StackCapture.MaxCpuBudget, nameof(StackBudget));
            _stackBudget = value;
        }
    }

    /// <summary>Gets or sets a fixed sampling rate that overrides <see cref="Stacks"/>: N captures a stack for one buffer in N on each thread (each weighted N). Buffers without one are still recorded, with an empty stack.</summary>
    /// <value>The default is 1: no override, <see cref="Stacks"/> decides.</value>
    /// <exception cref="ArgumentOutOfRangeException">The value is not between 1 and 1,000,000.</exception>
    public int StackTraceSampling
    {
        get => _stackTraceSampling;
        set
        {
            Guard.InRange(value, 1, 1_000_000, nameof(StackTraceSampling));
            _stackTraceSampling = value;
        }
    }

    /// <summary>Gets or sets a value indicating whether stacks may be captured the fast way: a frame-pointer walk identifies the stack, and only a stack not seen before is captured with <see cref="System.Diagnostics.StackTrace"/> (whose names every stack keeps).</summary>
    /// <value>The default is true: used where it is validated (Linux x64, checked against <see cref="System.Diagnostics.StackTrace"/> when first needed), off elsewhere. <see cref="StackCapture.IsFastCaptureActive"/> says whether it is in use and <see cref="StackCapture.FastCaptureOffReason"/> why not; the environment variable <c>OFFHEAPTRACKER_MONITOR_FAST_STACKS=0</c> turns it off for every monitor.</value>
    public bool FastStacks { get; set; } = true;

    /// <summary>Gets or sets a value indicating whether stacks carry file names and line numbers (about three times the capture cost, and only where PDBs are deployed).</summary>
    /// <value>The default is false.</value>
    public bool StackTraceFileInfo { get; set; }

    /// <summary>Gets or sets a value indicating whether the stack of each recorded buffer's first <c>Dispose</c> is kept too, so a double dispose is reported with both stacks.</summary>
    /// <value>The default is false: a double dispose is reported with its allocation stack and the second dispose's stack. True doubles the stack-capture cost of every sampled buffer.</value>
    public bool CaptureDisposeStacks { get; set; }

    /// <summary>Gets or sets a value indicating whether <see cref="BufferType.Pool"/> buffers are recorded; changeable later through <see cref="ResidentBufferMonitor.RecordPool"/>.</summary>
    /// <value>The default is true.</value>
    public bool RecordPool { get; set; } = true;

    /// <summary>Gets or sets the most records kept at once; further buffers are counted in <see cref="ResidentBufferMonitor.DroppedRecords"/> instead.</summary>
    /// <value>The default is 1,000,000.</value>
    /// <remarks>
    /// A pool's record lives in the lease it describes, and the table lists the leases' recycled cores, so for the
    /// pools this bounds the cores listed, in use or idle: every renting thread keeps up to 64 idle cores, and the
    /// process up to 4,096 more, for the next monitored rents. So set it well above 4,096 + 64 × the renting threads
    /// plus the buffers you expect out (the default is); below that, fewer records than this fit at once, and rents
    /// past them are counted as dropped. Cores are shared by all pools, so a thread that rents in turn from pools on
    /// two monitors moves its cores between their tables, and each move takes a new place. A table at its limit
    /// gives back the places of cores the collector took or another monitor lists now, in a sweep of all its places;
    /// the next sweep is due no sooner than 10 ms, or ten times what that sweep took, after it, and until then a rent
    /// that needs a place is refused without waiting.
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException">The value is not between 1 and <see cref="int.MaxValue"/>.</exception>
    public int MaxRecords
    {
        get => _maxRecords;
        set
        {
            Guard.InRange(value, 1, int.MaxValue, nameof(MaxRecords));
            _maxRecords = value;
        }
    }

    /// <summary>Gets or sets the most distinct allocation stacks kept; a buffer with a new stack beyond that is counted as dropped.</summary>
    /// <value>The default is 65,536.</value>
    /// <exception cref="ArgumentOutOfRangeException">The value is not between 1 and <see cref="int.MaxValue"/>.</exception>
    public int MaxStacks
    {
        get => _maxStacks;
        set
        {
            Guard.InRange(value, 1, int.MaxValue, nameof(MaxStacks));
            _maxStacks = value;
        }
    }

    /// <summary>Gets or sets how often, while the monitor is on, the bytes and buffers of its largest sites are sampled into the history that <see cref="LeakSite.Growth"/> is read from.</summary>
    /// <value>The default is 10 seconds.</value>
    /// <exception cref="ArgumentOutOfRangeException">The value is not between 1 second and 1 hour.</exception>
    /// <remarks>Each sample walks the monitor's table once, as <see cref="ResidentBufferMonitor.GetLeakSites"/> does, on a timer thread; rents and returns are not slowed.</remarks>
    public TimeSpan SiteHistoryInterval
    {
        get => _siteHistoryInterval;
        set
        {
            Guard.InRange(value, TimeSpan.FromSeconds(1), TimeSpan.FromHours(1), nameof(SiteHistoryInterval));
            _siteHistoryInterval = value;
        }
    }

    /// <summary>Gets or sets how far back the site history reaches: a site's growth is read from the samples of this last stretch.</summary>
    /// <value>The default is 10 minutes (61 samples at the default interval).</value>
    /// <exception cref="ArgumentOutOfRangeException">The value is not between 2 seconds and 7 days.</exception>
    /// <remarks>
    /// The monitor keeps <c>SiteHistoryLength / SiteHistoryInterval + 1</c> samples, which must be between 3 (a
    /// verdict of growth needs three points) and <see cref="MaxSiteHistorySamples"/>; the monitor's constructor
    /// checks it.
    /// </remarks>
    public TimeSpan SiteHistoryLength
    {
        get => _siteHistoryLength;
        set
        {
            Guard.InRange(value, TimeSpan.FromSeconds(2), TimeSpan.FromDays(7), nameof(SiteHistoryLength));
            _siteHistoryLength = value;
        }
    }

    /// <summary>Gets or sets how many sites each history sample follows, the largest by estimated bytes. Zero keeps no history (no timer, no <see cref="LeakSite.Growth"/>).</summary>
    /// <value>The default is 64: enough to hold a slow leak that is not yet among the largest, at a few kilobytes a sample.</value>
    /// <exception cref="ArgumentOutOfRangeException">The value is not between 0 and 256.</exception>
    public int SiteHistoryTopSites
    {
        get => _siteHistoryTopSites;
        set
        {
            Guard.InRange(value, 0, MaxSiteHistoryTopSites, nameof(SiteHistoryTopSites));
            _siteHistoryTopSites = value;
        }
    }

    /// <summary>Gets or sets the factory the monitor's <c>OffHeapTracker</c> meter is created from (the host's, under dependency injection).</summary>
    /// <value>The default is null: the instruments live on a static meter named <c>OffHeapTracker</c>.</value>
    public System.Diagnostics.Metrics.IMeterFactory? MeterFactory { get; set; }

    /// <summary>Gets or sets the clock for allocation times and ages.</summary>
    /// <value>The default is <see cref="TimeProvider.System"/>.</value>
    /// <exception cref="ArgumentNullException">The value is null.</exception>
    public TimeProvider TimeProvider
    {
        get => _timeProvider;
        set
        {
            ArgumentNullException.ThrowIfNull(value, nameof(TimeProvider));
            _timeProvider = value;
        }
    }

    /// <summary>Gets or sets the factory for the monitor's logger.</summary>
    /// <value>The default is <see cref="NullLoggerFactory.Instance"/>.</value>
    /// <exception cref="ArgumentNullException">The value is null.</exception>
    public ILoggerFactory LoggerFactory
    {
        get => _loggerFactory;
        set
        {
            ArgumentNullException.ThrowIfNull(value, nameof(LoggerFactory));
            _loggerFactory = value;
        }
    }
}
