using System.Net;
using System.Text;
using OffHeapTracker.AspNetCore.Tests.Support;
using OffHeapTracker.Monitoring;
using Xunit.Abstractions;

namespace OffHeapTracker.AspNetCore.Tests;

[Collection(KestrelHosts.Name)]
public sealed partial class LoadTests(ITestOutputHelper output)
{
    [Fact]
    [Trait("Category", "Load")]
    public async Task FiftyClientsForTenSeconds_LeaveNoNormalBufferResident()
    {
        await using TestApp app = await TestApp.StartAsync(o => o.StackTraceSampling = 64);
        app.Monitor.Enable();
        long requests = 0, failures = 0;
        byte[] body = Encoding.ASCII.GetBytes(new string('p', 20_000));

        using (var handler = new SocketsHttpHandler { MaxConnectionsPerServer = 50 })
        using (var client = new HttpClient(handler) { BaseAddress = app.BaseAddress })
        {
            DateTime stopAt = DateTime.UtcNow.AddSeconds(10);
            await Task.WhenAll(Enumerable.Range(0, 50).Select(async worker =>
            {
                for (int i = 0; DateTime.UtcNow < stopAt; i++)
                {
                    using HttpResponseMessage response = i % 2 == 0
                        ? await client.GetAsync("/ok")
                        : await client.PostAsync("/upload", new ByteArrayContent(body));
                    _ = await response.Content.ReadAsStringAsync();
                    Interlocked.Increment(ref requests);
                    if (response.StatusCode != HttpStatusCode.OK)
                    {
                        Interlocked.Increment(ref failures);
                    }
                }
            }));
        }

        output.WriteLine($"{requests:N0} requests from 50 clients in 10 s");
        Assert.Equal(0, failures);
        Assert.True(requests > 500, $"only {requests} requests");

        // Once the load stops and the connections close, nothing Normal stays out.
        await Task.Delay(1500);
        IReadOnlyList<ResidentBuffer> stuck = app.Monitor.GetResident(type: BufferType.Normal);
        Assert.True(stuck.Count == 0, BufferReportFormatter.FormatVertical(stuck));
    }
}
