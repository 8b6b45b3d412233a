using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Extensions;
using Microsoft.Extensions.DependencyInjection;
using OffHeapTracker.AspNetCore.History;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.AspNetCore;

/// <summary>The handlers behind one <c>MapBufferMonitor</c> call, with its options and its report slots.</summary>
/// <remarks>
/// Report work is bounded three ways: a query selects only the rows it returns (a heap of <c>limit</c> entries, or
/// one tally per site); the rows are written to the response as they are serialized, never gathered into one
/// string; and at most <see cref="BufferMonitorEndpointOptions.MaxConcurrentReports"/> reports run at once. So the
/// memory a burst of reports can take is about <c>MaxConcurrentReports × limit</c> rows, whatever the table holds.
/// </remarks>
[SuppressMessage("Reliability", "CA1001", Justification = "SemaphoreSlim holds no OS handle unless AvailableWaitHandle is read, which it never is; the endpoints live as long as the app's routes.")]
internal sealed class BufferMonitorEndpoints
{
    /// <summary>How long a report waits for a slot before it is refused with 503: long enough to ride out the dashboard's own two requests.</summary>
    private static readonly TimeSpan s_slotWait = TimeSpan.FromSeconds(1);

    private static readonly UTF8Encoding s_utf8 = new(encoderShouldEmitUTF8Identifier: false);

    private static readonly Report<LeakSite> s_sites = new(
        "top",
        20,
        10_000,
        ["json", "collapsed"],
        static (monitor, query) => monitor.GetLeakSites(query.MinAge, query.Type, query.Count),
        BufferReportFormatter.WriteJsonAsync,
        BufferReportFormatter.WriteCollapsedAsync);

    private readonly Report<ResidentBuffer> _resident;
    private readonly HostAllowList _hosts;
    private readonly int _maxReports;
    private readonly SemaphoreSlim _reportSlots;

    /// <summary>Takes options already checked by <c>MapBufferMonitor</c>, the host list read from them, and the history they sample into.</summary>
    public BufferMonitorEndpoints(BufferMonitorEndpointOptions options, HostAllowList hosts, BufferHistory history)
    {
        History = history;
        Debug.Assert(options.MaxConcurrentReports is >= 1 and <= 64, "MapBufferMonitor checks MaxConcurrentReports.");
        _hosts = hosts;
        IncludeInOpenApi = options.IncludeInOpenApi;
        AuthorizationPolicy = options.AuthorizationPolicy;
        _maxReports = options.MaxConcurrentReports;
        _reportSlots = new SemaphoreSlim(_maxReports, _maxReports);
        bool includeAddresses = options.IncludeAddresses;
        _resident = new Report<ResidentBuffer>(
            "limit",
            100,
            100_000,
            ["json", "text"],
            static (monitor, query) => monitor.GetOldestResident(query.Count, query.MinAge, query.Type),
            (stream, rows, cancellationToken) => BufferReportFormatter.WriteJsonAsync(stream, rows, includeAddresses, cancellationToken),
            BufferReportFormatter.WriteVerticalAsync);
    }

    /// <summary>Gets the history <c>/history</c> serves, sampled from when the host starts until it stops.</summary>
    public BufferHistory History { get; }

    /// <summary>Gets a value indicating whether the endpoints appear in ApiExplorer and OpenAPI documents.</summary>
    public bool IncludeInOpenApi { get; }

    /// <summary>Gets the authorization policy every endpoint requires, or null.</summary>
    public string? AuthorizationPolicy { get; }

