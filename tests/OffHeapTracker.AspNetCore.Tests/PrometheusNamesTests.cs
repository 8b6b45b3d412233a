using System.Text;

namespace OffHeapTracker.AspNetCore.Tests;

/// <summary>OpenTelemetry names to Prometheus names, and the text format's escaping.</summary>
public sealed class PrometheusNamesTests
{
    [Theory]
    [InlineData("offheaptracker.pool.in_use", "By", false, "offheaptracker_pool_in_use_bytes")]
    [InlineData("offheaptracker.pool.rented", "By", true, "offheaptracker_pool_rented_bytes_total")]
    [InlineData("offheaptracker.leak.detected", "{buffer}", true, "offheaptracker_leak_detected_total")]
    [InlineData("offheaptracker.monitor.resident", "{buffer}", false, "offheaptracker_monitor_resident")]
    [InlineData("aspnetcore.memory_pool.rented", "By", true, "aspnetcore_memory_pool_rented_bytes_total")]
    [InlineData("http.server.request.duration", "s", false, "http_server_request_duration_seconds")]
    [InlineData("queue.size_bytes", "By", false, "queue_size_bytes")]
    [InlineData("requests.total", null, true, "requests_total")]
    [InlineData("9lives-per/cat", "", false, "_9lives_per_cat")]
    public void Metric_FollowsOpenTelemetrysPrometheusRules(string name, string? unit, bool isCounter, string expected) =>
        Assert.Equal(expected, PrometheusNames.Metric(name, unit, isCounter));

    [Theory]
    [InlineData("offheaptracker.pool.id", "offheaptracker_pool_id")]
    [InlineData("a:b", "a_b")]
    [InlineData("__reserved", "key__reserved")]
    [InlineData("1st", "_1st")]
    public void Label_IsAValidLabelName(string key, string expected) => Assert.Equal(expected, PrometheusNames.Label(key));

    [Fact]
    public void LabelValues_EscapeBackslashQuoteAndNewline_HelpEscapesBackslashAndNewlineOnly()
    {
        var value = new StringBuilder();
        PrometheusNames.AppendEscapedLabelValue(value, "a\"b\\c\nd");
        Assert.Equal(@"a\""b\\c\nd", value.ToString());

        var help = new StringBuilder();
        PrometheusNames.AppendEscapedHelp(help, "a\"b\\c\nd");
        Assert.Equal(@"a""b\\c\nd", help.ToString());
    }

    [Fact]
    public void Values_AreInvariant_AndBooleansLowercase()
    {
        Assert.Equal("true", PrometheusNames.LabelValue(true));
        Assert.Equal("1.5", PrometheusNames.LabelValue(1.5));
        Assert.Equal("+Inf", PrometheusNames.Value(double.PositiveInfinity));
        Assert.Equal("NaN", PrometheusNames.Value(double.NaN));
        Assert.Equal("1048576", PrometheusNames.Value(1048576));
    }
}
