using System.Buffers;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using OffHeapTracker.AspNetCore.Tests.Support;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.AspNetCore.Tests;

// /resident and /sites: what they report, what they leave out, how they refuse bad queries and too many reports.
public sealed partial class BufferMonitorEndpointsTests
{
    [Fact]
    public async Task Resident_AndSites_ReportTheLeak_InEveryFormat()
    {
        await using TestApp app = await TestApp.StartAsync();
        app.Monitor.Enable();
        await app.Client.GetStringAsync("/leak");
        await app.Client.GetStringAsync("/leak");

        using HttpResponseMessage json = await app.Client.GetAsync("/debug/buffers/resident?minAge=0&type=normal&limit=10");
        Assert.Equal(HttpStatusCode.OK, json.StatusCode);
        Assert.Equal("application/json", json.Content.Headers.ContentType?.MediaType);
        IReadOnlyList<ResidentBuffer> rows = BufferReportFormatter.ParseResidentJson(await json.Content.ReadAsStringAsync());
        Assert.Equal(2, rows.Count(r => r.PoolName == "app"));
        Assert.All(rows.Where(r => r.PoolName == "app"), r => Assert.Equal("GET /leak", r.Context));

        string text = await app.Client.GetStringAsync("/debug/buffers/resident?minAge=0&format=text&type=normal");
        Assert.Contains("*************************** 1. row ***************************", text, StringComparison.Ordinal);
        Assert.Contains("context: GET /leak", text, StringComparison.Ordinal);

        string limited = await app.Client.GetStringAsync("/debug/buffers/resident?minAge=0&limit=1");
        Assert.Single(BufferReportFormatter.ParseResidentJson(limited));

        using JsonDocument sites = JsonDocument.Parse(await app.Client.GetStringAsync("/debug/buffers/sites?minAge=0&top=5"));
        Assert.Contains(sites.RootElement.EnumerateArray(), s => s.GetProperty("stacktrace").GetString()!.Contains("KestrelDiagnostics", StringComparison.Ordinal));

        string collapsed = await app.Client.GetStringAsync("/debug/buffers/sites?minAge=0&format=collapsed");
        Assert.All(collapsed.TrimEnd('\n').Split('\n'), line => Assert.Matches(@"^.+ \d+$", line));
    }

    [Fact]
    public async Task Resident_GivesEachRowItsPoolsId_TheIdStatsListsThePoolUnder()
    {
        await using TestApp app = await TestApp.StartAsync();
        var factory = app.App.Services.GetRequiredService<DirectBufferPoolFactory>();
        var first = (DirectBufferPool)factory.Create(new MemoryPoolOptions { Owner = "twin-report" });
        var second = (DirectBufferPool)factory.Create(new MemoryPoolOptions { Owner = "twin-report" });
        app.Monitor.Enable();
        using DirectBuffer a = first.Rent(4096);
        using DirectBuffer b = second.Rent(4096);

        IReadOnlyList<ResidentBuffer> rows = BufferReportFormatter.ParseResidentJson(await app.Client.GetStringAsync("/debug/buffers/resident?minAge=0&limit=1000"));
        Assert.Equal(first.Id, Assert.Single(rows, r => r.Id == a.Id).PoolId);
        Assert.Equal(second.Id, Assert.Single(rows, r => r.Id == b.Id).PoolId);

        using JsonDocument stats = JsonDocument.Parse(await app.Client.GetStringAsync("/debug/buffers/stats"));
        List<int> twins = [.. stats.RootElement.GetProperty("pools").EnumerateArray().Where(p => p.GetProperty("name").GetString() == "twin-report").Select(p => p.GetProperty("id").GetInt32())];
        Assert.Equal(new[] { first.Id, second.Id }.Order(), twins.Order());
    }

    [Fact]
    public async Task Resident_LeavesNativeAddressesOut_UnlessTheOptionAsksForThem()
    {
        await using TestApp app = await TestApp.StartAsync(map: a => a.MapBufferMonitor(o => o.IncludeAddresses = true, "/with-addresses"));
        app.Monitor.Enable();
        await app.Client.GetStringAsync("/leak");

        using JsonDocument plain = JsonDocument.Parse(await app.Client.GetStringAsync("/debug/buffers/resident?minAge=0"));
        Assert.NotEmpty(plain.RootElement.EnumerateArray());
        Assert.All(plain.RootElement.EnumerateArray(), row => Assert.False(row.TryGetProperty("address", out _), row.ToString()));
        Assert.All(BufferReportFormatter.ParseResidentJson(plain.RootElement.GetRawText()), row => Assert.Equal(0, row.Address));

        using JsonDocument asked = JsonDocument.Parse(await app.Client.GetStringAsync("/with-addresses/resident?minAge=0"));
        Assert.NotEmpty(asked.RootElement.EnumerateArray());
        Assert.All(asked.RootElement.EnumerateArray(), row => Assert.NotEqual(0, row.GetProperty("address").GetInt64()));
    }

