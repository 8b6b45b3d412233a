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
