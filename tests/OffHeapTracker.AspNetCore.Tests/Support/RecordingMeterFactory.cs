using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace OffHeapTracker.AspNetCore.Tests.Support;

/// <summary>Creates real meters and remembers their names; disposing it disposes them.</summary>
internal sealed class RecordingMeterFactory : IMeterFactory
{
    private readonly ConcurrentQueue<Meter> _meters = new();

    public IReadOnlyList<string> Names => [.. _meters.Select(m => m.Name)];

    public Meter Create(MeterOptions options)
    {
        var meter = new Meter(options);
        _meters.Enqueue(meter);
        return meter;
    }

    public void Dispose()
    {
        foreach (Meter meter in _meters)
        {
            meter.Dispose();
        }
    }
}
