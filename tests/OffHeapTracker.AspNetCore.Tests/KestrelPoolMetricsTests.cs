using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using OffHeapTracker.AspNetCore.Tests.Support;

namespace OffHeapTracker.AspNetCore.Tests;

/// <summary>Kestrel's own pool instruments, reported from the factory's pools, and one series per pool instance.</summary>
[Collection(KestrelHosts.Name)]
public sealed class KestrelPoolMetricsTests
{
    private const string Meter = "Microsoft.AspNetCore.MemoryPool";

    [Fact]
    public async Task ServingRequests_RaisesKestrelsRentedCounter_ForTheKestrelOwner()
    {
        await using TestApp app = await TestApp.StartAsync();
        IMeterFactory meters = app.App.Services.GetRequiredService<IMeterFactory>();
        long before = Sum(MetricSnapshot.Collect(meters, Meter), "aspnetcore.memory_pool.rented", "kestrel");

        for (int i = 0; i < 5; i++)
        {
            Assert.Equal("ok\n", await app.Client.GetStringAsync("/ok"));
        }

        List<MetricSnapshot.Point> points = MetricSnapshot.Collect(meters, Meter);
        Assert.True(Sum(points, "aspnetcore.memory_pool.rented", "kestrel") > before, "aspnetcore.memory_pool.rented{owner=kestrel} did not rise");
        Assert.Equal(
            ["aspnetcore.memory_pool.allocated", "aspnetcore.memory_pool.evicted", "aspnetcore.memory_pool.pooled", "aspnetcore.memory_pool.rented"],
            points.Select(p => p.Instrument).Distinct().Order(StringComparer.Ordinal));
        Assert.All(points, p => Assert.Equal("By", p.Unit));

        // Kestrel reserved slab memory to serve them: allocated counts it, and it only grows.
        Assert.True(Sum(points, "aspnetcore.memory_pool.allocated", "kestrel") > 0);
    }

    [Fact]
    public async Task TwoPoolsNamedKestrel_AreTwoSeries_InBothMeters()
    {
        await using TestApp app = await TestApp.StartAsync();
        Assert.Equal("ok\n", await app.Client.GetStringAsync("/ok"));
        DirectBufferPoolFactory factory = app.App.Services.GetRequiredService<DirectBufferPoolFactory>();

        // Kestrel's transport makes one pool per I/O queue; make sure there are at least two.
        using var second = (DirectBufferPool)factory.Create(new MemoryPoolOptions { Owner = "kestrel" });
        int kestrelPools = factory.Pools.Count(p => p.Name == "kestrel");
        Assert.True(kestrelPools >= 2);

        List<MetricSnapshot.Point> points = MetricSnapshot.Collect(app.App.Services.GetRequiredService<IMeterFactory>(), Meter, "OffHeapTracker");

        List<MetricSnapshot.Point> pooled = [.. points.Where(p => p.Instrument == "aspnetcore.memory_pool.pooled" && Equals(p.Tags.GetValueOrDefault("aspnetcore.memory_pool.owner"), "kestrel"))];
        Assert.Equal(kestrelPools, pooled.Count);
        Assert.Equal(kestrelPools, pooled.Select(p => p.Tags["offheaptracker.pool.id"]).Distinct().Count());
        Assert.Contains(pooled, p => Equals(p.Tags["offheaptracker.pool.id"], second.Id));

        List<MetricSnapshot.Point> capacity = [.. points.Where(p => p.Instrument == "offheaptracker.pool.capacity" && Equals(p.Tags.GetValueOrDefault("offheaptracker.pool.name"), "kestrel"))];
        Assert.Equal(kestrelPools, capacity.Select(p => p.Tags["offheaptracker.pool.id"]).Distinct().Count());
        Assert.Equal(kestrelPools * DirectBufferPoolOptions.DefaultCapacityBytes, capacity.Sum(p => p.Value));
    }

    [Fact]
    public async Task TheMonitorsSeries_CarryItsId()
    {
        // The test app's monitor is created without a meter factory: its series are on the static meter.
        await using TestApp app = await TestApp.StartAsync();
        var points = new List<(string Name, IReadOnlyList<KeyValuePair<string, object?>> Tags)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "OffHeapTracker" && instrument.Name.StartsWith("offheaptracker.monitor.", StringComparison.Ordinal))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, _, tags, _) => points.Add((instrument.Name, tags.ToArray())));
        listener.Start();
        listener.RecordObservableInstruments();

        Assert.NotEmpty(points);
        Assert.All(points, p => Assert.Contains(p.Tags, t => t.Key == "offheaptracker.monitor.id" && t.Value is int));
        Assert.All(points, p => Assert.Contains(p.Tags, t => t.Key == "offheaptracker.monitor.shared" && t.Value is bool));

        // Every monitor alive is its own series: no two measurements of one instrument share their tags.
        Assert.All(points.GroupBy(p => p.Name), g => Assert.Equal(g.Count(), g.Select(p => p.Tags.First(t => t.Key == "offheaptracker.monitor.id").Value).Distinct().Count()));
    }

    private static long Sum(List<MetricSnapshot.Point> points, string instrument, string owner) =>
        points.Where(p => p.Instrument == instrument && Equals(p.Tags.GetValueOrDefault("aspnetcore.memory_pool.owner"), owner)).Sum(p => p.Value);
}