    [Fact]
    public async Task AContextWithNewlines_CannotForgeRowsInTheTextReport()
    {
        await using TestApp app = await TestApp.StartAsync();
        app.Monitor.Enable();
        MemoryPool<byte> pool = app.App.Services.GetRequiredService<DirectBufferPoolFactory>().Create(new MemoryPoolOptions { Owner = "forged" });
        IMemoryOwner<byte> held;
        using (BufferMonitor.BeginContext("GET /x\n*************************** 2. row ***************************\n           id: 1"))
        {
            held = pool.Rent(64);
        }

        string text = await app.Client.GetStringAsync("/debug/buffers/resident?minAge=0&format=text&type=normal");
        Assert.Single(text.Split('\n'), line => line.StartsWith("***", StringComparison.Ordinal));
        Assert.Contains(@"context: GET /x\n***", text, StringComparison.Ordinal);
        held.Dispose();
    }

    [Theory]
    [InlineData("/debug/buffers/resident?minAge=abc", "minAge", "minAge must be a number of seconds from 0 to 31536000.")]
    [InlineData("/debug/buffers/resident?limit=0", "limit", "limit must be a whole number from 1 to 100000.")]
    [InlineData("/debug/buffers/resident?type=foo", "type", "type must be normal, pool or all.")]
    [InlineData("/debug/buffers/resident?format=collapsed", "format", "format must be json or text.")]
    [InlineData("/debug/buffers/sites?top=10001", "top", "top must be a whole number from 1 to 10000.")]
    [InlineData("/debug/buffers/sites?format=text", "format", "format must be json or collapsed.")]
    public async Task BadQueryValues_Get400ProblemDetails_NamingTheParameterAndWhatItMayBe(string path, string parameter, string detail)
    {
        await using TestApp app = await TestApp.StartAsync();
        using HttpResponseMessage response = await app.Client.GetAsync(path);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using JsonDocument body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(400, body.RootElement.GetProperty("status").GetInt32());
        Assert.Equal(parameter, body.RootElement.GetProperty("parameter").GetString());
        Assert.Equal(detail, body.RootElement.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Reports_BeyondMaxConcurrentReports_Get503ProblemDetails_WithRetryAfter()
    {
        // One slot, held by a report whose client stops reading: the response (about 20 MB) fills the socket
        // buffers and Kestrel's, so the handler waits inside the slot until the client goes away.
        await using TestApp app = await TestApp.StartAsync(
            o => o.StackTraceDepth = 0,
            a => a.MapBufferMonitor(o => o.MaxConcurrentReports = 1, "/one"));
        app.Monitor.Enable();
        for (long id = 1; id <= 100_000; id++)
        {
            ((IBufferMonitor)app.Monitor).OnAllocated(new BufferAllocation((1L << 40) + id, 0, 64, 64, BufferType.Normal, "held-open-report", IsPooled: true));
        }

        using var stalled = new HttpClient { BaseAddress = app.BaseAddress };
        using HttpResponseMessage slow = await stalled.GetAsync("/one/resident?minAge=0&limit=100000&format=text", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, slow.StatusCode);

        using HttpResponseMessage refused = await app.Client.GetAsync("/one/sites?minAge=0");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        Assert.NotNull(refused.Headers.RetryAfter);
        Assert.Contains("MaxConcurrentReports", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // The other mapping has its own slots, and /stats takes none.
        using HttpResponseMessage stats = await app.Client.GetAsync("/one/stats");
        Assert.Equal(HttpStatusCode.OK, stats.StatusCode);
        using HttpResponseMessage otherMapping = await app.Client.GetAsync("/debug/buffers/resident?limit=1");
        Assert.Equal(HttpStatusCode.OK, otherMapping.StatusCode);
        app.Monitor.Disable();
    }
}
