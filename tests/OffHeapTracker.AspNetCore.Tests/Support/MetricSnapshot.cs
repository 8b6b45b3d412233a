using System.Diagnostics.Metrics;

namespace OffHeapTracker.AspNetCore.Tests.Support;

/// <summary>One collection of a host's observable instruments through a <see cref="MeterListener"/>: every series of every instrument on the meters the host's <see cref="IMeterFactory"/> created.</summary>
internal static class MetricSnapshot
{
    public sealed record Point(string Meter, string Instrument, string? Unit, long Value, IReadOnlyDictionary<string, object?> Tags);

    public static List<Point> Collect(IMeterFactory scope, params string[] meterNames)
    {
        var points = new List<Point>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter.Scope, scope) && meterNames.Contains(instrument.Meter.Name))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var map = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                map[tag.Key] = tag.Value;
            }

            lock (points)
            {
                points.Add(new Point(instrument.Meter.Name, instrument.Name, instrument.Unit, value, map));
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();
        return points;
    }
}
