using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using OffHeapTracker.AspNetCore;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps a Prometheus scrape endpoint for OffHeapTracker's metrics.</summary>
public static class OffHeapTrackerMetricsEndpointRouteBuilderExtensions
{
    /// <summary>Maps <c>GET <paramref name="pattern"/></c>, serving the <c>OffHeapTracker</c> meter and the <c>aspnetcore.memory_pool.*</c> instruments our pools report, in the Prometheus text exposition format 0.0.4.</summary>
    /// <param name="endpoints">The application's routes.</param>
    /// <param name="pattern">Where to map it; Prometheus scrapes <c>/metrics</c> unless told otherwise.</param>
    /// <returns>The endpoint, so you can chain <c>.RequireAuthorization()</c> or <c>.RequireHost()</c>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="endpoints"/> or <paramref name="pattern"/> is null.</exception>
    /// <remarks>
    /// <para>
    /// Names follow OpenTelemetry's Prometheus rules: <c>offheaptracker.pool.in_use</c> (<c>By</c>) is
    /// <c>offheaptracker_pool_in_use_bytes</c>, counters end in <c>_total</c>, tags become labels
    /// (<c>offheaptracker_pool_name</c>, <c>offheaptracker_pool_id</c>, <c>aspnetcore_memory_pool_owner</c>). Only
    /// observable instruments are served (all of ours are), read when scraped, so the endpoint costs nothing between scrapes.
    /// </para>
    /// <para>
    /// This is our own small exporter because no Prometheus exporter package is available where this library is built.
    /// Where <c>OpenTelemetry.Exporter.Prometheus.AspNetCore</c> is available, use it instead with
    /// <c>AddMeter("OffHeapTracker", "Microsoft.AspNetCore.MemoryPool")</c>: it serves the same names and every other meter too.
    /// </para>
    /// <para>
    /// Unlike <c>MapBufferMonitor</c>'s reports, the series carry no stacks or contexts, only pool names and sizes, and
    /// the endpoint answers any host (Prometheus rarely scrapes through loopback). It is kept out of OpenAPI documents.
    /// </para>
    /// </remarks>
    public static IEndpointConventionBuilder MapOffHeapTrackerMetrics(this IEndpointRouteBuilder endpoints, string pattern = "/metrics")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(pattern);
        var exposition = new PrometheusExposition(endpoints.ServiceProvider.GetService<IMeterFactory>());

        // A RequestDelegate, not a lambda with parameters: no request delegate generation, so nothing here needs
        // reflection at run time (trimming and native AOT stay warning-free).
        return endpoints.MapGet(pattern, (RequestDelegate)(context =>
        {
            context.Response.ContentType = PrometheusExposition.ContentType;
            context.Response.Headers.CacheControl = "no-store";
            return context.Response.WriteAsync(exposition.Scrape(), context.RequestAborted);
        })).ExcludeFromDescription();
    }
}
