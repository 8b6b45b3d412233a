using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace OffHeapTracker.AspNetCore;

/// <summary>Creates each pool's options with the factory's defaults (the owner's name, the host's logger and meter factories, pinned arrays) before any configure step runs.</summary>
/// <remarks>The options name is the pool's owner; pools without an owner use <see cref="Options.DefaultName"/> and are named <c>aspnetcore</c>.</remarks>
internal sealed class DirectBufferPoolOptionsFactory(
    IEnumerable<IConfigureOptions<DirectBufferPoolOptions>> setups,
    IEnumerable<IPostConfigureOptions<DirectBufferPoolOptions>> postConfigures,
    IEnumerable<IValidateOptions<DirectBufferPoolOptions>> validations,
    ILoggerFactory loggerFactory,
    IMeterFactory? meterFactory = null)
    : OptionsFactory<DirectBufferPoolOptions>(setups, postConfigures, validations)
{
    protected override DirectBufferPoolOptions CreateInstance(string name) =>
        DirectBufferPoolFactory.DefaultOptions(string.IsNullOrWhiteSpace(name) ? DirectBufferPoolFactory.DefaultOwner : name, loggerFactory, meterFactory);
}
