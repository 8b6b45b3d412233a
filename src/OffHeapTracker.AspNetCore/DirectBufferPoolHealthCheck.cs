using System.Globalization;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.AspNetCore;

/// <summary>Judges the pools by what changed since the last check: leaks, double disposes, fallbacks, monitor errors, old buffers, and how full they are.</summary>
/// <remarks>
/// One instance per registration keeps the counters it saw last, so each check reports what happened since the one
/// before (the first, since the pools were created). Unhealthy when a monitor threw (the records are then
/// incomplete); Degraded when leaks, double disposes or fallbacks exceed their thresholds, when a monitor holds
/// <see cref="BufferType.Normal"/> buffers older than <see cref="DirectBufferPoolHealthCheckOptions.OldBufferAge"/>,
/// or when a pool's pooled buffers use more than <see cref="DirectBufferPoolHealthCheckOptions.InUseDegradedShare"/>
/// of its capacity. The data dictionary names each reason. Thread-safe; the work is O(pools + monitors).
/// </remarks>
internal sealed class DirectBufferPoolHealthCheck(DirectBufferPoolHealthCheckOptions options) : IHealthCheck
{
    private readonly Lock _lock = new();
    private readonly Dictionary<int, Counts> _last = [];

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var data = new Dictionary<string, object>(StringComparer.Ordinal);
        var degraded = new List<string>();
        var unhealthy = new List<string>();
        long leaks = 0, doubleDisposes = 0, fallbacks = 0, monitorErrors = 0;
        var monitors = new List<ResidentBufferMonitor>();
        int checkedPools = 0;
        lock (_lock)
        {
            var seen = new HashSet<int>();
            foreach (DirectBufferPool pool in DirectBufferPool.GetLivePools())
            {
                if (options.Pools is { } filter && !filter(pool))
                {
                    continue;
                }

                checkedPools++;
                DirectBufferPoolStatistics stats = pool.GetStatistics();
                var now = new Counts(stats.LeakedCount, stats.DoubleDisposeCount, stats.FallbackCount, stats.MonitorErrorCount);
                Counts before = _last.GetValueOrDefault(pool.Id);
                _last[pool.Id] = now;
                seen.Add(pool.Id);
                leaks += now.Leaks - before.Leaks;
                doubleDisposes += now.DoubleDisposes - before.DoubleDisposes;
                fallbacks += now.Fallbacks - before.Fallbacks;
                monitorErrors += now.MonitorErrors - before.MonitorErrors;

                long pooledInUse = stats.InUseBytes - stats.FallbackInUseBytes;
                if (stats.CapacityBytes > 0 && pooledInUse > stats.CapacityBytes * options.InUseDegradedShare)
                {
                    string key = $"in_use_share.{pool.Name}#{pool.Id.ToString(CultureInfo.InvariantCulture)}";
                    data[key] = Math.Round((double)pooledInUse / stats.CapacityBytes, 3);
                    degraded.Add($"pool '{pool.Name}' (#{pool.Id}) has {pooledInUse:N0} of {stats.CapacityBytes:N0} bytes in use, above {options.InUseDegradedShare:P0}");
                }

                if (pool.Monitor is ResidentBufferMonitor monitor && !monitors.Contains(monitor))
                {
                    monitors.Add(monitor);
                }
            }

            // Pools gone since the last check are forgotten, so the table stays as small as the live pools.
            foreach (int gone in _last.Keys.Where(id => !seen.Contains(id)).ToList())
            {
                _last.Remove(gone);
            }
        }

        data["pools"] = checkedPools;
        Judge(data, degraded, "leaks", leaks, options.MaxNewLeaks, "lease(s) garbage-collected without Dispose");
        Judge(data, degraded, "double_disposes", doubleDisposes, options.MaxNewDoubleDisposes, "lease(s) disposed twice");
        Judge(data, degraded, "fallbacks", fallbacks, options.MaxNewFallbacks, "rent(s) served unpooled");
        data["monitor_errors"] = monitorErrors;
        if (monitorErrors > 0)
        {
            unhealthy.Add($"{monitorErrors} monitor error(s) since the last check: its records are incomplete");
        }

        var old = new List<long>();
        foreach (ResidentBufferMonitor monitor in monitors)
        {
            if (monitor.IsEnabled)
            {
                foreach (ResidentBuffer buffer in monitor.GetOldestResident(5, options.OldBufferAge, BufferType.Normal))
                {
                    old.Add(buffer.Id);
                }
            }
        }

        if (old.Count > 0)
        {
            data["old_normal_buffers"] = string.Join(",", old.Select(static id => id.ToString(CultureInfo.InvariantCulture)));
            degraded.Add($"NORMAL buffer(s) out for more than {options.OldBufferAge} (ids {data["old_normal_buffers"]}; see the monitor's /resident)");
        }

        HealthCheckResult result = unhealthy.Count > 0
            ? new HealthCheckResult(context.Registration.FailureStatus, string.Join("; ", unhealthy.Concat(degraded)), data: data)
            : degraded.Count > 0
                ? HealthCheckResult.Degraded(string.Join("; ", degraded), data: data)
                : HealthCheckResult.Healthy($"{checkedPools} pool(s): nothing leaked, disposed twice or served unpooled since the last check", data);
        return Task.FromResult(result);
    }

    private static void Judge(Dictionary<string, object> data, List<string> degraded, string key, long count, long max, string what)
    {
        data[key] = count;
        if (count > max)
        {
            degraded.Add($"{count} {what} since the last check (tolerated: {max})");
        }
    }

    private readonly record struct Counts(long Leaks, long DoubleDisposes, long Fallbacks, long MonitorErrors);
}
