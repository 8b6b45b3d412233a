using System.Runtime.CompilerServices;
using Microsoft.Extensions.Options;

namespace OffHeapTracker.AspNetCore;

/// <summary>Binds <see cref="OffHeapTrackerHostOptions"/> from configuration and reports what could not be bound, naming the key.</summary>
internal sealed class OffHeapTrackerHostOptionsSetup(OffHeapTrackerSection configuration) : IConfigureOptions<OffHeapTrackerHostOptions>, IValidateOptions<OffHeapTrackerHostOptions>
{
    private static readonly ConditionalWeakTable<OffHeapTrackerHostOptions, List<string>> s_errors = [];

    public void Configure(OffHeapTrackerHostOptions options)
    {
        if (configuration.Section is not { } section)
        {
            return;
        }

        var errors = new List<string>();
        OffHeapTrackerConfiguration.BindHost(section, options, errors);
        if (errors.Count > 0)
        {
            s_errors.AddOrUpdate(options, errors);
        }
    }

    public ValidateOptionsResult Validate(string? name, OffHeapTrackerHostOptions options) =>
        s_errors.TryGetValue(options, out List<string>? errors) ? ValidateOptionsResult.Fail(errors) : ValidateOptionsResult.Success;
}
