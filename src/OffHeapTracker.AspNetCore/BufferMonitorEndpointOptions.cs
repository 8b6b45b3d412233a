namespace OffHeapTracker.AspNetCore;

/// <summary>Settings for the endpoints <c>MapBufferMonitor</c> maps.</summary>
/// <remarks>
/// The options are read once, when the endpoints are mapped; changing them afterwards has no effect. Each call to
/// <c>MapBufferMonitor</c> has its own options and its own limit on concurrent reports.
/// </remarks>
public sealed class BufferMonitorEndpointOptions
{
    /// <summary>The default of <see cref="MaxConcurrentReports"/>.</summary>
    public const int DefaultMaxConcurrentReports = 2;

    /// <summary>Gets the hosts the endpoints answer besides the loopback ones, as a browser sends them in the <c>Host</c> header.</summary>
    /// <value>
    /// Empty by default: only <c>localhost</c>, <c>127.0.0.0/8</c> and <c>[::1]</c> (with any port) are answered. An
    /// entry is a host name or address (<c>ops.example.com</c>, <c>10.0.0.5</c>, <c>[fd00::5]</c>), which allows it
    /// with any port, or a host and port (<c>ops.example.com:9090</c>), which allows that port only. Names compare
    /// case-insensitively. <c>*</c> allows every host and turns the check off; use it only when something in front
    /// of the application (a reverse proxy, or ASP.NET Core's host filtering) already checks the host.
    /// </value>
    /// <remarks>
    /// A page on any web site can point a name it controls at 127.0.0.1 (DNS rebinding): the browser then treats
    /// the endpoints as that site's own, and the site's script can read every report and send the switches' action
    /// header. Such requests carry the attacker's name in <c>Host</c>, and are refused with 403. Other hosts are
    /// refused too, with a message that says how to list them here. The check does not authenticate anyone:
    /// protect the endpoints with <c>.RequireAuthorization()</c> as well.
    /// </remarks>
    public IList<string> AllowedHosts { get; } = [];

    /// <summary>Gets or sets a value indicating whether resident reports carry each buffer's native address (<c>address</c>).</summary>
    /// <value>The default is false: an address is a live pointer into the process, useful to an attacker and rarely to you.</value>
    public bool IncludeAddresses { get; set; }

    /// <summary>Gets or sets how many reports (<c>/resident</c> and <c>/sites</c>) are computed and written at once.</summary>
    /// <value>The default is 2 (<see cref="DefaultMaxConcurrentReports"/>); from 1 to 64.</value>
    /// <remarks>
    /// Each report walks the whole record table and holds the rows it returns until they are written. A request
    /// beyond the limit waits up to a second for a slot and then gets 503 with <c>Retry-After</c>, so a burst of
    /// large reports cannot take the application's memory or CPU. <c>/stats</c> and the dashboard page take no slot.
    /// </remarks>
    public int MaxConcurrentReports { get; set; } = DefaultMaxConcurrentReports;

    /// <summary>Gets or sets a value indicating whether the endpoints appear in ApiExplorer and OpenAPI documents, tagged <c>OffHeapTracker</c>.</summary>
    /// <value>The default is false: diagnostics are not part of the application's API, so they are excluded from its description.</value>
    public bool IncludeInOpenApi { get; set; }

    /// <summary>Gets or sets the authorization policy every endpoint requires (the same as chaining <c>.RequireAuthorization(policy)</c>).</summary>
    /// <value>The default is null: no authorization, only the host check. Set it in production.</value>
    public string? AuthorizationPolicy { get; set; }

    /// <summary>Gets or sets how often the endpoints' history (<c>GET {prefix}/history</c>, the dashboard's chart and site growth) takes a sample.</summary>
    /// <value>The default is 5 seconds; from 1 second to 5 minutes.</value>
    /// <remarks>
    /// Each sample reads every live pool's statistics and, while the monitor is on, walks its records twice (the top
    /// sites, and the old <see cref="OffHeapTracker.BufferType.Normal"/> buffers): at the default interval and the
    /// default record limit that is a few milliseconds every five seconds on one thread pool thread.
    /// </remarks>
    public TimeSpan HistoryInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Gets or sets how far back the history reaches; older samples are dropped.</summary>
    /// <value>The default is one hour. The ring holds <c>HistoryLength / HistoryInterval</c> samples, at most 10,000.</value>
    public TimeSpan HistoryLength { get; set; } = TimeSpan.FromHours(1);
}
