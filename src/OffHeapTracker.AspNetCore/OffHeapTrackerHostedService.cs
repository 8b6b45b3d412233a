using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.AspNetCore;

/// <summary>Applies the configuration when the host starts, and when it stops waits (bounded) for the pools' buffers and logs what is still out.</summary>
/// <remarks>
/// <see cref="StartingAsync"/> runs before every hosted service's <c>StartAsync</c>, Kestrel's among them, so the
/// options are checked, the shared monitor is set up and its automatic switch started before Kestrel creates its
/// first pool. The switch stops in <see cref="StoppingAsync"/>, so it cannot switch the monitor on during shutdown.
/// Stopping waits in <see cref="StoppedAsync"/>, after Kestrel has closed its connections.
/// </remarks>
internal sealed partial class OffHeapTrackerHostedService(
    DirectBufferPoolFactory factory,
    IOptionsMonitor<DirectBufferPoolOptions> poolOptions,
    IOptions<OffHeapTrackerHostOptions> hostOptions,
    OffHeapTrackerSection configuration,
    ILoggerFactory loggerFactory) : IHostedLifecycleService
{
    private readonly ILogger _logger = loggerFactory.CreateLogger<OffHeapTrackerHostedService>();
    private bool _checked;
    private MonitorAutoSwitch? _autoSwitch;

    /// <summary>Gets the automatic switch started with the host, or null when none is configured or the host has stopped.</summary>
    internal MonitorAutoSwitch? AutoSwitch => Volatile.Read(ref _autoSwitch);

    public Task StartingAsync(CancellationToken cancellationToken)
    {
        // Every owner the configuration names, and the defaults, are checked now: a bad value fails the start
        // with an OptionsValidationException naming the key, rather than the first request Kestrel serves.
        List<string> failures = [];
        Check(() => _ = hostOptions.Value, failures);
        Check(() => poolOptions.Get(Options.DefaultName), failures);
        Check(() => poolOptions.Get("kestrel"), failures);
        if (configuration.Section is { } section)
        {
            foreach (string owner in OffHeapTrackerConfiguration.PoolNames(section))
            {
                Check(() => poolOptions.Get(owner), failures);
            }
        }

        if (failures.Count > 0)
        {
            throw new OptionsValidationException(
                OffHeapTrackerConfiguration.SectionName,
                typeof(DirectBufferPoolOptions),
                [.. failures.Distinct()]);
        }

        _checked = true;
        _ = factory.Monitor;
        if (factory.MonitorKeysNotApplied.Count > 0)
        {
            LogMonitorKeysNotApplied(_logger, string.Join(", ", factory.MonitorKeysNotApplied));
        }

        if (hostOptions.Value.AutoSwitch is { HasRules: true } rules)
        {
            Volatile.Write(ref _autoSwitch, StartAutoSwitch(rules));
        }

        return Task.CompletedTask;
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken)
    {
        Interlocked.Exchange(ref _autoSwitch, null)?.Dispose();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StoppedAsync(CancellationToken cancellationToken)
    {
        if (!_checked)
        {
            // The start failed on the options: there is nothing to wait for, and the options cannot be read.
            return;
        }

        TimeSpan timeout = hostOptions.Value.ShutdownTimeout;
        IReadOnlyList<DirectBufferPool> pools = factory.Pools;
        var waits = new Task[pools.Count];
        for (int i = 0; i < pools.Count; i++)
        {
            waits[i] = pools[i].WhenAllReturnedAsync(timeout, cancellationToken);
        }

        try
        {
            await Task.WhenAll(waits).ConfigureAwait(false);
        }
        catch (Exception) when (waits.All(static w => w.IsCompleted))
        {
            // A cancelled wait means the host gave up waiting for its services; it disposes the pools next, and
            // each logs what it still has out.
            foreach (Task wait in waits)
            {
                if (wait.Exception?.InnerException is TimeoutException timedOut)
                {
                    LogStillOut(_logger, timeout.TotalSeconds, timedOut.Message);
                }
            }
        }

        // The host disposes its logger and meter factories next: the shared monitor outlives them.
        if (factory.IsMonitorResolved && ReferenceEquals(factory.Monitor, BufferMonitor.Shared))
        {
            BufferMonitor.ReportTo(Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance, null);
        }
    }

    /// <summary>Starts the configured switch on the monitor the pools report to.</summary>
    private MonitorAutoSwitch StartAutoSwitch(MonitorAutoSwitchOptions rules)
    {
        if (factory.MonitorIsShared)
        {
            return BufferMonitor.StartAutoSwitch(rules, loggerFactory);
        }

        if (factory.Monitor is ResidentBufferMonitor own)
        {
            return new MonitorAutoSwitch(own, rules, loggerFactory);
        }

        string path = configuration.Section is IConfigurationSection section ? section.Path : OffHeapTrackerConfiguration.SectionName;
        throw new OptionsValidationException(
            OffHeapTrackerConfiguration.SectionName,
            typeof(OffHeapTrackerHostOptions),
            [$"{path}:Monitor:AutoSwitch: the pools report to a {factory.Monitor.GetType().Name}, which an automatic switch cannot switch on; it needs a ResidentBufferMonitor (or the shared one)."]);
    }

    private static void Check(Action get, List<string> failures)
    {
        try
        {
            get();
        }
        catch (OptionsValidationException e)
        {
            failures.AddRange(e.Failures);
        }
    }

    [LoggerMessage(EventId = 20, Level = LogLevel.Warning, EventName = "MonitorKeysNotApplied",
        Message = "OffHeapTracker:Monitor keys {Keys} were not applied: the shared monitor was created before the host started, and fixes these settings at creation. Configure it before anything uses BufferMonitor, or set the OFFHEAPTRACKER_MONITOR_* environment variables.")]
    private static partial void LogMonitorKeysNotApplied(ILogger logger, string keys);

    [LoggerMessage(EventId = 21, Level = LogLevel.Warning, EventName = "BuffersOutAtShutdown",
        Message = "Buffers still out {Seconds} s after the host stopped: {Listing}")]
    private static partial void LogStillOut(ILogger logger, double seconds, string listing);
}
