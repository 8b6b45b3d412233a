using OffHeapTracker.Monitoring;

namespace OffHeapTracker.Tests.Tracking;

public sealed class StackSamplerTests
{
    [Fact]
    public void OneInFour_CapturesTheFirstThenEveryFourth()
    {
        var sampler = new StackSampler();
        var capture = new StackCapture(sampling: 4);

        bool[] taken = [.. Enumerable.Range(0, 9).Select(_ => sampler.ShouldCapture(capture))];

        Assert.Equal([true, false, false, false, true, false, false, false, true], taken);
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
            second.Add(sampler.ShouldCapture(everySecond));
            third.Add(sampler.ShouldCapture(everyThird));
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
            Assert.True(sampler.ShouldCapture(policy));
        }

        // The first policy's entry went to the last one; coming back, it counts from the start.
        Assert.True(sampler.ShouldCapture(policies[0]));
        Assert.False(sampler.ShouldCapture(policies[0]));
    }

    [Fact]
    public void EveryBuffer_AlwaysCaptures()
    {
        var sampler = new StackSampler();
        var capture = new StackCapture(sampling: 1);

        Assert.All(Enumerable.Range(0, 5), _ => Assert.True(sampler.ShouldCapture(capture)));
    }
}
