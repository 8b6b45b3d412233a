using System.Net;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using OffHeapTracker.AspNetCore.Tests.Support;

namespace OffHeapTracker.AspNetCore.Tests;

// Kestrel on the factory's pools, in the KestrelDiagnostics sample.
public sealed partial class DirectBufferPoolFactoryTests
{
    [Fact]
    public async Task Kestrel_RentsItsConnectionBuffers_FromPoolsNamedKestrel()
    {
        await using TestApp app = await TestApp.StartAsync();
        Assert.Equal("ok\n", await app.Client.GetStringAsync("/ok"));

        // Kestrel may create more than one pool (its socket transport makes one per I/O queue); all are named after it.
        List<DirectBufferPool> kestrel = [.. Factory(app).Pools.Where(p => p.Name == "kestrel")];
        Assert.NotEmpty(kestrel);
        Assert.True(kestrel.Sum(p => p.GetStatistics().TotalRents) > 0);
        Assert.All(kestrel, p => Assert.Same(app.Monitor, p.Monitor));
    }

    [Fact]
    public async Task AnUploadInFlight_ShowsKestrelsBuffersAsResidentRecords()
    {
        await using TestApp app = await TestApp.StartAsync();
        app.Monitor.Enable();
        var firstChunkSent = new TaskCompletionSource();
        var finish = new TaskCompletionSource();
        using var content = new SlowContent(firstChunkSent, finish.Task);
        Task<HttpResponseMessage> upload = app.Client.PostAsync("/held", content);

        // The handler has not read the body: the first 10,000 bytes wait in Kestrel's input pipe, in buffers
        // rented from the pool Kestrel created.
        await firstChunkSent.Task.WaitAsync(Eventually.Patience);
        await Eventually.WaitForAsync(
            () => app.Monitor.GetResident(TimeSpan.Zero).Where(r => r.PoolName == "kestrel").ToList(),
            rows => rows.Count > 0,
            "a resident record from a pool named kestrel");
        app.ReleaseHeld.SetResult();
        finish.SetResult();
        using HttpResponseMessage response = await upload;
        Assert.Equal(20_000, (await response.Content.ReadAsStringAsync()).Length);
    }

    [Fact]
    public async Task ResponsesSpanningManyBlocks_AreSentIntact()
    {
        // Kestrel sends multi-segment responses through SocketAsyncEventArgs.BufferList, which needs arrays:
        // the reason pools made for Kestrel are backed by pinned arrays.
        await using TestApp app = await TestApp.StartAsync();
        app.Monitor.Enable();
        string dashboard = await app.Client.GetStringAsync("/debug/buffers/");
        Assert.True(dashboard.Length > DirectBufferPool.DefaultBufferSize, $"{dashboard.Length} characters: not enough to span blocks");
        Assert.Equal(Dashboard.Instance.Html, dashboard);
        Assert.All(Factory(app).Pools, p => Assert.Equal(BufferBacking.PinnedArray, p.Backing));
    }

    private static DirectBufferPoolFactory Factory(TestApp app) => app.App.Services.GetRequiredService<DirectBufferPoolFactory>();

    /// <summary>Sends 10,000 bytes, waits to be told, then sends 10,000 more: an upload held open on purpose.</summary>
    private sealed class SlowContent(TaskCompletionSource firstChunkSent, Task finish) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            byte[] chunk = Encoding.ASCII.GetBytes(new string('x', 10_000));
            await stream.WriteAsync(chunk);
            await stream.FlushAsync();
            firstChunkSent.SetResult();
            await finish;
            await stream.WriteAsync(chunk);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 20_000;
            return true;
        }
    }
}
