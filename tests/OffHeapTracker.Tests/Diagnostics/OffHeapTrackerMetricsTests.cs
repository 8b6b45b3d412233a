using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using OffHeapTracker.Monitoring;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Diagnostics;

/// <summary>Every instrument of the OffHeapTracker meter, read by a <see cref="MeterListener"/> after a scripted workload.</summary>
[Collection(ProcessWideState.Name)] // drops a lease for the finalizer
public sealed class OffHeapTrackerMetricsTests
{
    private sealed record Reading(string Unit, long Value, Dictionary<string, object?> Tags);

    [Fact]
    public void EveryInstrument_ReportsItsUnitAndTheWorkloadsValues()
    {
        using var factory = new TestMeterFactory();
        var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions { MeterFactory = factory });
        monitor.Enable();
        var pool = new DirectBufferPool(new DirectBufferPoolOptions
        {
            Name = "metrics",
            Monitor = monitor,
            MeterFactory = factory,
            MaxPooledBufferSize = 4096,
            CapacityBytes = 8 << 20,
            TrimAfter = Timeout.InfiniteTimeSpan,
        });

        // The workload: three Normal buffers of 4 KiB, one Pool buffer of 1 KiB, one unpooled 10,000-byte
        // buffer, one double dispose, one dropped lease.
        var normal = Enumerable.Range(0, 3).Select(_ => pool.Rent(4096)).ToList();
        DirectBuffer resident = pool.Rent(1000, BufferType.Pool);
        DirectBuffer big = pool.Rent(10_000);
        DirectBuffer twice = pool.Rent(512);
        twice.Dispose();
        twice.Dispose();
        DropOne(pool);
        Gc.CollectAndFinalize();

        List<(string Name, Reading Reading)> readings = Collect(factory);
        long Value(string name, params (string Key, string Value)[] tags) =>
            Assert.Single(readings, r => r.Name == name && tags.All(t => Equals(r.Reading.Tags[t.Key], t.Value))).Reading.Value;
        string Unit(string name) => readings.First(r => r.Name == name).Reading.Unit;

        Assert.All(readings.Where(r => r.Name.StartsWith("offheaptracker.pool", StringComparison.Ordinal) || r.Name.Contains("leak", StringComparison.Ordinal) || r.Name.Contains("double", StringComparison.Ordinal)),
            r => Assert.Equal("metrics", r.Reading.Tags["offheaptracker.pool.name"]));

        Assert.Equal(8 << 20, Value("offheaptracker.pool.capacity"));
        Assert.Equal(3L << 20, Value("offheaptracker.pool.reserved")); // 4 KiB, 1 KiB and 512 B classes
        // The dropped lease's 4 KiB block is kept out of circulation: still in use, and counted as leaked.
        Assert.Equal((3L << 20) - (4 * 4096) - 1024, Value("offheaptracker.pool.free"));
        Assert.Equal(1024, Value("offheaptracker.pool.in_use", ("offheaptracker.buffer.type", "pool")));
        Assert.Equal((4 * 4096) + 10_000, Value("offheaptracker.pool.in_use", ("offheaptracker.buffer.type", "normal")));
        Assert.Equal(4096, Value("offheaptracker.leak.in_use"));
        Assert.Equal((3 * 4096) + 1024 + 10_000 + 512 + 4096, Value("offheaptracker.pool.rented"));
        Assert.Equal(1, Value("offheaptracker.pool.fallback"));
        Assert.Equal(1, Value("offheaptracker.leak.detected"));
        Assert.Equal(1, Value("offheaptracker.buffer.double_dispose"));
        Assert.Equal(5, Value("offheaptracker.monitor.resident"));
        Assert.Equal(0, Value("offheaptracker.monitor.dropped"));

        foreach (string bytes in new[] { "capacity", "reserved", "free", "in_use", "rented", "trimmed" })
        {
            Assert.Equal("By", Unit("offheaptracker.pool." + bytes));
        }

        foreach (string count in new[] { "offheaptracker.pool.fallback", "offheaptracker.leak.detected", "offheaptracker.buffer.double_dispose", "offheaptracker.monitor.resident", "offheaptracker.monitor.dropped" })
        {
            Assert.Equal("{buffer}", Unit(count));
        }

