using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using OffHeapTracker.AspNetCore.Tests.Support;

namespace OffHeapTracker.AspNetCore.Tests;

[Collection(KestrelHosts.Name)]
public sealed class BufferMonitorEndpointOptionsTests
{
    [Fact]
    public void Defaults_AnswerLoopbackOnly_LeaveAddressesOut_AndRunTwoReportsAtOnce()
    {
        var options = new BufferMonitorEndpointOptions();
        Assert.Empty(options.AllowedHosts);
        Assert.False(options.IncludeAddresses);
        Assert.Equal(2, BufferMonitorEndpointOptions.DefaultMaxConcurrentReports);
        Assert.Equal(BufferMonitorEndpointOptions.DefaultMaxConcurrentReports, options.MaxConcurrentReports);
        Assert.Equal(TimeSpan.FromSeconds(5), options.HistoryInterval);
        Assert.Equal(TimeSpan.FromHours(1), options.HistoryLength);
    }

    public static TheoryData<TimeSpan, TimeSpan, string> BadHistories => new()
    {
        { TimeSpan.FromMilliseconds(500), TimeSpan.FromHours(1), "HistoryInterval must be from 00:00:01 to 00:05:00" },
        { TimeSpan.FromMinutes(6), TimeSpan.FromHours(1), "HistoryInterval must be from 00:00:01 to 00:05:00" },
        { TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(4), "HistoryLength must be from HistoryInterval" },
        { TimeSpan.FromSeconds(1), TimeSpan.FromHours(3), "at most 10000 intervals" },
        { TimeSpan.FromMinutes(5), TimeSpan.FromDays(2), "HistoryLength must be from HistoryInterval" },
    };

    [Theory]
    [MemberData(nameof(BadHistories))]
    public async Task History_OutOfRange_IsRejected_WithTheRange(TimeSpan interval, TimeSpan length, string message)
    {
        await using WebApplication app = WebApplication.CreateSlimBuilder().Build();
        ArgumentOutOfRangeException error = Assert.Throws<ArgumentOutOfRangeException>(() => app.MapBufferMonitor(o =>
        {
            o.HistoryInterval = interval;
            o.HistoryLength = length;
        }));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task History_IsSampledFromHostStart_WithPoolIds_SwitchesAndGrowingSites()
    {
        await using TestApp app = await TestApp.StartAsync(map: a => a.MapBufferMonitor(o => o.HistoryInterval = TimeSpan.FromSeconds(1), "/h"));
        using (HttpResponseMessage enabled = await app.Client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/h/enable") { Headers = { { "X-OffHeapTracker-Action", "1" } } }))
        {
            enabled.EnsureSuccessStatusCode();
        }

        // /leak keeps one buffer per call from one site: a series that only rises.
        JsonElement site = default;
        await Eventually.WaitForAsync(
            () =>
            {
                app.Client.GetStringAsync("/leak").GetAwaiter().GetResult();
                using JsonDocument doc = JsonDocument.Parse(app.Client.GetStringAsync("/h/history").GetAwaiter().GetResult());
                JsonElement[] sites = [.. doc.RootElement.GetProperty("sites").EnumerateArray()];
                if (sites.Length == 0 || !sites[0].GetProperty("growing").GetBoolean())
                {
                    return false;
                }

                site = sites[0].Clone();
                return true;
            },
            growing => growing,
            "/leak's site to be flagged as growing");

        Assert.Contains("DiagnosticsApp", site.GetProperty("stacktrace").GetString(), StringComparison.Ordinal);
        Assert.True(site.GetProperty("growth_bytes").GetInt64() >= 2 * 4096);

        using JsonDocument history = JsonDocument.Parse(await app.Client.GetStringAsync("/h/history"));
        JsonElement root = history.RootElement;
        Assert.Equal(1, root.GetProperty("interval_seconds").GetDouble());
        Assert.Equal(3600, root.GetProperty("capacity").GetInt32());
        Assert.True(root.GetProperty("monitor").GetProperty("enabled_since_exact").GetBoolean());
        JsonElement switched = Assert.Single(root.GetProperty("switches").EnumerateArray());
        Assert.True(switched.GetProperty("enabled").GetBoolean());
        JsonElement[] samples = [.. root.GetProperty("samples").EnumerateArray()];
        Assert.True(samples.Length >= 3);
        Assert.True(samples[0].GetProperty("t").GetInt64() < switched.GetProperty("at").GetInt64(), "sampling starts with the host, before the switch");
        Assert.Contains(samples[^1].GetProperty("pools").EnumerateArray(), p => p.GetProperty("name").GetString() == "app" && p.GetProperty("in_use").GetInt64() >= 3 * 4096);
        Assert.Contains(site.GetProperty("key").GetString()!, samples[^1].GetProperty("sites").EnumerateObject().Select(p => p.Name));

        // since= returns only later samples; the sites come with every answer.
        long last = samples[^1].GetProperty("t").GetInt64();
        using JsonDocument later = JsonDocument.Parse(await app.Client.GetStringAsync($"/h/history?since={last}"));
        Assert.All(later.RootElement.GetProperty("samples").EnumerateArray(), s => Assert.True(s.GetProperty("t").GetInt64() > last));
        Assert.NotEmpty(later.RootElement.GetProperty("sites").EnumerateArray());
        using HttpResponseMessage bad = await app.Client.GetAsync("/h/history?since=yesterday");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);

        // /stats tells pools of one name apart by id.
        using JsonDocument stats = JsonDocument.Parse(await app.Client.GetStringAsync("/h/stats"));
        int[] ids = [.. stats.RootElement.GetProperty("pools").EnumerateArray().Select(p => p.GetProperty("id").GetInt32())];
        Assert.Equal(ids.Length, ids.Distinct().Count());
    }

    [Fact]
    public async Task ChangesAfterMapping_HaveNoEffect()
    {
        BufferMonitorEndpointOptions? kept = null;
        await using TestApp app = await TestApp.StartAsync(map: a => a.MapBufferMonitor(o => kept = o, "/late"));
        kept!.AllowedHosts.Add("ops.internal");
        kept.IncludeAddresses = true;
        app.Monitor.Enable();
        await app.Client.GetStringAsync("/leak");

        using var request = new HttpRequestMessage(HttpMethod.Get, "/late/stats");
        request.Headers.Host = "ops.internal";
        using HttpResponseMessage refused = await app.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);

        using JsonDocument rows = JsonDocument.Parse(await app.Client.GetStringAsync("/late/resident?minAge=0"));
        Assert.NotEmpty(rows.RootElement.EnumerateArray());
        Assert.All(rows.RootElement.EnumerateArray(), row => Assert.False(row.TryGetProperty("address", out _), row.ToString()));
    }
}
