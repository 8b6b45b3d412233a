using OffHeapTracker.Monitoring;

namespace OffHeapTracker.Tests.Tracking;

public sealed class StackSamplerTests
{
    [Fact]
    public void OneInFour_CapturesTheFirstThenEveryFourth()
    {
        var sampler = new StackSampler();
        var capture = new StackCapture(sampling: 4);

        bool[] taken = [.. Enumerable.Range(0, 9).Select(_ => sampler.ShouldCapture(capture, out _))];

        Assert.Equal([true, false, false, false, true, false, false, false, true], taken);
    }

    [Fact]
    public void FixedPolicy_TheFirstCaptureStandsForItself_LaterOnesForN()
    {
        var sampler = new StackSampler();
        var capture = new StackCapture(sampling: 4);
        var weights = new List<int>();
        for (int i = 0; i < 9; i++)
        {
            if (sampler.ShouldCapture(capture, out int weight))
            {
                weights.Add(weight);
            }
        }

        Assert.Equal([1, 4, 4], weights);
    }

    [Fact]
    public void TwoPolicies_OnOneThread_KeepTheirOwnCounts()
    {
        var sampler = new StackSampler();
        var everySecond = new StackCapture(sampling: 2);
        var everyThird = new StackCapture(sampling: 3);

        var second = new List<bool>();
        var third = new List<bool>();
        for (int i = 0; i < 6; i++)
        {
            second.Add(sampler.ShouldCapture(everySecond, out _));
            third.Add(sampler.ShouldCapture(everyThird, out _));
        }

        Assert.Equal([true, false, true, false, true, false], second);
        Assert.Equal([true, false, false, true, false, false], third);
    }

    [Fact]
    public void MorePoliciesThanEntries_TheOldestIsForgottenAndStartsAgainWithACapture()
    {
        var sampler = new StackSampler();
        StackCapture[] policies = [.. Enumerable.Range(0, StackSampler.Entries + 1).Select(_ => new StackCapture(sampling: 100))];

        foreach (StackCapture policy in policies)
        {
            Assert.True(sampler.ShouldCapture(policy, out _));
        }

        // The first policy's entry went to the last one; coming back, it counts from the start.
        Assert.True(sampler.ShouldCapture(policies[0], out _));
        Assert.False(sampler.ShouldCapture(policies[0], out _));
    }

    [Fact]
    public void EveryBuffer_AlwaysCaptures()
    {
        var sampler = new StackSampler();
        var capture = new StackCapture(sampling: 1);

        Assert.All(Enumerable.Range(0, 5), _ => Assert.True(sampler.ShouldCapture(capture, out _)));
    }

    [Fact]
    public void Budgeted_WithinBudget_CapturesEveryRentWithWeightOne()
    {
        var sampler = new StackSampler();
        var capture = StackCapture.Budgeted();

        for (int i = 0; i < 10; i++)
        {
            Assert.True(sampler.ShouldCapture(capture, out int weight));
            Assert.Equal(1, weight);
        }
    }

    [Fact]
    public void Budgeted_Overspent_RaisesTheInterval_AndTheWeightsStillAddUpToTheRents()
    {
        // 0.01 % of a core: capturing without pause spends thousands of times that share, so each 100 ms window
        // multiplies the interval by eight (the most one window may).
        StackCapture capture = Overspent(StackCapture.Budgeted(cpuBudget: 0.0001));

        int interval = capture.CurrentInterval;
        Assert.True(interval >= 64, $"interval {interval} after overspending");

        var sampler = new StackSampler();
        const int Rents = 64 * 400;
        long weights = 0;
        int captured = 0;
        for (int i = 0; i < Rents; i++)
        {
            if (sampler.ShouldCapture(capture, out int weight))
            {
                captured++;
                weights += weight;
            }
        }

        // Each capture stands for the interval it was drawn under: the weights estimate the rents. About 400 draws of
        // a countdown uniform in [1, 2N - 1]: the sum is within a few percent; 25 % is a wide margin.
        Assert.InRange(captured, Rents / interval / 2, Rents / interval * 2);
        Assert.InRange(weights, Rents * 3 / 4, Rents * 5 / 4);
    }

    [Fact]
    public void Budgeted_Interval_HalvesForEveryQuietSecond()
    {
        StackCapture capture = Overspent(StackCapture.Budgeted(cpuBudget: 0.0001));

        int raised = capture.CurrentInterval;
        Assert.True(raised >= 64);

        Assert.Equal(Math.Max(1, raised >> 3), capture.IntervalAt(Environment.TickCount64 + 3_500));
        Assert.Equal(1, capture.IntervalAt(Environment.TickCount64 + 60_000));
    }

    [Fact]
    public void Budgeted_ACountdownOlderThanASecond_IsRedrawnFromTheFallenInterval()
    {
        StackCapture capture = Overspent(StackCapture.Budgeted(cpuBudget: 0.0001), atLeast: 512);
        int raised = capture.CurrentInterval;
        var sampler = new StackSampler();

        // The first rent draws a countdown under the raised interval (a capture on that rent stands for one rent).
        sampler.ShouldCapture(capture, out _);

        // No window closes meanwhile (nothing is captured), so the interval halves for each quiet second.
        Thread.Sleep(2_100);
        int fallen = capture.CurrentInterval;
        Assert.True(fallen <= raised / 4, $"interval {fallen} after two quiet seconds, {raised} before");

        // The countdown's age is checked within StackSampler.StaleCheckRents rents: it is drawn again from the fallen
        // interval, so the next capture stands for that interval, not the raised one. (A capture within those rents
        // stands for the raised interval, rightly: its countdown was drawn under it. At 512 and more, that is rare.)
        for (int i = 0; i < StackSampler.StaleCheckRents; i++)
        {
            sampler.ShouldCapture(capture, out _);
        }

        int weight = 0;
        for (int i = 0; i < 100 * raised && weight == 0; i++)
        {
            sampler.ShouldCapture(capture, out weight);
        }

        Assert.InRange(weight, 1, fallen);
    }

    /// <summary>Captures until the interval has risen to <paramref name="atLeast"/> or more (two or three windows; a few hundred milliseconds), or fails after 10 s.</summary>
    private static StackCapture Overspent(StackCapture capture, int atLeast = 64)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (capture.CurrentInterval < atLeast)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"interval {capture.CurrentInterval} after 10 s of overspending");
            capture.Capture();
        }

        return capture;
    }
}
