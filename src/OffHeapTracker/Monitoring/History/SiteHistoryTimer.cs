namespace OffHeapTracker.Monitoring;

/// <summary>The timer behind a monitor's site history, holding the monitor weakly: a timer queue roots its state, and must not root the monitor.</summary>
/// <remarks>
/// A monitor is not disposable: it lives as long as someone references it. So the timer's state reaches it only
/// through a weak reference, and a tick that finds it collected disposes the timer; until then the timer costs one
/// small object and one weak handle.
/// </remarks>
internal sealed class SiteHistoryTimer
{
    private readonly WeakReference<ResidentBufferMonitor> _monitor;
    private ITimer? _timer;

    private SiteHistoryTimer(ResidentBufferMonitor monitor) => _monitor = new WeakReference<ResidentBufferMonitor>(monitor);

    /// <summary>Starts ticking every <paramref name="interval"/>, the first tick one interval from now.</summary>
    public static SiteHistoryTimer Start(ResidentBufferMonitor monitor, TimeProvider time, TimeSpan interval)
    {
        var timer = new SiteHistoryTimer(monitor);
        timer._timer = time.CreateTimer(static state => ((SiteHistoryTimer)state!).Tick(), timer, interval, interval);
        return timer;
    }

    /// <summary>Stops the ticks; one already running may still finish, and the monitor ignores it (it is no longer its history's timer).</summary>
    public void Stop() => Volatile.Read(ref _timer)?.Dispose();

    private void Tick()
    {
        if (_monitor.TryGetTarget(out ResidentBufferMonitor? monitor))
        {
            monitor.OnSiteHistoryTick(this);
        }
        else
        {
            Stop();
        }
    }
}
