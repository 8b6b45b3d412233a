using Microsoft.Extensions.Hosting;

namespace OffHeapTracker.Samples;

/// <summary>A host lifetime that handles no signal, so that the sample's <see cref="ShutdownSignals"/> is the only handler in the process.</summary>
/// <remarks>
/// The default console lifetime handles SIGINT, SIGTERM and SIGQUIT itself and stops only its own host. Register this
/// one instead (<c>builder.Services.AddSingleton&lt;IHostLifetime, SignalFreeHostLifetime&gt;()</c>) and stop the
/// host with the token of <see cref="ShutdownSignals"/>.
/// </remarks>
internal sealed class SignalFreeHostLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
