using OffHeapTracker.AspNetCore.History;

namespace OffHeapTracker.AspNetCore.Tests.History;

public sealed class SiteGrowthTests
{
    private const ulong Key = 42;

    public static TheoryData<long[], bool> Series => new()
    {
        { [4096, 8192, 12288, 16384], true },             // a leak: only rises
        { [4096, 8192, 8192, 12288], true },              // rises with a pause between samples
        { [1_048_576, 1_048_576, 1_048_576], false },     // big and flat
        { [100_000, 120_000, 80_000, 130_000], false },   // churns: fell by more than 5 %
        { [100_000, 101_000, 102_000, 103_000], false },  // rose, but by less than 10 %
        { [4096, 8192], false },                          // too few samples to judge
    };

    [Theory]
    [MemberData(nameof(Series))]
    public void OnlyGrows_FlagsSeriesThatOnlyRise(long[] bytes, bool grows)
    {
        SiteGrowth growth = SiteGrowth.Of(Samples(bytes), 0, Key);
        Assert.Equal(grows, growth.OnlyGrows);
        Assert.Equal(bytes.Length, growth.Points);
        Assert.Equal(bytes[^1] - bytes[0], growth.GrowthBytes);
    }

    [Fact]
    public void Of_SkipsSamplesWithoutTheSite_AndMeasuresPerMinute()
    {
        HistorySample[] samples = Samples([4096, 8192, 12288]);
        samples = [samples[0], samples[1] with { Sites = [] }, samples[2]];
        SiteGrowth growth = SiteGrowth.Of(samples, 0, Key);
        Assert.Equal(2, growth.Points);
        Assert.False(growth.OnlyGrows);
        Assert.Equal(8192 / (10 / 60.0), growth.BytesPerMinute, 3);
    }

    [Fact]
    public void Recent_ReadsTheLaterHalf_SoAWorkloadThatFilledUpOnceReadsFlat()
    {
        SiteGrowth filled = SiteGrowth.Of(Samples([400_000, 1_048_576, 1_048_576, 1_048_576, 1_048_576]), 0, Key);
        Assert.False(filled.OnlyGrows);
        Assert.Equal(648_576, filled.GrowthBytes);
        Assert.Equal(0, filled.RecentBytes);

        SiteGrowth leak = SiteGrowth.Of(Samples([4096, 8192, 12288, 16384, 20480]), 0, Key);
        Assert.Equal(8192, leak.RecentBytes);
        Assert.Equal(10 / 60.0, leak.RecentMinutes, 6);
    }

    [Fact]
    public void SiteKey_IsStableAndTellsStacksApart()
    {
        Assert.Equal(SiteKey.Of("at A.B()\nat C.D()"), SiteKey.Of("at A.B()\nat C.D()"));
        Assert.NotEqual(SiteKey.Of("at A.B()\nat C.D()"), SiteKey.Of("at A.B()\nat C.E()"));
        Assert.Equal(16, SiteKey.Format(SiteKey.Of("x")).Length);
    }

    /// <summary>One sample every 5 s carrying the site with the given bytes.</summary>
    private static HistorySample[] Samples(long[] bytes) =>
        [.. bytes.Select((b, i) => new HistorySample(1_000_000 + i * 5_000L, true, 1, 0, [], [new SiteSample(Key, b, b / 4096)], null))];
}
