namespace OffHeapTracker.Monitoring;

/// <summary>Reads the startup switches of the process-wide monitor: the .NET counterpart of dble's <c>-DenableMemoryBufferMonitor</c> flags.</summary>
/// <remarks>
/// An AppContext switch (set in a project file with <c>RuntimeHostConfigurationOption</c>) is the build-time
/// default; an environment variable, set where the process is deployed, overrides it. Environment values
/// <c>1</c>/<c>true</c> and <c>0</c>/<c>false</c> are understood (case-insensitive); anything else is ignored.
/// </remarks>
internal readonly record struct MonitorStartupSettings(bool Enabled, bool RecordPool, int StackTraceSampling, StackPolicy Stacks = StackPolicy.Budgeted, bool FastStacks = true, double StackBudget = StackCapture.DefaultCpuBudget)
{
    public static MonitorStartupSettings FromProcess() =>
        Read(
            Environment.GetEnvironmentVariable,
            static name => AppContext.TryGetSwitch(name, out bool value) ? value : null,
            static name => AppContext.GetData(name)?.ToString());

    public static MonitorStartupSettings Read(Func<string, string?> environment, Func<string, bool?> appContextSwitch, Func<string, string?>? appContextData = null)
    {
        bool enabled = ParseFlag(environment(BufferMonitor.EnabledEnvironmentVariable))
            ?? appContextSwitch(BufferMonitor.EnabledSwitch)
            ?? false;
        bool recordPool = ParseFlag(environment(BufferMonitor.RecordPoolEnvironmentVariable))
            ?? appContextSwitch(BufferMonitor.RecordPoolSwitch)
            ?? true;
        int sampling = ParseSampling(environment(BufferMonitor.StackTraceSamplingEnvironmentVariable))
            ?? ParseSampling(appContextData?.Invoke(BufferMonitor.StackTraceSamplingSwitch))
            ?? 1;
        StackPolicy stacks = ParseStacks(environment(BufferMonitor.StacksEnvironmentVariable))
            ?? ParseStacks(appContextData?.Invoke(BufferMonitor.StacksSwitch))
            ?? StackPolicy.Budgeted;
        double budget = ParseBudget(environment(BufferMonitor.StackBudgetEnvironmentVariable))
            ?? ParseBudget(appContextData?.Invoke(BufferMonitor.StackBudgetSwitch))
            ?? StackCapture.DefaultCpuBudget;

        // Process-wide, for every monitor (not only the shared one): the operator's way to rule fast capture out.
        bool fastStacks = ParseFlag(environment(BufferMonitor.FastStacksEnvironmentVariable))
            ?? appContextSwitch(BufferMonitor.FastStacksSwitch)
            ?? true;
        return new MonitorStartupSettings(enabled, recordPool, sampling, stacks, fastStacks, budget);
    }

    /// <summary>Overrides <paramref name="options"/> and <paramref name="enabled"/> with the environment variables that are set to a value understood; the rest stay as given.</summary>
    public static void ApplyEnvironment(Func<string, string?> environment, ResidentBufferMonitorOptions options, ref bool enabled)
    {
        enabled = ParseFlag(environment(BufferMonitor.EnabledEnvironmentVariable)) ?? enabled;
        options.RecordPool = ParseFlag(environment(BufferMonitor.RecordPoolEnvironmentVariable)) ?? options.RecordPool;
        options.StackTraceSampling = ParseSampling(environment(BufferMonitor.StackTraceSamplingEnvironmentVariable)) ?? options.StackTraceSampling;
        options.Stacks = ParseStacks(environment(BufferMonitor.StacksEnvironmentVariable)) ?? options.Stacks;
        options.StackBudget = ParseBudget(environment(BufferMonitor.StackBudgetEnvironmentVariable)) ?? options.StackBudget;
    }

    // A share of one core from 0.0001 to 1, as ResidentBufferMonitorOptions.StackBudget allows ("0.005"), or the same
    // in percent with a percent sign ("0.5%"): "1" is a whole core, so an operator who means 1 % writes "1%" or
    // "0.01". Anything else is ignored, as for the other switches.
    private static double? ParseBudget(string? value)
    {
        string? text = value?.Trim();
        double scale = 1;
        if (text is not null && text.EndsWith('%'))
        {
            text = text[..^1].TrimEnd();
            scale = 0.01;
        }

        return double.TryParse(text, System.Globalization.NumberStyles.AllowDecimalPoint, System.Globalization.CultureInfo.InvariantCulture, out double share)
            && share * scale is >= StackCapture.MinCpuBudget and <= StackCapture.MaxCpuBudget
                ? share * scale
                : null;
    }

    // budgeted, every or none (case-insensitive); anything else is ignored, as for the other switches.
    private static StackPolicy? ParseStacks(string? value) => value?.Trim().ToUpperInvariant() switch
    {
        "BUDGETED" => StackPolicy.Budgeted,
        "EVERY" => StackPolicy.Every,
        "NONE" => StackPolicy.None,
        _ => null,
    };

    // 1 to 1,000,000, as ResidentBufferMonitorOptions.StackTraceSampling allows; anything else is ignored.
    private static int? ParseSampling(string? value) =>
        int.TryParse(value?.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) && n is >= 1 and <= 1_000_000
            ? n
            : null;

    private static bool? ParseFlag(string? value) => value?.Trim().ToUpperInvariant() switch
    {
        "1" or "TRUE" => true,
        "0" or "FALSE" => false,
        _ => null,
    };
}
