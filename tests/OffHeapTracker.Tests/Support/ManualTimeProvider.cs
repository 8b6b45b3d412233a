namespace OffHeapTracker.Tests.Support;

/// <summary>A clock that moves only when told, so age filters, rate limits and timers (the pool's trim pass) are tested without sleeping.</summary>
/// <remarks>Timers fire on the thread that calls <see cref="Advance"/>, once per period that elapsed, in due order.</remarks>
internal sealed class ManualTimeProvider : TimeProvider
{
    private readonly List<ManualTimer> _timers = [];
    private long _timestamp = 1_000_000;
    private DateTimeOffset _utcNow = new(2026, 11, 21, 12, 0, 0, TimeSpan.Zero);

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => Volatile.Read(ref _timestamp);

    public override DateTimeOffset GetUtcNow() => _utcNow;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ManualTimer(this, callback, state);
        timer.Change(dueTime, period);
        lock (_timers)
        {
            _timers.Add(timer);
        }

        return timer;
    }

    public void Advance(TimeSpan by)
    {
        Interlocked.Add(ref _timestamp, by.Ticks);
        _utcNow += by;
        while (NextDue() is { } timer)
        {
            timer.Fire();
        }
    }

    private ManualTimer? NextDue()
    {
        long now = GetTimestamp();
        lock (_timers)
        {
            ManualTimer? next = null;
            foreach (ManualTimer timer in _timers)
            {
                if (timer.Due is { } due && due <= now && (next is null || due < next.Due))
                {
                    next = timer;
                }
            }

            return next;
        }
    }

    private sealed class ManualTimer(ManualTimeProvider clock, TimerCallback callback, object? state) : ITimer
    {
        private long _period;

        public long? Due { get; private set; }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            Due = dueTime == Timeout.InfiniteTimeSpan ? null : clock.GetTimestamp() + dueTime.Ticks;
            _period = period == Timeout.InfiniteTimeSpan ? 0 : period.Ticks;
            return true;
        }

        public void Fire()
        {
            Due = _period > 0 ? Due + _period : null;
            callback(state);
        }

        public void Dispose()
        {
            Due = null;
            lock (clock._timers)
            {
                clock._timers.Remove(this);
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
