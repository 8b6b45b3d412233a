using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Monitoring.History;

/// <summary>A <see cref="ManualTimeProvider"/> seen through a wrapper that counts live timers and ticks, and can make the clock throw.</summary>
internal sealed class CountingTimeProvider(ManualTimeProvider inner) : TimeProvider
{
    private int _liveTimers;
    private int _ticks;

    public int LiveTimers => Volatile.Read(ref _liveTimers);

    public int Ticks => Volatile.Read(ref _ticks);

    /// <summary>Gets or sets a value indicating whether reading the timestamp throws, as a broken clock or a bug in a sample would.</summary>
    public bool ThrowOnTimestamp { get; set; }

    public override long TimestampFrequency => inner.TimestampFrequency;

    public override long GetTimestamp() => ThrowOnTimestamp ? throw new InvalidOperationException("clock broken on purpose") : inner.GetTimestamp();

    public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

    public void Advance(TimeSpan by) => inner.Advance(by);

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        Interlocked.Increment(ref _liveTimers);
        return new CountedTimer(this, inner.CreateTimer(
            static s =>
            {
                (CountingTimeProvider clock, TimerCallback callback, object? state) = ((CountingTimeProvider, TimerCallback, object?))s!;
                Interlocked.Increment(ref clock._ticks);
                callback(state);
            },
            (this, callback, state),
            dueTime,
            period));
    }

    private sealed class CountedTimer(CountingTimeProvider clock, ITimer inner) : ITimer
    {
        private int _disposed;

        public bool Change(TimeSpan dueTime, TimeSpan period) => inner.Change(dueTime, period);

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                Interlocked.Decrement(ref clock._liveTimers);
            }

            inner.Dispose();
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
