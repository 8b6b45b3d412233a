using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace OffHeapTracker.Tests.Support;

/// <summary>An <see cref="IMeterFactory"/> whose meters carry it as their scope, so a listener can hear only this test's instruments.</summary>
internal sealed class TestMeterFactory : IMeterFactory
{
    private readonly ConcurrentDictionary<string, Meter> _meters = new();

    public Meter Create(MeterOptions options) =>
        _meters.GetOrAdd(options.Name, name => new Meter(name, options.Version, options.Tags, scope: this));

    public void Dispose()
    {
        foreach (Meter meter in _meters.Values)
        {
            meter.Dispose();
        }
    }
}
