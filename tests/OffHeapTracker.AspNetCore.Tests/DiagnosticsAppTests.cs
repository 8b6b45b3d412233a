using System.Text.RegularExpressions;
using OffHeapTracker.AspNetCore.Tests.Support;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.AspNetCore.Tests;

/// <summary>The KestrelDiagnostics sample's deliberate leak, as the monitor reports it: one handler is one site.</summary>
[Collection(KestrelHosts.Name)]
public sealed class DiagnosticsAppTests
{
    [Fact]
    public async Task LeakHandler_OnFreshAndOnKeptAliveConnections_IsOneSite_NamedByItsLambda()
    {
        await using TestApp app = await TestApp.StartAsync(o => o.Stacks = StackPolicy.Every);
        app.Monitor.Enable();
        var ids = new HashSet<long>();

        // A fresh connection per request: Kestrel's request loop runs the handler on its first pass, its callers on the stack.
        for (int i = 0; i < 3; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/leak");
            request.Headers.ConnectionClose = true;
            using HttpResponseMessage response = await app.Client.SendAsync(request);
            ids.Add(KeptId(await response.Content.ReadAsStringAsync()));
        }

        // One kept-alive connection: the loop is resumed by the socket's completion for each request after the first.
        for (int i = 0; i < 3; i++)
        {
            ids.Add(KeptId(await app.Client.GetStringAsync("/leak")));
        }

        IReadOnlyList<LeakSite> sites = app.Monitor.GetLeakSites(TimeSpan.Zero, BufferType.Normal, top: 100);
        LeakSite site = Assert.Single(sites, s => s.SampleIds.Any(ids.Contains));
        Assert.Equal(6, site.Count);
        Assert.Matches(@"^KestrelDiagnostics\.DiagnosticsApp\.Build\(lambda \d+\)\n\[compiled expression\]\n", site.StackTrace);
        Assert.DoesNotContain("Kestrel.Core", site.StackTrace, StringComparison.Ordinal);
    }

    // "kept buffer 42; 3 kept so far"
    private static long KeptId(string response) => long.Parse(Regex.Match(response, @"kept buffer (\d+);").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
}
