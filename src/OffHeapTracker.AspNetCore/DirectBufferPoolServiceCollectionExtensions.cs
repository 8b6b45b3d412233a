using System.Buffers;
using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OffHeapTracker;
using OffHeapTracker.AspNetCore;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers OffHeapTracker's pool factory, so Kestrel rents its connection buffers from tracked pools (pinned arrays, as Kestrel's socket transport needs).</summary>
public static class DirectBufferPoolServiceCollectionExtensions
{
    /// <summary>Makes every <see cref="IMemoryPoolFactory{T}"/> user, Kestrel's socket transport first, get <see cref="DirectBufferPool"/>s configured from the host's <c>OffHeapTracker</c> configuration section.</summary>
    /// <param name="services">The host's services.</param>
    /// <param name="configure">Configures every pool's options (capacity, sizes, monitor), after the configuration is bound. Calls compose, in order.</param>
    /// <returns>The same services, for chaining.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> is null.</exception>
    /// <remarks>
    /// <para>
    /// Pools take their options from <see cref="IOptionsMonitor{TOptions}"/> of <see cref="DirectBufferPoolOptions"/>,
    /// named after their owner (<c>kestrel</c> for Kestrel's): <c>services.Configure&lt;DirectBufferPoolOptions&gt;("kestrel", o =&gt; …)</c>
    /// configures only Kestrel's pools, <c>PostConfigure</c> runs after everything, and any
    /// <see cref="IValidateOptions{TOptions}"/> is checked. The section's keys (<c>CapacityBytes</c>,
    /// <c>MaxPooledBufferSize</c>, <c>MaxBufferSize</c>, <c>TrimAfter</c>, <c>Backing</c>, <c>ReclaimLeakedBuffers</c>)
    /// apply to every pool, those under <c>Pools:{owner}</c> to one owner's; <c>Monitor</c> and <c>ShutdownTimeout</c>
    /// set <see cref="OffHeapTrackerHostOptions"/>. A bad or unknown key fails the host's start with an
    /// <see cref="OptionsValidationException"/> whose message names the key and what it may be.
    /// </para>
    /// <para>
    /// Also registers a hosted service: when the host starts it checks the options, sends the shared monitor's
    /// logs and instruments to the host's logger and meter factories and starts the automatic switch-on set under
    /// <c>Monitor:AutoSwitch</c> (<see cref="OffHeapTrackerHostOptions.AutoSwitch"/>); when it stops it stops that switch and waits up to
    /// <see cref="OffHeapTrackerHostOptions.ShutdownTimeout"/> for the pools' buffers and logs what is still out.
    /// Replaces any <see cref="IMemoryPoolFactory{T}"/> already registered (Kestrel registers its own before user code runs).
    /// </para>
    /// </remarks>
    public static IServiceCollection AddDirectBufferPool(this IServiceCollection services, Action<DirectBufferPoolOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        AddCore(services);
        if (configure is not null)
        {
            services.ConfigureAll(configure);
        }

        return services;
    }

    /// <summary>Does what <see cref="AddDirectBufferPool(IServiceCollection, Action{DirectBufferPoolOptions}?)"/> does, binding <paramref name="configuration"/> instead of the host's <c>OffHeapTracker</c> section.</summary>
    /// <param name="services">The host's services.</param>
    /// <param name="configuration">The section to bind, such as <c>builder.Configuration.GetSection("OffHeapTracker")</c>.</param>
    /// <param name="configure">Configures every pool's options after the section is bound; null for none.</param>
    /// <returns>The same services, for chaining.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> or <paramref name="configuration"/> is null.</exception>
    public static IServiceCollection AddDirectBufferPool(this IServiceCollection services, IConfiguration configuration, Action<DirectBufferPoolOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.RemoveAll<OffHeapTrackerSection>();
        services.AddSingleton(new OffHeapTrackerSection(configuration));
        return services.AddDirectBufferPool(configure);
    }

    private static void AddCore(IServiceCollection services)
    {
        services.AddOptions();
        services.TryAddSingleton(static sp => new OffHeapTrackerSection(sp.GetService<IConfiguration>()?.GetSection(OffHeapTrackerConfiguration.SectionName)));
        services.TryAddTransient<IOptionsFactory<DirectBufferPoolOptions>>(static sp => new DirectBufferPoolOptionsFactory(
            sp.GetServices<IConfigureOptions<DirectBufferPoolOptions>>(),
            sp.GetServices<IPostConfigureOptions<DirectBufferPoolOptions>>(),
            sp.GetServices<IValidateOptions<DirectBufferPoolOptions>>(),
            LoggerFactory(sp),
            sp.GetService<IMeterFactory>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<DirectBufferPoolOptions>, DirectBufferPoolOptionsSetup>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<DirectBufferPoolOptions>, DirectBufferPoolOptionsSetup>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<OffHeapTrackerHostOptions>, OffHeapTrackerHostOptionsSetup>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<OffHeapTrackerHostOptions>, OffHeapTrackerHostOptionsSetup>());
        services.TryAddSingleton(static sp => new DirectBufferPoolFactory(
            sp.GetRequiredService<IOptionsMonitor<DirectBufferPoolOptions>>(),
            sp.GetRequiredService<IOptions<OffHeapTrackerHostOptions>>(),
            LoggerFactory(sp),
            sp.GetService<IMeterFactory>()));
        services.RemoveAll<IMemoryPoolFactory<byte>>();
        services.AddSingleton<IMemoryPoolFactory<byte>>(static sp => sp.GetRequiredService<DirectBufferPoolFactory>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, OffHeapTrackerHostedService>(static sp => new OffHeapTrackerHostedService(
            sp.GetRequiredService<DirectBufferPoolFactory>(),
            sp.GetRequiredService<IOptionsMonitor<DirectBufferPoolOptions>>(),
            sp.GetRequiredService<IOptions<OffHeapTrackerHostOptions>>(),
            sp.GetRequiredService<OffHeapTrackerSection>(),
            LoggerFactory(sp))));
    }

    private static ILoggerFactory LoggerFactory(IServiceProvider services) => services.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance;
}
