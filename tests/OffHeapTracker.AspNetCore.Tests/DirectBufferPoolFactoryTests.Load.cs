using System.Net;
using System.Text;
using OffHeapTracker.AspNetCore.Tests.Support;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.AspNetCore.Tests;

// Kestrel on the factory's pools under many concurrent clients: every request answered, every buffer back.
public sealed partial class DirectBufferPoolFactoryTests
{
    private const int Clients = 50;
    private const int RequestsPerClient = 100;
    private const int UploadBytes = 20_000;

    [Fact]
    [Trait("Category", "Load")]
    public async Task FiftyClients_AllServedCorrectly_AndEveryKestrelBufferComesBack()
    {
        await using TestApp app = await TestApp.StartAsync(o => o.StackTraceSampling = 64);
        app.Monitor.Enable();
        byte[] body = Encoding.ASCII.GetBytes(new string('p', UploadBytes));
        var wrong = new System.Collections.Concurrent.ConcurrentQueue<string>();
        int uploads = 0;

        // Bounded by the number of requests, not by time: a slow machine takes longer, and asserts the same things.
        using (var handler = new SocketsHttpHandler { MaxConnectionsPerServer = Clients })
        using (var client = new HttpClient(handler) { BaseAddress = app.BaseAddress })
        {
            await Task.WhenAll(Enumerable.Range(0, Clients).Select(worker => Task.Run(async () =>
            {
                for (int i = 0; i < RequestsPerClient; i++)
                {
                    bool upload = (worker + i) % 2 == 0;
                    using HttpResponseMessage response = upload
                        ? await client.PostAsync("/upload", new ByteArrayContent(body))
                        : await client.GetAsync("/ok");
                    string text = await response.Content.ReadAsStringAsync();
                    string expected = upload ? $"{UploadBytes} bytes\n" : "ok\n";
                    if (response.StatusCode != HttpStatusCode.OK || text != expected)
                    {
                        wrong.Enqueue($"{(upload ? "POST /upload" : "GET /ok")}: {(int)response.StatusCode} '{text}'");
                    }

                    if (upload)
                    {
                        Interlocked.Increment(ref uploads);
                    }
                }
            })));
        }

        Assert.True(wrong.IsEmpty, $"{wrong.Count} of {Clients * RequestsPerClient} responses were wrong:\n{string.Join("\n", wrong.Take(10))}");

        // The client is disposed, so its connections are closed; Kestrel returns their buffers as it notices.
        List<DirectBufferPool> kestrel = [.. Factory(app).Pools.Where(p => p.Name == "kestrel")];
        Assert.NotEmpty(kestrel);
        foreach (DirectBufferPool pool in kestrel)
        {
            await pool.WhenAllReturnedAsync(Eventually.Patience);
        }

        List<DirectBufferPoolStatistics> stats = [.. kestrel.Select(p => p.GetStatistics())];
        output.WriteLine(string.Join("\n", stats));
        Assert.All(stats, s =>
        {
            Assert.Equal(0, s.OutstandingCount);
            Assert.Equal(0, s.InUseBytes);
            Assert.Equal(0, s.DoubleDisposeCount);
            Assert.Equal(0, s.MonitorErrorCount);
            Assert.Equal(0, s.LeakedCount);
        });

        // Every uploaded byte was read into a block rented from these pools (the socket transport has one per I/O queue).
        Assert.True(stats.Sum(s => s.RentedBytes) >= (long)uploads * UploadBytes, $"{stats.Sum(s => s.RentedBytes)} bytes rented for {uploads} uploads of {UploadBytes}");
        IReadOnlyList<ResidentBuffer> stuck = app.Monitor.GetResident(TimeSpan.Zero, BufferType.Normal);
        Assert.True(stuck.Count == 0, BufferReportFormatter.FormatVertical(stuck));
    }
}
