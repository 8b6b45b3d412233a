using OffHeapTracker.Monitoring;

namespace OffHeapTracker.Tests.Monitoring.Stacks;

public sealed class FastStackValidatorTests
{
    [Fact]
    public void OnLinuxX64_TheStartupValidationPasses_AndComparesEveryChain()
    {
        string? reason = FastStackSupport.Check(switchedOn: true, tamper: null);

        if (!FastStackPlatform.IsSupported)
        {
            Assert.NotNull(reason);
            return;
        }

        Assert.Null(reason);
        Assert.Null(FastStackSupport.UnavailableReason);
        Assert.True(FastStackValidator.LastProbeCount >= FastStackValidator.Root.ChainCount, $"{FastStackValidator.LastProbeCount} probes");
    }

    public static TheoryData<string> Tampers => ["drop frame 2", "drop frame 1", "swap frames 1 and 2", "shift every address"];

    [Theory]
    [MemberData(nameof(Tampers))]
    public void AWalkThatDiffersFromStackTrace_TurnsFastCaptureOff_WithTheReason(string tamper)
    {
        if (!FastStackPlatform.IsSupported)
        {
            return;
        }

        string? reason = FastStackSupport.Check(switchedOn: true, Tampered(tamper));

        Assert.NotNull(reason);
        Assert.Matches("disagree|found", reason);
        var capture = new StackCapture(16, 1, false, false, 100, onRefused: null, cpuBudget: 0, fastStacksOffReason: reason);
        Assert.False(capture.IsFastCaptureActive);
        Assert.Equal(reason, capture.FastCaptureOffReason);
        Assert.Null(capture.FastTable);
    }

    [Fact]
    public void SwitchedOff_NamesTheSwitch_WithoutMappingOrValidating()
    {
        string? reason = FastStackSupport.Check(switchedOn: false, tamper: _ => throw new InvalidOperationException("validation must not run"));

        Assert.NotNull(reason);
        Assert.Contains("OFFHEAPTRACKER_MONITOR_FAST_STACKS=0", reason, StringComparison.Ordinal);
        Assert.Contains("OffHeapTracker.Monitor.FastStacks", reason, StringComparison.Ordinal);
    }

    private static FastStackValidator.Tamper Tampered(string how) => how switch
    {
        "drop frame 2" => walk => [.. walk[..4], .. walk[6..]],
        "drop frame 1" => walk => [.. walk[..2], .. walk[4..]],
        "swap frames 1 and 2" => walk => [.. walk[..2], walk[4], walk[5], walk[2], walk[3], .. walk[6..]],
        _ => walk => [.. walk.Select((value, i) => i % 2 == 0 ? value + 16 + i : value)],
    };
}
