using System.Globalization;
using OffHeapTracker.Diagnostics;

namespace OffHeapTracker.Monitoring;

/// <summary>The monitor's site history: its largest sites sampled on a timer while it is on, read back as each site's growth.</summary>
public sealed partial class ResidentBufferMonitor
{
    private readonly TimeSpan _siteHistoryInterval;
    private readonly TimeSpan _siteHistoryLength;
    private readonly int _siteHistoryTopSites;
    private readonly int _siteHistoryCapacity;

    // Guarded by _switchLock for writes, like _table: set by Enable, cleared by Disable. A session's history knows
    // its table, so a reader that pairs a table with a history of another session notices and reads no growth.
    private SiteHistory? _siteHistory;
    private long _siteHistoryFailures;

    /// <summary>Gets how many site-history samples failed (and were skipped) since the monitor was created.</summary>
    internal long SiteHistoryFailures => Interlocked.Read(ref _siteHistoryFailures);

    /// <summary>Gets the current session's site history, for tests; null while the monitor is off or keeps no history.</summary>
    internal SiteHistory? CurrentSiteHistory => Volatile.Read(ref _siteHistory);

    /// <summary>Samples the largest sites into the history now, as the timer does every <see cref="ResidentBufferMonitorOptions.SiteHistoryInterval"/>.</summary>
    /// <returns>True if a sample was added; false while the monitor is off, when it keeps no history (<see cref="ResidentBufferMonitorOptions.SiteHistoryTopSites"/> is 0), or if the sample failed (it is then logged, and never thrown).</returns>
    /// <remarks>
    /// Walks the records once, as <see cref="GetLeakSites"/> does. Use it to put a point in the history at a moment
    /// that matters (before and after a load test, or at once when an operator opens a report), or to drive the
    /// history from your own schedule in a test. A sample taken meanwhile by the timer is waited for. Samples are
    /// kept in a ring: taking many in a row pushes the oldest out sooner.
    /// </remarks>
    public bool SampleSites() => Volatile.Read(ref _siteHistory) is { } history && TrySample(history, wait: true);

    /// <summary>Called by the history's timer; a tick of a timer that is no longer the current session's is ignored.</summary>
    internal void OnSiteHistoryTick(SiteHistoryTimer timer)
    {
        if (Volatile.Read(ref _siteHistory) is { } history && ReferenceEquals(history.Timer, timer))
        {
            // A tick that finds a sample still running skips: a slow walk of a huge table must not pile up threads.
            TrySample(history, wait: false);
        }
    }

    private static (TimeSpan Interval, TimeSpan Length, int TopSites, int Capacity) CheckSiteHistory(ResidentBufferMonitorOptions options)
    {
        TimeSpan interval = options.SiteHistoryInterval;
        TimeSpan length = options.SiteHistoryLength;
        long intervals = length.Ticks / interval.Ticks;
        if (options.SiteHistoryTopSites > 0 && (intervals < LeakSiteGrowth.MinPoints - 1 || intervals >= ResidentBufferMonitorOptions.MaxSiteHistorySamples))
        {
            throw new ArgumentOutOfRangeException(
                nameof(options),
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"SiteHistoryLength ({length}) must span between {LeakSiteGrowth.MinPoints - 1} and {ResidentBufferMonitorOptions.MaxSiteHistorySamples - 1} SiteHistoryIntervals ({interval}), so the history holds between {LeakSiteGrowth.MinPoints} and {ResidentBufferMonitorOptions.MaxSiteHistorySamples} samples; or set SiteHistoryTopSites to 0 to keep no history."));
        }

        return (interval, length, options.SiteHistoryTopSites, (int)intervals + 1);
    }

    /// <summary>Starts a fresh history, and its timer, for the session that <paramref name="table"/> begins. Called under <see cref="_switchLock"/>.</summary>
    private void StartSiteHistoryUnsynchronized(ResidentTable table)
    {
        if (_siteHistoryTopSites == 0)
        {
            return;
        }

        var history = new SiteHistory(table, _siteHistoryCapacity, _siteHistoryTopSites, _siteHistoryLength);
        history.Timer = SiteHistoryTimer.Start(this, _time, _siteHistoryInterval);
        Volatile.Write(ref _siteHistory, history);
    }

    /// <summary>Stops the timer and drops the history: growth seen before a switch-off is not growth after it. Called under <see cref="_switchLock"/>.</summary>
    private void StopSiteHistoryUnsynchronized() => Interlocked.Exchange(ref _siteHistory, null)?.Timer?.Stop();

    /// <summary>Each site's growth from the history of the session <paramref name="table"/> belongs to; null when there is none.</summary>
    private Dictionary<string, LeakSiteGrowth>? SiteGrowths(ResidentTable table) =>
        Volatile.Read(ref _siteHistory) is { } history && ReferenceEquals(history.Table, table) ? history.Growths(_time) : null;

    private bool TrySample(SiteHistory history, bool wait)
    {
        if (!history.SamplingLock.TryEnter(wait ? Timeout.Infinite : 0))
        {
            return false;
        }

        try
        {
            // The clock is read inside the sampling lock, so samples enter the ring in time order.
            long now = _time.GetTimestamp();
            history.Add(now, _query.TopSites(history.Table, history.TopSites));
            return true;
        }
        catch (Exception ex)
        {
            // Never into the timer: an exception there would end the process. A gap in the history is the lesser harm.
            long failures = Interlocked.Increment(ref _siteHistoryFailures);
            if (history.FirstFailure())
            {
                try
                {
                    Log.SiteHistoryFailed(_logger, ex, failures);
                }
                catch
                {
                    // A failing logger must not reach the timer either.
                }
            }

            return false;
        }
        finally
        {
            history.SamplingLock.Exit();
        }
    }
}
