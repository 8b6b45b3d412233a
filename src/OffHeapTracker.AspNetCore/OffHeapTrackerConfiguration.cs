using Microsoft.Extensions.Configuration;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.AspNetCore;

/// <summary>The <c>OffHeapTracker</c> configuration section: what each key sets, and the keys each level knows.</summary>
/// <remarks>
/// <code>
/// "OffHeapTracker": {
///   "CapacityBytes": 67108864,              // every pool the factory creates ...
///   "Pools": { "kestrel": { "CapacityBytes": 1048576 } },   // ... and per owner, over it
///   "Monitor": {
///     "Enabled": true, "Stacks": "Every", "RecordPool": false,
///     "AutoSwitch": { "OldNormalBuffers": 100, "OldNormalAge": "00:05:00", "SwitchOffAfter": "00:30:00" }
///   },
///   "ShutdownTimeout": "00:00:05"
/// }
/// </code>
/// </remarks>
internal static class OffHeapTrackerConfiguration
{
    /// <summary>The section <c>AddDirectBufferPool()</c> binds from the host's configuration.</summary>
    public const string SectionName = "OffHeapTracker";

    private static readonly string[] s_poolKeys = ["CapacityBytes", "MaxPooledBufferSize", "MaxBufferSize", "TrimAfter", "Backing", "ReclaimLeakedBuffers"];
    private static readonly string[] s_rootKeys = [.. s_poolKeys, "Pools", "Monitor", "ShutdownTimeout"];
    private static readonly string[] s_monitorKeys =
    [
        "Enabled", "RecordPool", "Stacks", "StackBudget", "StackTraceSampling", "StackTraceDepth", "StackTraceFileInfo",
        "CaptureDisposeStacks", "MaxRecords", "MaxStacks", "AutoSwitch",
    ];

    private static readonly string[] s_autoSwitchKeys = ["InUseGrowthBytes", "GrowthWindow", "OldNormalBuffers", "OldNormalAge", "SwitchOffAfter", "CheckInterval"];

    /// <summary>Applies the section's pool keys, then those of <c>Pools:{name}</c>, to one pool's options.</summary>
    public static void BindPool(IConfiguration root, string name, DirectBufferPoolOptions options, List<string> errors)
    {
        BindPoolKeys(root, options, errors);
        new ConfigurationReader(root, errors).RejectUnknown(s_rootKeys);
        IConfigurationSection pools = root.GetSection("Pools");
        foreach (IConfigurationSection pool in pools.GetChildren())
        {
            // Owners compare as configuration keys do: case-insensitively.
            if (pool.Key.Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                BindPoolKeys(pool, options, errors);
                new ConfigurationReader(pool, errors).RejectUnknown(s_poolKeys);
            }
        }
    }

    /// <summary>Gets the owners named under <c>Pools</c>, so the host can check each one's options at start.</summary>
    public static IEnumerable<string> PoolNames(IConfiguration root) => root.GetSection("Pools").GetChildren().Select(static s => s.Key);

    /// <summary>Applies <c>Monitor:*</c> (with <c>Monitor:AutoSwitch:*</c>) and <c>ShutdownTimeout</c>.</summary>
    public static void BindHost(IConfiguration root, OffHeapTrackerHostOptions options, List<string> errors)
    {
        new ConfigurationReader(root, errors).Duration("ShutdownTimeout", v => options.ShutdownTimeout = v, "a duration from 00:00:00 to 00:05:00");
        IConfigurationSection section = root.GetSection("Monitor");
        var read = new ConfigurationReader(section, errors);
        ResidentBufferMonitorOptions monitor = options.Monitor;
        read.Bool("Enabled", v => options.MonitorEnabled = v);
        read.Bool("RecordPool", v => Set(options, "RecordPool", () => monitor.RecordPool = v));
        read.Enum<StackPolicy>("Stacks", v => Set(options, "Stacks", () => monitor.Stacks = v));
        read.Double("StackBudget", v => Set(options, "StackBudget", () => monitor.StackBudget = v), "a share of one core from 0.0001 to 1");
        read.Int("StackTraceSampling", v => Set(options, "StackTraceSampling", () => monitor.StackTraceSampling = v), "a whole number from 1 to 1000000");
        read.Int("StackTraceDepth", v => Set(options, "StackTraceDepth", () => monitor.StackTraceDepth = v), $"a whole number from 0 to {ResidentBufferMonitorOptions.MaxStackTraceDepth}");
        read.Bool("StackTraceFileInfo", v => Set(options, "StackTraceFileInfo", () => monitor.StackTraceFileInfo = v));
        read.Bool("CaptureDisposeStacks", v => Set(options, "CaptureDisposeStacks", () => monitor.CaptureDisposeStacks = v));
        read.Int("MaxRecords", v => Set(options, "MaxRecords", () => monitor.MaxRecords = v), $"a whole number from 1 to {int.MaxValue}");
        read.Int("MaxStacks", v => Set(options, "MaxStacks", () => monitor.MaxStacks = v), $"a whole number from 1 to {int.MaxValue}");
        read.RejectUnknown(s_monitorKeys);
        BindAutoSwitch(section.GetSection("AutoSwitch"), options.AutoSwitch, errors);
    }

