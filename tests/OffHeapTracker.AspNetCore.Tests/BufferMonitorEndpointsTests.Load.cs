using System.Diagnostics;
using System.Net;
using System.Runtime.CompilerServices;
using OffHeapTracker.AspNetCore.Tests.Support;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.AspNetCore.Tests;

// Reports over a large table while the application serves traffic: memory stays bounded.
public sealed partial class BufferMonitorEndpointsTests
{
    private const int Records = 300_000;
    private const int ReportClients = 8;
    private const int ReportsPerClient = 3;
    private const int IdleRequests = 25;

    // What the endpoints may add to the process at peak, over the baseline with 300,000 records held. At most
    // MaxConcurrentReports (2) reports run at once and each holds its 100,000 selected rows (about 25 MB with their
    // heap entries) while it streams them; the rest is the GC's gen0 budget and Kestrel's and the client's buffers.
    // 320 MB is several times that, because the GC may keep freed segments for a while on a loaded 2-core machine.
    // A pipeline that copied and sorted the whole table per request, or built each response as one string, grew
    // this process by more than a gigabyte: the bound fails when report memory grows with the table or with the
    // number of requests, and not on a slow machine, since no figure here depends on time.
    private const long MaxRssGrowthBytes = 320L * 1024 * 1024;

    [Fact]
    [Trait("Category", "Load")]
    public async Task ConcurrentReportsOver300kRecords_StayWithinAMemoryBound_WhileTheAppServes()
    {
        await using TestApp app = await TestApp.StartAsync(o => o.StackTraceSampling = 16);
        app.Monitor.Enable();
        Fill(app.Monitor);
        Assert.True(app.Monitor.Count >= Records, $"{app.Monitor.Count} records");

        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = 64 };