    /// <summary>Runs before every handler: marks the response uncacheable and unsniffable, and refuses hosts that are neither loopback nor listed.</summary>
    public ValueTask<object?> FilterAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        HttpContext http = context.HttpContext;
        http.Response.Headers.CacheControl = "no-store";
        http.Response.Headers.XContentTypeOptions = "nosniff";
        return _hosts.IsAllowed(http.Request.Host) ? next(context) : ValueTask.FromResult<object?>(HostRefused(http.Request.Host));
    }

    /// <summary>The dashboard, served only at the prefix with its trailing slash, where its relative fetches (<c>stats</c>, <c>resident</c>) resolve.</summary>
    public static IResult Page(HttpContext context)
    {
        HttpRequest request = context.Request;
        if (request.Path.Value is not { } path || !path.EndsWith('/'))
        {
            string location = UriHelper.BuildRelative(request.PathBase, request.Path.Add(new PathString("/")), request.QueryString);

            // A browser reads a location that starts with "//" as another host, which would make this an open redirect.
            return location.StartsWith("//", StringComparison.Ordinal) ? Results.NotFound() : Results.Redirect(location);
        }

        Dashboard dashboard = Dashboard.Instance;
        context.Response.Headers.ContentSecurityPolicy = dashboard.ContentSecurityPolicy;
        return Results.Content(dashboard.Html, "text/html; charset=utf-8");
    }

    /// <summary><c>GET /resident</c>: the <c>limit</c> oldest records, as JSON or vertical text.</summary>
    public Task<IResult> ResidentAsync(HttpContext context) => ReportAsync(context, _resident);

    /// <summary><c>GET /sites</c>: the <c>top</c> leak sites, as JSON or collapsed stacks.</summary>
    public Task<IResult> SitesAsync(HttpContext context) => ReportAsync(context, s_sites);

    /// <summary>Reads the query, takes a report slot (or answers 503), selects the rows and streams them in the format asked for.</summary>
    private async Task<IResult> ReportAsync<T>(HttpContext context, Report<T> report)
    {
        if (!ReportQuery.TryRead(context.Request.Query, report.CountName, report.CountFallback, report.CountMax, report.Formats, out ReportQuery query, out IResult? error))
        {
            return error!;
        }

        if (!await _reportSlots.WaitAsync(s_slotWait, context.RequestAborted).ConfigureAwait(false))
        {
            return Busy(context);
        }

        try
        {
            IReadOnlyList<T> rows = report.Select(Monitor(context), query);
            if (query.Format == report.Formats[0])
            {
                context.Response.ContentType = "application/json; charset=utf-8";
                await report.WriteJson(context.Response.Body, rows, context.RequestAborted).ConfigureAwait(false);
            }
            else
            {
                context.Response.ContentType = "text/plain; charset=utf-8";
                await using var writer = new StreamWriter(context.Response.Body, s_utf8, 16 * 1024, leaveOpen: true);
                await report.WriteText(writer, rows, context.RequestAborted).ConfigureAwait(false);
            }

            return Results.Empty;
        }
        finally
        {
            _reportSlots.Release();
        }
    }

    /// <summary>The monitor's state and every live pool's statistics and census: no slot needed; the dashboard polls it every 2 s.</summary>
    /// <remarks>
    /// Each pool's census (<see cref="DirectBufferPool.TakeCensus"/>) is a walk over its blocks, about 256 per MiB of
    /// 4 KiB blocks, and a sort of the outstanding ones: a fraction of a millisecond for a pool of a few MiB, and it
    /// works with the monitor off, which is when an operator most needs to know whether old NORMAL buffers exist.
    /// </remarks>
    public static IResult Stats(HttpContext context)
    {
        ResidentBufferMonitor monitor = Monitor(context);
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartObject("monitor");
            json.WriteBoolean("enabled", monitor.IsEnabled);
            json.WriteBoolean("record_pool", monitor.RecordPool);
            json.WriteNumber("resident", monitor.Count);
            json.WriteNumber("dropped", monitor.DroppedRecords);
            json.WriteNumber("stack_trace_depth", monitor.StackTraceDepth);
            json.WriteNumber("stack_trace_sampling", monitor.StackTraceSampling);
            json.WriteString("stacks", monitor.Stacks.ToString().ToLowerInvariant());
            json.WriteNumber("max_records", monitor.MaxRecords);
            json.WriteEndObject();
            json.WriteNumber("old_age_seconds", BufferHistory.OldAge.TotalSeconds);
            json.WriteStartArray("pools");
            foreach (DirectBufferPool pool in DirectBufferPool.GetLivePools())
            {
                // The statistics carry the pool's name, which Kestrel's pools share ("kestrel"); the id tells them apart.
                string statistics = BufferReportFormatter.ToJson(pool.GetStatistics());
                Debug.Assert(statistics.StartsWith('{') && statistics.EndsWith('}'), "the statistics are one JSON object");
                json.WriteRawValue(string.Create(CultureInfo.InvariantCulture, $"{{\"id\":{pool.Id},{statistics.AsSpan(1, statistics.Length - 2)},\"census\":{CensusJson(pool.TakeCensus())}}}"));
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return Json(Encoding.UTF8.GetString(buffer.ToArray()));
    }

    /// <summary>A pool's NORMAL buffers from its census: all of them, those out for at least <see cref="BufferHistory.OldAge"/>, and the oldest one's age (null when none is out).</summary>
    private static string CensusJson(BufferCensus census)
    {
        TimeSpan? oldest = census.GetOldestAge(BufferType.Normal);
        return string.Create(
            CultureInfo.InvariantCulture,
            $"{{\"normal_count\":{census.CountOlderThan(TimeSpan.Zero, BufferType.Normal)},\"old_normal_count\":{census.CountOlderThan(BufferHistory.OldAge, BufferType.Normal)},\"old_normal_bytes\":{census.BytesOlderThan(BufferHistory.OldAge, BufferType.Normal)},\"oldest_normal_second\":{(oldest is { } age ? Math.Round(age.TotalSeconds, 1).ToString(CultureInfo.InvariantCulture) : "null")}}}");
    }

    /// <summary><c>GET /history</c>: the sampled history (or, with <c>since</c>, its samples after that Unix time in milliseconds) and the latest sites with their growth; O(samples), no slot needed.</summary>
    public IResult HistoryJson(HttpContext context)
    {
        long since = long.MinValue;
        string? text = context.Request.Query["since"];
        if (text is not null && !long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out since))
        {
            return Problems.For(StatusCodes.Status400BadRequest, "Bad query value", "since", "since must be a Unix time in milliseconds, a whole number from 0.");
        }

        HistoryView view = History.Read(since);
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            view.Write(json, History);
        }

        return Results.Bytes(buffer.ToArray(), "application/json; charset=utf-8");
    }

    public IResult Switch(HttpContext context, bool enable)
    {
        string header = BufferMonitorEndpointRouteBuilderExtensions.ActionHeader;
        if (context.Request.Headers[header] != "1")
        {
            return Problems.For(
                StatusCodes.Status400BadRequest,
                "Action header missing",
                header,
                $"POST {context.Request.Path} needs the request header '{header}: 1'. The header guards the switch from cross-site forms and links.");
        }

        ResidentBufferMonitor monitor = Monitor(context);
        if (enable)
        {
            monitor.Enable();
        }
        else
        {
            monitor.Disable();
        }

        History.NoteSwitch(enable);

        return Json($$"""{"enabled":{{(monitor.IsEnabled ? "true" : "false")}}}""");
    }

    private static ResidentBufferMonitor Monitor(HttpContext context) =>
        context.RequestServices.GetService<DirectBufferPoolFactory>()?.Monitor as ResidentBufferMonitor ?? BufferMonitor.Shared;

    private static IResult Json(string json) => Results.Content(json, "application/json; charset=utf-8");

    private IResult Busy(HttpContext context)
    {
        context.Response.Headers.RetryAfter = "1";
        return Problems.For(
            StatusCodes.Status503ServiceUnavailable,
            "Too many reports at once",
            "MaxConcurrentReports",
            $"{_maxReports} report(s) are being computed or written already, the most these endpoints run at once (BufferMonitorEndpointOptions.MaxConcurrentReports). Retry in a second; /stats needs no slot.");
    }

    private static IResult HostRefused(HostString host)
    {
        string shown = host.HasValue ? host.Value! : "(none)";
        string name = host.HasValue && host.Host.Length > 0 ? host.Host : "your.host";
        return Problems.For(
            StatusCodes.Status403Forbidden,
            "Host not allowed",
            "Host",
            $"The buffer monitor answers only loopback hosts (localhost, 127.0.0.0/8, [::1], any port) and the hosts in BufferMonitorEndpointOptions.AllowedHosts, and the request's Host '{shown}' is neither. "
            + "This keeps a web page that rebinds its own name to this address (DNS rebinding) from reading the reports or flipping the switches. "
            + $"To serve this host, list it: app.MapBufferMonitor(o => o.AllowedHosts.Add(\"{name}\")), and require authorization: .RequireAuthorization().");
    }

    /// <summary>One report endpoint: its count parameter and range, its formats (JSON first), how it selects and how it writes.</summary>
    private sealed record Report<T>(
        string CountName,
        int CountFallback,
        int CountMax,
        string[] Formats,
        Func<ResidentBufferMonitor, ReportQuery, IReadOnlyList<T>> Select,
        Func<Stream, IReadOnlyList<T>, CancellationToken, Task> WriteJson,
        Func<TextWriter, IReadOnlyList<T>, CancellationToken, Task> WriteText);
}
