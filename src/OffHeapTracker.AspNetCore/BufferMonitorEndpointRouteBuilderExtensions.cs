using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OffHeapTracker;
using OffHeapTracker.AspNetCore;
using OffHeapTracker.AspNetCore.History;
using OffHeapTracker.Monitoring;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the buffer monitor's diagnostics endpoints and dashboard. Nothing is exposed unless you call this.</summary>
public static class BufferMonitorEndpointRouteBuilderExtensions
{
    /// <summary>The request header that <c>POST {prefix}/enable</c> and <c>/disable</c> require, with the value <c>1</c>.</summary>
    /// <remarks>A cross-site form or link cannot set a custom header, so a page elsewhere cannot switch the monitor.</remarks>
    public const string ActionHeader = "X-OffHeapTracker-Action";

    /// <summary>Maps <c>GET {prefix}/</c> (the dashboard), <c>/resident</c>, <c>/sites</c>, <c>/stats</c>, <c>/history</c>, and <c>POST /enable</c> and <c>/disable</c>, with the default options.</summary>
    /// <param name="endpoints">The application's routes.</param>
    /// <param name="prefix">Where to map them.</param>
    /// <returns>The group, so you can chain <c>.RequireAuthorization()</c>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="endpoints"/> or <paramref name="prefix"/> is null.</exception>
    /// <remarks>
    /// <para>
    /// The endpoints report on the monitor the registered <see cref="DirectBufferPoolFactory"/> uses (by default
    /// <see cref="BufferMonitor.Shared"/>) and on every pool alive in the process. They answer only requests whose
    /// <c>Host</c> is loopback (<c>localhost</c>, <c>127.0.0.0/8</c>, <c>[::1]</c>, any port), which stops a web page
    /// from reaching them through DNS rebinding; other hosts get 403 with a problem-details body that says how to
    /// allow them (<see cref="BufferMonitorEndpointOptions.AllowedHosts"/>). Reports leave native addresses out, and at
    /// most two run at once. <c>/history</c> serves the last hour, sampled every 5 s from when the host starts until
    /// it stops (<see cref="BufferMonitorEndpointOptions.HistoryInterval"/>). Every response carries <c>Cache-Control: no-store</c> and
    /// <c>X-Content-Type-Options: nosniff</c>; errors are <c>application/problem+json</c> naming the parameter at fault.
    /// </para>
    /// <para>
    /// The host check is not authentication. The reports show stacks, request paths and whatever else your contexts
    /// hold, and the switches change what every rent costs, so require an authorization policy:
    /// <c>app.MapBufferMonitor().RequireAuthorization("ops")</c>.
    /// </para>
    /// </remarks>
    public static RouteGroupBuilder MapBufferMonitor(this IEndpointRouteBuilder endpoints, string prefix = "/debug/buffers")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(prefix);
        var options = new BufferMonitorEndpointOptions();
        return Map(endpoints, prefix, options, new HostAllowList(options.AllowedHosts));
    }

    /// <summary>Maps the same endpoints as <see cref="MapBufferMonitor(IEndpointRouteBuilder, string)"/>, with options: more hosts, addresses in reports, a different limit on concurrent reports.</summary>
    /// <param name="endpoints">The application's routes.</param>
    /// <param name="configure">Changes to the default options, such as <c>o =&gt; o.AllowedHosts.Add("ops.example.com")</c>.</param>
    /// <param name="prefix">Where to map them.</param>
    /// <returns>The group, so you can chain <c>.RequireAuthorization()</c>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="endpoints"/>, <paramref name="configure"/> or <paramref name="prefix"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="BufferMonitorEndpointOptions.MaxConcurrentReports"/> is not from 1 to 64, <see cref="BufferMonitorEndpointOptions.HistoryInterval"/> is not from 1 second to 5 minutes, or <see cref="BufferMonitorEndpointOptions.HistoryLength"/> is not from one interval to a day or would take more than 10,000 samples.</exception>
    /// <exception cref="ArgumentException">An entry of <see cref="BufferMonitorEndpointOptions.AllowedHosts"/> is not a host, a host and port, or <c>*</c>.</exception>
    /// <remarks>See <see cref="MapBufferMonitor(IEndpointRouteBuilder, string)"/>; protect the endpoints with <c>.RequireAuthorization()</c>.</remarks>
    public static RouteGroupBuilder MapBufferMonitor(this IEndpointRouteBuilder endpoints, Action<BufferMonitorEndpointOptions> configure, string prefix = "/debug/buffers")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(configure);
        ArgumentNullException.ThrowIfNull(prefix);
        var options = new BufferMonitorEndpointOptions();
        configure(options);
        if (options.MaxConcurrentReports is < 1 or > 64)
        {
            throw new ArgumentOutOfRangeException(nameof(configure), options.MaxConcurrentReports, "MaxConcurrentReports must be from 1 to 64.");
        }

        if (options.HistoryInterval < TimeSpan.FromSeconds(1) || options.HistoryInterval > TimeSpan.FromMinutes(5))
        {
            throw new ArgumentOutOfRangeException(nameof(configure), options.HistoryInterval, "HistoryInterval must be from 00:00:01 to 00:05:00.");
        }

        if (options.HistoryLength < options.HistoryInterval || options.HistoryLength > TimeSpan.FromDays(1)
            || BufferHistory.Capacity(options.HistoryInterval, options.HistoryLength) > BufferHistory.MaxSamples)
        {
            throw new ArgumentOutOfRangeException(nameof(configure), options.HistoryLength, $"HistoryLength must be from HistoryInterval ({options.HistoryInterval}) to 1.00:00:00, and at most {BufferHistory.MaxSamples} intervals.");
        }

        return Map(endpoints, prefix, options, new HostAllowList(options.AllowedHosts, nameof(configure)));
    }

    private static RouteGroupBuilder Map(IEndpointRouteBuilder endpoints, string prefix, BufferMonitorEndpointOptions options, HostAllowList hosts)
    {
        IServiceProvider services = endpoints.ServiceProvider;
        var history = new BufferHistory(
            () => services.GetService<DirectBufferPoolFactory>()?.Monitor as ResidentBufferMonitor ?? BufferMonitor.Shared,
            options.HistoryInterval,
            options.HistoryLength);
        var handlers = new BufferMonitorEndpoints(options, hosts, history);

        // Sampled from when the host has started (so the factory and its pools exist) until it stops. Without a host
        // lifetime (routes built by hand) sampling starts now and lasts as long as the process.
        if (services.GetService<IHostApplicationLifetime>() is { } lifetime)
        {
            lifetime.ApplicationStarted.Register(history.Start);
            lifetime.ApplicationStopping.Register(history.Dispose);
        }
        else
        {
            history.Start();
        }

        RouteGroupBuilder group = endpoints.MapGroup(prefix);
        group.AddEndpointFilter(handlers.FilterAsync);

        // Explicit return types keep the async handlers off MapGet's RequestDelegate overload, which skips filters.
        group.MapGet("/", static IResult (HttpContext context) => BufferMonitorEndpoints.Page(context));
        group.MapGet("/resident", Task<IResult> (HttpContext context) => handlers.ResidentAsync(context));
        group.MapGet("/sites", Task<IResult> (HttpContext context) => handlers.SitesAsync(context));
        group.MapGet("/stats", static IResult (HttpContext context) => BufferMonitorEndpoints.Stats(context));
        group.MapGet("/history", IResult (HttpContext context) => handlers.HistoryJson(context));
        group.MapPost("/enable", IResult (HttpContext context) => handlers.Switch(context, enable: true));
        group.MapPost("/disable", IResult (HttpContext context) => handlers.Switch(context, enable: false));

        // Another method on /enable or /disable gets routing's own 405, with Allow: POST.
        if (handlers.IncludeInOpenApi)
        {
            group.WithTags("OffHeapTracker");
        }
        else
        {
            // Diagnostics are not the application's API: kept out of ApiExplorer and OpenAPI documents unless asked for.
            group.ExcludeFromDescription();
        }

        if (handlers.AuthorizationPolicy is { } policy)
        {
            group.RequireAuthorization(policy);
        }

        return group;
    }
}
