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
        ApplyEnvironment(environment, options);
        return options.HasRules ? options : null;
    }

    /// <summary>Overrides <paramref name="options"/> with the variables that are set to a value in range; the rest stay as given.</summary>
    /// <remarks>
    /// When the growth window then spans more checks than the switch keeps samples for, the checks are spaced out
    /// rather than the rule dropped. A check interval the caller chose is kept when the window came from the caller
    /// too: then the switch's constructor names the conflict.
    /// </remarks>
    public static void ApplyEnvironment(Func<string, string?> environment, MonitorAutoSwitchOptions options)
    {
        bool windowFromEnvironment = false;
        Apply(environment(GrowthBytesVariable), v => options.InUseGrowthBytes = v);
        Apply(environment(GrowthWindowVariable), v =>
        {
            options.GrowthWindow = TimeSpan.FromSeconds(v);
            windowFromEnvironment = true;
        });
        Apply(environment(OldNormalBuffersVariable), v => options.OldNormalBuffers = checked((int)v));
        Apply(environment(OldNormalAgeVariable), v => options.OldNormalAge = TimeSpan.FromSeconds(v));
        Apply(environment(SwitchOffAfterVariable), v => options.SwitchOffAfter = TimeSpan.FromSeconds(v));
        FitCheckIntervalToWindow(options, onlyIfDefault: !windowFromEnvironment);
    }

    /// <summary>Spaces the checks out so the growth window spans at most <see cref="MonitorAutoSwitch.MaxSamples"/> of them.</summary>
    /// <param name="options">The options to fit.</param>
    /// <param name="onlyIfDefault">Leave a check interval other than the default alone (someone chose it).</param>
    public static void FitCheckIntervalToWindow(MonitorAutoSwitchOptions options, bool onlyIfDefault)
    {
        if (options.InUseGrowthBytes is null
            || options.GrowthWindow.Ticks / options.CheckInterval.Ticks <= MonitorAutoSwitch.MaxSamples
            || (onlyIfDefault && options.CheckInterval != MonitorAutoSwitchOptions.DefaultCheckInterval))
        {
            return;
        }

        // A window longer than the samples allow: check less often rather than drop the rule.
        options.CheckInterval = TimeSpan.FromTicks(Math.Min(TimeSpan.FromHours(1).Ticks, (options.GrowthWindow.Ticks / MonitorAutoSwitch.MaxSamples) + 1));
    }

    /// <summary>Copies every setting, so the caller's options are not changed by the variables.</summary>
    public static MonitorAutoSwitchOptions Copy(MonitorAutoSwitchOptions options) => new()
    {
        InUseGrowthBytes = options.InUseGrowthBytes,
        GrowthWindow = options.GrowthWindow,
        OldNormalBuffers = options.OldNormalBuffers,
        OldNormalAge = options.OldNormalAge,
        SwitchOffAfter = options.SwitchOffAfter,
        CheckInterval = options.CheckInterval,
        TimeProvider = options.TimeProvider,
    };

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
