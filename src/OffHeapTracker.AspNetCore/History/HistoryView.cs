using System.Text.Json;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.AspNetCore.History;

/// <summary>What one read of the history copied out of the ring, and how it is written as the <c>/history</c> JSON.</summary>
/// <remarks>
/// The sites are the latest sample's, with the growth each showed since the monitor was last switched on, suspects
/// (sites that only grew) first and by growth, then the rest by bytes: a leak that is still growing outranks a large
/// resident workload that is flat. <c>since</c> limits the samples written, not the growth, which is always read from
/// the whole ring.
/// </remarks>
internal sealed class HistoryView(
    HistorySample[] samples,
    long since,
    IReadOnlyList<LeakSite> sites,
    BufferHistory.SwitchEvent[] switches,
    bool enabled,
    long? enabledSince,
    bool enabledSinceExact,
    long startedAt,
    long now)
{
    public HistorySample[] Samples => samples;

    /// <summary>The latest sites with their growth, suspects first.</summary>
    public IReadOnlyList<(LeakSite Site, ulong Key, SiteGrowth Growth)> Sites()
    {
        // Growth is read only since the monitor was last switched on: switching off drops every record, so a series
        // across a switch would compare two different tables.
        int from = samples.Length;
        while (from > 0 && samples[from - 1].MonitorEnabled)
        {
            from--;
        }

        var rows = new List<(LeakSite Site, ulong Key, SiteGrowth Growth)>(sites.Count);
        foreach (LeakSite site in sites)
        {
            ulong key = SiteKey.Of(site.StackTrace);
            rows.Add((site, key, SiteGrowth.Of(samples, from, key)));
        }

        rows.Sort(static (a, b) =>
            a.Growth.OnlyGrows != b.Growth.OnlyGrows ? (a.Growth.OnlyGrows ? -1 : 1)
            : a.Growth.OnlyGrows ? b.Growth.GrowthBytes.CompareTo(a.Growth.GrowthBytes)
            : b.Site.EstimatedBytes.CompareTo(a.Site.EstimatedBytes));
        return rows;
    }

    public void Write(Utf8JsonWriter json, BufferHistory history)
    {
        json.WriteStartObject();
        json.WriteNumber("interval_seconds", history.Interval.TotalSeconds);
        json.WriteNumber("length_seconds", history.Length.TotalSeconds);
        json.WriteNumber("capacity", history.SampleCapacity);
        json.WriteNumber("top_sites", BufferHistory.TopSites);
        json.WriteNumber("old_age_seconds", BufferHistory.OldAge.TotalSeconds);
        json.WriteNumber("started_at", startedAt);
        json.WriteNumber("now", now);
        json.WriteString("error", history.LastError);

        json.WriteStartObject("monitor");
        json.WriteBoolean("enabled", enabled);
        WriteNullable(json, "enabled_since", enabledSince);
        json.WriteBoolean("enabled_since_exact", enabledSinceExact);
        json.WriteEndObject();

        json.WriteStartArray("switches");
        foreach (BufferHistory.SwitchEvent s in switches)
        {
            json.WriteStartObject();
            json.WriteNumber("at", s.At);
            json.WriteBoolean("enabled", s.Enabled);
            json.WriteBoolean("exact", s.Exact);
            json.WriteEndObject();
        }

        json.WriteEndArray();

        json.WriteStartArray("samples");
        foreach (HistorySample sample in samples)
        {
            if (sample.UnixMilliseconds > since)
            {
                WriteSample(json, sample);
            }
        }

        json.WriteEndArray();

        json.WriteStartArray("sites");
        foreach ((LeakSite site, ulong key, SiteGrowth growth) in Sites())
        {
            WriteSite(json, site, key, growth);
        }

        json.WriteEndArray();
        json.WriteEndObject();
    }

    private static void WriteSample(Utf8JsonWriter json, HistorySample sample)
    {
        json.WriteStartObject();
        json.WriteNumber("t", sample.UnixMilliseconds);
        json.WriteBoolean("enabled", sample.MonitorEnabled);
        json.WriteNumber("records", sample.Records);
        json.WriteNumber("dropped", sample.DroppedRecords);
        json.WriteStartArray("pools");
        foreach (PoolSample p in sample.Pools)
        {
            json.WriteStartObject();
            json.WriteNumber("id", p.Id);
            json.WriteString("name", p.Name);
            json.WriteNumber("in_use", p.InUseBytes);
            json.WriteNumber("pool_in_use", p.PoolTypeInUseBytes);
            json.WriteNumber("outstanding", p.OutstandingCount);
            json.WriteNumber("leaked", p.LeakedCount);
            json.WriteNumber("fallbacks", p.FallbackCount);
            json.WriteNumber("double_disposes", p.DoubleDisposeCount);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        if (sample.OldNormal is { } old)
        {
            json.WriteStartObject("old_normal");
            json.WriteNumber("count", old.Count);
            json.WriteNumber("bytes", old.Bytes);
            json.WriteNumber("oldest_second", old.OldestSeconds);
            json.WriteEndObject();
        }
        else
        {
            json.WriteNull("old_normal");
        }

        json.WriteStartObject("sites");
        foreach (SiteSample site in sample.Sites)
        {
            json.WriteNumber(SiteKey.Format(site.Key), site.Bytes);
        }

        json.WriteEndObject();
        json.WriteEndObject();
    }

    private static void WriteSite(Utf8JsonWriter json, LeakSite site, ulong key, SiteGrowth growth)
    {
        json.WriteStartObject();
        json.WriteString("key", SiteKey.Format(key));
        json.WriteString("stacktrace", site.StackTrace);
        json.WriteNumber("count", site.EstimatedCount);
        json.WriteNumber("bytes", site.EstimatedBytes);
        json.WriteBoolean("is_estimate", site.IsEstimate);
        json.WriteNumber("oldest_second", site.OldestAgeSeconds);
        json.WriteNumber("newest_second", site.NewestAgeSeconds);
        json.WriteStartArray("types");
        foreach (BufferType type in site.BufferTypes)
        {
            json.WriteStringValue(type == BufferType.Pool ? "pool" : "normal");
        }

        json.WriteEndArray();
        json.WriteStartArray("sample_ids");
        foreach (long id in site.SampleIds)
        {
            json.WriteNumberValue(id);
        }

        json.WriteEndArray();
        json.WriteNumber("points", growth.Points);
        json.WriteNumber("growth_bytes", growth.GrowthBytes);
        json.WriteNumber("growth_bytes_per_minute", Math.Round(growth.BytesPerMinute, 1));
        json.WriteNumber("recent_growth_bytes", growth.RecentBytes);
        json.WriteNumber("recent_seconds", Math.Round(growth.RecentMinutes * 60, 1));
        json.WriteNumber("recent_bytes_per_minute", Math.Round(growth.RecentBytesPerMinute, 1));
        json.WriteBoolean("growing", growth.OnlyGrows);
        json.WriteEndObject();
    }

    private static void WriteNullable(Utf8JsonWriter json, string name, long? value)
    {
        if (value is { } v)
        {
            json.WriteNumber(name, v);
        }
        else
        {
            json.WriteNull(name);
        }
    }
}
