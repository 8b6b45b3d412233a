using System.Buffers;
using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OffHeapTracker;
using OffHeapTracker.AspNetCore;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers OffHeapTracker's pool factory, so Kestrel rents its connection buffers from tracked native memory.</summary>
public static class DirectBufferPoolServiceCollectionExtensions
{
    /// <summary>Makes every <see cref="IMemoryPoolFactory{T}"/> user, Kestrel's socket transport first, get <see cref="DirectBufferPool"/>s.</summary>
    /// <param name="services">The host's services.</param>
    /// <param name="configure">Configures each pool's options (capacity, sizes, monitor); the name comes from the pool's owner. Calls compose, in order, like any <c>Configure&lt;TOptions&gt;</c>.</param>
    /// <returns>The same services, for chaining.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> is null.</exception>
    /// <remarks>Replaces any <see cref="IMemoryPoolFactory{T}"/> already registered (Kestrel registers its own before user code runs).</remarks>
    public static IServiceCollection AddDirectBufferPool(this IServiceCollection services, Action<DirectBufferPoolOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (configure is not null)
        {
            services.Configure(configure);
        }

        services.TryAddSingleton(static sp =>
        {
            IConfigureOptions<DirectBufferPoolOptions>[] configures = [.. sp.GetServices<IConfigureOptions<DirectBufferPoolOptions>>()];
            return new DirectBufferPoolFactory(
                options =>
                {
                    foreach (IConfigureOptions<DirectBufferPoolOptions> step in configures)
                    {
                        step.Configure(options);
                    }
                },
                sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance,
                sp.GetService<IMeterFactory>());
        });
        services.RemoveAll<IMemoryPoolFactory<byte>>();
        services.AddSingleton<IMemoryPoolFactory<byte>>(static sp => sp.GetRequiredService<DirectBufferPoolFactory>());
        return services;
    }
}
