using OffHeapTracker.Diagnostics;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Diagnostics;

/// <summary>One warning per interval, with the count of what was held back; time comes from a manual clock.</summary>
public sealed class WarningRateLimiterTests
{
    private static readonly TimeSpan s_interval = TimeSpan.FromSeconds(10);

    private readonly ManualTimeProvider _time = new();

    [Fact]
    public void FirstOccurrence_IsLogged_CountingItself()
    {
        var limiter = new WarningRateLimiter(_time, s_interval);
        Assert.True(limiter.ShouldLog(out long occurrences));
        Assert.Equal(1, occurrences);
    }

    [Fact]
    public void OccurrencesWithinTheInterval_AreHeldBack_AndCountedInTheNextWarning()
    {
        var limiter = new WarningRateLimiter(_time, s_interval);
        Assert.True(limiter.ShouldLog(out _));

        for (int i = 0; i < 5; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            Assert.False(limiter.ShouldLog(out long heldBack));
            Assert.Equal(0, heldBack);
        }

        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.True(limiter.ShouldLog(out long occurrences));
        Assert.Equal(6, occurrences); // the five held back, and this one

        // The count starts again from the warning just logged.
        _time.Advance(s_interval);
        Assert.True(limiter.ShouldLog(out occurrences));
        Assert.Equal(1, occurrences);
    }

    public static TheoryData<TimeSpan, bool> SinceTheLastWarning => new()
    {
        { TimeSpan.Zero, false },
        { TimeSpan.FromSeconds(10) - TimeSpan.FromTicks(1), false },
        { TimeSpan.FromSeconds(10), true },
        { TimeSpan.FromHours(1), true },
    };

    [Theory]
    [MemberData(nameof(SinceTheLastWarning))]
    public void NextWarning_ComesOnceAWholeIntervalHasPassed(TimeSpan since, bool logged)
    {
        var limiter = new WarningRateLimiter(_time, s_interval);
        Assert.True(limiter.ShouldLog(out _));
        _time.Advance(since);
        Assert.Equal(logged, limiter.ShouldLog(out long occurrences));
        Assert.Equal(logged ? 1 : 0, occurrences);
    }

    [Fact]
    public void Interval_RunsFromTheLastWarning_NotFromTheLastOccurrence()
    {
        // Were it measured from the last occurrence, a steady stream of events would hold every warning back.
        var limiter = new WarningRateLimiter(_time, s_interval);
        Assert.True(limiter.ShouldLog(out _));
        int logged = 0;
        for (int second = 1; second <= 30; second++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            logged += limiter.ShouldLog(out _) ? 1 : 0;
        }

        Assert.Equal(3, logged); // at 10, 20 and 30 s
    }

    [Fact]
    public void ZeroInterval_LogsEveryOccurrence()
    {
        var limiter = new WarningRateLimiter(_time, TimeSpan.Zero);
        for (int i = 0; i < 3; i++)
        {
            Assert.True(limiter.ShouldLog(out long occurrences));
            Assert.Equal(1, occurrences);
        }
    }

    [Fact]
    public void Limiters_DoNotShareTheirInterval()
    {
        var fallbacks = new WarningRateLimiter(_time, s_interval);
        var leaks = new WarningRateLimiter(_time, s_interval);
        Assert.True(fallbacks.ShouldLog(out _));
        Assert.True(leaks.ShouldLog(out _));
        Assert.False(fallbacks.ShouldLog(out _));
    }

    [Fact]
    public void ConcurrentOccurrences_LogOnce_AndLoseNoCount()
    {
        // The clock stands still, so all of these fall in one interval: exactly one caller may log, and every
        // occurrence must turn up in the count of that warning or of the next.
        const int Threads = 4;
        const int PerThread = 20_000;
        var limiter = new WarningRateLimiter(_time, s_interval);
        int warnings = 0;
        long counted = 0;
        Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, _ =>
        {
            for (int i = 0; i < PerThread; i++)
            {
                if (limiter.ShouldLog(out long occurrences))
                {
                    Interlocked.Increment(ref warnings);
                    Interlocked.Add(ref counted, occurrences);
                }
            }
        });

        Assert.Equal(1, warnings);
        _time.Advance(s_interval);
        Assert.True(limiter.ShouldLog(out long rest));
        Assert.Equal((Threads * PerThread) + 1, counted + rest);
    }
}