    /// <summary>Applies <c>Monitor:AutoSwitch:*</c>: the rules of <see cref="MonitorAutoSwitchOptions"/>, under the same names.</summary>
    private static void BindAutoSwitch(IConfigurationSection section, MonitorAutoSwitchOptions rules, List<string> errors)
    {
        int errorsBefore = errors.Count;
        var read = new ConfigurationReader(section, errors);
        read.Long("InUseGrowthBytes", v => rules.InUseGrowthBytes = v, $"a whole number of bytes from 1 to {long.MaxValue}");
        read.Duration("GrowthWindow", v => rules.GrowthWindow = v, "a duration from 00:00:02 to 7.00:00:00");
        read.Int("OldNormalBuffers", v => rules.OldNormalBuffers = v, $"a whole number from 1 to {int.MaxValue}");
        read.Duration("OldNormalAge", v => rules.OldNormalAge = v, "a duration from 00:00:01 to 7.00:00:00");
        read.Duration("SwitchOffAfter", v => rules.SwitchOffAfter = v, "a duration from 00:00:01 to 7.00:00:00");
        read.Duration("CheckInterval", v => rules.CheckInterval = v, "a duration from 00:00:00.1 to 01:00:00");
        read.RejectUnknown(s_autoSwitchKeys);
        if (errors.Count > errorsBefore || !section.GetChildren().Any())
        {
            return;
        }

        if (!rules.HasRules)
        {
            // A section that sets only a window or a switch-off time would do nothing, silently.
            errors.Add($"{section.Path}: no rule is set, so the switch would never fire; set InUseGrowthBytes, OldNormalBuffers or both.");
            return;
        }

        if (rules.InUseGrowthBytes is not null && rules.GrowthWindow.Ticks / rules.CheckInterval.Ticks > MonitorAutoSwitch.MaxSamples)
        {
            if (section.GetSection("CheckInterval").Value is not null)
            {
                errors.Add(
                    $"{section.GetSection("GrowthWindow").Path}: '{rules.GrowthWindow}' spans more than {MonitorAutoSwitch.MaxSamples} checks of CheckInterval ({rules.CheckInterval}); "
                    + $"GrowthWindow must be at most {MonitorAutoSwitch.MaxSamples} times CheckInterval: lengthen CheckInterval or shorten the window.");
                return;
            }

            // No interval chosen: check less often rather than refuse the window, as the environment variables do.
            rules.CheckInterval = TimeSpan.FromTicks(Math.Min(TimeSpan.FromHours(1).Ticks, (rules.GrowthWindow.Ticks / MonitorAutoSwitch.MaxSamples) + 1));
        }
    }

    private static void Set(OffHeapTrackerHostOptions options, string key, Action set)
    {
        set();
        if (!options.MonitorKeysSet.Contains(key))
        {
            options.MonitorKeysSet.Add(key);
        }
    }

    private static void BindPoolKeys(IConfiguration section, DirectBufferPoolOptions options, List<string> errors)
    {
        var read = new ConfigurationReader(section, errors);
        read.Long("CapacityBytes", v => options.CapacityBytes = v, $"a whole number of bytes from 0 to {long.MaxValue}");
        read.Int("MaxPooledBufferSize", v => options.MaxPooledBufferSize = v, "a power of two from 512 to 16777216");
        read.Int("MaxBufferSize", v => options.MaxBufferSize = v, $"a whole number from 512 to {Array.MaxLength}");
        read.Duration("TrimAfter", v => options.TrimAfter = v, "a duration of at least 00:00:00.1, or Infinite", allowInfinite: true);
        read.Enum<BufferBacking>("Backing", v => options.Backing = v);
        read.Bool("ReclaimLeakedBuffers", v => options.ReclaimLeakedBuffers = v);
    }
}
