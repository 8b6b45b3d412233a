using System.Runtime.CompilerServices;
using Microsoft.Extensions.Options;

namespace OffHeapTracker.AspNetCore;

/// <summary>Binds each pool's options from configuration (the section's keys, then <c>Pools:{owner}</c>), and reports what could not be bound as validation failures.</summary>
/// <remarks>
/// Binding never throws: a bad value is remembered against the options instance, and the validator turns it into
/// an <see cref="OptionsValidationException"/> naming the key, which <c>ValidateOnStart</c> and the hosted service
/// raise when the host starts, with every other <see cref="IValidateOptions{TOptions}"/> failure.
/// </remarks>
internal sealed class DirectBufferPoolOptionsSetup(OffHeapTrackerSection configuration) : IConfigureNamedOptions<DirectBufferPoolOptions>, IValidateOptions<DirectBufferPoolOptions>
{
    private static readonly ConditionalWeakTable<DirectBufferPoolOptions, List<string>> s_errors = [];

    public void Configure(DirectBufferPoolOptions options) => Configure(Options.DefaultName, options);

    public void Configure(string? name, DirectBufferPoolOptions options)
    {
        if (configuration.Section is not { } section)
        {
            return;
        }

        var errors = new List<string>();
        OffHeapTrackerConfiguration.BindPool(section, name ?? Options.DefaultName, options, errors);
        if (errors.Count > 0)
        {
            s_errors.AddOrUpdate(options, errors);
        }
    }

    public ValidateOptionsResult Validate(string? name, DirectBufferPoolOptions options) =>
        s_errors.TryGetValue(options, out List<string>? errors) ? ValidateOptionsResult.Fail(errors) : ValidateOptionsResult.Success;
}
