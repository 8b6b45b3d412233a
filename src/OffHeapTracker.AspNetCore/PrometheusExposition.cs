using System.Diagnostics.Metrics;
using System.Text;

namespace OffHeapTracker.AspNetCore;

/// <summary>Reads the observable instruments of the <c>OffHeapTracker</c> and <c>Microsoft.AspNetCore.MemoryPool</c> meters with a <see cref="MeterListener"/> and writes them in the Prometheus text exposition format 0.0.4.</summary>
/// <remarks>
/// <para>
/// Hand-written only because no Prometheus exporter package (OpenTelemetry.Exporter.Prometheus.*, prometheus-net)
/// is available on this project's package source. It is deliberately small: where OpenTelemetry's Prometheus
/// exporter is available, it replaces this and serves every meter of the application.
/// </para>
/// <para>
/// Each scrape starts a listener, lets it observe, and disposes it: nothing is kept between scrapes, so nothing can
/// grow or leak, and an unscraped endpoint costs nothing. That is enough because every instrument on these meters is
/// observable (it reads pool statistics when asked); synchronous instruments, whose history only a long-lived
/// listener could keep, are not rendered. Counters become Prometheus counters (<c>_total</c>), up-down counters and
/// gauges become gauges; see <see cref="PrometheusNames"/> for names and units.
/// </para>
/// <para>
/// Only meters made by the host's <see cref="IMeterFactory"/> (whose <see cref="Meter.Scope"/> is that factory) and
/// meters made without a factory are read, so a second host in the same process does not appear in this one's scrape.
/// </para>
/// </remarks>
internal sealed class PrometheusExposition
{
    /// <summary>The content type of the text format this writes.</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private static readonly string[] s_meterNames = ["OffHeapTracker", KestrelPoolMetrics.MeterName];

    private readonly IMeterFactory? _meterFactory;

    public PrometheusExposition(IMeterFactory? meterFactory) => _meterFactory = meterFactory;

    /// <summary>Observes every instrument once and writes the result.</summary>
    public string Scrape()
    {
        var families = new Dictionary<string, Family>(StringComparer.Ordinal);
        using (var listener = new MeterListener())
        {
            listener.InstrumentPublished = (instrument, l) =>
            {
                if (instrument.IsObservable && Accepts(instrument.Meter) && Kind(instrument) is { } kind)
                {
                    string name = PrometheusNames.Metric(instrument.Name, instrument.Unit, kind == FamilyKind.Counter);
                    Family? family;

                    // Start publishes on this thread, but an instrument created meanwhile elsewhere is published on its own.
                    lock (families)
                    {
                        if (!families.TryGetValue(name, out family))
                        {
                            family = new Family(name, kind, instrument.Description);
                            families.Add(name, family);
                        }
                    }

                    l.EnableMeasurementEvents(instrument, family);
                }
            };
            listener.SetMeasurementEventCallback<long>((_, value, tags, state) => ((Family)state!).Add(value, tags));
            listener.SetMeasurementEventCallback<int>((_, value, tags, state) => ((Family)state!).Add(value, tags));
            listener.SetMeasurementEventCallback<short>((_, value, tags, state) => ((Family)state!).Add(value, tags));
            listener.SetMeasurementEventCallback<byte>((_, value, tags, state) => ((Family)state!).Add(value, tags));
            listener.SetMeasurementEventCallback<double>((_, value, tags, state) => ((Family)state!).Add(value, tags));
            listener.SetMeasurementEventCallback<float>((_, value, tags, state) => ((Family)state!).Add(value, tags));
            listener.SetMeasurementEventCallback<decimal>((_, value, tags, state) => ((Family)state!).Add((double)value, tags));
            listener.Start();
            try
            {
                listener.RecordObservableInstruments();
            }
            catch (AggregateException)
            {
                // An instrument's callback threw: the others were still observed, and a scrape with their values is
                // more use than none. The failing instrument's series are simply absent from this scrape.
            }
        }

        var text = new StringBuilder();
        foreach (Family family in families.Values.OrderBy(f => f.Name, StringComparer.Ordinal))
        {
            family.WriteTo(text);
        }

        return text.ToString();
    }

    private static FamilyKind? Kind(Instrument instrument)
    {
        Type type = instrument.GetType();
        if (!type.IsGenericType)
        {
            return null;
        }

        Type definition = type.GetGenericTypeDefinition();
        return definition == typeof(ObservableCounter<>) ? FamilyKind.Counter
            : definition == typeof(ObservableUpDownCounter<>) || definition == typeof(ObservableGauge<>) ? FamilyKind.Gauge
            : null;
    }

    private bool Accepts(Meter meter) =>
        Array.IndexOf(s_meterNames, meter.Name) >= 0 && (meter.Scope is null || ReferenceEquals(meter.Scope, _meterFactory));

    private enum FamilyKind
    {
        Counter,
        Gauge,
    }

    /// <summary>One metric family: every series of the instruments that map to one Prometheus name.</summary>
    private sealed class Family(string name, FamilyKind kind, string? help)
    {
        // Label text (sorted, escaped) to value. Two instruments with one name (a meter per factory and the static
        // meter) and identical labels are added together, as an exporter aggregating by attributes would.
        private readonly Dictionary<string, double> _series = new(StringComparer.Ordinal);

        public string Name { get; } = name;

        public void Add(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            string labels = Labels(tags);
            _series[labels] = _series.TryGetValue(labels, out double sum) ? sum + value : value;
        }

        public void WriteTo(StringBuilder text)
        {
            if (_series.Count == 0)
            {
                return;
            }

            if (!string.IsNullOrEmpty(help))
            {
                text.Append("# HELP ").Append(Name).Append(' ');
                PrometheusNames.AppendEscapedHelp(text, help);
                text.Append('\n');
            }

            text.Append("# TYPE ").Append(Name).Append(kind == FamilyKind.Counter ? " counter\n" : " gauge\n");
            foreach ((string labels, double value) in _series.OrderBy(s => s.Key, StringComparer.Ordinal))
            {
                text.Append(Name);
                if (labels.Length > 0)
                {
                    text.Append('{').Append(labels).Append('}');
                }

                text.Append(' ').Append(PrometheusNames.Value(value)).Append('\n');
            }
        }

        private static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (tags.IsEmpty)
            {
                return string.Empty;
            }

            // Two keys that map to one label name (a.b and a_b) are joined with ';', as OpenTelemetry's exporter does.
            var labels = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                string label = PrometheusNames.Label(tag.Key);
                string value = PrometheusNames.LabelValue(tag.Value);
                labels[label] = labels.TryGetValue(label, out string? earlier) ? earlier + ";" + value : value;
            }

            var text = new StringBuilder();
            foreach ((string label, string value) in labels)
            {
                if (text.Length > 0)
                {
                    text.Append(',');
                }

                text.Append(label).Append("=\"");
                PrometheusNames.AppendEscapedLabelValue(text, value);
                text.Append('"');
            }

            return text.ToString();
        }
    }
}
