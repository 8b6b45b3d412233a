using OffHeapTracker.Monitoring;

namespace OffHeapTracker.Tests.Monitoring.History;

/// <summary>The growth rule on series kept outside the monitor (the dashboard's hour of samples).</summary>
public sealed class LeakSiteGrowthTests
{
    [Fact]
    public void ASeriesThatOnlyRises_IsJudgedGrowing_WithItsSpanAndRate()
    {
        LeakSiteGrowth growth = LeakSiteGrowth.Of(
        [
            (TimeSpan.FromSeconds(100), 1000, 1),
            (TimeSpan.FromSeconds(130), 1000, 1), // flat for a while is not a fall
            (TimeSpan.FromSeconds(160), 1500, 2),
            (TimeSpan.FromSeconds(220), 3000, 3),
        ]);

        Assert.True(growth.HasVerdict);
        Assert.True(growth.OnlyGrows);
        Assert.Equal(4, growth.Points);
        Assert.Equal(1000, growth.FirstBytes);
        Assert.Equal(3000, growth.LastBytes);
        Assert.Equal(1, growth.FirstCount);
        Assert.Equal(3, growth.LastCount);
        Assert.Equal(TimeSpan.FromMinutes(2), growth.Span);
        Assert.Equal(1000, growth.BytesPerMinute, precision: 6);
    }

    [Theory]
    [InlineData(new long[] { 1000, 2000, 1800, 3000 })] // fell by 10 % below its highest value on the way
    [InlineData(new long[] { 1000, 1020, 1050 })] // rose, but less than 10 % in all
    [InlineData(new long[] { 1000, 1000, 1000, 5000 })] // rose only once
    public void ASeriesThatFellOrBarelyRose_IsNotGrowing(long[] bytes)
    {
        LeakSiteGrowth growth = LeakSiteGrowth.Of(bytes.Select((b, i) => (TimeSpan.FromSeconds(10 * i), b, 1L)));

        Assert.True(growth.HasVerdict);
        Assert.False(growth.OnlyGrows);
    }

    [Fact]
    public void TwoPoints_GiveNoVerdict_AndNoneIsEmpty()
    {
        LeakSiteGrowth two = LeakSiteGrowth.Of([(TimeSpan.Zero, 1000, 1), (TimeSpan.FromSeconds(10), 9000, 9)]);
        LeakSiteGrowth none = LeakSiteGrowth.Of([]);

        Assert.False(two.HasVerdict);
        Assert.False(two.OnlyGrows);
        Assert.Equal(8000, two.GrowthBytes);
        Assert.Equal(0, none.Points);
        Assert.Equal(TimeSpan.Zero, none.Span);
    }

    [Fact]
    public void PointsOutOfOrder_AreRejected_NamingTheParameter()
    {
        ArgumentException error = Assert.Throws<ArgumentException>(
            () => LeakSiteGrowth.Of([(TimeSpan.FromSeconds(20), 1000, 1), (TimeSpan.FromSeconds(10), 2000, 2)]));

        Assert.Equal("points", error.ParamName);
        Assert.Throws<ArgumentNullException>(() => LeakSiteGrowth.Of(null!));
    }
}
