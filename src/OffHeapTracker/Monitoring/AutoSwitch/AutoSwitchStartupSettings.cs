using System.Globalization;

namespace OffHeapTracker.Monitoring;

/// <summary>Reads the shared monitor's automatic switch from environment variables (see <see cref="BufferMonitor.AutoSwitch"/>).</summary>
/// <remarks>
/// One variable per setting, in bytes, buffers and seconds. As with the other startup switches, a value that does
/// not parse or is out of its option's range is ignored (the option keeps its default); with no rule set there is
/// no switch.
/// </remarks>
internal static class AutoSwitchStartupSettings
{
    public const string GrowthBytesVariable = "OFFHEAPTRACKER_MONITOR_AUTO_GROWTH_BYTES";
    public const string GrowthWindowVariable = "OFFHEAPTRACKER_MONITOR_AUTO_GROWTH_WINDOW_SECONDS";
    public const string OldNormalBuffersVariable = "OFFHEAPTRACKER_MONITOR_AUTO_OLD_NORMAL_BUFFERS";
    public const string OldNormalAgeVariable = "OFFHEAPTRACKER_MONITOR_AUTO_OLD_NORMAL_AGE_SECONDS";
    public const string SwitchOffAfterVariable = "OFFHEAPTRACKER_MONITOR_AUTO_OFF_AFTER_SECONDS";

    /// <summary>The options the variables describe, or null when they set no rule.</summary>
    public static MonitorAutoSwitchOptions? Read(Func<string, string?> environment)
    {
        var options = new MonitorAutoSwitchOptions();
        Apply(environment(GrowthBytesVariable), v => options.InUseGrowthBytes = v);
        Apply(environment(GrowthWindowVariable), v => options.GrowthWindow = TimeSpan.FromSeconds(v));
        Apply(environment(OldNormalBuffersVariable), v => options.OldNormalBuffers = checked((int)v));
        Apply(environment(OldNormalAgeVariable), v => options.OldNormalAge = TimeSpan.FromSeconds(v));
        Apply(environment(SwitchOffAfterVariable), v => options.SwitchOffAfter = TimeSpan.FromSeconds(v));
        if (options.InUseGrowthBytes is not null && options.GrowthWindow.Ticks / options.CheckInterval.Ticks > MonitorAutoSwitch.MaxSamples)
        {
            // A window longer than the samples allow: check less often rather than drop the rule.
            options.CheckInterval = TimeSpan.FromTicks(Math.Min(TimeSpan.FromHours(1).Ticks, (options.GrowthWindow.Ticks / MonitorAutoSwitch.MaxSamples) + 1));
        }

        return options.HasRules ? options : null;
    }

    private static void Apply(string? value, Action<long> set)
    {
        if (!long.TryParse(value?.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out long parsed))
        {
            return;
        }

        try
        {
            set(parsed);
        }
        catch (Exception e) when (e is ArgumentOutOfRangeException or OverflowException)
        {
            // Out of range: ignored, as every startup switch ignores what it does not understand.
        }
    }
}