        // A guard against a hung request, not a speed target: far above what one report takes, slot wait included.
        using var client = new HttpClient(handler) { BaseAddress = app.BaseAddress, Timeout = TimeSpan.FromMinutes(2) };
        List<double> idle = await CallOkAsync(client, IdleRequests, CancellationToken.None);

        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        long rssBefore = Rss();
        long heapBefore = GC.GetTotalMemory(forceFullCollection: true);
        long rssPeak = rssBefore, heapPeak = heapBefore;
        using var stop = new CancellationTokenSource();
        Task sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                rssPeak = Math.Max(rssPeak, Rss());
                heapPeak = Math.Max(heapPeak, GC.GetTotalMemory(forceFullCollection: false));
                await Task.Delay(20, CancellationToken.None);
            }
        });
        Task<List<double>> traffic = CallOkAsync(client, int.MaxValue, stop.Token);

        string[] reports =
        [
            "/debug/buffers/resident?minAge=0&limit=100000",
            "/debug/buffers/resident?minAge=0&limit=100000&format=text",
            "/debug/buffers/sites?minAge=0&top=10000",
            "/debug/buffers/resident?limit=1",
        ];
        var statuses = new System.Collections.Concurrent.ConcurrentBag<(string Path, HttpStatusCode Status, long Bytes)>();
        var clock = Stopwatch.StartNew();
        TimeSpan reportTime;
        List<double> busy;
        try
        {
            // While a big report is being written (its headers are in, its body not read), the app still answers.
            using (HttpResponseMessage held = await client.GetAsync(reports[0], HttpCompletionOption.ResponseHeadersRead))
            {
                Assert.Equal(HttpStatusCode.OK, held.StatusCode);
                Assert.Equal("ok\n", await client.GetStringAsync("/ok"));
            }

            await Task.WhenAll(Enumerable.Range(0, ReportClients).Select(worker => Task.Run(async () =>
            {
                for (int i = 0; i < ReportsPerClient; i++)
                {
                    // Half the clients ask for the biggest report every time; the others go round the rest.
                    string path = worker % 2 == 0 ? reports[0] : reports[(worker + i) % reports.Length];
                    using HttpResponseMessage response = await client.GetAsync(path, HttpCompletionOption.ResponseHeadersRead);
                    await using Stream body = await response.Content.ReadAsStreamAsync();
                    var counter = new CountingStream();
                    await body.CopyToAsync(counter);
                    statuses.Add((path, response.StatusCode, counter.Length));
                }
            })));
            reportTime = clock.Elapsed;
        }
        finally
        {
            // Stops the /ok traffic and the sampler whether or not the reports succeeded.
            await stop.CancelAsync();
            busy = await traffic;
            await sampler;
        }

        long rssGrowth = rssPeak - rssBefore;
        output.WriteLine($"{Records:N0} records; {ReportClients} clients x {ReportsPerClient} reports in {reportTime.TotalSeconds:F1} s");
        foreach (var group in statuses.GroupBy(s => (s.Path, s.Status)).OrderBy(g => g.Key.Path, StringComparer.Ordinal))
        {
            output.WriteLine($"  {group.Key.Path}: {group.Count()} x {(int)group.Key.Status}, {group.Max(s => s.Bytes):N0} bytes at most");
        }

        output.WriteLine($"RSS {rssBefore / 1048576.0:F0} MB before, {rssPeak / 1048576.0:F0} MB at peak: +{rssGrowth / 1048576.0:F0} MB (bound {MaxRssGrowthBytes / 1048576} MB)");
        output.WriteLine($"GC heap {heapBefore / 1048576.0:F0} MB before, {heapPeak / 1048576.0:F0} MB at peak (allocated, collected or not)");
        output.WriteLine($"GET /ok idle:            {Describe(idle)}");
        output.WriteLine($"GET /ok during reports:  {Describe(busy)}");

        Assert.All(statuses, s => Assert.True(s.Status is HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable, $"{s.Path}: {s.Status}"));
        Assert.Contains(statuses, s => s.Path == reports[0] && s.Status == HttpStatusCode.OK && s.Bytes > 1_000_000);
        Assert.True(rssGrowth < MaxRssGrowthBytes, $"RSS grew by {rssGrowth / 1048576.0:F0} MB during the reports; the bound is {MaxRssGrowthBytes / 1048576} MB");
    }

    private static void Fill(ResidentBufferMonitor monitor)
    {
        // Records made directly, as a pool would report them: no memory behind them, so the baseline is the table.
        string[] contexts = [.. Enumerable.Range(0, 1000).Select(i => $"conn {i} 10.0.{i / 250}.{i % 250}:5{i:D4}")];
        for (int i = 0; i < Records; i++)
        {
            using (BufferMonitor.BeginContext(contexts[i % contexts.Length]))
            {
                long id = (1L << 40) + i;
                _ = (i % 3) switch
                {
                    0 => RecordFromReadLoop(monitor, id),
                    1 => RecordFromWriter(monitor, id),
                    _ => RecordFromCache(monitor, id),
                };
            }
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static bool RecordFromReadLoop(ResidentBufferMonitor monitor, long id) => Record(monitor, id, 4096, BufferType.Pool);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static bool RecordFromWriter(ResidentBufferMonitor monitor, long id) => Record(monitor, id, 16_384, BufferType.Normal);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static bool RecordFromCache(ResidentBufferMonitor monitor, long id) => Record(monitor, id, 512, BufferType.Normal);

    private static bool Record(ResidentBufferMonitor monitor, long id, int size, BufferType type) =>
        ((IBufferMonitor)monitor).OnAllocated(new BufferAllocation(id, (nint)(0x7f00_0000_0000 + (id * 64)), size, size, type, "load", IsPooled: true));

    /// <summary>Calls <c>GET /ok</c> about fifty times a second, <paramref name="count"/> times or until told to stop, asserting each answer; returns each latency in milliseconds.</summary>
    private static async Task<List<double>> CallOkAsync(HttpClient client, int count, CancellationToken stop)
    {
        var latencies = new List<double>();
        while (latencies.Count < count && !stop.IsCancellationRequested)
        {
            long started = Stopwatch.GetTimestamp();
            using HttpResponseMessage response = await client.GetAsync("/ok", CancellationToken.None);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("ok\n", await response.Content.ReadAsStringAsync(CancellationToken.None));
            latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            await Task.Delay(20, CancellationToken.None);
        }

        return latencies;
    }

    private static string Describe(List<double> latencies)
    {
        if (latencies.Count == 0)
        {
            return "no requests";
        }

        double[] sorted = [.. latencies.Order()];
        double At(double p) => sorted[Math.Min(sorted.Length - 1, (int)(p * sorted.Length))];
        return $"{sorted.Length} requests, p50 {At(0.50):F1} ms, p95 {At(0.95):F1} ms, p99 {At(0.99):F1} ms, max {sorted[^1]:F1} ms";
    }

    private static long Rss()
    {
        using Process self = Process.GetCurrentProcess();
        return self.WorkingSet64;
    }

    /// <summary>Counts what it is given and keeps none of it, so the client side adds nothing to the process's memory.</summary>
    private sealed class CountingStream : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => Position;

        public override long Position { get; set; }

        public override void Write(byte[] buffer, int offset, int count) => Position += count;

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Position += buffer.Length;
            return ValueTask.CompletedTask;
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
