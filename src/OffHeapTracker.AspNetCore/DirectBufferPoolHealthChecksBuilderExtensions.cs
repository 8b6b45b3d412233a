using Microsoft.Extensions.Diagnostics.HealthChecks;
using OffHeapTracker;
using OffHeapTracker.AspNetCore;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the buffer pools' health check.</summary>
public static class DirectBufferPoolHealthChecksBuilderExtensions
{
    /// <summary>The default name of the check.</summary>
    public const string DefaultName = "offheaptracker";

    /// <summary>Adds a check of the pools alive in the process: Degraded on new leaks, double disposes, fallbacks, old NORMAL buffers or a nearly full pool; Unhealthy on monitor errors.</summary>
    /// <param name="builder">The health checks builder.</param>
    /// <param name="configure">Changes the thresholds; null for the defaults.</param>
    /// <param name="name">The check's name.</param>
    /// <param name="failureStatus">The status reported on monitor errors; null for <see cref="HealthStatus.Unhealthy"/>.</param>
    /// <param name="tags">Tags to filter checks by, such as <c>"ready"</c>.</param>
    /// <returns>The builder, for chaining.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="builder"/> or <paramref name="name"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A threshold set by <paramref name="configure"/> is out of its range.</exception>
    /// <remarks>The check reports what changed since its previous run (see <see cref="DirectBufferPoolHealthCheckOptions"/>), so poll it from one place.</remarks>
    public static IHealthChecksBuilder AddDirectBufferPools(
        this IHealthChecksBuilder builder,
        Action<DirectBufferPoolHealthCheckOptions>? configure = null,
        string name = DefaultName,
        HealthStatus? failureStatus = null,
        IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(name);
        var options = new DirectBufferPoolHealthCheckOptions();
        configure?.Invoke(options);

        // One instance for the registration: it remembers the counters of the previous check.
        var check = new DirectBufferPoolHealthCheck(options);
        return builder.Add(new HealthCheckRegistration(name, _ => check, failureStatus ?? HealthStatus.Unhealthy, tags));
    }
}