        // Return everything after a burst, then trim twice: slabs that stayed wholly free go back to the OS.
        normal.ForEach(l => l.Dispose());
        resident.Dispose();
        big.Dispose();
        Burst(pool);
        pool.TrimIdleSlabs();
        pool.TrimIdleSlabs();
        readings = Collect(factory);
        Assert.True(Value("offheaptracker.pool.trimmed") >= 2 << 20);
        Assert.Equal(pool.GetStatistics().TrimmedBytes, Value("offheaptracker.pool.trimmed"));

        // A disposed pool stops reporting.
        pool.Dispose();
        Assert.DoesNotContain(Collect(factory), r => r.Name == "offheaptracker.pool.capacity");
    }

    [Fact]
    public void CensusInstruments_ReportTheOldestNormalBuffer_AndHowManyAreOlderThanFixedAges_WithTheMonitorOff()
    {
        using var factory = new TestMeterFactory();
        var time = new ManualTimeProvider();
        using var pool = new DirectBufferPool(new DirectBufferPoolOptions
        {
            Name = "census",
            Monitor = new ResidentBufferMonitor(),
            MeterFactory = factory,
            TimeProvider = time,
            TrimAfter = Timeout.InfiniteTimeSpan,
        });

        // One Normal buffer 65 minutes old, one 15 minutes old, one just rented; a Pool buffer 65 minutes old,
        // which the census instruments leave out (resident by design).
        DirectBuffer oldest = pool.Rent(4096);
        DirectBuffer resident = pool.Rent(4096, BufferType.Pool);
        time.Advance(TimeSpan.FromMinutes(50));
        DirectBuffer middle = pool.Rent(4096);
        time.Advance(TimeSpan.FromMinutes(15));
        DirectBuffer fresh = pool.Rent(4096);

        List<(string Name, Reading Reading)> readings = Collect(factory);
        (string Name, Reading Reading) age = Assert.Single(readings, r => r.Name == "offheaptracker.census.oldest_normal_age");
        Assert.Equal("s", age.Reading.Unit);
        Assert.Equal(65 * 60, age.Reading.Value);
        Assert.Equal("census", age.Reading.Tags["offheaptracker.pool.name"]);

        var counts = readings.Where(r => r.Name == "offheaptracker.census.old_normal").ToDictionary(r => (int)r.Reading.Tags["offheaptracker.buffer.min_age"]!, r => r.Reading);
        Assert.Equal(new Dictionary<int, long> { [60] = 2, [600] = 2, [3600] = 1 }, counts.ToDictionary(c => c.Key, c => c.Value.Value));
        Assert.All(counts.Values, c =>
        {
            Assert.Equal("{buffer}", c.Unit);
            Assert.Equal("census", c.Tags["offheaptracker.pool.name"]);
        });

        oldest.Dispose();
        middle.Dispose();
        fresh.Dispose();
        readings = Collect(factory);
        Assert.Equal(0, Assert.Single(readings, r => r.Name == "offheaptracker.census.oldest_normal_age").Reading.Value);
        Assert.All(readings.Where(r => r.Name == "offheaptracker.census.old_normal"), r => Assert.Equal(0, r.Reading.Value));
        resident.Dispose();
    }

    private static List<(string Name, Reading Reading)> Collect(TestMeterFactory factory)
    {
        var readings = new List<(string, Reading)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter.Scope, factory))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var tagMap = new Dictionary<string, object?>();
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                tagMap[tag.Key] = tag.Value;
            }

            readings.Add((instrument.Name, new Reading(instrument.Unit!, value, tagMap)));
        });

        // The census age gauge is in seconds, a double; whole seconds in these tests.
        listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
        {
            var tagMap = new Dictionary<string, object?>();
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                tagMap[tag.Key] = tag.Value;
            }

            readings.Add((instrument.Name, new Reading(instrument.Unit!, checked((long)value), tagMap)));
        });
        listener.Start();
        listener.RecordObservableInstruments();
        return readings;
    }

    // 600 buffers of 4 KiB need three 1 MiB slabs; after they come back, this thread parks 16 blocks (64 KiB),
    // which pins at most one slab.
    private static void Burst(DirectBufferPool pool)
    {
        var many = Enumerable.Range(0, 600).Select(_ => pool.Rent(4096)).ToList();
        many.ForEach(l => l.Dispose());
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DropOne(DirectBufferPool pool) => pool.Rent(4096);
}
